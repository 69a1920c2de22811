#!/usr/bin/env bash
# Build the image, run compose.yaml's whole stack with podman on loopback, put one real job through
# it (create -> completed -> content, deploy/check/roundtrip.py), print the figures, remove the stack.
#
#   make deploy-check               (DEPLOY_CHECK_KEEP=1 leaves the stack running)
#
# Needs podman and podman-compose (pip install podman-compose). Where no container registry is
# reachable, the base image and the third-party services are built from Debian packages and PyPI
# (deploy/offline/). Where the container runtime cannot set resource limits, podman runs with
# deploy/podman/containers.conf. Services are started in dependency order by this script, since
# podman before 4.6 cannot wait for a healthcheck.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

PROJECT=vidgate-check
HTTP_PORT="${DEPLOY_CHECK_HTTP_PORT:-18080}"
PROM_PORT="${DEPLOY_CHECK_PROMETHEUS_PORT:-19090}"
PYTHON_IMAGE="${PYTHON_IMAGE:-python:3.11-slim-bookworm}"
PY="${PYTHON:-.venv/bin/python}"
COMPOSE_BIN="$(command -v podman-compose || echo .venv/bin/podman-compose)"
[ -x "$COMPOSE_BIN" ] || { echo "[deploy-check] needs podman-compose (pip install podman-compose)" >&2; exit 1; }
export VIDGATE_HTTP_PORT="$HTTP_PORT" PROMETHEUS_PORT="$PROM_PORT" VIDGATE_PUBLIC_URL="http://127.0.0.1:$HTTP_PORT"
START=$(date +%s.%N)

say() { printf '[deploy-check] %s\n' "$*"; }
since() { python3 -c "import sys; print(f'{float(sys.argv[1]) - float(sys.argv[2]):.1f}')" "$(date +%s.%N)" "$1"; }

# Base image: the registry's, else one built from Debian packages.
FILES=(-f compose.yaml)
if podman image exists "$PYTHON_IMAGE" || podman pull -q "$PYTHON_IMAGE" >/dev/null 2>&1; then
  say "base image $PYTHON_IMAGE"
else
  say "$PYTHON_IMAGE cannot be pulled: building the base and the services from Debian packages and PyPI"
  PYTHON_IMAGE=localhost/vidgate-python:3.11-bookworm
  deploy/offline/base-image.sh "$PYTHON_IMAGE"
  FILES+=(-f deploy/offline/compose.yaml)
fi
if ! podman run --rm --network none "$PYTHON_IMAGE" true >/dev/null 2>&1; then
  export CONTAINERS_CONF="$ROOT/deploy/podman/containers.conf"
  say "the default runtime settings fail here; using $CONTAINERS_CONF"
  podman run --rm --network none "$PYTHON_IMAGE" true
fi
COMPOSE=("$COMPOSE_BIN" -p "$PROJECT" "${FILES[@]}")

t=$(date +%s.%N)
podman build -q --format docker --build-arg PYTHON_IMAGE="$PYTHON_IMAGE" -t vidgate:latest . >/dev/null
say "image vidgate:latest built in $(since "$t") s, $(podman image inspect vidgate:latest --format '{{.Size}}' | python3 -c 'import sys; print(round(int(sys.stdin.read()) / 1e6))') MB"
if [ "${#FILES[@]}" -gt 2 ]; then
  t=$(date +%s.%N)
  podman build -q --format docker --build-arg BASE_IMAGE="$PYTHON_IMAGE" \
    -t localhost/vidgate-offline-services:latest deploy/offline >/dev/null
  say "services image built in $(since "$t") s"
fi
deploy/env/generate.sh

down() {  # the stack, its named volumes and the anonymous ones of its containers (the image's /data)
  local volumes
  volumes="$(podman ps -aq --filter "label=io.podman.compose.project=$PROJECT" \
    | xargs -r podman inspect --format '{{range .Mounts}}{{if eq .Type "volume"}}{{.Name}} {{end}}{{end}}')"
  "${COMPOSE[@]}" down -v >/dev/null 2>&1 || true
  for v in $volumes; do podman volume rm -f "$v" >/dev/null 2>&1 || true; done
}
cleanup() {
  status=$?
  if [ "$status" -ne 0 ]; then
    for c in $(podman ps -a --filter "label=io.podman.compose.project=$PROJECT" --format '{{.Names}}'); do
      echo "---- $c"; podman logs --tail 20 "$c" 2>&1 || true
    done
  fi
  if [ "${DEPLOY_CHECK_KEEP:-0}" = 1 ]; then
    say "stack left running: ${COMPOSE[*]} down -v"
  else
    down
  fi
  exit "$status"
}
trap cleanup EXIT

healthy() {  # CONTAINER...: wait up to 90 s for each one's healthcheck to pass
  for c in "$@"; do
    for _ in $(seq 1 90); do
      podman healthcheck run "$c" >/dev/null 2>&1 && continue 2
      sleep 1
    done
    say "$c is not healthy"; return 1
  done
}
succeeded() {  # CONTAINER...: wait for each one to exit, and require exit code 0
  for c in "$@"; do
    code="$(podman wait "$c")"
    [ "$code" = 0 ] || { say "$c exited $code"; return 1; }
  done
}
up() { "${COMPOSE[@]}" up -d --no-deps "$@" >/dev/null 2>&1; }

down
t=$(date +%s.%N)
up postgres minio
healthy "${PROJECT}_postgres_1" "${PROJECT}_minio_1"
up minio-init migrate
succeeded "${PROJECT}_minio-init_1" "${PROJECT}_migrate_1"
up api worker
healthy "${PROJECT}_api_1" "${PROJECT}_api_2" "${PROJECT}_worker_1"
up proxy prometheus
for _ in $(seq 1 60); do
  curl -fs "http://127.0.0.1:$HTTP_PORT/readyz" >/dev/null && break
  sleep 1
done
say "stack up in $(since "$t") s: $(podman ps --filter "label=io.podman.compose.project=$PROJECT" --format '{{.Names}}' | sed "s/${PROJECT}_//" | tr '\n' ' ')"

KEY="$(podman exec "${PROJECT}_api_1" vidgate keys create --name deploy-check 2>/dev/null | tail -n 1)"
"$PY" deploy/check/roundtrip.py --base-url "http://127.0.0.1:$HTTP_PORT" --api-key "$KEY" \
  --prometheus "http://127.0.0.1:$PROM_PORT" --expect vidgate-api=2 --expect vidgate-worker=1
say "passed in $(since "$START") s"
