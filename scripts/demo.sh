#!/usr/bin/env bash
# The main job, in one command.
#
# With AWS credentials (and no AWS_ENDPOINT_URL), it provisions the pipeline on real AWS and
# leaves it up: set THUMBCTL_IMAGE_URI to the function's container image.
# Without credentials (or with THUMBCTL_DEMO=local) it starts a local AWS emulator (moto),
# brings the whole pipeline up, shows it, destroys it and stops the emulator: nothing is left
# running and nothing is left behind.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n\033[1m==> %s\033[0m\n' "$*" >&2; }

has_aws_credentials() {
  [ -n "${AWS_ACCESS_KEY_ID:-}" ] || [ -n "${AWS_PROFILE:-}" ] || [ -n "${AWS_WEB_IDENTITY_TOKEN_FILE:-}" ] \
    || [ -f "${AWS_SHARED_CREDENTIALS_FILE:-$HOME/.aws/credentials}" ] || [ -f "${AWS_CONFIG_FILE:-$HOME/.aws/config}" ]
}

# Before anything compiles: install what is missing, or stop naming the command to run.
source scripts/prereqs.sh
prereqs_build

step "building thumbctl"
cargo build -q -p thumbctl
thumbctl="${CARGO_TARGET_DIR:-$PWD/target}/debug/thumbctl"

if [ "${THUMBCTL_DEMO:-}" != "local" ] && [ -z "${AWS_ENDPOINT_URL:-}" ] && has_aws_credentials; then
  if [ -z "${THUMBCTL_IMAGE_URI:-}" ]; then
    echo "AWS credentials found: set THUMBCTL_IMAGE_URI to the function's container image in ECR," >&2
    echo "or run THUMBCTL_DEMO=local $0 to try everything against a local emulator." >&2
    exit 2
  fi
  step "thumbctl up (real AWS)"
  "$thumbctl" up --image-uri "$THUMBCTL_IMAGE_URI"
  step "thumbctl status"
  "$thumbctl" status
  echo "The pipeline is up. Remove it with: $thumbctl destroy" >&2
  exit 0
fi

source scripts/moto.sh
step "starting a local AWS emulator (moto)"
moto_start
export AWS_ENDPOINT_URL="$MOTO_URL" AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo
export AWS_EC2_METADATA_DISABLED=true
state_dir="$(mktemp -d -t thumbctl-demo.XXXXXX)"
stack=demo
# moto accepts any image URI for a function (it runs no containers).
image="123456789012.dkr.ecr.us-east-1.amazonaws.com/thumbs:demo"

step "thumbctl up: creating the whole pipeline"
"$thumbctl" --stack "$stack" --state-dir "$state_dir" up --image-uri "$image" --sizes 128,256,512
step "thumbctl up again: nothing to create"
"$thumbctl" --stack "$stack" --state-dir "$state_dir" up
step "thumbctl status"
"$thumbctl" --stack "$stack" --state-dir "$state_dir" status

[ -d samples ] && ls samples/*.png >/dev/null 2>&1 || python3 scripts/make-samples.py samples
step "thumbctl upload samples/ (typed from their bytes)"
"$thumbctl" --stack "$stack" --state-dir "$state_dir" upload samples --prefix demo/
step "thumbctl invoke-local: the function's own handler, run here (moto runs no Lambda code)"
keys=()
for f in samples/*; do keys+=("demo/$(basename "$f")"); done
"$thumbctl" --stack "$stack" --state-dir "$state_dir" invoke-local "${keys[@]}"
step "thumbctl list"
"$thumbctl" --stack "$stack" --state-dir "$state_dir" list
out_dir="$(mktemp -d -t thumbctl-demo-thumbs.XXXXXX)"
step "fetching the thumbnails back through presigned links into $out_dir"
for k in "${keys[@]}"; do
  "$thumbctl" --stack "$stack" --state-dir "$state_dir" get "$k" --output json \
    | python3 -c 'import json,sys; [print(t["key"] + "\t" + t["url"]) for t in json.load(sys.stdin)["thumbnails"]]' \
    | while IFS=$'\t' read -r key url; do
        mkdir -p "$out_dir/$(dirname "$key")"
        curl -sf "$url" -o "$out_dir/$key"
      done
done
(cd "$out_dir" && find . -type f -printf '  %p  %s bytes\n' | sort)

step "thumbctl destroy --yes"
"$thumbctl" --stack "$stack" --state-dir "$state_dir" destroy --yes
rmdir "$state_dir" 2>/dev/null || true
step "done: everything created was removed; stopping the emulator"
