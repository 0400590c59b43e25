#!/usr/bin/env bash
# Where the services' memory goes: the whole pipeline (producer-order -> inventory-consumer ->
# analytics-consumer) at a steady rate on a private broker, then each service's resident
# memory split by kind from /proc/PID/smaps (heap and other anonymous memory, thread stacks,
# the binary's own pages) beside its peak, and mimalloc's own account of its heap
# (MIMALLOC_SHOW_STATS at exit).
#
#   scripts/bench-memory.sh [--heaptrack] [SECONDS] [RATE]     default: 20 s at 10000 orders/s
#
#   --heaptrack   also run inventory and analytics under heaptrack, built with the
#                 `system-allocator` feature (heaptrack sees the system allocator's calls, not
#                 mimalloc's), and print each one's peak-memory allocation sites
#
# The table is a snapshot at the end of the run, not a median: use it to find what to fix,
# and bench-latency.sh / soak.sh for the figures the targets are judged on.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

heaptrack=0
positional=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --heaptrack) heaptrack=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
    -*) die_usage "unknown option '$1' (see --help)" ;;
    *) positional+=("$1"); shift ;;
  esac
done
SECONDS_TO_RUN=${positional[0]:-20}
RATE=${positional[1]:-10000}
need_count SECONDS "$SECONDS_TO_RUN" 1
need_count RATE "$RATE" 1

scripts/broker.sh install >/dev/null
PYTHON=$(peer_python)
release_binaries producer_order inventory_consumer analytics_consumer
WRAP=()
CONSUMERS=$TARGET
if (( heaptrack )); then
  command -v heaptrack >/dev/null || die "heaptrack is not installed (apt-get install -y heaptrack)"
  profiled="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/profiled"
  cargo build --release --locked -q --target-dir "$profiled" --features system-allocator \
    -p inventory_consumer -p analytics_consumer || die "cargo build (system-allocator) failed"
  CONSUMERS="$profiled/release"
fi

WORK=$(mktemp -d)
stop_started_on_exit 'rm -rf "$WORK"'
broker_start "bench-memory-$$"
run="memory-$$"
env=(BOOTSTRAP_SERVERS="$BOOTSTRAP" ORDER_TOPIC="$run-orders" INVENTORY_TOPIC="$run-outcomes"
     DLQ_TOPIC="$run-dlq" STATE_TOPIC="$run-state" CONTROL_TOPIC="$run-control"
     STATUS_TOPIC="$run-status" RUST_LOG=warn CREATE_TOPICS=1 TOPIC_PARTITIONS=6
     MIMALLOC_SHOW_STATS=1)

# One order first, so the order topic exists when the consumers look for it.
env "${env[@]}" MODE=steady RATE_PER_SEC=1 TOTAL_EVENTS=1 "$TARGET/producer-order" >/dev/null 2>&1 \
  || die "producer-order could not create the order topic"
(( heaptrack )) && WRAP=(heaptrack -o "$WORK/inventory")
env "${env[@]}" GROUP_ID="$run" FAIL_RATE=0 THROTTLE_MS=0 "${WRAP[@]}" "$CONSUMERS/inventory-consumer" \
  >/dev/null 2>"$WORK/inventory.err" &
inventory=$!; track_pid "$inventory"
(( heaptrack )) && WRAP=(heaptrack -o "$WORK/analytics")
env "${env[@]}" GROUP_ID="$run-analytics" GROUP_INSTANCE_ID="$run" HTTP_HOST=127.0.0.1 \
  HTTP_PORT="$(free_port)" "${WRAP[@]}" "$CONSUMERS/analytics-consumer" >/dev/null 2>"$WORK/analytics.err" &
analytics=$!; track_pid "$analytics"
# The process to read /proc of: heaptrack runs the service as its child.
service_pid() {
  local pid=$1 child
  if (( heaptrack )); then
    wait_until 30 "the service under heaptrack to start" pgrep -P "$pid" >/dev/null
    child=$(pgrep -P "$pid" | head -n 1)
    echo "${child:-$pid}"
  else
    echo "$pid"
  fi
}
inventory_pid=$(service_pid "$inventory") analytics_pid=$(service_pid "$analytics")
"$PYTHON" scripts/topic-tool.py wait-group "$BOOTSTRAP" "$run" 1 120 >/dev/null

log "$RATE orders/s for ${SECONDS_TO_RUN} s"
env "${env[@]}" MODE=steady RATE_PER_SEC="$RATE" TOTAL_EVENTS=$(( RATE * SECONDS_TO_RUN )) \
  PROGRESS_INTERVAL_SEC=3600 "$TARGET/producer-order" >/dev/null 2>"$WORK/producer.err" &
producer=$!; track_pid "$producer"
producer_peak=$(sample_peak_rss_kib "$producer")
wait "$producer" || die "producer-order failed (see its log: $(tail -n 3 "$WORK/producer.err"))"
sleep 1

echo
echo "Memory at ${RATE} orders/s after ${SECONDS_TO_RUN} s, 6 partitions, $(date -u +%F), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| service | peak RSS (MiB) | RSS now (MiB) | heap + anonymous | thread stacks | binary | other | threads |"
echo "|---|---|---|---|---|---|---|---|"
echo "| producer-order | $(mib "$producer_peak") | (exited) | | | | | |"
for service in inventory analytics; do
  pid_var="${service}_pid"; pid=${!pid_var}
  read -r heap stack binary other < <(smaps_kinds "$pid")
  echo "| $service-consumer | $(mib "$(peak_rss_kib "$pid")") | $(mib "$(rss_kib "$pid")") | $(mib "$heap") | $(mib "$stack") | $(mib "$binary") | $(mib "$other") | $(ls "/proc/$pid/task" | wc -l) |"
done

# Stopped with SIGTERM, the services shut down cleanly and mimalloc prints its statistics.
for pid in "$inventory_pid" "$analytics_pid"; do kill -TERM "$pid" 2>/dev/null || true; done
wait "$inventory" "$analytics" 2>/dev/null || true
if (( ! heaptrack )); then
  for service in inventory analytics; do
    echo
    echo "mimalloc, $service-consumer (peak and current of its heap; 'reserved' is address space only):"
    echo
    grep -E '^ *(reserved|committed|purged|threads|process) *:' \
      "$WORK/$service.err" | sed 's/^/    /' || echo "    (no statistics printed)"
  done
else
  for service in inventory analytics; do
    profile=$(ls "$WORK/$service".*.zst "$WORK/$service".*.gz 2>/dev/null | head -n 1)
    [[ -n "$profile" ]] || { log "no heaptrack profile for $service"; continue; }
    echo
    echo "heaptrack, $service-consumer: peak heap and the allocation sites that held most at the peak"
    echo
    heaptrack_print --print-peaks 1 --print-allocators 0 --print-leaks 0 --print-temporary 0 \
      --peak-limit 12 --sub-peak-limit 1 "$profile" 2>/dev/null \
      | sed -n '/^PEAK MEMORY CONSUMERS/,$p' | grep -vE '^ *(at |in )/(lib|usr)/' \
      | head -n 120 | sed 's/^/    /'
  done
fi
