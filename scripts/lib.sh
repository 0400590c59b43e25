# shellcheck shell=bash disable=SC2034,SC2154
# (SC2034: the variables set here are read by the scripts that source this file; SC2154: $status
# in a trap is assigned by the trap itself.)
#
# Helpers the scripts share: logging and errors, free ports, brokers started through
# scripts/broker.sh, waiting for a condition with a deadline, and the process readings the
# benchmarks print (peak RSS, CPU, TCP connections). Sourced, never run:
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# It only defines functions and a few variables (REPO_ROOT, SCRIPTS_DIR, SCRIPT_NAME); it does
# not cd, set shell options or install traps, so a script stays in charge of its own flow.
# Processes and brokers a script starts are stopped by `stop_started`, which a script installs
# with `stop_started_on_exit` (or calls from its own EXIT trap): one clean-up path, whatever
# the reason for leaving.

SCRIPTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(dirname "$SCRIPTS_DIR")
SCRIPT_NAME=${SCRIPT_NAME:-$(basename "$0")}
CACHE_DIR="${STREAMING_KAFKA_CACHE:-$HOME/.cache/streaming-kafka}"

# --- logging and errors -------------------------------------------------------------------

log() { printf '%s: %s\n' "$SCRIPT_NAME" "$*" >&2; }

# die MESSAGE: a runtime failure (exit 1). die_usage MESSAGE: bad usage or a bad value (exit 2),
# the project's convention for configuration errors.
die() { log "error: $*"; exit 1; }
die_usage() { log "error: $*"; exit 2; }

