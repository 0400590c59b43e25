#!/usr/bin/env bash
# Every benchmark in one run, summarised in one Markdown table: each figure of ours beside the
# peer's from the same run (confluent-kafka, and the Python equivalents of our services) and
# the ratio. The detailed tables of each benchmark are printed first.
#
#   scripts/bench.sh [--update-docs] [--soak]
#
#   --update-docs   also write the tables to docs/benchmarks.md
#   --soak          also run scripts/soak.sh (SOAK_MINUTES, default 30) after the rest
#
# ORDERS (default 500000) sizes the throughput runs; LATENCY_SECONDS (default 20) each
# latency run; SCALE_ORDERS (default 200000) the scale runs; CONTROL_ORDERS (default 1000000)
# the control-plane drains. Takes about 25 minutes on two cores without the soak.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
ORDERS="${ORDERS:-500000}"
LATENCY_SECONDS="${LATENCY_SECONDS:-20}"
SCALE_ORDERS="${SCALE_ORDERS:-200000}"
CONTROL_ORDERS="${CONTROL_ORDERS:-1000000}"
SOAK_MINUTES="${SOAK_MINUTES:-30}"
need_count ORDERS "$ORDERS" 1
need_count LATENCY_SECONDS "$LATENCY_SECONDS" 1
need_count SCALE_ORDERS "$SCALE_ORDERS" 1
need_count CONTROL_ORDERS "$CONTROL_ORDERS" 1
need_count SOAK_MINUTES "$SOAK_MINUTES" 1
update_docs=0 soak=0
for argument in "$@"; do
  case "$argument" in
    --update-docs) update_docs=1 ;;
    --soak) soak=1 ;;
    *) die_usage "unknown option '$argument' (accepted: --update-docs, --soak)" ;;
  esac
done

export BENCH_RESULTS; BENCH_RESULTS=$(mktemp)
details=$(mktemp)
trap 'rm -f "$BENCH_RESULTS" "$details"' EXIT
PYTHON=$(peer_python)

run() {
  printf '\n==> %s\n' "$*" >&2
  "$@" | tee -a "$details"
}
run scripts/bench-producer.sh "$ORDERS"
run scripts/bench-inventory.sh "$ORDERS"
run scripts/bench-analytics.sh "$ORDERS"
run scripts/bench-latency.sh "$LATENCY_SECONDS" 1000 10000
run scripts/bench-scale.sh "$SCALE_ORDERS" 6 96 384
run scripts/bench-control.sh "$CONTROL_ORDERS"
[[ "$soak" == 1 ]] && run scripts/soak.sh --minutes "$SOAK_MINUTES"

# Sizes: the static binaries (and images, when a Docker engine answers) from the issue-7 build.
sizes=""
if [[ -x scripts/build-static.sh ]] && scripts/build-static.sh x86_64 >&2; then
  for binary in producer-order inventory-consumer analytics-consumer; do
    file="dist/x86_64-unknown-linux-musl/$binary"
    [[ -f "$file" ]] && sizes+="| $binary static binary (MiB) | $(awk -v b="$(stat -c %s "$file")" 'BEGIN { printf "%.1f", b / 1048576 }') | | |"$'\n'
  done
  if docker info >/dev/null 2>&1; then
    while read -r repository tag bytes; do
      sizes+="| image $repository:$tag (MiB) | $(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1048576 }') | | |"$'\n'
    # The per-architecture tags of the three services (the untagged-arch alias and the offline
    # broker image are not ours to size).
    done < <(docker images --format '{{.Repository}} {{.Tag}}' --filter 'reference=streaming-kafka/*' \
               | awk '$1 != "streaming-kafka/nisshi" && $2 ~ /-(amd64|arm64)$/' | sort \
               | while read -r r t; do echo "$r $t $(docker image inspect --format '{{.Size}}' "$r:$t")"; done)
  fi
fi
# The installed confluent-kafka package with its bundled librdkafka (the wheel's .libs folder).
package_dir=$("$PYTHON" -c 'import os, confluent_kafka; print(os.path.dirname(confluent_kafka.__file__))')
peer_install=$(du -sb "$package_dir" "$(dirname "$package_dir")/confluent_kafka.libs" 2>/dev/null \
  | awk '{ total += $1 } END { printf "%.1f", total / 1048576 }')

value() { awk -v k="$1" '$1 == k { print $2 }' "$BENCH_RESULTS" | tail -n 1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/ && b > 0) printf "%.2fx", a / b; else print "n/a" }'; }
# row MEASURE OURS PEER: a summary row; the ratio only where a peer figure exists.
row() { local r=""; [[ -n "$3" ]] && r=$(ratio "$2" "$3"); echo "| $1 | $2 | $3 | $r |"; }

