#!/usr/bin/env bash
# Development broker for streaming-kafka: installs and runs Nisshi (formerly Tansu), a
# Kafka-compatible broker written in Rust, from crates.io.
#
#   scripts/broker.sh install                 build the broker once per machine into the cache
#   scripts/broker.sh start [--port P] [--durable DIR] [--name NAME]
#                                             start on 127.0.0.1, wait until it answers Metadata,
#                                             print BOOTSTRAP_SERVERS=127.0.0.1:P
#   scripts/broker.sh stop [--name NAME]      stop only the broker this script started
#   scripts/broker.sh status [--name NAME]    say whether it runs and where
#   scripts/broker.sh path                    print the broker binary's path (installs if needed)
#
# The binary is cached outside the clone (STREAMING_KAFKA_CACHE, default ~/.cache/streaming-kafka)
# because a build from scratch takes about 20 minutes on two cores.
set -euo pipefail

NISSHI_VERSION=0.8.1
NISSHI_TOOLCHAIN=1.96.0
TANSU_VERSION=0.6.0
CACHE_DIR="${STREAMING_KAFKA_CACHE:-$HOME/.cache/streaming-kafka}"
BIN_DIR="$CACHE_DIR/bin"
RUN_DIR="$CACHE_DIR/run"

log() { printf 'broker.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

installed_binary() {
  if [[ -x "$BIN_DIR/nisshi" ]]; then echo "$BIN_DIR/nisshi"; return 0; fi
  if [[ -x "$BIN_DIR/tansu" ]]; then echo "$BIN_DIR/tansu"; return 0; fi
  return 1
}

install_broker() {
  if bin=$(installed_binary); then
    log "already installed: $bin"
    return 0
  fi
  mkdir -p "$CACHE_DIR"
  # A persistent target dir lets an interrupted build resume instead of starting over.
  export CARGO_TARGET_DIR="$CACHE_DIR/build"
  if ! command -v rustup >/dev/null 2>&1; then
    die "rustup is required to install the broker toolchain"
  fi
  if rustup run "$NISSHI_TOOLCHAIN" rustc --version >/dev/null 2>&1 \
     || rustup toolchain install "$NISSHI_TOOLCHAIN" --profile minimal; then
    log "building nisshi $NISSHI_VERSION with rustc $NISSHI_TOOLCHAIN (about 20 minutes on 2 cores, once per machine)"
    if cargo "+$NISSHI_TOOLCHAIN" install nisshi --version "$NISSHI_VERSION" --locked --root "$CACHE_DIR"; then
      log "installed $BIN_DIR/nisshi"
      return 0
    fi
    log "nisshi $NISSHI_VERSION failed to build; falling back to tansu $TANSU_VERSION"
  else
    log "rustc $NISSHI_TOOLCHAIN cannot be installed; falling back to tansu $TANSU_VERSION on the default toolchain"
  fi
  cargo install tansu --version "$TANSU_VERSION" --features dynostore,libsql --locked --root "$CACHE_DIR"
  log "installed $BIN_DIR/tansu (fallback: Tansu $TANSU_VERSION, not Nisshi $NISSHI_VERSION)"
}

case "${1:-}" in
  install) install_broker ;;
  *) die "usage: broker.sh install|start|stop|status|path" ;;
esac
