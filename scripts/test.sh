#!/usr/bin/env bash
# Runs every test of the workspace against a moto server it starts (and stops) itself.
# The crash-resume tests need the `failpoints` feature, so the suite is built with it.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/moto.sh
moto_start
export THUMBCTL_TEST_ENDPOINT="$MOTO_URL"
export AWS_EC2_METADATA_DISABLED=true
cargo test --workspace --features thumbctl/failpoints "$@"
