#!/usr/bin/env bash
# Every benchmark in one run, summarised in one Markdown table: each figure of ours beside the
# peer's from the same run (confluent-kafka, and the Python equivalents of our services) and
# the ratio. The detailed tables of each benchmark are printed first.
#
#   scripts/bench.sh                  run everything, print the tables
#   scripts/bench.sh --update-docs    also write them to docs/benchmarks.md
#
# ORDERS (default 500000) sizes the throughput runs; LATENCY_SECONDS (default 20) each
# latency run. Takes about 10 minutes on two cores.
set -euo pipefail
cd "$(dirname "$0")/.."
ORDERS="${ORDERS:-500000}"
LATENCY_SECONDS="${LATENCY_SECONDS:-20}"
update_docs=0
[[ "${1:-}" == "--update-docs" ]] && update_docs=1

export BENCH_RESULTS; BENCH_RESULTS=$(mktemp)
details=$(mktemp)
trap 'rm -f "$BENCH_RESULTS" "$details"' EXIT
PYTHON=$(scripts/peers.sh)

run() {
  printf '\n==> %s\n' "$*" >&2
  "$@" | tee -a "$details"
}
run scripts/bench-producer.sh "$ORDERS"
run scripts/bench-inventory.sh "$ORDERS"
run scripts/bench-analytics.sh "$ORDERS"
run scripts/bench-latency.sh "$LATENCY_SECONDS" 1000 10000

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
peer_install=$("$PYTHON" - <<'PY'
import os, confluent_kafka
root = os.path.dirname(confluent_kafka.__file__)
total = 0
for base in [root, os.path.join(os.path.dirname(root), "confluent_kafka.libs")]:
    for folder, _, files in os.walk(base):
        total += sum(os.path.getsize(os.path.join(folder, f)) for f in files)
print(f"{total / 1048576:.1f}")
PY
)

value() { awk -v k="$1" '$1 == k { print $2 }' "$BENCH_RESULTS" | tail -n 1; }
ratio() { "$PYTHON" -c "import sys; a, b = sys.argv[1], sys.argv[2]
try: print(f'{float(a) / float(b):.2f}x')
except Exception: print('n/a')" "$1" "$2"; }
row() { echo "| $1 | $2 | $3 | $(ratio "$2" "$3") |"; }

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
  row "peak RSS analytics, $ORDERS orders + outcomes at full speed, MiB" "$(value analytics_ours_rss_mib)" "$(value analytics_peer_rss_mib)"
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
