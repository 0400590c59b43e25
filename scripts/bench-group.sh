#!/usr/bin/env bash
# Benchmark of the group member's read path: one member reads COUNT (default 1M) orders from a
# 6-partition topic (scripts/seed-events.py, spread evenly, events from shared/schemas), beside
# a confluent-kafka consumer (scripts/group-peer.py) reading the same topic in the same run.
# Prints a Markdown table with the ratio and peak RSS.
#
#   scripts/bench-group.sh [COUNT]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
COUNT="${1:-1000000}"
need_count COUNT "$COUNT" 1

scripts/broker.sh install >/dev/null
PYTHON=$(peer_python)
cargo build --release --locked -q -p integration-tests --bin bench_group_consume
stop_started_on_exit
broker_start "bench-group-$$"
TOPIC="bench-$$"

"$PYTHON" scripts/seed-events.py "$BOOTSTRAP" "$COUNT" --orders "$TOPIC" --round-robin
ours=$("${CARGO_TARGET_DIR:-target}/release/bench_group_consume" "$BOOTSTRAP" "$TOPIC" "ours-$$" "$COUNT")
peer=$("$PYTHON" scripts/group-peer.py "$BOOTSTRAP" "$TOPIC" "peer-$$" "$COUNT")

field() { python3 -c "import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }
ours_rate=$(field "$ours" records_per_sec); peer_rate=$(field "$peer" records_per_sec)
echo
echo "Group member read path: $COUNT orders (~220 B), 6 partitions, one member, $(nproc) cores, $(date -u +%F)"
echo
echo "| consumer | records/s | seconds | peak RSS (MiB) |"
echo "|---|---|---|---|"
echo "| streaming-kafka GroupConsumer | $ours_rate | $(field "$ours" seconds) | $(mib "$(field "$ours" peak_rss_kib)") |"
echo "| confluent-kafka (librdkafka) | $peer_rate | $(field "$peer" seconds) | $(mib "$(field "$peer" peak_rss_kib)") |"
echo "| ratio ours / librdkafka | $(awk -v a="$ours_rate" -v b="$peer_rate" 'BEGIN { printf "%.2f", a / b }') | | |"
