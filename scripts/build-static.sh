#!/usr/bin/env bash
# Static musl binaries of the three services, for the scratch container images.
#
#   scripts/build-static.sh [x86_64|aarch64|all]     (default: all)
#   scripts/build-static.sh tools                    only the tools below, both targets
#
# Writes dist/<target>/{producer-order,inventory-consumer,analytics-consumer} for
# x86_64-unknown-linux-musl and aarch64-unknown-linux-musl (cargo profile `dist`), prints their
# sizes, proves each one static with `file`, and runs each binary's `--version`: natively when
# the target is the host's architecture, under qemu-user (qemu-aarch64-static) otherwise.
# It also stages dist/image-context/, the build context of compose/Dockerfile.service (the
# binaries under Docker's architecture names, CA certificates, a non-root user), so that
# `docker compose -f compose/stack.yml up --build` and scripts/build-images.sh can follow.
#
# Linking goes through cargo-zigbuild with zig as the C compiler and linker, for both targets:
# ring (rustls) and libmimalloc-sys compile C, and zig carries musl headers and a cross
# toolchain for every target, so no Debian cross gcc is needed. Tools are installed on first
# use and cached outside the clone (STREAMING_KAFKA_CACHE, default ~/.cache/streaming-kafka):
#   - rustup targets *-unknown-linux-musl
#   - zig from PyPI (`ziglang`) in a virtualenv: $CACHE/zig-venv
#   - cargo-zigbuild from crates.io: cargo install --root $CACHE/tools
#   - Debian packages `file`, `ca-certificates` and `qemu-user-static` (apt-get, as root, only
#     when missing)
# Running it again rebuilds only what changed.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

ZIG_VERSION=0.14.1
ZIGBUILD_VERSION=0.24.1
CACHE_DIR="${STREAMING_KAFKA_CACHE:-$HOME/.cache/streaming-kafka}"
ZIG_VENV="$CACHE_DIR/zig-venv"
TOOLS_DIR="$CACHE_DIR/tools"
PROFILE=dist
PACKAGES=(producer_order inventory_consumer analytics_consumer)
BINARIES=(producer-order inventory-consumer analytics-consumer)
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
CONTEXT=dist/image-context
# The image's only user: uid/gid 10001, no home, no shell (there is none in a scratch image).
APP_UID=10001

step() { printf '\n==> %s\n' "$*"; }

usage() { die_usage "usage: build-static.sh [x86_64|aarch64|all|tools]"; }

targets=()
# `tools` installs what a build needs and stops: scripts/builder-image.sh copies those tools
# into the offline builder image. No binary is built, so no foreign one needs qemu either.
tools_only=0
case "${1:-all}" in
  x86_64) targets=(x86_64-unknown-linux-musl) ;;
  aarch64) targets=(aarch64-unknown-linux-musl) ;;
  all) targets=(x86_64-unknown-linux-musl aarch64-unknown-linux-musl) ;;
  tools) targets=(x86_64-unknown-linux-musl aarch64-unknown-linux-musl); tools_only=1 ;;
  -h | --help) sed -n '2,21p' "$0"; exit 0 ;;
  *) usage ;;
