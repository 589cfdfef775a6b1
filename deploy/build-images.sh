#!/usr/bin/env bash
# Build modelplane's images with Debian's podman (no Docker engine, no image
# registry) and smoke-test them. Not part of the test suite: it takes minutes.
#
#   bash deploy/build-images.sh                      # all six images
#   bash deploy/build-images.sh gateway registry     # some
#   SMOKE=1 bash deploy/build-images.sh gateway      # build, then run + smoke-test
#   bash deploy/build-images.sh --smoke-only gateway # smoke-test images built before
#
# Needs root and: apt-get install -y mmdebstrap runc podman
# What it does (deploy/README.md, "Building with podman", has timings):
#   1. localhost/debian-minbase:bookworm  from Debian packages (mmdebstrap), once
#   2. localhost/python:3.11-slim-bookworm a stand-in for the Docker Hub image:
#      bookworm's python3.11 at /usr/local/bin/python3.11 (where the official
#      image has it), trusting this host's CA bundle (the sandbox's egress proxy
#      re-signs TLS), once
#   3. localhost/uv:<host uv version>      the host's uv binary (from PyPI) in a
#      scratch image, standing in for ghcr.io/astral-sh/uv
#   4. deploy/docker/<name>/Dockerfile unchanged (docker format, to keep HEALTHCHECK), with PYTHON_IMAGE/UV_IMAGE
#      pointing at the stand-ins -> localhost/modelplane/<name>:dev
# On this machine kind crun/runc fail on setrlimit unless ulimits are explicit,
# and only host networking reaches the package registries.
set -euo pipefail
cd "$(dirname "$0")/.."

