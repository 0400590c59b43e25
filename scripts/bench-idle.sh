#!/usr/bin/env bash
# Idle cost (issue 16): the three services as the playground runs them (their env files), on a
# private memory broker, once a first burst of orders has gone through, then nothing flowing
# for SECONDS: each process's CPU over that window as a share of one core, the broker's
# included. The producer stays up between bursts (MODE=burst, an hour's pause), with its
# control-plane reader running, as a playground's producer waits for its next burst. The
# consumers keep fetching: on Nisshi an empty fetch returns after its wait (FETCH_MAX_WAIT_MS
# in their env files), so this is what those waits cost. Target: each of our services under
# 2% of a core; the broker's share is stated, not judged.
#
#   scripts/bench-idle.sh [--runs N] [SECONDS]     default: --runs 3, 30 s
#
# With --runs N, every run starts a fresh broker and services; the table shows each run and
# the median. Bounded: start-up waits at most 120 s, and everything started is stopped on exit.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

runs=3
positional=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --runs) runs=${2:?--runs needs a value}; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
    -*) die_usage "unknown option '$1' (see --help)" ;;
    *) positional+=("$1"); shift ;;
  esac
done
SECONDS_IDLE=${positional[0]:-30}
need_count SECONDS "$SECONDS_IDLE" 5
need_count --runs "$runs" 1

BURST=1000
scripts/broker.sh install >/dev/null
release_binaries producer_order inventory_consumer analytics_consumer
WORK=$(mktemp -d)
stop_started_on_exit 'rm -rf "$WORK"'

# decided PORT: orders the dashboard has seen decided (0 while it does not answer).
decided() {
  curl -fs --max-time 2 "http://127.0.0.1:$1/metrics" 2>/dev/null \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["processed_order_count"])' 2>/dev/null \
    || echo 0
}

# measure RUN: prints "producer inventory analytics broker" (% of one core over the window).
measure() {
  local name="bench-idle-$1-$$" http_port
  broker_start "$name"
  local broker; broker=$(broker_pid "$name")
  http_port=$(free_port)
  local common=(BOOTSTRAP_SERVERS="$BOOTSTRAP" RUST_LOG=warn)
  env ENV_FILE=services/inventory_consumer/inventory.env "${common[@]}" CREATE_TOPICS=1 \
    "$TARGET/inventory-consumer" > "$WORK/inventory.log" 2>&1 &
  local inventory=$!; track_pid "$inventory"
  env ENV_FILE=services/analytics_consumer/analytics.env "${common[@]}" HTTP_HOST=127.0.0.1 HTTP_PORT="$http_port" \
    "$TARGET/analytics-consumer" > "$WORK/analytics.log" 2>&1 &
  local analytics=$!; track_pid "$analytics"
  env ENV_FILE=services/producer_order/producer.env "${common[@]}" CREATE_TOPICS=1 TOPIC_PARTITIONS=6 MODE=burst \
    BURST_SIZE="$BURST" SLEEP_MS=3600000 TOTAL_EVENTS=0 PROGRESS_INTERVAL_SEC=3600 \
    "$TARGET/producer-order" > "$WORK/producer.log" 2>&1 &
  local producer=$!; track_pid "$producer"
  burst_decided() {
    if ! { alive "$producer" && alive "$inventory" && alive "$analytics"; }; then
      die "a service exited during start-up (logs: $WORK)"
    fi
    (( $(decided "$http_port") >= BURST ))
  }
  WAIT_INTERVAL=0.2 wait_until 120 "the first $BURST orders to be decided" burst_decided
  # Let the last commits and the dashboard's refresh settle before the window opens.
  sleep 3
  local pids=("$producer" "$inventory" "$analytics" "$broker") before=() after=() pid
  for pid in "${pids[@]}"; do before+=("$(cpu_ticks "$pid")"); done
  sleep "$SECONDS_IDLE"
  for pid in "${pids[@]}"; do after+=("$(cpu_ticks "$pid")"); done
  local shares=() i
  for i in "${!pids[@]}"; do
    shares+=("$(cpu_percent_between "${before[$i]}" "${after[$i]}" "$SECONDS_IDLE")")
  done
  stop_pid "$producer"; stop_pid "$inventory"; stop_pid "$analytics"
  broker_stop "$name"
  echo "${shares[*]}"
}

declare -a producer_of inventory_of analytics_of broker_of
rows=()
for (( run = 1; run <= runs; run++ )); do
  log "run $run of $runs: $SECONDS_IDLE s idle after a burst of $BURST orders"
  measure "$run" > "$WORK/figures"
  read -r p i a b < "$WORK/figures"
  producer_of+=("$p"); inventory_of+=("$i"); analytics_of+=("$a"); broker_of+=("$b")
  rows+=("| $run | $p | $i | $a | $b |")
done
p=$(median "${producer_of[@]}") i=$(median "${inventory_of[@]}") a=$(median "${analytics_of[@]}") b=$(median "${broker_of[@]}")
result idle_producer_cpu "$p"; result idle_inventory_cpu "$i"; result idle_analytics_cpu "$a"; result idle_broker_cpu "$b"

inventory_wait=$("$TARGET/inventory-consumer" --check-config 2>/dev/null | sed -n 's/^FETCH_MAX_WAIT_MS=\([0-9]*\).*/\1/p' | head -n 1)
analytics_wait=$("$TARGET/analytics-consumer" --check-config 2>/dev/null | sed -n 's/^FETCH_MAX_WAIT_MS=\([0-9]*\).*/\1/p' | head -n 1)
echo
echo "Idle cost: CPU over $SECONDS_IDLE s with no orders flowing (after a first burst of $BURST), % of one core,"
echo "services with their env files (fetch wait: inventory ${inventory_wait:-?} ms, analytics ${analytics_wait:-?} ms),"
echo "memory broker, $(nproc) cores, $(date -u +%F)"
echo
echo "| run | producer-order | inventory-consumer | analytics-consumer | broker (Nisshi) |"
echo "|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo "| median | $p | $i | $a | $b |"
echo
echo "| target | ours | target | met |"
echo "|---|---|---|---|"
target_row "producer-order idle (% of a core)" "$p" "<=" 2
target_row "inventory-consumer idle (% of a core)" "$i" "<=" 2
target_row "analytics-consumer idle (% of a core)" "$a" "<=" 2
echo "| broker idle (% of a core, stated) | $b | | |"
