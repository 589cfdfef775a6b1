#!/usr/bin/env bash
# Bring the platform up with podman-compose (deploy/compose/podman-host.yaml,
# the images deploy/build-images.sh built), smoke-test it, take it down.
# Not part of the test suite. Needs: the six images, podman, runc, uv.
#
#   bash deploy/compose-smoke.sh          # up, check, down
#   KEEP=1 bash deploy/compose-smoke.sh   # leave it running
#
# Checks: every service answers grpc.health.v1 SERVING (the images' own
# HEALTHCHECK script, run inside each container), the gateway serves
# /openapi.json, and every parameterless GET operation it lists answers through
# the gateway with the compose API key with a status below 500 (a :watch
# stream may stay silent).
set -euo pipefail
cd "$(dirname "$0")/.."

WORK=${WORK:-/var/tmp/modelplane-images}
mkdir -p "$WORK"
# podman-compose runs plain `podman`: point it at runc with explicit limits
# (crun/runc fail on setrlimit on this machine kind otherwise).
NOFILE=$(ulimit -Hn); NPROC=$(ulimit -Hu)
[[ $NOFILE == unlimited || $NOFILE -gt 65536 ]] && NOFILE=65536
[[ $NPROC == unlimited || $NPROC -gt 4096 ]] && NPROC=4096
cat > "$WORK/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$NOFILE:$NOFILE", "nproc=$NPROC:$NPROC"]
[engine]
runtime = "runc"
EOF
export CONTAINERS_CONF=$WORK/containers.conf
COMPOSE=(uvx podman-compose==1.6.0 -f deploy/compose/podman-host.yaml)

step() { printf '\n=== %s (%s)\n' "$*" "$(date -u +%H:%M:%S)"; }
down() { [[ ${KEEP:-0} == 1 ]] || "${COMPOSE[@]}" down -v >/dev/null 2>&1 || true; }
trap down EXIT

start=$SECONDS
step "podman-compose up"
"${COMPOSE[@]}" up -d

declare -A PORTS=([featurestore]=27101 [registry]=27102 [validator]=27103
                  [serving]=27104 [observability]=27105)
for name in "${!PORTS[@]}"; do
  step "health $name 127.0.0.1:${PORTS[$name]}"
  container=$("${COMPOSE[@]}" ps --format '{{.Names}}' 2>/dev/null | grep -m1 "_${name}_" || true)
  container=${container:-modelplane-podman_${name}_1}
  ok=0
  for _ in $(seq 1 150); do
    if podman exec "$container" /app/.venv/bin/python /usr/local/bin/modelplane-healthcheck \
         grpc "127.0.0.1:${PORTS[$name]}" 2>/dev/null; then ok=1; break; fi
    if [[ $(podman inspect -f '{{.State.Running}}' "$container") != true ]]; then break; fi
    sleep 2
  done
  if [[ $ok != 1 ]]; then podman logs "$container" 2>&1 | tail -40; exit 1; fi
  echo "$name SERVING after $((SECONDS - start)) s"
done

step "gateway"
python3 - <<'EOF'
import json, time, urllib.error, urllib.request

base, key = "http://127.0.0.1:27100", "mp_dev_admin_key_not_for_production"
for _ in range(120):
    try:
        doc = json.load(urllib.request.urlopen(base + "/openapi.json", timeout=5))
        break
    except OSError:
        time.sleep(2)
else:
    raise SystemExit("gateway: no /openapi.json")
print("openapi.json:", doc["info"]["title"], len(doc["paths"]), "paths")
codes = {}
for path, ops in sorted(doc["paths"].items()):
    if "get" not in ops or "{" in path:
        continue
    request = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            codes[path] = response.status
            response.read(1)  # a server stream answers with its headers, then waits
    except urllib.error.HTTPError as exc:
        codes[path] = exc.code
    except TimeoutError:
        codes[path] = "no answer in 15 s"
for path, code in codes.items():
    print(f"  GET {path} -> {code}")
# a :watch stream may send nothing (not even headers) until its first event
bad = {p: c for p, c in codes.items()
       if (c >= 500 if isinstance(c, int) else not p.endswith(":watch"))}
assert codes and not bad, f"server errors: {bad}"
assert 200 in codes.values(), "no GET answered 200"
EOF
echo "compose smoke: OK in $((SECONDS - start)) s"
