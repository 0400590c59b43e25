#!/usr/bin/env bash
# Offline proof of the Compose stack: builds everything, runs compose/stack.yml with the
# compose/offline.yml override (Nisshi instead of apache/kafka, which no registry can supply
# here), waits until the analytics service's /metrics shows every produced order with an
# outcome, and tears the stack down.
#
#   scripts/compose-test.sh               the prebuilt path (what CI runs)
#   scripts/compose-test.sh --in-docker   the service images compiled inside Docker
#
# The two differ only in how the three service images are made:
#   prebuilt     static x86_64 binaries on the host (scripts/build-static.sh; a no-op when
#                fresh), images for every staged architecture with their sizes checked against
#                15 MB (scripts/build-images.sh), and offline.yml's dist/image-context/ build.
#   --in-docker  compose/Dockerfile, exactly as `docker compose -f compose/stack.yml build`
#                runs it (offline.yml is not in that command). With no registry the builder is
#                the local stand-in from scripts/builder-image.sh, which also vendors the crates
#                (set RUST_IMAGE to use another builder image, e.g. the official one where it
#                can be pulled); the images' sizes, users and labels are checked, and the stack
#                then starts them as built (`up --no-build`: offline.yml would rebuild them from
#                dist/).
#
# Environment: TOTAL_EVENTS (orders to produce, default 10000), COMPOSE_TEST_TIMEOUT_SEC
# (deadline for the stack to get there, default 300), ANALYTICS_PORT and KAFKA_HOST_PORT (host
# ports, default: free ones picked at random so a running dev stack does not collide),
# STACK_VERSION (the service images' tag, default the workspace version; a separate tag keeps
# a second checkout's images apart from these).
#
# Then the Nisshi context (scripts/nisshi-image.sh --stage), `config` of both stacks and the
# offline combination, `up -d` under a unique project name, the wait, and `down -v` in a
# trap (also on failure or Ctrl+C, after printing the containers' logs).
# With no Docker engine (`docker info` fails) or no Compose tool it prints "SKIPPED: ..." and
# exits 0, so CI can call it everywhere and still say plainly what it did not test.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

build_mode=prebuilt
case "${1:-}" in
  "") ;;
  --in-docker) build_mode=in-docker ;;
  -h | --help) sed -n '2,32p' "$0"; exit 0 ;;
  *) die_usage "unknown option '$1' (accepted: --in-docker, --help)" ;;
