#!/usr/bin/env bash
# SIGKILL `thumbctl up` at random moments (through the latency proxy, so the kill lands
# mid-flight), rerun `up`, `destroy`, then ask `status --orphans` whether anything tagged with
# the stack is left. Prints one line per seed and a summary.
#   scripts/kill-random.sh [SEEDS=10] [DELAY_MS=50]
set -euo pipefail
cd "$(dirname "$0")/.."
seeds="${1:-10}"; delay="${2:-50}"
bench="$(cd .. && pwd)/shared/bench/provision"
cargo build -q -p thumbctl
thumbctl="${CARGO_TARGET_DIR:-$PWD/target}/debug/thumbctl"
source scripts/moto.sh
moto_start
port="$(moto_free_port)"
python3 "$bench/latency_proxy.py" --listen "127.0.0.1:$port" --target "${MOTO_URL#http://}" --delay-ms "$delay" >/dev/null 2>&1 &
proxy=$!
trap 'kill $proxy 2>/dev/null; moto_stop' EXIT
sleep 1
export AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_EC2_METADATA_DISABLED=true
state="$(mktemp -d)"
converged=0; leaked=0
for seed in $(seq 1 "$seeds"); do
  stack="kill$seed"
  wait_ms=$(python3 -c "import random; random.seed($seed); print(random.randint(50, 600))")
  "$thumbctl" -q --stack "$stack" --state-dir "$state" up --image-uri 123456789012.dkr.ecr.us-east-1.amazonaws.com/x:1 >/dev/null 2>&1 &
  pid=$!
  sleep "$(python3 -c "print($wait_ms/1000)")"
  kill -9 "$pid" 2>/dev/null && killed=yes || killed="no (finished first)"
  wait "$pid" 2>/dev/null || true
  recorded=$(python3 -c "import json,sys; print(len(json.load(open('$state/$stack.json'))['resources']))" 2>/dev/null || echo 0)
  "$thumbctl" -q --stack "$stack" --state-dir "$state" up --image-uri 123456789012.dkr.ecr.us-east-1.amazonaws.com/x:1 >/dev/null
  "$thumbctl" -q --stack "$stack" --state-dir "$state" destroy --yes >/dev/null
  left=$("$thumbctl" --stack "$stack" --state-dir "$state" status --orphans --output json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["orphans"]))')
  if [ "$left" = 0 ] && [ ! -e "$state/$stack.json" ]; then converged=$((converged+1)); else leaked=$((leaked+1)); fi
  echo "seed $seed: killed at ${wait_ms} ms: $killed, $recorded resources recorded at the kill; after rerun+destroy: $left tagged left"
done
echo "SIGKILL runs: $seeds, converged: $converged, with leftovers: $leaked"
[ "$leaked" = 0 ]
