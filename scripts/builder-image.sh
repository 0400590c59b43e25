#!/usr/bin/env bash
# The in-Docker build (compose/Dockerfile) on a machine with Docker but no image registry and
# no crates.io inside the build: a local builder image in place of the official Rust image,
# and the workspace's crates vendored into the build context.
#
#   scripts/builder-image.sh            make both (again: only what changed), print RUST_IMAGE
#   scripts/builder-image.sh --clean    remove the vendored crates (builds use crates.io again)
#
# Then:  RUST_IMAGE=<printed tag> docker-compose -f compose/stack.yml build
#
# The image stands in for `rust:1.95-slim-bookworm` (debian:bookworm-slim plus gcc, libc6-dev,
# ca-certificates and a Rust toolchain) and already carries what the Dockerfile's toolchain
# stage would add, so that stage downloads nothing:
#   - a Debian bookworm root file system from Debian's packages (debootstrap --variant=minbase,
#     with gcc, libc6-dev and ca-certificates: the C toolchain build scripts link with and the
#     CA bundle the images ship), made once and cached in $CACHE/builder/rootfs;
#   - the host's Rust toolchain (`rustc --print sysroot`, without its documentation) with both
#     musl targets, zig and cargo-zigbuild: exactly what scripts/build-static.sh installs
#     (`build-static.sh tools`), so host and Docker builds use the same versions.
# Debian's own rustc has no musl standard library, so a builder of Debian packages alone could
# not link static musl binaries: the toolchain has to be rustup's.
# It is tagged streaming-kafka/rust-builder:<rustc version>-local (IMAGE_REPOSITORY changes the
# prefix), never as the official image, so nobody mistakes it for one.
#
# Vendoring: `cargo vendor --locked` into compose/vendor/crates/ (git-ignored, inside the build
# context) and compose/vendor/config.toml, which the Dockerfile's deps stage installs as the
# workspace's cargo config (crates-io replaced by that directory). Re-run after Cargo.lock
# changes; the build fails naming the missing crate otherwise.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

REPOSITORY=${IMAGE_REPOSITORY:-streaming-kafka}
BUILDER_DIR="$CACHE_DIR/builder"
ROOTFS="$BUILDER_DIR/rootfs"
TOOLS_DIR="$CACHE_DIR/tools"
VENDOR_DIR=compose/vendor
DEBIAN_SUITE=bookworm
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

step() { printf '\n==> %s\n' "$*"; }

case "${1:-}" in
  "") ;;
  --clean)
    rm -rf "${VENDOR_DIR:?}/crates" "$VENDOR_DIR/config.toml"
    log "removed $VENDOR_DIR/crates and $VENDOR_DIR/config.toml: in-Docker builds use crates.io again"
    exit 0
    ;;
  -h | --help) sed -n '2,30p' "$0"; exit 0 ;;
  *) die_usage "unknown option '$1' (accepted: --clean, --help)" ;;
