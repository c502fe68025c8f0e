#!/usr/bin/env bash
# A distributable thumbctl: one static x86_64 Linux binary (musl), which is all a user needs
# to deploy. Installs what the build lacks first (scripts/prereqs.sh), like the README's
# commands. Prints the path of the binary and its size.
#   scripts/dist.sh            -> target/x86_64-unknown-linux-musl/release/thumbctl
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/prereqs.sh
prereqs_build
prereq_apt "musl-tools:musl-gcc"
prereq_rust_target x86_64-unknown-linux-musl

# HEIC input (libheif and libde265, C++) needs zig's libc++ for musl and a libde265 built for
# musl (lambda-image/scripts/libde265-musl.sh PREFIX, then THUMBCTL_LIBDE265_MUSL=PREFIX and
# cargo-zigbuild on PATH); without them the binary is built without HEIC, which it refuses as
# `unsupported`.
if [ -n "${THUMBCTL_LIBDE265_MUSL:-}" ] && command -v cargo-zigbuild >/dev/null 2>&1; then
  PKG_CONFIG_PATH="$THUMBCTL_LIBDE265_MUSL/lib/pkgconfig" PKG_CONFIG_ALLOW_CROSS=1 \
    cargo zigbuild --locked --release -p thumbctl --target x86_64-unknown-linux-musl
else
  echo "note: no HEIC input in this build (see lambda-image/scripts/libde265-musl.sh)" >&2
  # aws-lc and the codecs are C: musl-gcc compiles them for the static target.
  export CC_x86_64_unknown_linux_musl="${CC_x86_64_unknown_linux_musl:-musl-gcc}"
  cargo build --locked --release -p thumbctl --target x86_64-unknown-linux-musl --no-default-features
fi
bin="${CARGO_TARGET_DIR:-$PWD/target}/x86_64-unknown-linux-musl/release/thumbctl"
if command -v file >/dev/null 2>&1; then file "$bin" >&2; fi
ls -l "$bin" >&2
echo "$bin"
