#!/usr/bin/env bash
# Storage benchmark: the playground's pipeline (the three services with their env files, as
# scripts/run.sh starts them) at a steady rate for SECONDS, once per broker storage, a fresh
# broker each time. For each: the broker's CPU (share of one core over the steady part of the
# run), requests per second by API and bytes per produce request (counted by
# scripts/request-counter.py, a proxy the broker advertises), the orders/s the producer had
# acknowledged, and the dashboard's end-to-end latency (analytics' window) and lag at the end.
# It is how run.sh's storage default and --durable's SQLite options were chosen.
#
#   scripts/bench-storage.sh [--seconds S] [--rate N] [--runs N] [STORAGE ...] [VAR=VALUE ...]
#                 default: --seconds 30 --rate 1000 --runs 1 memory durable durable:mode=direct durable:mode=mpsc
#
# With --runs N the storages are measured in turn N times (interleaved) and every run is a row.
# VAR=VALUE settings go to all three services (e.g. LINGER_MS=20), after their env files.
#
# STORAGE is `memory`, `durable`, or `durable:QUERY` (QUERY appended to the sqlite URL, see
# scripts/broker.sh). Bounded: each run lasts SECONDS plus start-up (deadlines of 120 s) and
# everything it starts is stopped on any exit.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

seconds=30 rate=1000 runs=1
storages=() settings=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --seconds) seconds=${2:?--seconds needs a value}; shift 2 ;;
    --rate) rate=${2:?--rate needs a value}; shift 2 ;;
    --runs) runs=${2:?--runs needs a value}; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
    memory|durable|durable:*) storages+=("$1"); shift ;;
    [A-Z]*=*) settings+=("$1"); shift ;;
    *) die_usage "unknown option or storage '$1' (accepted: memory, durable, durable:QUERY; see --help)" ;;
  esac
