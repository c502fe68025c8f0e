#!/usr/bin/env bash
# The main job, in one command.
#
# With AWS credentials (and no AWS_ENDPOINT_URL), it provisions the pipeline on real AWS (the
# function is this thumbctl binary itself, pushed to the stack's ECR repository), uploads the
# samples, waits for their thumbnails and leaves the pipeline up, saying how to remove it.
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

if [ "${THUMBCTL_DEMO:-}" != "local" ] && [ -z "${AWS_ENDPOINT_URL:-}" ] && has_aws_credentials; then
  mode=aws
else
  mode=local
fi

# Before anything compiles: install what is missing, or stop naming the command to run.
source scripts/prereqs.sh
prereqs_build
# The local demo ships thumbctl into an OCI registry standing in for ECR.
if [ "$mode" = local ]; then prereq_apt "docker-registry:docker-registry" "apache2-utils:htpasswd"; fi

if [ "$mode" = aws ]; then
  # On AWS the function is this very binary: an optimised one (the `lambda` profile: release
  # code, stripped), or the image would be several times larger and every thumbnail several
  # times slower, paid by the millisecond; `up` refuses a debug build there anyway. Its first
  # build takes a quarter of an hour on 2 cores.
  step "building thumbctl, optimised (cargo --profile lambda)"
  cargo build -q --locked --profile lambda -p thumbctl
  thumbctl="${CARGO_TARGET_DIR:-$PWD/target}/lambda/thumbctl"
else
  # The emulator runs no function code: the quick debug build is enough.
  step "building thumbctl"
  cargo build -q -p thumbctl
  thumbctl="${CARGO_TARGET_DIR:-$PWD/target}/debug/thumbctl"
fi
[ -d samples ] && ls samples/*.png >/dev/null 2>&1 || python3 scripts/make-samples.py samples

if [ "$mode" = aws ]; then
  # The function's image is this thumbctl binary itself: no build, no image variable.
  step "thumbctl up (real AWS): the function is this optimised binary, pushed to the stack's ECR repository"
  "$thumbctl" up ${THUMBCTL_IMAGE_URI:+--image-uri "$THUMBCTL_IMAGE_URI"}
  step "thumbctl upload samples/ --wait: the thumbnails, made by Lambda"
  "$thumbctl" upload samples --prefix demo/ --wait --timeout 5m
  step "thumbctl list"
  "$thumbctl" list
  echo "The pipeline is up: upload with \`$thumbctl upload <file|dir>\`, look with \`$thumbctl list\`." >&2
  echo "Remove everything it made with: $thumbctl destroy" >&2
  exit 0
fi

source scripts/moto.sh
step "starting a local AWS emulator (moto)"
moto_start
export AWS_ENDPOINT_URL="$MOTO_URL" AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo
export AWS_EC2_METADATA_DISABLED=true
state_dir="$(mktemp -d -t thumbctl-demo.XXXXXX)"
stack=demo
# A local OCI registry standing in for ECR: user AWS, moto's ECR token as the password, so
# `up` ships this binary exactly as on AWS (moto then runs no container from it).
reg_dir="$(mktemp -d -t thumbctl-demo-registry.XXXXXX)"
reg_port="$(moto_free_port)"
htpasswd -Bbn AWS 123456789012-auth-token >"$reg_dir/htpasswd"
cat >"$reg_dir/config.yml" <<CONF
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $reg_dir/data
http:
  addr: 127.0.0.1:$reg_port
auth:
  htpasswd:
    realm: demo
    path: $reg_dir/htpasswd
CONF
docker-registry serve "$reg_dir/config.yml" >/dev/null 2>&1 &
reg_pid=$!
stop_registry() { kill "$reg_pid" 2>/dev/null || true; rm -rf "$reg_dir"; moto_stop; }
trap stop_registry EXIT
for _ in $(seq 1 100); do
  (echo >"/dev/tcp/127.0.0.1/$reg_port") 2>/dev/null && break
  sleep 0.1
done

step "thumbctl up: creating the whole pipeline, the function being this binary"
"$thumbctl" --stack "$stack" --state-dir "$state_dir" up --registry-url "http://127.0.0.1:$reg_port" --sizes 128,256,512
step "thumbctl up again: nothing to create, nothing to push"
"$thumbctl" --stack "$stack" --state-dir "$state_dir" up --registry-url "http://127.0.0.1:$reg_port"
step "thumbctl status"
"$thumbctl" --stack "$stack" --state-dir "$state_dir" status

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
