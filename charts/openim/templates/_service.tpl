{{/* One service: its workload (Deployment, or StatefulSet with a headless Service for the
gateway), Service, HorizontalPodAutoscaler, PodDisruptionBudget and ServiceMonitor. Rendered by
each subchart with (dict "root" . "service" "<name>"). */}}
{{- define "openim.service" -}}
{{- $root := .root -}}
{{- $svc := .service -}}
{{- $spec := get (fromYaml (include "openim.specs" $root)) $svc -}}
{{- $v := mergeOverwrite (deepCopy $root.Values.global.service) (omit $root.Values "global" "enabled") -}}
{{- $name := printf "%s-%s" $root.Release.Name $svc -}}
{{- $ctx := dict "root" $root "service" $svc -}}
{{- $health := index $spec.ports 0 -}}
{{- $secret := $root.Values.global.existingSecret | default (printf "%s-openim" $root.Release.Name) -}}
apiVersion: apps/v1
kind: {{ $spec.kind }}
metadata:
  name: {{ $name }}
  labels: {{- include "openim.labels" $ctx | nindent 4 }}
spec:
  {{- if eq $svc "msggateway" }}
  replicas: {{ $root.Values.global.msggatewayReplicas }}
  {{- else if not (and $spec.scalable $v.autoscaling.enabled) }}
  replicas: {{ $v.replicaCount }}
  {{- end }}
  {{- if eq $spec.kind "StatefulSet" }}
  serviceName: {{ $name }}-headless
  podManagementPolicy: Parallel
  {{- end }}
  selector:
    matchLabels: {{- include "openim.selector" $ctx | nindent 6 }}
  template:
    metadata:
      labels: {{- include "openim.labels" $ctx | nindent 8 }}
      annotations:
        # A changed configuration rolls the pods.
        checksum/config: {{ include "openim.config" $root | sha256sum }}
        {{- with $v.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      {{- with $root.Values.global.imagePullSecrets }}
      imagePullSecrets: {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext: { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, fsGroup: 65532 }
      containers:
        - name: {{ $svc }}
          image: {{ include "openim.image" $ctx }}
          imagePullPolicy: {{ $root.Values.global.image.pullPolicy }}
          securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: [ALL] } }
          envFrom:
            - secretRef:
                name: {{ $secret }}
          env:
            - name: POD_NAME
              valueFrom: { fieldRef: { fieldPath: metadata.name } }
            {{- if $spec.admin }}
            - name: {{ $spec.admin }}
              value: "0.0.0.0:{{ $health.port }}"
            {{- end }}
            {{- if eq $svc "msggateway" }}
            # This pod's entry of share.rpc.msggateway: pushes for its users come here.
            - name: OPENIM_MSGGATEWAY__ADVERTISE
              value: "http://$(POD_NAME).{{ $name }}-headless:10140"
            {{- end }}
            {{- with $v.extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          ports:
            {{- range $spec.ports }}
            - { name: {{ .name }}, containerPort: {{ .port }} }
            {{- end }}
          startupProbe:
            httpGet: { path: /healthz, port: {{ $health.name }} }
            periodSeconds: 2
            failureThreshold: 30
          livenessProbe:
            httpGet: { path: /healthz, port: {{ $health.name }} }
            periodSeconds: 10
          readinessProbe:
            httpGet: { path: /readyz, port: {{ $health.name }} }
            periodSeconds: 5
          resources: {{- toYaml $v.resources | nindent 12 }}
          volumeMounts:
            - { name: config, mountPath: /etc/openim/config, readOnly: true }
            - { name: data, mountPath: /var/lib/openim }
            {{- with $root.Values.global.backendTls.secretName }}
            - { name: backend-tls, mountPath: /etc/openim/tls, readOnly: true }
            {{- end }}
      volumes:
        - name: config
          configMap:
            name: {{ $root.Release.Name }}-openim-config
        - name: data
          emptyDir: {}
        {{- with $root.Values.global.backendTls.secretName }}
        - name: backend-tls
          secret: { secretName: {{ . }} }
        {{- end }}
      {{- with $v.nodeSelector }}
      nodeSelector: {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.tolerations }}
      tolerations: {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.affinity }}
      affinity: {{- toYaml . | nindent 8 }}
      {{- end }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ $name }}
  labels: {{- include "openim.labels" $ctx | nindent 4 }}
spec:
  selector: {{- include "openim.selector" $ctx | nindent 4 }}
  ports:
    {{- range $spec.ports }}
    - { name: {{ .name }}, port: {{ .port }}, targetPort: {{ .name }} }
    {{- end }}
{{- if $root.Values.global.networkPolicy.enabled }}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ $name }}
  labels: {{- include "openim.labels" $ctx | nindent 4 }}
spec:
  podSelector:
    matchLabels: {{- include "openim.selector" $ctx | nindent 6 }}
  policyTypes: [Ingress]
  ingress:
    {{- range $spec.ports }}
    {{- if eq .name "grpc" }}
    # Internal calls: this release's OpenIM pods only.
    - from:
        - podSelector:
            matchLabels:
              app.kubernetes.io/instance: {{ $root.Release.Name }}
              app.kubernetes.io/part-of: openim
      ports: [{ port: {{ .name }} }]
    {{- else }}
    - ports: [{ port: {{ .name }} }]
    {{- end }}
    {{- end }}
{{- end }}
{{- if eq $spec.kind "StatefulSet" }}
---
# Each gateway pod by name (`<pod>.{{ $name }}-headless`): push calls the one holding a user.
apiVersion: v1
kind: Service
metadata:
  name: {{ $name }}-headless
  labels: {{- include "openim.labels" $ctx | nindent 4 }}
spec:
  clusterIP: None
  publishNotReadyAddresses: true
  selector: {{- include "openim.selector" $ctx | nindent 4 }}
  ports:
    {{- range $spec.ports }}
    - { name: {{ .name }}, port: {{ .port }}, targetPort: {{ .name }} }
    {{- end }}
{{- end }}
{{- if and $spec.scalable $v.autoscaling.enabled }}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ $name }}
  labels: {{- include "openim.labels" $ctx | nindent 4 }}
spec:
  scaleTargetRef: { apiVersion: apps/v1, kind: {{ $spec.kind }}, name: {{ $name }} }
  minReplicas: {{ $v.autoscaling.minReplicas }}
  maxReplicas: {{ $v.autoscaling.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target: { type: Utilization, averageUtilization: {{ $v.autoscaling.targetCPUUtilizationPercentage }} }
{{- end }}
{{- if $v.podDisruptionBudget.enabled }}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ $name }}
  labels: {{- include "openim.labels" $ctx | nindent 4 }}
spec:
  maxUnavailable: {{ $v.podDisruptionBudget.maxUnavailable }}
  selector:
    matchLabels: {{- include "openim.selector" $ctx | nindent 6 }}
{{- end }}
{{- if $root.Values.global.serviceMonitor.enabled }}
---
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ $name }}
  labels:
    {{- include "openim.labels" $ctx | nindent 4 }}
    {{- with $root.Values.global.serviceMonitor.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  selector:
    matchLabels: {{- include "openim.selector" $ctx | nindent 6 }}
  endpoints:
    - port: {{ $health.name }}
      path: /metrics
      interval: {{ $root.Values.global.serviceMonitor.interval }}
{{- end }}
{{- end -}}