esac
[[ $# -le 1 ]] || die_usage "usage: compose-test.sh [--in-docker]"

TOTAL_EVENTS=${TOTAL_EVENTS:-10000}
# Inventory containers (`up --scale inventory=N`), each one group member (MEMBERS=1).
INVENTORY_SCALE=${INVENTORY_SCALE:-3}
TIMEOUT_SEC=${COMPOSE_TEST_TIMEOUT_SEC:-300}
need_count TOTAL_EVENTS "$TOTAL_EVENTS" 1
need_count COMPOSE_TEST_TIMEOUT_SEC "$TIMEOUT_SEC" 1

step() { printf '\n==> %s\n' "$*"; }

if ! docker info >/dev/null 2>&1; then
  echo "SKIPPED: no Docker engine (docker info failed); the Compose stack was not tested"
  exit 0
fi
if docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
  compose=(docker-compose)
else
  echo "SKIPPED: a Docker engine answers but neither 'docker compose' nor 'docker-compose' is installed"
  exit 0
fi
command -v curl >/dev/null 2>&1 || die "curl is required to read /metrics"

export TOTAL_EVENTS
workspace_version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
export STACK_VERSION=${STACK_VERSION:-$workspace_version}
export ANALYTICS_PORT=${ANALYTICS_PORT:-$(free_port)}
export KAFKA_HOST_PORT=${KAFKA_HOST_PORT:-$(free_port)}
project="skcompose$$"
files=(-f compose/stack.yml -f compose/offline.yml)

# The in-Docker images: size (the 15 MB budget), architecture, user and title, as built.
check_built_images() {
  local binary tag size arch user title over=()
  printf '\n%-48s %-6s %12s %9s  %-12s %s\n' IMAGE ARCH BYTES MB USER TITLE
  for binary in producer-order inventory-consumer analytics-consumer; do
    tag="streaming-kafka/$binary:$STACK_VERSION"
    read -r size arch user title < <(docker image inspect --format \
      '{{.Size}} {{.Architecture}} {{.Config.User}} {{index .Config.Labels "org.opencontainers.image.title"}}' "$tag") \
      || die "no image $tag after the build"
    printf '%-48s %-6s %12s %9s  %-12s %s\n' "$tag" "$arch" "$size" \
      "$(awk -v b="$size" 'BEGIN { printf "%.2f", b / 1e6 }')" "$user" "$title"
    [[ "$user" == 10001:10001 && "$title" == "$binary" ]] || die "$tag: user $user, title $title"
    (( size <= 15000000 )) || over+=("$tag ($size bytes)")
  done
  [[ ${#over[@]} -eq 0 ]] || die "over the 15000000-byte image budget: ${over[*]}"
}

if [[ $build_mode == prebuilt ]]; then
  step "static binaries (x86_64; aarch64 too if already built)"
  scripts/build-static.sh x86_64

  step "service images and their sizes"
  scripts/build-images.sh all
else
  if [[ -z "${RUST_IMAGE:-}" ]]; then
    step "local builder image and vendored crates (scripts/builder-image.sh)"
    # tee to its own standard output, which is our stderr: reopening /dev/stderr instead
    # would write from the start of a log file that stderr points to, over earlier lines.
    builder_log=$(mktemp)
    scripts/builder-image.sh | tee "$builder_log" >&2
    RUST_IMAGE=$(sed -n 's/^RUST_IMAGE=//p' "$builder_log" | tail -1)
    rm -f "$builder_log"
    [[ -n "$RUST_IMAGE" ]] || die "scripts/builder-image.sh named no builder image"
  fi
  export RUST_IMAGE
  # offline.yml names the prebuilt context, and Compose refuses a build path that does not
  # exist even for a service it is told not to build: an empty folder satisfies it.
  mkdir -p dist/image-context
  step "in-Docker build: ${compose[*]} -f compose/stack.yml build (RUST_IMAGE=$RUST_IMAGE)"
  build_started=$SECONDS
  "${compose[@]}" -f compose/stack.yml build inventory analytics producer
  log "in-Docker build of the three images took $(( SECONDS - build_started ))s"
  check_built_images
fi

step "offline broker image context (Nisshi)"
scripts/broker.sh install
scripts/nisshi-image.sh --stage

step "compose config: $("${compose[@]}" version --short 2>/dev/null || "${compose[@]}" version | head -1)"
for combination in "compose/stack.yml" "compose/stack.zookeeper.yml" "compose/stack.yml compose/offline.yml"; do
  args=()
  for file in $combination; do args+=(-f "$file"); done
  "${compose[@]}" "${args[@]}" config -q || die "docker compose config rejects: $combination"
  echo "  valid: $combination"
done

teardown() {
  local status=$?
  if [[ $status -ne 0 ]]; then
    log "failed (exit $status); the stack's state and logs follow"
    "${compose[@]}" "${files[@]}" -p "$project" ps || true
    "${compose[@]}" "${files[@]}" -p "$project" logs --no-color --tail 40 || true
  fi
  step "down -v"
  "${compose[@]}" "${files[@]}" -p "$project" down -v --remove-orphans || log "down -v failed"
  exit "$status"
}
trap teardown EXIT
trap 'exit 130' INT TERM

up_args=(--build)
if [[ $build_mode == in-docker ]]; then
  # Only the broker is built here; the services run the images compose/Dockerfile made.
  "${compose[@]}" "${files[@]}" -p "$project" build broker
  up_args=(--no-build)
fi
step "up -d ${up_args[*]} --scale inventory=$INVENTORY_SCALE (project $project, images $build_mode, analytics on localhost:$ANALYTICS_PORT, $TOTAL_EVENTS orders)"
up_started=$SECONDS
"${compose[@]}" "${files[@]}" -p "$project" up -d "${up_args[@]}" --scale inventory="$INVENTORY_SCALE"

# Reads /metrics and prints "orders decided" (orders seen, orders with an outcome); empty
# while the service is not serving metrics yet.
read_progress() {
  curl -s --max-time 2 "http://127.0.0.1:$ANALYTICS_PORT/metrics" 2>/dev/null \
    | python3 -c 'import json, sys; m = json.load(sys.stdin); print(m["orders"]["total"], m["processed_order_count"])' 2>/dev/null \
    || true
}

container_state() {
  # A scaled service has several containers: the first that is not running speaks for it.
  local ids id state
  ids=$("${compose[@]}" "${files[@]}" -p "$project" ps -q "$1" 2>/dev/null || true)
  [[ -n "$ids" ]] || { echo "absent"; return; }
  for id in $ids; do
    state=$(docker inspect --format '{{.State.Status}} {{.State.ExitCode}}' "$id")
    [[ "$state" == running* ]] || { echo "$state"; return; }
  done
  echo "running 0"
}

step "waiting up to ${TIMEOUT_SEC}s for $TOTAL_EVENTS orders, each with an outcome"
deadline=$(( SECONDS + TIMEOUT_SEC ))
last_report=0
while :; do
  progress=$(read_progress)
  read -r orders decided <<<"${progress:-0 0}"
  if [[ "$orders" -eq "$TOTAL_EVENTS" && "$decided" -eq "$TOTAL_EVENTS" ]]; then
    break
  fi
  for service in kafka-init inventory analytics producer; do
    state=$(container_state "$service")
    case "$state" in
      "exited 0") [[ "$service" == kafka-init || "$service" == producer ]] \
                    || die "$service exited (status 0) before the run finished" ;;
      exited*) die "$service exited: $state" ;;
    esac
  done
  (( SECONDS < deadline )) || die "deadline: after ${TIMEOUT_SEC}s /metrics shows orders=$orders decided=$decided of $TOTAL_EVENTS"
  if (( SECONDS - last_report >= 5 )); then
    log "orders=$orders decided=$decided (${SECONDS}s)"
    last_report=$SECONDS
  fi
  sleep 1
done

step "the stack reached"
# The producer exits 0 after its final summary; all its orders are already counted, so this is short.
producer_id=$("${compose[@]}" "${files[@]}" -p "$project" ps -q producer)
producer_exit=$(timeout 60 docker wait "$producer_id") || die "the producer did not exit within 60s of its last order"
echo "  producer container exited with status $producer_exit"
[[ "$producer_exit" == 0 ]] || die "the producer exited with status $producer_exit"
summary=$(cat <<'PY'
import json, sys
m = json.load(sys.stdin)
o, r, g = m["outcomes_total"], m["rates"], m["group"]
print("  orders.total=%d processed_order_count=%d inventory_events.total=%d"
      % (m["orders"]["total"], m["processed_order_count"], m["inventory_events"]["total"]))
print("  outcomes_total: reserved=%d rejected=%d failed=%d restocked=%d"
      % (o["reserved"], o["rejected"], o["failed"], o["restocked"]))
print("  rates: success=%.3f rejection=%.3f failure=%.3f; lag_total=%d; duplicates ignored=%d, malformed=%d"
      % (r["success"], r["rejection"], r["failure"], m["lag_total"],
         m["duplicate_events_ignored"], m["malformed_records"]))
print("  analytics group %s: state=%s generation=%d partitions=%d"
      % (g["group_id"], g["state"], g["generation"], g["assigned_partitions"]))
PY
)
curl -s --max-time 2 "http://127.0.0.1:$ANALYTICS_PORT/metrics" | python3 -c "$summary"
analytics_health=$(docker inspect --format '{{.State.Health.Status}}' \
  "$("${compose[@]}" "${files[@]}" -p "$project" ps -q analytics)")
echo "  analytics healthcheck (its healthcheck subcommand): $analytics_health"
[[ "$analytics_health" == healthy ]] || die "analytics is $analytics_health, expected healthy"
# The ripple view must show the scaled group: one member per inventory container, every
# partition owned by one of them.
members_of() {
  curl -s --max-time 2 "http://127.0.0.1:$ANALYTICS_PORT/metrics" 2>/dev/null | python3 -c '
import json, sys
g = json.load(sys.stdin)["pipeline"]["inventory_group"]
owned = sorted(p for m in g["members"] for p in m["partitions"])
print(len(g["members"]), len(owned), len(set(owned)))' 2>/dev/null || true
}
members_deadline=$(( SECONDS + 60 ))
while :; do
  read -r members owned distinct <<<"$(members_of)"
  [[ "${members:-0}" == "$INVENTORY_SCALE" && "${owned:-0}" == "${distinct:-x}" && "${owned:-0}" -gt 0 ]] && break
  (( SECONDS < members_deadline )) || die "the inventory group shows ${members:-?} members owning ${owned:-?} partitions (${distinct:-?} distinct), expected $INVENTORY_SCALE"
  sleep 1
done
echo "  inventory group: $members members (one per container) owning $owned partitions, none twice"
echo "PASS: offline stack ($build_mode images), inventory scaled to $INVENTORY_SCALE: $TOTAL_EVENTS orders, each with an outcome, $(( SECONDS - up_started ))s after 'up' (build included)"
