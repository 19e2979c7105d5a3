{{/* The image of a service: `<registry>/<prefix><service>:<tag>`, the tag defaulting to the
chart's appVersion (which the release pipeline stamps in every chart of this umbrella). */}}
{{- define "openim.image" -}}
{{- $image := .root.Values.global.image -}}
{{- $tag := $image.tag | default .root.Chart.AppVersion -}}
{{- $digest := index ($image.digests | default dict) .service -}}
{{- if and $digest (ne $tag .root.Chart.AppVersion) -}}
{{- fail (printf "global.image.digests pins the images of %s, not of global.image.tag %s: set global.image.digests to the digests of that tag, or to {}" .root.Chart.AppVersion $tag) -}}
{{- end -}}
{{ printf "%s/%s%s:%s" $image.registry $image.prefix .service $tag }}{{ if $digest }}@{{ $digest }}{{ end }}
{{- end -}}

{{- define "openim.selector" -}}
app.kubernetes.io/name: {{ .service }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end -}}

{{- define "openim.labels" -}}
{{ include "openim.selector" . }}
app.kubernetes.io/version: {{ .root.Values.global.image.tag | default .root.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: openim
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* What differs between the services: kind, ports (the first, `admin`, serves /healthz, /readyz
and /metrics; the public REST and WebSocket ports answer only /healthz), and whether several
replicas may scale on CPU. */}}
{{- define "openim.specs" -}}
api: { kind: Deployment, scalable: true, admin: OPENIM_API__ADMIN_LISTEN, ports: [{ name: admin, port: 12002 }, { name: http, port: 10002 }] }
msggateway: { kind: StatefulSet, scalable: false, admin: OPENIM_MSGGATEWAY__ADMIN_LISTEN, ports: [{ name: admin, port: 12140 }, { name: ws, port: 10001 }, { name: grpc, port: 10140 }] }
msgtransfer: { kind: Deployment, scalable: true, ports: [{ name: admin, port: 12020 }] }
push: { kind: Deployment, scalable: true, ports: [{ name: admin, port: 12170 }] }
crontask: { kind: Deployment, scalable: false, ports: [{ name: admin, port: 12240 }] }
rpc-auth: { kind: Deployment, scalable: true, admin: OPENIM_RPC_AUTH__ADMIN_LISTEN, ports: [{ name: admin, port: 12200 }, { name: grpc, port: 10200 }] }
rpc-user: { kind: Deployment, scalable: true, admin: OPENIM_RPC_USER__ADMIN_LISTEN, ports: [{ name: admin, port: 12110 }, { name: grpc, port: 10110 }] }
rpc-friend: { kind: Deployment, scalable: true, admin: OPENIM_RPC_FRIEND__ADMIN_LISTEN, ports: [{ name: admin, port: 12120 }, { name: grpc, port: 10120 }] }
rpc-group: { kind: Deployment, scalable: true, admin: OPENIM_RPC_GROUP__ADMIN_LISTEN, ports: [{ name: admin, port: 12150 }, { name: grpc, port: 10150 }] }
rpc-conversation: { kind: Deployment, scalable: true, admin: OPENIM_RPC_CONVERSATION__ADMIN_LISTEN, ports: [{ name: admin, port: 12180 }, { name: grpc, port: 10180 }] }
rpc-msg: { kind: Deployment, scalable: true, admin: OPENIM_RPC_MSG__ADMIN_LISTEN, ports: [{ name: admin, port: 12130 }, { name: grpc, port: 10130 }] }
rpc-third: { kind: Deployment, scalable: true, admin: OPENIM_RPC_THIRD__ADMIN_LISTEN, ports: [{ name: admin, port: 12300 }, { name: grpc, port: 10300 }] }
{{- end -}}

{{/* `share.rpc`: every service by its Service DNS name; each gateway pod by its name under the
headless Service, as push reaches the gateway holding a user. */}}
{{- define "openim.rpc" -}}
{{- $r := .Release.Name -}}
auth: http://{{ $r }}-rpc-auth:10200
user: http://{{ $r }}-rpc-user:10110
friend: http://{{ $r }}-rpc-friend:10120
group: http://{{ $r }}-rpc-group:10150
conversation: http://{{ $r }}-rpc-conversation:10180
msg: http://{{ $r }}-rpc-msg:10130
third: http://{{ $r }}-rpc-third:10300
msggateway:
{{- range $i := until (int .Values.global.msggatewayReplicas) }}
  - http://{{ $r }}-msggateway-{{ $i }}.{{ $r }}-msggateway-headless:10140
{{- end }}
{{- end -}}

{{/* The configuration files (`<name>.yml` → content): `global.config`, with `share.rpc` set from
the Service names. Only `.Release` and `.Values.global` are read, so every subchart renders the
same (for the pods' checksum annotation). */}}
{{- define "openim.config" -}}
{{- $files := deepCopy .Values.global.config -}}
{{- $share := get $files "share" | default dict -}}
{{- $_ := set $share "rpc" (fromYaml (include "openim.rpc" .)) -}}
{{- $_ := set $files "share" $share -}}
{{- range $file, $content := $files }}
{{ $file }}.yml: |
  {{- toYaml $content | nindent 2 }}
{{- end }}
{{- end -}}
