#!/usr/bin/env bash
# Fuzzes the decode-and-thumbnail path (lambda-image/fuzz, target `thumbnails`) with cargo fuzz
# and libFuzzer under AddressSanitizer, then prints executions, crashes and corpus size.
#
#   scripts/fuzz.sh [SECONDS]     default 600; FUZZ_JOBS=N runs N workers (default 1)
#   FUZZ_SEEDS='heic_*' scripts/fuzz.sh 600    start from the matching seeds only
#
# FUZZ_SEEDS gives one input format its own run: mutations of a HEIC seed mostly stay HEIC, so
# ten minutes from the HEIC seeds are ten minutes on the HEIC path, which a run from all seeds
# (where the fast formats win most executions) does not promise. Such a run keeps its own
# corpus, log and artifacts, so runs for two formats can go side by side.
#
# libFuzzer's instrumentation needs the nightly toolchain; only this script uses it. The seeds
# (lambda-image/fuzz/seeds) start the corpus, which grows under target/fuzz-work/ (not
# committed). A crashing input is copied to lambda-image/fuzz/regressions/, which the stable test
# suite replays (lambda-image/tests/fuzz_corpus.rs). Exit status: 0 no crash, 1 crash found.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
secs=${1:-600}
jobs=${FUZZ_JOBS:-1}

if ! rustup toolchain list | grep -q '^nightly'; then
    echo "fuzz.sh: needs the nightly toolchain for libFuzzer's instrumentation: rustup toolchain install nightly" >&2
    exit 2
fi
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

work=$root/target/fuzz-work
seeds=$root/lambda-image/fuzz/seeds
if [ -n "${FUZZ_SEEDS:-}" ]; then
    tag=$(printf '%s' "$FUZZ_SEEDS" | tr -c 'A-Za-z0-9' '_')
    work=$work/$tag
    seeds=$work/seeds
    rm -rf "$seeds" && mkdir -p "$seeds"
    # The glob is matched here, against the seed directory, on purpose.
    # shellcheck disable=SC2086
    (cd "$root/lambda-image/fuzz/seeds" && cp $FUZZ_SEEDS "$seeds/") || {
        echo "fuzz.sh: no seed matches FUZZ_SEEDS=$FUZZ_SEEDS in lambda-image/fuzz/seeds" >&2
        exit 2
    }
fi
mkdir -p "$work/corpus" "$work/artifacts"
log=$work/fuzz.log

cd lambda-image
cargo +nightly fuzz build thumbnails
start=$(date +%s)
set +e
# -timeout: one input taking 10 s is a hang worth reporting (the engine takes milliseconds).
# -rss_limit_mb: the engine's own limits must keep memory bounded; 2 GiB is libFuzzer's default.
parallel=()
# With -jobs, each worker logs to fuzz-N.log in the current directory instead of stderr.
[ "$jobs" -gt 1 ] && parallel=(-jobs="$jobs" -workers="$jobs")
rm -f fuzz-*.log
cargo +nightly fuzz run thumbnails "$work/corpus" "$seeds" -- \
    -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$work/artifacts/" "${parallel[@]}" 2>&1 | tee "$log" | grep -E 'DONE|ERROR|SUMMARY|stat::' || true
status=${PIPESTATUS[0]}
set -e
took=$(( $(date +%s) - start ))
# With -jobs the parent already echoes each worker's fuzz-N.log (final stats included).
rm -f fuzz-*.log
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | awk '{s+=$1} END {print s+0}')
crashes=$(find "$work/artifacts" -type f | wc -l)
for f in "$work"/artifacts/*; do
    [ -f "$f" ] && cp "$f" "$root/lambda-image/fuzz/regressions/"
done
corpus=$(find "$work/corpus" -type f | wc -l)
echo "fuzz.sh: ${FUZZ_SEEDS:+seeds $FUZZ_SEEDS, }${took} s, ${execs} executions, ${crashes} crashing inputs, corpus ${corpus} inputs (libFuzzer exit ${status})"
[ "$crashes" -eq 0 ] && [ "$status" -eq 0 ]