# need_count NAME VALUE [MIN]: VALUE must be a whole number (>= MIN when given); else exit 2
# naming the option, the value and what is accepted.
need_count() {
  local name=$1 value=$2 min=${3:-0}
  [[ "$value" =~ ^[0-9]+$ ]] && (( 10#$value >= min )) \
    || die_usage "$name must be a whole number >= $min, got '$value'"
}

# --- ports and waiting --------------------------------------------------------------------

# A TCP port no socket on this machine uses, below the kernel's ephemeral range (so an
# outgoing connection cannot be holding it when a service binds it a moment later): random,
# so parallel scripts rarely pick the same one; a listener could still take it first.
free_port() {
  local low high port hex
  read -r low _ < /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || low=32768
  high=$(( low - 1 ))
  (( high > 15000 )) || high=32767
  for _ in $(seq 1 50); do
    port=$(( 15000 + RANDOM % (high - 15000 + 1) ))
    hex=$(printf '%04X' "$port")
    # Any state counts: a listener, a connection, or a socket in TIME_WAIT.
    if ! awk -v hex="$hex" 'NR > 1 { split($2, local_end, ":"); if (local_end[2] == hex) found = 1 }
                            END { exit found ? 0 : 1 }' /proc/net/tcp /proc/net/tcp6 2>/dev/null \
       && ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  die "no free port found on 127.0.0.1"
}

# wait_until SECONDS DESCRIPTION COMMAND...: runs COMMAND every WAIT_INTERVAL seconds (default
# 0.1) until it succeeds; exits 1 naming DESCRIPTION when SECONDS pass first. The condition is
# awaited, not slept for: it returns as soon as the condition holds.
wait_until() {
  local seconds=$1 description=$2
  shift 2
  local deadline=$(( SECONDS + seconds ))
  until "$@"; do
    (( SECONDS < deadline )) || die "gave up after ${seconds}s waiting for $description"
    sleep "${WAIT_INTERVAL:-0.1}"
  done
}

# now: seconds since the epoch with nanoseconds, for elapsed-time arithmetic in awk.
now() { date +%s.%N; }
elapsed_since() { awk -v start="$1" -v end="$(now)" 'BEGIN { printf "%.3f", end - start }'; }

# --- processes started by a script --------------------------------------------------------

STARTED_PIDS=()
STARTED_BROKERS=()

# track_pid PID: stop_started sends it SIGTERM (then SIGKILL after 10 s).
track_pid() { STARTED_PIDS+=("$1"); }

alive() { kill -0 "$1" 2>/dev/null; }

# stop_pid PID [SECONDS]: SIGTERM, wait up to SECONDS (default 10) for it to exit, then SIGKILL.
stop_pid() {
  local pid=$1 seconds=${2:-10}
  alive "$pid" || { wait "$pid" 2>/dev/null || true; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$(( SECONDS + seconds ))
  while alive "$pid" && (( SECONDS < deadline )); do sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# Stops every tracked process (last started first) and every broker started with
# broker_start. Safe to call more than once.
stop_started() {
  local index
  for (( index = ${#STARTED_PIDS[@]} - 1; index >= 0; index-- )); do
    stop_pid "${STARTED_PIDS[$index]}"
  done
  STARTED_PIDS=()
  for name in "${STARTED_BROKERS[@]}"; do
    "$SCRIPTS_DIR/broker.sh" stop --name "$name" >/dev/null 2>&1 || true
  done
  STARTED_BROKERS=()
}

# stop_started_on_exit [COMMAND]: on any exit, stop_started and then COMMAND (evaluated then,
# e.g. 'rm -rf "$WORK"'); Ctrl+C and SIGTERM exit with 130 and 143 through the same path.
STOP_ALSO=""
stop_started_on_exit() {
  STOP_ALSO=${1:-$STOP_ALSO}
  trap 'exit_status=$?; trap - EXIT; stop_started; eval "$STOP_ALSO"; exit "$exit_status"' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

# --- the broker -----------------------------------------------------------------------------

# broker_start NAME [broker.sh start options]: starts a broker through scripts/broker.sh
# (memory storage unless --durable DIR is given), records it for stop_started and sets
# BOOTSTRAP (127.0.0.1:PORT) and BROKER_PORT.
broker_start() {
  local name=$1 line
  shift
  line=$("$SCRIPTS_DIR/broker.sh" start --name "$name" "$@" | sed -n 's/^BOOTSTRAP_SERVERS=//p') \
    || die "the broker '$name' did not start (see ${CACHE_DIR}/run/$name.log)"
  [[ -n "$line" ]] || die "broker.sh start printed no BOOTSTRAP_SERVERS for '$name'"
  STARTED_BROKERS+=("$name")
  BOOTSTRAP=$line
  BROKER_PORT=${line##*:}
}

# broker_stop NAME: stops it now (and forgets it).
broker_stop() {
  local name=$1 kept=()
  "$SCRIPTS_DIR/broker.sh" stop --name "$name" >/dev/null 2>&1 || true
  for other in "${STARTED_BROKERS[@]}"; do [[ "$other" == "$name" ]] || kept+=("$other"); done
  STARTED_BROKERS=("${kept[@]}")
}

# broker_pid NAME: the pid of a broker started by broker.sh under that name.
broker_pid() { "$SCRIPTS_DIR/broker.sh" status --name "$1" | sed -n 's/.*pid=\([0-9]*\).*/\1/p'; }

# --- readings -------------------------------------------------------------------------------

# peak_rss_kib PID / rss_kib PID: VmHWM (the kernel's high-water mark of resident memory) and
# VmRSS now, in KiB; empty when the process is gone.
peak_rss_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }
mib() { [[ -n "${1:-}" ]] && awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }' || echo "?"; }

# sample_peak_rss_kib PID: for a process that exits before it could be read, samples VmHWM
# every 0.1 s until it exits and prints the last (highest) value. VmHWM only rises, so this
# misses at most the growth of the final interval.
sample_peak_rss_kib() {
  local pid=$1 peak=0 sample
  while alive "$pid"; do
    sample=$(peak_rss_kib "$pid")
    [[ -n "$sample" ]] && (( sample > peak )) && peak=$sample
    sleep 0.1
  done
  echo "$peak"
}

# smaps_kinds PID: "heap stacks binary other" resident KiB now, from /proc/PID/smaps. Thread
# stacks are the anonymous mappings directly above a guard page (no permissions); the binary
# is every file mapping.
smaps_kinds() {
  awk '
    /^[0-9a-f]+-[0-9a-f]+ / {
      perms = $2; name = (NF >= 6) ? $6 : ""
      kind = (name ~ /^\//) ? "binary" : (name == "" ? ((previous == "---p") ? "stack" : "heap") : "other")
      previous = perms
      next
    }
    /^Rss:/ { rss[kind] += $2 }
    END { printf "%d %d %d %d\n", rss["heap"], rss["stack"], rss["binary"], rss["other"] }
  ' "/proc/$1/smaps"
}

# cpu_ticks PID: user + system CPU time the process has used, in clock ticks (the fields after
# the command name in /proc/PID/stat, which may itself contain spaces and parentheses).
cpu_ticks() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  awk '{ print $12 + $13 }' <<<"$stat"
}

# cpu_percent PID SECONDS: the share of one core the process used over the next SECONDS.
cpu_percent() {
  local pid=$1 seconds=$2 before after hz
  hz=$(getconf CLK_TCK)
  before=$(cpu_ticks "$pid") || { echo "?"; return 0; }
  sleep "$seconds"
  after=$(cpu_ticks "$pid") || { echo "?"; return 0; }
  awk -v a="$before" -v b="$after" -v hz="$hz" -v s="$seconds" 'BEGIN { printf "%.1f", 100 * (b - a) / hz / s }'
}

# cpu_percent_between TICKS_BEFORE TICKS_AFTER SECONDS: the same from two cpu_ticks readings.
cpu_percent_between() {
  awk -v a="$1" -v b="$2" -v hz="$(getconf CLK_TCK)" -v s="$3" 'BEGIN { printf "%.1f", 100 * (b - a) / hz / s }'
}

# tcp_connections PORT [PID]: established TCP connections on 127.0.0.1:PORT. Without PID, the
# accepted side (a broker's client connections: local port = PORT); with PID, the connections
# that process holds to PORT (remote port = PORT), matched by socket inode through
# /proc/PID/fd. Read from /proc/net/tcp{,6}, so no ss or netstat is needed.
tcp_connections() {
  local port=$1 pid=${2:-} inodes=""
  local hex; hex=$(printf '%04X' "$port")
  if [[ -n "$pid" ]]; then
    inodes=$(find "/proc/$pid/fd" -maxdepth 1 -lname 'socket:*' -printf '%l\n' 2>/dev/null \
               | sed -n 's/^socket:\[\([0-9]*\)\]$/\1/p' | tr '\n' ' ')
  fi
  # Columns: sl local rem st ... inode (10th). State 01 is ESTABLISHED.
  cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk -v hex="$hex" -v inodes="$inodes" -v by_pid="${pid:+1}" '
    BEGIN { n = split(inodes, list, " "); for (i = 1; i <= n; i++) owned[list[i]] = 1 }
    $4 != "01" { next }
    { split($2, local_end, ":"); split($3, remote_end, ":") }
    by_pid == "1" { if (remote_end[2] == hex && ($10 in owned)) count++; next }
    local_end[2] == hex { count++ }
    END { print count + 0 }'
}

# --- benchmark plumbing ---------------------------------------------------------------------

# result KEY VALUE: for scripts/bench.sh, a `key value` line appended to $BENCH_RESULTS when set.
result() { [[ -n "${BENCH_RESULTS:-}" ]] && echo "$1 $2" >> "$BENCH_RESULTS"; return 0; }

# verdict VALUE OP TARGET: "yes" when VALUE OP TARGET holds (OP is <= or >=), "no" otherwise,
# "?" when VALUE is not a number; the column beside a figure and its target.
verdict() {
  awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN {
    if (v !~ /^-?[0-9.]+$/) { print "?"; exit }
    ok = (op == "<=") ? (v + 0 <= t + 0) : (v + 0 >= t + 0)
    print ok ? "yes" : "no" }'
}

# peer_python: the peer virtualenv's python (made by scripts/peers.sh on first use).
peer_python() { "$SCRIPTS_DIR/peers.sh" 2>/dev/null || die "scripts/peers.sh could not make the peer virtualenv"; }

# release_binaries PACKAGE...: builds them in release mode and sets TARGET to the binaries' folder.
release_binaries() {
  local packages=()
  for package in "$@"; do packages+=(-p "$package"); done
  (cd "$REPO_ROOT" && cargo build --release --locked -q "${packages[@]}") || die "cargo build failed"
  TARGET="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/release"
}

# The issue-16 memory targets, printed beside every peak-RSS figure of our services.
RSS_TARGET_STEADY_MIB=20     # per service at 10k orders/s
RSS_TARGET_FULL_SPEED_MIB=64 # per service at full speed (inventory, analytics, producer burst)

# target_row LABEL VALUE OP TARGET: one Markdown row "| LABEL | VALUE | OP TARGET | yes/no |".
target_row() { echo "| $1 | $2 | $3 $4 | $(verdict "$2" "$3" "$4") |"; }

# median VALUE...: the median of the numbers given ("?" if none), for ratio targets measured as
# the median of interleaved runs.
median() {
  printf '%s\n' "$@" | grep -E '^-?[0-9.]+$' | sort -g | awk '
    { v[NR] = $1 }
    END { if (NR == 0) print "?"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# maximum VALUE...: the largest number given ("?" if none).
maximum() {
  printf '%s\n' "$@" | grep -E '^-?[0-9.]+$' | sort -g | tail -n 1 | grep . || echo "?"
}