esac
[[ $# -le 1 ]] || usage

host_arch=$(uname -m)

# Debian packages: `file` always; qemu-user-static only when a target is foreign to the host.
ensure_debian_packages() {
  local missing=()
  command -v file >/dev/null 2>&1 || missing+=(file)
  [[ -f "$CA_BUNDLE" ]] || missing+=(ca-certificates)
  local target
  for target in "${targets[@]}"; do
    if [[ $tools_only -eq 0 && "${target%%-*}" != "$host_arch" ]] && ! command -v "qemu-${target%%-*}-static" >/dev/null 2>&1; then
      missing+=(qemu-user-static)
    fi
  done
  [[ ${#missing[@]} -gt 0 ]] || return 0
  [[ $(id -u) -eq 0 ]] || die "missing Debian packages: ${missing[*]} (install them, or run as root)"
  log "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

ensure_rust_targets() {
  command -v rustup >/dev/null 2>&1 || die "rustup is required to add the musl targets"
  local installed target
  installed=$(rustup target list --installed)
  for target in "${targets[@]}"; do
    grep -qx "$target" <<<"$installed" || rustup target add "$target"
  done
}

# zig from PyPI: the wheel ships the zig binary with its lib/ (libc headers for every target).
# A `zig` symlink in $TOOLS_DIR/bin puts it on the PATH cargo-zigbuild searches.
ensure_zig() {
  local zig_bin="$TOOLS_DIR/bin/zig"
  if [[ -x "$zig_bin" ]] && [[ "$("$zig_bin" version 2>/dev/null)" == "$ZIG_VERSION" ]]; then
    return 0
  fi
  log "installing zig $ZIG_VERSION (PyPI ziglang) into $ZIG_VENV"
  [[ -x "$ZIG_VENV/bin/python" ]] || python3 -m venv "$ZIG_VENV" \
    || die "could not create a virtualenv at $ZIG_VENV (Debian: apt-get install python3-venv)"
  "$ZIG_VENV/bin/python" -m pip install -q --disable-pip-version-check "ziglang==$ZIG_VERSION" \
    || die "pip could not install ziglang==$ZIG_VERSION"
  local package_dir
  package_dir=$("$ZIG_VENV/bin/python" -c 'import os, ziglang; print(os.path.dirname(ziglang.__file__))')
  [[ -x "$package_dir/zig" ]] || die "the ziglang wheel has no zig binary at $package_dir/zig"
  mkdir -p "$TOOLS_DIR/bin"
  ln -sfn "$package_dir/zig" "$zig_bin"
  log "zig $("$zig_bin" version) at $zig_bin"
}

ensure_zigbuild() {
  local bin="$TOOLS_DIR/bin/cargo-zigbuild"
  if [[ -x "$bin" ]] && "$bin" --version 2>/dev/null | grep -q " $ZIGBUILD_VERSION\$"; then
    return 0
  fi
  log "installing cargo-zigbuild $ZIGBUILD_VERSION into $TOOLS_DIR (once per machine)"
  cargo install cargo-zigbuild --version "$ZIGBUILD_VERSION" --locked --no-default-features \
    --root "$TOOLS_DIR" || die "cargo install cargo-zigbuild $ZIGBUILD_VERSION failed"
}

# `file` says "statically linked" (or "static-pie linked" for a static PIE); anything that
# names an interpreter or says "dynamically linked" would need a libc the scratch image lacks.
check_static() {
  local binary=$1 description
  description=$(file -b "$binary")
  if [[ "$description" == *"dynamically linked"* || "$description" == *"interpreter"* ]] \
     || [[ "$description" != *"statically linked"* && "$description" != *"static-pie linked"* ]]; then
    die "$binary is not a static executable: $description"
  fi
  printf '  %-28s %-20s %s\n' "$(basename "$(dirname "$binary")")" "$(basename "$binary")" "$description"
}

run_version() {
  local arch=$1 binary=$2 runner=()
  if [[ "$arch" != "$host_arch" ]]; then
    runner=("qemu-$arch-static")
  fi
  local output
  output=$("${runner[@]}" "$binary" --version) || die "$binary --version failed${runner:+ under ${runner[*]}}"
  printf '  %-28s %-20s %-20s %s\n' "$(basename "$(dirname "$binary")")" "$(basename "$binary")" "${runner[*]:-native}" "$output"
}

step "tools (cached in $CACHE_DIR)"
ensure_debian_packages
ensure_rust_targets
ensure_zig
ensure_zigbuild
export PATH="$TOOLS_DIR/bin:$PATH"
# The cross builds keep their own target folder in the cache: a fresh clone (CI) then rebuilds
# only the workspace's crates, not every dependency for two targets (~7 minutes each).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE_DIR/static-target}"
log "$(cargo-zigbuild --version), zig $(zig version), $(rustc --version)"
if [[ $tools_only -eq 1 ]]; then
  log "tools ready in $TOOLS_DIR/bin; targets: ${targets[*]}"
  exit 0
fi

package_args=()
for package in "${PACKAGES[@]}"; do package_args+=(-p "$package"); done

for target in "${targets[@]}"; do
  step "cargo zigbuild --profile $PROFILE --target $target"
  cargo zigbuild --locked --profile "$PROFILE" --target "$target" "${package_args[@]}"
  out="dist/$target"
  mkdir -p "$out"
  for binary in "${BINARIES[@]}"; do
    built="${CARGO_TARGET_DIR:-target}/$target/$PROFILE/$binary"
    [[ -f "$built" ]] || die "cargo reported success but $built is missing"
    cp -f "$built" "$out/$binary"
  done
done

# Docker names architectures differently from Rust's target triples.
docker_arch() {
  case "$1" in
    x86_64-*) echo amd64 ;;
    aarch64-*) echo arm64 ;;
    *) die "no Docker architecture known for $1" ;;
  esac
}

# Rebuilt from scratch on every run so nothing stale (a removed binary, old certificates)
# can reach an image; only the architectures built in this run are replaced.
stage_image_context() {
  mkdir -p "$CONTEXT/rootfs/etc/ssl/certs"
  printf 'app:x:%s:%s:streaming-kafka service:/:/nonexistent\n' "$APP_UID" "$APP_UID" > "$CONTEXT/rootfs/etc/passwd"
  printf 'app:x:%s:\n' "$APP_UID" > "$CONTEXT/rootfs/etc/group"
  cp -f "$CA_BUNDLE" "$CONTEXT/rootfs/etc/ssl/certs/ca-certificates.crt"
  local target arch binary tree
  for target in "${targets[@]}"; do
    arch=$(docker_arch "$target")
    rm -rf "${CONTEXT:?}/$arch"
    for binary in "${BINARIES[@]}"; do
      tree="$CONTEXT/$arch/$binary"
      mkdir -p "$tree/usr/local/bin"
      cp -f "dist/$target/$binary" "$tree/usr/local/bin/$binary"
      ln -s "usr/local/bin/$binary" "$tree/entrypoint"
    done
    # What a builder that does not set TARGETARCH (the classic one) copies: the host's binaries.
    if [[ "${target%%-*}" == "$host_arch" ]]; then
      ln -sfn "$arch" "$CONTEXT/native"
    fi
  done
}

step "image build context: $CONTEXT"
stage_image_context
staged_arches=()
for arch in amd64 arm64; do [[ -d "$CONTEXT/$arch" ]] && staged_arches+=("$arch"); done
log "staged $CONTEXT: rootfs/ (passwd, group, CA bundle), ${staged_arches[*]}, native -> $(readlink "$CONTEXT/native" || echo none)"

step "sizes"
for target in "${targets[@]}"; do
  for binary in "${BINARIES[@]}"; do
    size=$(stat -c %s "dist/$target/$binary")
    printf '  %-28s %-20s %10s bytes  %s\n' "$target" "$binary" "$size" "$(numfmt --to=iec-i --suffix=B "$size")"
  done
done

step "static linking (file)"
for target in "${targets[@]}"; do
  for binary in "${BINARIES[@]}"; do check_static "dist/$target/$binary"; done
done

step "--version (qemu-user for foreign architectures)"
for target in "${targets[@]}"; do
  for binary in "${BINARIES[@]}"; do run_version "${target%%-*}" "dist/$target/$binary"; done
done