esac
[[ $# -le 1 ]] || die_usage "usage: builder-image.sh [--clean]"

docker info >/dev/null 2>&1 || die "no Docker engine answers (docker info failed)"
[[ "$(uname -m)" == x86_64 || "$(uname -m)" == aarch64 ]] || die "no musl builder for $(uname -m)"

step "tools: musl targets, zig, cargo-zigbuild (scripts/build-static.sh tools)"
scripts/build-static.sh tools

# debootstrap writes into a fresh folder that is renamed only when it succeeded, so an
# interrupted run never leaves a half-made root file system that looks finished.
ensure_rootfs() {
  [[ -x "$ROOTFS/usr/bin/gcc" && -f "$ROOTFS/etc/ssl/certs/ca-certificates.crt" ]] && return 0
  [[ $(id -u) -eq 0 ]] || die "debootstrap needs root (run as root, or make $ROOTFS by hand)"
  if ! command -v debootstrap >/dev/null 2>&1; then
    log "installing Debian's debootstrap"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  fi
  log "debootstrap $DEBIAN_SUITE into $ROOTFS (once per machine; a few minutes)"
  mkdir -p "$BUILDER_DIR"
  rm -rf "$ROOTFS.tmp"
  debootstrap --variant=minbase --include=gcc,libc6-dev,ca-certificates \
    "$DEBIAN_SUITE" "$ROOTFS.tmp" "$DEBIAN_MIRROR" >"$BUILDER_DIR/debootstrap.log" 2>&1 \
    || die "debootstrap failed; see $BUILDER_DIR/debootstrap.log"
  rm -rf "$ROOTFS.tmp/var/cache/apt/archives"/*.deb "$ROOTFS.tmp/var/lib/apt/lists"/*
  mv "$ROOTFS.tmp" "$ROOTFS"
}

step "Debian root file system"
ensure_rootfs

sysroot=$(rustc --print sysroot)
rust_version=$(rustc --version | awk '{print $2}')
zig_dir=$(dirname "$(readlink -f "$TOOLS_DIR/bin/zig")")
zigbuild="$TOOLS_DIR/bin/cargo-zigbuild"
for target in x86_64-unknown-linux-musl aarch64-unknown-linux-musl; do
  [[ -d "$sysroot/lib/rustlib/$target" ]] || die "$sysroot has no $target standard library"
done
tag="$REPOSITORY/rust-builder:$rust_version-local"

# What the image is made of, in one line: when it matches the label of the image already
# there, nothing is rebuilt.
fingerprint=$( {
  echo "$DEBIAN_SUITE $rust_version"
  "$zig_dir/zig" version
  "$zigbuild" --version
  stat -c '%Y' "$ROOTFS/etc/os-release"
  ls "$sysroot/lib/rustlib"
} | sha256sum | cut -c1-16)
existing=$(docker image inspect --format '{{ index .Config.Labels "streaming-kafka.builder.fingerprint" }}' "$tag" 2>/dev/null || true)

step "builder image $tag"
if [[ "$existing" == "$fingerprint" ]]; then
  log "$tag is up to date (fingerprint $fingerprint)"
else
  # The image's tree is staged with hard links (no copy of a gigabyte) and streamed to
  # `docker import`; the toolchain's share/ (documentation, 0.8 GB) stays out.
  stage="$BUILDER_DIR/stage"
  rm -rf "$stage"
  cp -al "$ROOTFS" "$stage"
  mkdir -p "$stage/usr/local/rust" "$stage/usr/local/cargo/bin" "$stage/usr/local/zig"
  for part in bin lib libexec etc; do
    [[ -e "$sysroot/$part" ]] && cp -al "$sysroot/$part" "$stage/usr/local/rust/$part"
  done
  cp -al "$zig_dir/." "$stage/usr/local/zig/"
  ln -sfn /usr/local/zig/zig "$stage/usr/local/bin/zig"
  cp -f "$(readlink -f "$zigbuild")" "$stage/usr/local/cargo/bin/cargo-zigbuild"
  log "importing $(du -sh "$stage" | cut -f1) as $tag"
  tar -C "$stage" --numeric-owner -c . | docker import \
    --change 'ENV PATH=/usr/local/cargo/bin:/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV CARGO_HOME=/usr/local/cargo' \
    --change "LABEL streaming-kafka.builder.fingerprint=$fingerprint" \
    --change "LABEL org.opencontainers.image.description=\"Local stand-in for rust:${rust_version%.*}-slim-bookworm with musl targets, zig and cargo-zigbuild\"" \
    --change 'CMD ["bash"]' \
    - "$tag" >/dev/null
  rm -rf "$stage"
fi
docker run --rm "$tag" sh -c 'rustc --version && cargo --version && zig version && cargo-zigbuild --version' \
  | sed 's/^/  /' || die "$tag does not run its tools"

step "vendored crates: $VENDOR_DIR/crates"
mkdir -p "$VENDOR_DIR"
cargo vendor --locked --versioned-dirs --quiet "$VENDOR_DIR/crates" >/dev/null \
  || die "cargo vendor failed"
# The path is the one the Dockerfile's deps stage copies compose/vendor/ to.
cat > "$VENDOR_DIR/config.toml" <<'TOML'
# Written by scripts/builder-image.sh: the in-Docker build reads crates from the build context
# instead of crates.io. `scripts/builder-image.sh --clean` removes it.
[source.crates-io]
replace-with = "vendored-sources"

[source.vendored-sources]
directory = "/opt/vendor/crates"
TOML
log "$(find "$VENDOR_DIR/crates" -mindepth 1 -maxdepth 1 -type d | wc -l) crates, $(du -sh "$VENDOR_DIR/crates" | cut -f1)"

echo "RUST_IMAGE=$tag"
