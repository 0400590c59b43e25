#!/usr/bin/env bash
# The project's test command (the README's second command; CI runs exactly this).
#
#   scripts/test.sh            format check, clippy, the dependency guard, every test
#
# Integration tests need the broker (scripts/broker.sh install) and the peer virtualenv
# (scripts/peers.sh); this script makes both if they are missing, so it works on a fresh clone.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "toolchain components"
rustup component add rustfmt clippy >/dev/null 2>&1 || true

step "system packages the tests drive (Debian): chromium for the dashboard test, openssl for TLS"
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if [[ ${#missing[@]} -gt 0 ]]; then
  if [[ $(id -u) -eq 0 ]]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "error: install ${missing[*]} (Debian packages) first" >&2
    exit 1
  fi
fi

step "broker and peer clients (cached outside the clone)"
scripts/broker.sh install
scripts/peers.sh >/dev/null

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "pure Rust: no librdkafka in the dependency tree"
if cargo tree --workspace --locked -e normal,build,dev --prefix none | grep -iE '^(rdkafka|rdkafka-sys)\b'; then
  echo "error: rdkafka found in the dependency tree; the product must stay pure Rust" >&2
  exit 1
fi
echo "no rdkafka crate"

step "cargo test --workspace"
cargo test --workspace --locked
