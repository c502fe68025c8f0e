#!/usr/bin/env bash
# Runs every test of the workspace against a moto server it starts (and stops) itself,
# after installing what a fresh Debian machine lacks (scripts/prereqs.sh).
# The crash-resume tests need the `failpoints` feature, so the suite is built with it.
set -euo pipefail
cd "$(dirname "$0")/.."
# Before anything compiles: install what is missing, or stop naming the command to run.
source scripts/prereqs.sh
prereqs_build
prereqs_tests
source scripts/moto.sh
moto_start
export THUMBCTL_TEST_ENDPOINT="$MOTO_URL"
export AWS_EC2_METADATA_DISABLED=true
cargo test --workspace --features thumbctl/failpoints "$@"
