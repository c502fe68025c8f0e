#!/usr/bin/env bash
# Provisioning wall time, thumbctl against the seed's sequential boto3 provisioner, through
# the loopback latency proxy in ../shared/bench/provision (every AWS call costs DELAY ms, as
# on real AWS). Alternates the two, ROUNDS times, and prints the medians and their ratio.
#   scripts/bench-provision.sh [ROUNDS=5] [DELAY_MS=50]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-5}"; delay="${2:-50}"
bench="$(cd .. && pwd)/shared/bench/provision"
[ -f "$bench/latency_proxy.py" ] || { echo "needs ../shared/bench/provision" >&2; exit 1; }
[ -x "${CARGO_TARGET_DIR:-target}/release/thumbctl" ] && [ -z "${REBUILD:-}" ] || cargo build --release -q -p thumbctl
thumbctl="${CARGO_TARGET_DIR:-$PWD/target}/release/thumbctl"

source scripts/moto.sh
moto_start
port="$(moto_free_port)"
python3 "$bench/latency_proxy.py" --listen "127.0.0.1:$port" --target "${MOTO_URL#http://}" --delay-ms "$delay" >/tmp/latency-proxy.log 2>&1 &
proxy=$!
trap 'kill $proxy 2>/dev/null; moto_stop' EXIT
sleep 1
endpoint="http://127.0.0.1:$port"
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_EC2_METADATA_DISABLED=true
state="$(mktemp -d)"
results="$(mktemp)"
secs() { python3 -c 'import sys,time; print(f"{time.time():.4f}")'; }
for i in $(seq 1 "$rounds"); do
  b_up=$("$MOTO_VENV/bin/python" "$bench/sequential_baseline.py" up --endpoint "$endpoint" --stack "base$i" | awk -F= '/wall_s/{print $2}')
  b_down=$("$MOTO_VENV/bin/python" "$bench/sequential_baseline.py" destroy --endpoint "$endpoint" --stack "base$i" | awk -F= '/wall_s/{print $2}')
  t0=$(secs)
  AWS_ENDPOINT_URL="$endpoint" "$thumbctl" -q --stack "t$i" --state-dir "$state" up --image-uri 123456789012.dkr.ecr.us-east-1.amazonaws.com/x:1 >/dev/null
  t1=$(secs)
  AWS_ENDPOINT_URL="$endpoint" "$thumbctl" -q --stack "t$i" --state-dir "$state" destroy --yes >/dev/null
  t2=$(secs)
  t_up=$(python3 -c "print(f'{$t1-$t0:.3f}')"); t_down=$(python3 -c "print(f'{$t2-$t1:.3f}')")
  echo "round $i: baseline up ${b_up}s destroy ${b_down}s | thumbctl up ${t_up}s destroy ${t_down}s"
  echo "$b_up $b_down $t_up $t_down" >> "$results"
done
python3 - "$results" "$delay" <<'PY'
import statistics, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
med = [statistics.median(c) for c in zip(*rows)]
print(f"\nmedians over {len(rows)} rounds at {sys.argv[2]} ms per call:")
print(f"  up:      baseline {med[0]:.3f}s  thumbctl {med[2]:.3f}s  ratio {med[2]/med[0]:.2f}")
print(f"  destroy: baseline {med[1]:.3f}s  thumbctl {med[3]:.3f}s  ratio {med[3]/med[1]:.2f}")
PY
