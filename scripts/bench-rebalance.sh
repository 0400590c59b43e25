#!/usr/bin/env bash
# Benchmark of the pause a rebalance costs: a third member joins a group of two while RATE
# (default 5000) records/s flow into a 6-partition topic. For every partition that does not
# move (held by one of the first two members from before the third joins until the group has
# settled), the longest gap between consecutive records consumed; a run's figure is the
# longest such gap. Rows: ours eager (range), ours cooperative (cooperative-sticky),
# librdkafka cooperative-sticky (confluent-kafka), all plain consumers; RUNS (default 5) runs
# per row, interleaved (ours eager, ours cooperative, librdkafka, then again), medians printed.
# A fourth row is the noise floor: the same window with nobody joining (on a busy 2-core
# machine, scheduling alone makes gaps of tens of milliseconds).
#
#   scripts/bench-rebalance.sh [RUNS] [RATE]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
RUNS="${1:-5}"
RATE="${2:-5000}"
need_count RUNS "$RUNS" 1
need_count RATE "$RATE" 1

scripts/broker.sh install >/dev/null
PYTHON=$(peer_python)
cargo build --release --locked -q -p integration-tests --bin bench_rebalance_member
OURS="${CARGO_TARGET_DIR:-target}/release/bench_rebalance_member"
stop_started_on_exit
broker_start "bench-rebalance-$$"
WORK=$(mktemp -d)
# KEEP_WORK=1 keeps the members' output (their stderr names every long gap) for a look.
[[ "${KEEP_WORK:-0}" == 1 ]] && log "members' output in $WORK" || STOP_ALSO='rm -rf "$WORK"'

# member NAME KIND STRATEGY GROUP TOPIC: starts one member reading commands from a fifo.
member() {
  local name=$1 kind=$2 strategy=$3 group=$4 topic=$5
  mkfifo "$WORK/$name.in"
  if [[ "$kind" == ours || "$kind" == idle ]]; then
    "$OURS" "$BOOTSTRAP" "$topic" "$group" "$strategy" <"$WORK/$name.in" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  else
    "$PYTHON" scripts/rebalance-peer.py member "$BOOTSTRAP" "$topic" "$group" "$strategy" \
      <"$WORK/$name.in" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  fi
  track_pid $!
  eval "exec {fd_$name}>\"$WORK/$name.in\""
}
send() { local fd="fd_$1"; echo "$2" >&"${!fd}"; }
holds() { # holds NAME COUNT: the member's last reported assignment has COUNT partitions
  local last
  last=$(grep '"assigned"' "$WORK/$1.out" 2>/dev/null | tail -1) || return 1
  [[ -n "$last" ]] && python3 -c "import json,sys; sys.exit(len(json.loads(sys.argv[1])['assigned']) != int(sys.argv[2]))" "$last" "$2"
}

# run_once N KIND STRATEGY: prints the longest gap (ms) over the unmoved partitions of run N,
# and how many partitions that covers.
run_once() {
  local n=$1 kind=$2 strategy=$3
  local topic="rb-$$-$n" group="rb-$$-$n"
  "$PYTHON" scripts/topic-tool.py create "$BOOTSTRAP" 6 "$topic" >/dev/null
  "$PYTHON" scripts/rebalance-peer.py produce "$BOOTSTRAP" "$topic" "$RATE" 60 &
  local load=$!
  track_pid "$load"
  member "a$n" "$kind" "$strategy" "$group" "$topic"
  wait_until 60 "the first member" holds "a$n" 6
  member "b$n" "$kind" "$strategy" "$group" "$topic"
  wait_until 60 "two members with three partitions each" holds "a$n" 3
  wait_until 60 "the second member's three partitions" holds "b$n" 3
  sleep 2 # steady flow to both before the window opens (a warm-up, not synchronisation)
  send "a$n" mark; send "b$n" mark
  if [[ "$kind" == idle ]]; then
    sleep 3 # the noise floor: the same window with nobody joining
    mkfifo "$WORK/c$n.in"; eval "exec {fd_c$n}<>\"$WORK/c$n.in\""
  else
    member "c$n" "$kind" "$strategy" "$group" "$topic"
    wait_until 60 "the third member's share" holds "c$n" 2
    wait_until 60 "the first member settled" holds "a$n" 2
    wait_until 60 "the second member settled" holds "b$n" 2
    sleep 2 # the window stays open past the hand-over, so a late pause still counts
  fi
  send "a$n" report; send "b$n" report; send "c$n" report
  wait_until 30 "the reports" grep -q unmoved_gaps_ms "$WORK/a$n.out"
  wait_until 30 "the reports" grep -q unmoved_gaps_ms "$WORK/b$n.out"
  kill "$load" 2>/dev/null || true
  wait "$load" 2>/dev/null || true
  for name in "a$n" "b$n" "c$n"; do local fd="fd_$name"; eval "exec ${!fd}>&-"; done
  python3 - "$WORK/a$n.out" "$WORK/b$n.out" <<'PY'
import json, sys
gaps = []
for path in sys.argv[1:]:
    for line in open(path):
        if "unmoved_gaps_ms" in line:
            gaps += json.loads(line)["unmoved_gaps_ms"].values()
print(max(gaps) if gaps else "nan", len(gaps))
PY
}

RUN_NUMBER=0
declare -A FIGURES UNMOVED
# The last row is the noise floor: ours, two members, nobody joins, the same window.
ROWS=("ours range" "ours cooperative-sticky" "peer cooperative-sticky" "idle cooperative-sticky")
for run in $(seq 1 "$RUNS"); do
  for row in "${ROWS[@]}"; do
    RUN_NUMBER=$(( RUN_NUMBER + 1 ))
    read -r gap unmoved < <(run_once "$RUN_NUMBER" $row)
    FIGURES[$row]+="$gap "
    UNMOVED[$row]+="$unmoved "
    log "run $run, $row: longest gap ${gap} ms over $unmoved unmoved partitions"
  done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
echo
echo "A third member joins a group of two: longest gap between consecutive records on a partition that did not move"
echo "$RATE records/s, 6 partitions, fetch wait 20 ms, $RUNS interleaved runs per row, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%F)"
echo
echo "| consumer | assignor | median longest gap (ms) | runs (ms) | unmoved partitions per run |"
echo "|---|---|---|---|---|"
for row in "${ROWS[@]}"; do
  read -r kind strategy <<<"$row"
  case $kind in
    ours) label="streaming-kafka GroupConsumer" ;;
    peer) label="confluent-kafka (librdkafka)" ;;
    idle) label="noise floor: ours, nobody joins" ;;
  esac
  echo "| $label | $strategy | $(median <<<"${FIGURES[$row]}") | ${FIGURES[$row]% } | ${UNMOVED[$row]% } |"
done
