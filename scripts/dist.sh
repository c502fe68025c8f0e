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

# aws-lc and the codecs are C: musl-gcc compiles them for the static target.
export CC_x86_64_unknown_linux_musl="${CC_x86_64_unknown_linux_musl:-musl-gcc}"
cargo build --locked --release -p thumbctl --target x86_64-unknown-linux-musl
bin="${CARGO_TARGET_DIR:-$PWD/target}/x86_64-unknown-linux-musl/release/thumbctl"
if command -v file >/dev/null 2>&1; then file "$bin" >&2; fi
ls -l "$bin" >&2
echo "$bin"