done
[[ ${#storages[@]} -gt 0 ]] || storages=(memory durable durable:mode=direct durable:mode=mpsc)
need_count --seconds "$seconds" 10
need_count --rate "$rate" 1
need_count --runs "$runs" 1

scripts/broker.sh install >/dev/null
release_binaries producer_order inventory_consumer analytics_consumer
WORK=$(mktemp -d)
stop_started_on_exit 'rm -rf "$WORK"'

# measure STORAGE INDEX LABEL: prints one Markdown row.
measure() {
  local storage=$1 name="bench-storage-$2-$$" label=$3 options=()
  case "$storage" in
    durable) options=(--durable "$WORK/$2") ;;
    durable:*) options=(--durable "$WORK/$2" --sqlite-options "${storage#durable:}") ;;
  esac
  local proxy_port; proxy_port=$(free_port)
  broker_start "$name" --advertise-port "$proxy_port" "${options[@]}"
  local broker; broker=$(broker_pid "$name")
  python3 scripts/request-counter.py "$proxy_port" "$BROKER_PORT" "$WORK/requests.json" 2>/dev/null &
  local proxy=$!; track_pid "$proxy"
  proxy_up() { (exec 3<>"/dev/tcp/127.0.0.1/$proxy_port") 2>/dev/null; }
  wait_until 30 "the request counter to listen" proxy_up

  local http_port; http_port=$(free_port)
  local common=(BOOTSTRAP_SERVERS="127.0.0.1:$proxy_port" RUST_LOG=warn LOG_FORMAT=json "${settings[@]}")
  env ENV_FILE=services/inventory_consumer/inventory.env "${common[@]}" CREATE_TOPICS=1 \
    "$TARGET/inventory-consumer" > "$WORK/inventory.log" 2>&1 &
  local inventory=$!; track_pid "$inventory"
  env ENV_FILE=services/analytics_consumer/analytics.env "${common[@]}" HTTP_HOST=127.0.0.1 HTTP_PORT="$http_port" \
    "$TARGET/analytics-consumer" > "$WORK/analytics.log" 2>&1 &
  local analytics=$!; track_pid "$analytics"
  env ENV_FILE=services/producer_order/producer.env "${common[@]}" CREATE_TOPICS=1 TOPIC_PARTITIONS=6 MODE=steady \
    RATE_PER_SEC="$rate" TOTAL_EVENTS="$(( rate * seconds ))" PROGRESS_INTERVAL_SEC=3600 \
    "$TARGET/producer-order" > "$WORK/producer.log" 2>&1 &
  local producer=$!; track_pid "$producer"
  ready() { [[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$http_port/readyz")" == 200 ]]; }
  WAIT_INTERVAL=0.2 wait_until 120 "analytics to be ready ($storage)" ready

  # The steady part: from 5 s after the dashboard is ready until the producer has sent all.
  sleep 5
  local ticks_before; ticks_before=$(cpu_ticks "$broker")
  local window_started=$SECONDS
  # A producer that cannot keep up runs past its nominal time; give it twice that, then stop it.
  local deadline=$(( SECONDS + 2 * seconds + 30 ))
  while alive "$producer" && (( SECONDS < deadline )); do sleep 0.5; done
  local window=$(( SECONDS - window_started )) ticks_after; ticks_after=$(cpu_ticks "$broker")
  local broker_cpu; broker_cpu=$(cpu_percent_between "$ticks_before" "$ticks_after" "$(( window > 0 ? window : 1 ))")
  local metrics; metrics=$(curl -fs --max-time 5 "http://127.0.0.1:$http_port/metrics" || echo '{}')
  stop_pid "$producer"
  local acknowledged; acknowledged=$(grep -m 1 '"summary"' "$WORK/producer.log" \
    | python3 -c 'import json, sys; print(json.loads(sys.stdin.read())["acknowledged_per_sec"])' 2>/dev/null || echo "(unfinished)")
  stop_pid "$inventory"; stop_pid "$analytics"; stop_pid "$proxy"
  broker_stop "$name"

  python3 - "$label" "$broker_cpu" "$acknowledged" "$metrics" "$WORK/requests.json" <<'PY'
import json, sys
storage, cpu, acknowledged, metrics, report_file = sys.argv[1:6]
report = json.load(open(report_file))
apis, secs = report["apis"], report["seconds"]
per_second = lambda api: apis.get(api, {}).get("requests", 0) / secs
produce = apis.get("Produce", {"requests": 0, "bytes": 0})
per_produce = produce["bytes"] / produce["requests"] if produce["requests"] else 0
total = sum(a["requests"] for a in apis.values()) / secs
try:
    m = json.loads(metrics)
    latency = m["latency_seconds"]
    latency_text = f"{latency['p50'] * 1000:.0f} / {latency['p99'] * 1000:.0f}"
    lag = m["lag_total"]
except Exception:
    latency_text, lag = "?", "?"
print(f"| {storage} | {cpu} | {per_second('Produce'):.0f} | {per_produce:.0f} | {per_second('Fetch'):.0f} "
      f"| {total:.0f} | {acknowledged} | {latency_text} | {lag} |")
PY
}

rows=()
index=0
for (( run = 1; run <= runs; run++ )); do
  for storage in "${storages[@]}"; do
    index=$(( index + 1 ))
    label=$storage
    (( runs > 1 )) && label="$storage (run $run)"
    log "storage $label: $rate orders/s for ${seconds}s"
    measure "$storage" "$index" "$label" > "$WORK/row"
    rows+=("$(cat "$WORK/row")")
  done
done

echo
echo "Storage: the playground pipeline at $rate orders/s for ${seconds}s per storage (services with their env files,"
echo "through a counting proxy)${settings[*]:+, with ${settings[*]}}, $(nproc) cores, $(date -u +%F)"
echo
echo "| storage | broker CPU (% of a core) | produce requests/s | bytes per produce request | fetch requests/s | all requests/s | producer acknowledged orders/s | latency p50 / p99 (ms, dashboard window) | lag at the end |"
echo "|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