summary=$(
  echo "| measure | ours | peer (same run) | ours / peer |"
  echo "|---|---|---|---|"
  row "producer burst, orders/s (peer: confluent-kafka, pre-serialized)" "$(value producer_ours)" "$(value producer_peer)"
  row "inventory, orders/s (peer: Python + confluent-kafka, same work)" "$(value inventory_ours)" "$(value inventory_peer)"
  row "analytics, events/s (peer: Python + confluent-kafka, same counting)" "$(value analytics_ours)" "$(value analytics_peer)"
  for rate in 1000 10000; do
    row "end-to-end latency p50 at $rate orders/s, ms (lower is better)" "$(value "latency_${rate}_ours_p50")" "$(value "latency_${rate}_peer_p50")"
    row "end-to-end latency p99 at $rate orders/s, ms (lower is better)" "$(value "latency_${rate}_ours_p99")" "$(value "latency_${rate}_peer_p99")"
  done
  row "peak RSS producer at 10k orders/s, MiB" "$(value rss_producer_ours)" "$(value rss_producer_peer)"
  row "peak RSS inventory at 10k orders/s, MiB" "$(value rss_inventory_ours)" "$(value rss_inventory_peer)"
  row "peak RSS analytics at 10k orders/s, MiB" "$(value rss_analytics_ours)" ""
  row "peak RSS inventory, $ORDERS orders at full speed, MiB" "$(value inventory_ours_rss_mib)" "$(value inventory_peer_rss_mib)"
  row "peak RSS analytics, $ORDERS orders + outcomes at full speed, MiB" "$(value analytics_ours_rss_mib)" "$(value analytics_peer_rss_mib)"
  row "peak RSS producer, $ORDERS-order burst, MiB" "$(value producer_ours_rss_mib)" "$(value producer_peer_rss_mib)"
  for partitions in 6 96 384; do
    row "inventory at $partitions partitions, orders/s (rate vs 6 partitions: $(value "scale_${partitions}_share"))" "$(value "scale_${partitions}_rate")" ""
    row "inventory at $partitions partitions: peak RSS MiB / connections to the broker" "$(value "scale_${partitions}_rss_mib") / $(value "scale_${partitions}_connections")" ""
  done
  row "POST /control RATE_PER_SEC to the new rate in /metrics, p50 / max ms (10 tries)" "$(value control_rate_p50_ms) / $(value control_rate_max_ms)" ""
  row "POST /control MEMBERS 1 <-> 3 to a stable group in /metrics, p50 / max ms (10 tries)" "$(value control_members_p50_ms) / $(value control_members_max_ms)" ""
  row "inventory orders/s with the control plane in use / idle (target >= 0.95)" "$(value control_drain_ratio)" ""
  if [[ "$soak" == 1 ]]; then
    for service in producer inventory analytics; do
      row "soak, $SOAK_MINUTES min at 10k orders/s: $service RSS" "$(value "soak_${service}_verdict")" ""
    done
  fi
  printf '%s' "$sizes"
  echo "| peer install: confluent-kafka + bundled librdkafka (MiB) | | $peer_install | |"
)
machine="$(nproc) cores ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), $(awk '/MemTotal/ { printf "%d GiB", $2 / 1048576 }' /proc/meminfo), $(. /etc/os-release && echo "$PRETTY_NAME"), broker $(basename "$(scripts/broker.sh path)") (memory storage, loopback), $(date -u '+%F %H:%M UTC')"

printf '\n## Summary\n\nMachine: %s\n\n%s\n' "$machine" "$summary"

if [[ "$update_docs" == 1 ]]; then
  {
    echo "# Benchmarks"
    echo
    echo "Measured by \`scripts/bench.sh\` in one run; every peer figure comes from the same run."
    echo "The broker shares the machine with the client being measured, so figures move by"
    echo "about ±20% between runs: compare within a table, not across runs."
    echo
    echo "Machine: $machine"
    echo
    echo "## Summary"
    echo
    echo "$summary"
    echo
    echo "## Details"
    cat "$details"
    # What the numbers mean and how they came to be: kept by hand beside the script.
    if [[ -f docs/benchmark-notes.md ]]; then echo; cat docs/benchmark-notes.md; fi
  } > docs/benchmarks.md
  echo "wrote docs/benchmarks.md" >&2
fi
