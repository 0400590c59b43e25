#!/usr/bin/env bash
# Analytics benchmark, one broker, one run: events/s analysed by analytics-consumer beside a
# Python confluent-kafka consumer doing the same windowed counting (scripts/analytics-peer.py);
# then /metrics under 50 concurrent clients for 10 s (wrk) while consuming, and how much
# consumption slows; analytics-consumer's peak RSS against the full-speed target. The backlog
# (scripts/seed-events.py) is built from shared/schemas. Prints Markdown tables.
#
#   scripts/bench-analytics.sh [EVENTS_PER_TOPIC]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
COUNT="${1:-1000000}"
need_count EVENTS_PER_TOPIC "$COUNT" 1

if ! command -v wrk >/dev/null 2>&1; then
  [[ $(id -u) -eq 0 ]] || die "install Debian's wrk first"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
scripts/broker.sh install >/dev/null
PYTHON=$(peer_python)
release_binaries analytics_consumer
BIN="$TARGET/analytics-consumer"
WRK_OUT=$(mktemp)
stop_started_on_exit 'rm -f "$WRK_OUT"'
broker_start "bench-analytics-$$"

"$PYTHON" scripts/seed-events.py "$BOOTSTRAP" "$COUNT" --orders orders --outcomes outcomes

# counted PORT: orders + outcomes analytics has counted so far (0 while it is not serving).
counted() {
  curl -fs "http://127.0.0.1:$1/metrics" 2>/dev/null \
    | python3 -c 'import json, sys; m = json.load(sys.stdin); print(m["orders"]["total"] + m["inventory_events"]["total"])' 2>/dev/null \
    || echo 0
}
all_counted() { [[ $(counted "$1") -ge $(( COUNT * 2 )) ]]; }
serving() { curl -fs "http://127.0.0.1:$1/healthz" >/dev/null 2>&1; }

# ours PORT quiet|load: runs analytics-consumer on a fresh group until it has counted both
# topics; sets OURS_SECONDS and OURS_RSS_KIB (run in this shell, so stop_started can reach
# it). With load, wrk hits /metrics with 50 connections for 10 s meanwhile, and the consumer
# keeps serving until wrk is done.
ours() {
  local port=$1 load=$2 started pid wrk_pid=""
  started=$(now)
  BOOTSTRAP_SERVERS="$BOOTSTRAP" ORDER_TOPIC=orders INVENTORY_TOPIC=outcomes GROUP_ID="bench-$port" \
    GROUP_INSTANCE_ID="" HTTP_HOST=127.0.0.1 HTTP_PORT="$port" REPORT_INTERVAL_SEC=1 RUST_LOG=warn "$BIN" &
  pid=$!
  track_pid "$pid"
  if [[ "$load" == load ]]; then
    WAIT_INTERVAL=0.05 wait_until 60 "analytics to serve /healthz" serving "$port"
    wrk -t2 -c50 -d10s --latency "http://127.0.0.1:$port/metrics" > "$WRK_OUT" 2>&1 &
    wrk_pid=$!
    track_pid "$wrk_pid"
  fi
  WAIT_INTERVAL=0.05 wait_until 600 "analytics to count $(( COUNT * 2 )) events" all_counted "$port"
  OURS_SECONDS=$(elapsed_since "$started")
  OURS_RSS_KIB=$(peak_rss_kib "$pid")
  [[ -n "$wrk_pid" ]] && { wait "$wrk_pid" || true; }
  stop_pid "$pid"
}

ours "$(free_port)" quiet
ours_s=$OURS_SECONDS ours_rss=$OURS_RSS_KIB
read -r peer_s peer_rss < <("$PYTHON" scripts/analytics-peer.py "$BOOTSTRAP" orders outcomes "$COUNT")
ours "$(free_port)" load
loaded_s=$OURS_SECONDS
rps=$(awk '/Requests\/sec/ { print $2 }' "$WRK_OUT")
p99=$(awk '$1 == "99%" { print $2 }' "$WRK_OUT")
rate() { awk -v n="$COUNT" -v s="$1" 'BEGIN { printf "%d", 2 * n / s }'; }
ratio=$(awk -v p="$peer_s" -v o="$ours_s" 'BEGIN { printf "%.1f", p / o }')
slowed=$(awk -v o="$ours_s" -v l="$loaded_s" 'BEGIN { s = 1 - o / l; if (s < 0) s = 0; printf "%.1f", 100 * s }')

result analytics_ours "$(rate "$ours_s")"; result analytics_peer "$(rate "$peer_s")"
result analytics_ours_rss_mib "$(mib "$ours_rss")"; result analytics_peer_rss_mib "$(mib "$peer_rss")"

echo
echo "Analytics: $COUNT orders + $COUNT outcomes, 6 partitions each, $(nproc) cores, $(date -u +%F)"
echo
echo "| consumer | events/s | seconds | peak RSS (MiB) |"
echo "|---|---|---|---|"
echo "| analytics-consumer | $(rate "$ours_s") | $ours_s | $(mib "$ours_rss") |"
echo "| Python + confluent-kafka, same counting | $(rate "$peer_s") | $peer_s | $(mib "$peer_rss") |"
echo "| ratio | ${ratio}x | | |"
echo
echo "| /metrics under 50 connections for 10 s | value |"
echo "|---|---|"
echo "| requests/s | $rps |"
echo "| p99 latency | $p99 |"
echo "| events/s while loaded | $(rate "$loaded_s") |"
echo "| consumption slowed by | $slowed% |"
echo
echo "| target | ours | target | met |"
echo "|---|---|---|---|"
target_row "analytics-consumer peak RSS at full speed (MiB)" "$(mib "$ours_rss")" "<=" "$RSS_TARGET_FULL_SPEED_MIB"
target_row "events/s vs the Python peer (x)" "$ratio" ">=" 5
