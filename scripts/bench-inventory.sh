#!/usr/bin/env bash
# Inventory benchmark, one broker, one run: orders/s processed by inventory-consumer
# (FAIL_RATE=0, THROTTLE_MS=0: read, decide, produce the outcome and the stock change, commit
# after they are acknowledged) beside a Python consumer doing the same work with
# confluent-kafka (scripts/inventory-peer.py: read, decide, produce outcome, commit after the
# producer flushed), and inventory-consumer's peak RSS against the full-speed target.
# Prints Markdown tables.
#
#   scripts/bench-inventory.sh [ORDERS]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
COUNT="${1:-1000000}"
need_count ORDERS "$COUNT" 1

scripts/broker.sh install >/dev/null
PYTHON=$(peer_python)
release_binaries inventory_consumer producer_order
stop_started_on_exit
broker_start "bench-inventory-$$"

# The same orders for both: producer-order writes them once.
BOOTSTRAP_SERVERS="$BOOTSTRAP" ORDER_TOPIC=orders CREATE_TOPICS=1 TOPIC_PARTITIONS=6 TOTAL_EVENTS="$COUNT" \
  BURST_SIZE="$COUNT" LOG_FORMAT=json RUST_LOG=warn "$TARGET/producer-order" >/dev/null

started=$(now)
BOOTSTRAP_SERVERS="$BOOTSTRAP" ORDER_TOPIC=orders INVENTORY_TOPIC=outcomes DLQ_TOPIC=dlq STATE_TOPIC=state \
  GROUP_ID=bench CREATE_TOPICS=1 FAIL_RATE=0 THROTTLE_MS=0 INITIAL_STOCK=1000000000 RUST_LOG=warn \
  "$TARGET/inventory-consumer" &
pid=$!
track_pid "$pid"
"$PYTHON" scripts/topic-tool.py wait-count "$BOOTSTRAP" outcomes "$COUNT" 600 >/dev/null
ours_s=$(elapsed_since "$started")
ours_rss=$(peak_rss_kib "$pid")
stop_pid "$pid"

read -r peer_s peer_rss < <("$PYTHON" scripts/inventory-peer.py "$BOOTSTRAP" orders peer-outcomes peer "$COUNT")
rate() { awk -v n="$COUNT" -v s="$1" 'BEGIN { printf "%d", n / s }'; }

result inventory_ours "$(rate "$ours_s")"; result inventory_peer "$(rate "$peer_s")"
result inventory_ours_rss_mib "$(mib "$ours_rss")"; result inventory_peer_rss_mib "$(mib "$peer_rss")"

echo
echo "Inventory: $COUNT orders, 6 partitions, FAIL_RATE=0, THROTTLE_MS=0, $(nproc) cores, $(date -u +%F)"
echo
echo "| consumer | orders/s | seconds | peak RSS (MiB) |"
echo "|---|---|---|---|"
echo "| inventory-consumer | $(rate "$ours_s") | $ours_s | $(mib "$ours_rss") |"
echo "| Python + confluent-kafka, same work | $(rate "$peer_s") | $peer_s | $(mib "$peer_rss") |"
echo "| ratio | $(awk -v p="$peer_s" -v o="$ours_s" 'BEGIN { printf "%.1fx", p / o }') | | |"
echo
echo "| target | ours | target | met |"
echo "|---|---|---|---|"
target_row "inventory-consumer peak RSS at full speed (MiB)" "$(mib "$ours_rss")" "<=" "$RSS_TARGET_FULL_SPEED_MIB"
target_row "orders/s vs the Python peer (x)" "$(awk -v p="$peer_s" -v o="$ours_s" 'BEGIN { printf "%.1f", p / o }')" ">=" 5