ALL=(featurestore registry validator serving observability gateway)
TAG=${TAG:-dev}
WORK=${WORK:-/var/tmp/modelplane-images}
PODMAN=(podman --runtime /usr/sbin/runc)
# explicit limits, at most this shell's hard limits (runc may not raise them:
# "error setting rlimit type 7: operation not permitted")
NOFILE=$(ulimit -Hn); NPROC=$(ulimit -Hu)
[[ $NOFILE == unlimited || $NOFILE -gt 65536 ]] && NOFILE=65536
[[ $NPROC == unlimited || $NPROC -gt 4096 ]] && NPROC=4096
LIMITS=(--ulimit "nofile=$NOFILE:$NOFILE" --ulimit "nproc=$NPROC:$NPROC")
BASE=localhost/debian-minbase:bookworm
PYTHON_IMAGE=localhost/python:3.11-slim-bookworm
SMOKE=${SMOKE:-0}
BUILD=1
if [[ ${1:-} == --smoke-only ]]; then BUILD=0; SMOKE=1; shift; fi
NAMES=("$@")
[[ ${#NAMES[@]} -gt 0 ]] || NAMES=("${ALL[@]}")

step() { printf '\n=== %s (%s)\n' "$*" "$(date -u +%H:%M:%S)"; }
mkdir -p "$WORK"

base_images() {
  if ! podman image exists "$BASE"; then
    step "base image $BASE (mmdebstrap)"
    mmdebstrap --variant=minbase bookworm "$WORK/base.tar"
    podman import "$WORK/base.tar" "$BASE"
  fi
  if ! podman image exists "$PYTHON_IMAGE"; then
    step "python stand-in $PYTHON_IMAGE"
    local ctx="$WORK/python-ctx"
    rm -rf "$ctx" && mkdir -p "$ctx"
    cp /etc/ssl/certs/ca-certificates.crt "$ctx/host-ca-certificates.crt"
    cat > "$ctx/Containerfile" <<EOF
FROM $BASE
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\
      python3.11 ca-certificates passwd \\
 && rm -rf /var/lib/apt/lists/* \\
 && ln -s /usr/bin/python3.11 /usr/local/bin/python3.11 \\
 && ln -s python3.11 /usr/local/bin/python3 \\
 && ln -s python3.11 /usr/local/bin/python
COPY host-ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt LANG=C.UTF-8
CMD ["python3"]
EOF
    "${PODMAN[@]}" build --network host "${LIMITS[@]}" -t "$PYTHON_IMAGE" "$ctx"
  fi
  UV_BIN=$(python3 -c 'import uv; print(uv.find_uv_bin())' 2>/dev/null || true)
  [[ -x ${UV_BIN:-} ]] || { python3 -m pip install -q uv; UV_BIN=$(python3 -c 'import uv; print(uv.find_uv_bin())'); }
  UV_VERSION=$("$UV_BIN" --version | awk '{print $2}')
  UV_IMAGE=localhost/uv:$UV_VERSION
  if ! podman image exists "$UV_IMAGE"; then
    step "uv stand-in $UV_IMAGE"
    local ctx="$WORK/uv-ctx"
    rm -rf "$ctx" && mkdir -p "$ctx"
    cp "$UV_BIN" "$ctx/uv"
    printf 'FROM scratch\nCOPY uv /uv\n' > "$ctx/Containerfile"
    "${PODMAN[@]}" build "${LIMITS[@]}" -t "$UV_IMAGE" "$ctx"
  fi
}

build() {
  local name=$1 start=$SECONDS
  step "build localhost/modelplane/$name:$TAG"
  "${PODMAN[@]}" build --format docker --network host "${LIMITS[@]}" \
    -f "deploy/docker/$name/Dockerfile" \
    --ignorefile "deploy/docker/$name/Dockerfile.dockerignore" \
    --build-arg "PYTHON_IMAGE=$PYTHON_IMAGE" --build-arg "UV_IMAGE=$UV_IMAGE" \
    -t "localhost/modelplane/$name:$TAG" .
  echo "built $name in $((SECONDS - start)) s"
}

# Smoke test: the image runs as in compose/Kubernetes (non-root, read-only root
# filesystem, a volume at /data, tmpfs at /tmp) on host networking, on ports
# 2xxxx so it does not collide with a platform already running on this host.
port_of() {
  case $1 in
    gateway) echo 27100 ;; featurestore) echo 27101 ;; registry) echo 27102 ;;
    validator) echo 27103 ;; serving) echo 27104 ;; observability) echo 27105 ;;
  esac
}

smoke() {
  local name=$1 port container="modelplane-smoke-$1" start=$SECONDS
  port=$(port_of "$name")
  step "smoke $name on 127.0.0.1:$port"
  podman rm -f "$container" >/dev/null 2>&1 || true
  local env=(-e "MODELPLANE_${name^^}_ADDR=127.0.0.1:$port")
  case $name in
    registry) env+=(-e MODELPLANE_MLFLOW_ADDR=127.0.0.1:27110) ;;
    serving) env+=(-e MODELPLANE_SERVING_HTTP_ADDR=127.0.0.1:27114) ;;
    observability) env+=(-e MODELPLANE_OBSERVABILITY_HTTP_ADDR=127.0.0.1:27115) ;;
  esac
  "${PODMAN[@]}" run -d --name "$container" --network host "${LIMITS[@]}" --no-healthcheck \
    --read-only --tmpfs /tmp -v "modelplane-smoke-$name:/data" "${env[@]}" \
    "localhost/modelplane/$name:$TAG" >/dev/null
  local user
  user=$(podman inspect -f '{{.Config.User}}' "$container")
  [[ $user == 10001:10001 ]] || { echo "runs as '$user', not 10001:10001"; return 1; }
  local probe
  if [[ $name == gateway ]]; then
    probe=(python3 -c "import sys, urllib.request as u
r = u.urlopen('http://127.0.0.1:$port/openapi.json', timeout=3)
doc = __import__('json').load(r)
print(r.status, doc['info']['title'], len(doc['paths']), 'paths')")
  else
    probe=(podman exec "$container" /app/.venv/bin/python
           /usr/local/bin/modelplane-healthcheck grpc "127.0.0.1:$port")
  fi
  for _ in $(seq 1 180); do
    if "${probe[@]}" 2>/dev/null; then
      echo "smoke $name: OK after $((SECONDS - start)) s"
      podman exec "$container" sh -c 'touch /probe-rootfs 2>&1; id -u' || true
      podman rm -f "$container" >/dev/null
      return 0
    fi
    if [[ $(podman inspect -f '{{.State.Running}}' "$container") != true ]]; then
      echo "smoke $name: container exited"; podman logs "$container" | tail -40
      return 1
    fi
    sleep 2
  done
  echo "smoke $name: not healthy after $((SECONDS - start)) s"; podman logs "$container" | tail -40
  podman rm -f "$container" >/dev/null
  return 1
}

if [[ $BUILD == 1 ]]; then
  base_images
  for name in "${NAMES[@]}"; do build "$name"; done
fi
if [[ $SMOKE == 1 ]]; then
  for name in "${NAMES[@]}"; do smoke "$name"; done
fi
podman images --filter reference='localhost/modelplane/*'
