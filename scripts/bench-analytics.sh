#!/usr/bin/env bash
# Analytics benchmark, one broker, one run: events/s analysed by analytics-consumer beside a
# Python confluent-kafka consumer doing the same windowed counting; then /metrics under 50
# concurrent clients for 10 s (wrk) while consuming, and how much consumption slows.
# Prints a Markdown table.
#
#   scripts/bench-analytics.sh [EVENTS_PER_TOPIC]
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT="${1:-1000000}"
NAME="bench-analytics-$$"

if ! command -v wrk >/dev/null 2>&1; then
  [[ $(id -u) -eq 0 ]] || { echo "install Debian's wrk first" >&2; exit 1; }
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
scripts/broker.sh install >/dev/null
PYTHON=$(scripts/peers.sh)
cargo build --release --locked -q -p analytics_consumer
BIN="${CARGO_TARGET_DIR:-target}/release/analytics-consumer"
BOOTSTRAP=$(scripts/broker.sh start --name "$NAME" | sed -n 's/^BOOTSTRAP_SERVERS=//p')
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; scripts/broker.sh stop --name "$NAME" >/dev/null 2>&1 || true; }
trap cleanup EXIT

"$PYTHON" - "$BOOTSTRAP" "$COUNT" <<'PY'
import json, sys, uuid
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
bootstrap, count = sys.argv[1], int(sys.argv[2])
admin = AdminClient({"bootstrap.servers": bootstrap})
for f in admin.create_topics([NewTopic("orders", 6, 1), NewTopic("outcomes", 6, 1)]).values():
    f.result()
p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "queue.buffering.max.messages": 1000000})
def send(topic, value):
    while True:
        try:
            p.produce(topic, value=value); return
        except BufferError:
            p.poll(0.01)
for i in range(count):
    oid = str(uuid.UUID(int=i + 1))
    send("orders", json.dumps({"schema_version": 1, "order_id": oid, "customer_id": "c-1", "item_id": f"item-{i % 100:04}",
        "quantity": 1, "unit_price": 2.5, "currency": "EUR", "status": "created", "created_at": "2026-11-24T10:00:00.000Z"}).encode())
    send("outcomes", json.dumps({"schema_version": 1, "event_id": str(uuid.uuid5(uuid.NAMESPACE_OID, oid)), "order_id": oid,
        "item_id": f"item-{i % 100:04}", "quantity": 1, "outcome": "reserved", "reason": None, "stock_after": 5, "attempts": 1,
        "order_created_at": "2026-11-24T10:00:00.000Z", "processed_at": "2026-11-24T10:00:00.020Z",
        "source_partition": 0, "source_offset": i}).encode())
p.flush(120)
PY

# Runs analytics-consumer on a fresh group; prints "seconds peak_rss_kib" once it has counted
# both topics. With "load", wrk hits /metrics with 50 connections for 10 s meanwhile.
ours() {
  local port=$1 load=$2 started pid total rss wrk_out=""
  started=$(date +%s.%N)
  BOOTSTRAP_SERVERS="$BOOTSTRAP" ORDER_TOPIC=orders INVENTORY_TOPIC=outcomes GROUP_ID="bench-$port" \
    GROUP_INSTANCE_ID= HTTP_HOST=127.0.0.1 HTTP_PORT="$port" REPORT_INTERVAL_SEC=1 RUST_LOG=warn "$BIN" &
  pid=$!; PIDS+=("$pid")
  if [[ "$load" == load ]]; then
    until curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; do sleep 0.05; done
    wrk -t2 -c50 -d10s --latency "http://127.0.0.1:$port/metrics" > "/tmp/$NAME-wrk.txt" 2>&1 &
    PIDS+=("$!")
  fi
  while :; do
    total=$(curl -fs "http://127.0.0.1:$port/metrics" 2>/dev/null | "$PYTHON" -c 'import json,sys; m=json.load(sys.stdin); print(m["orders"]["total"] + m["inventory_events"]["total"])' 2>/dev/null || echo 0)
    [[ "$total" -ge $(( COUNT * 2 )) ]] && break
    sleep 0.05
  done
  local seconds; seconds=$("$PYTHON" -c "import time; print(round(time.time() - $started, 3))")
  rss=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  echo "$seconds $rss"
}

peer() {
  "$PYTHON" - "$BOOTSTRAP" "$COUNT" <<'PY'
import json, resource, sys, time
from collections import defaultdict
from confluent_kafka import Consumer
bootstrap, count = sys.argv[1], int(sys.argv[2])
started = time.monotonic()
c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"peer-{time.time()}", "auto.offset.reset": "earliest"})
c.subscribe(["orders", "outcomes"])
window, seen, totals = defaultdict(lambda: defaultdict(int)), set(), defaultdict(int)
consumed = 0
while consumed < 2 * count:
    for m in c.consume(10000, 1.0):
        if m.error():
            continue
        event = json.loads(m.value())
        second = int(time.time())
        if m.topic() == "outcomes":
            if event["event_id"] in seen:
                continue
            seen.add(event["event_id"])
            totals[event["outcome"]] += 1
        window[second][m.topic()] += 1
        consumed += 1
seconds = time.monotonic() - started
c.close()
print(round(seconds, 3), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
PY
}

read -r ours_s ours_rss < <(ours 18081 quiet)
read -r peer_s peer_rss < <(peer)
read -r loaded_s _ < <(ours 18082 load)
wait_for_wrk() { while pgrep -x wrk >/dev/null; do sleep 0.2; done; }
wait_for_wrk
rps=$(awk '/Requests\/sec/ {print $2}' "/tmp/$NAME-wrk.txt")
p99=$(awk '$1 == "99%" {print $2}' "/tmp/$NAME-wrk.txt")
rate() { "$PYTHON" -c "print(round(2 * $COUNT / $1))"; }

# For scripts/bench.sh: figures as `key value` lines appended to $BENCH_RESULTS when it is set.
result() { [[ -n "${BENCH_RESULTS:-}" ]] && echo "$1 $2" >> "$BENCH_RESULTS"; return 0; }
result analytics_ours "$(rate "$ours_s")"; result analytics_peer "$(rate "$peer_s")"
result analytics_ours_rss_mib "$(( ours_rss / 1024 ))"; result analytics_peer_rss_mib "$(( peer_rss / 1024 ))"

echo
echo "Analytics: $COUNT orders + $COUNT outcomes, 6 partitions each, $(nproc) cores, $(date -u +%F)"
echo
echo "| consumer | events/s | seconds | peak RSS (MiB) |"
echo "|---|---|---|---|"
echo "| analytics-consumer | $(rate "$ours_s") | $ours_s | $(( ours_rss / 1024 )) |"
echo "| Python + confluent-kafka, same counting | $(rate "$peer_s") | $peer_s | $(( peer_rss / 1024 )) |"
echo "| ratio | $("$PYTHON" -c "print(f'{$peer_s / $ours_s:.1f}x')") | | |"
echo
echo "| /metrics under 50 connections for 10 s | value |"
echo "|---|---|"
echo "| requests/s | $rps |"
echo "| p99 latency | $p99 |"
echo "| events/s while loaded | $(rate "$loaded_s") |"
echo "| consumption slowed by | $("$PYTHON" -c "print(f'{max(0.0, 1 - $ours_s / $loaded_s):.1%}')") |"
