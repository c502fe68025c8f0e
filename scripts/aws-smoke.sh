#!/usr/bin/env bash
# Smoke test on a REAL AWS account. Never run by CI; it costs (a few cents) and needs credentials.
#
#   scripts/aws-smoke.sh [--yes] [--cdn] [--source-bucket=BUCKET]
#
# It refuses to run without AWS credentials, or with AWS_ENDPOINT_URL* set (an emulator is not
# AWS); names the account and region and waits for you to type `yes` (--yes skips that, for
# scripted use). Then, with a stack of its own (smoke-<random>) and a state dir in a temp dir:
#   up (default path: the function is this thumbctl binary, shipped to ECR; CodeBuild builds
#   it only where the binary cannot run on Lambda) -> upload samples/ --wait ->
#   list, get each (status ok, every thumbnail downloadable through its link) -> delete one
#   (gone from the table, its thumbnail link now fails) -> destroy -> status --orphans (nothing).
# --cdn: `up --cdn`; thumbnails are fetched through CloudFront, and after the delete the deleted
#   thumbnail's CDN link must stop answering within SMOKE_CDN_WAIT (default 15m): the
#   invalidation `delete` sends (without it CloudFront would serve it for up to a year).
# --source-bucket=BUCKET: adopt a bucket of yours as the source (under the prefix <stack>/, so
#   nothing else in it triggers the function); with the aws CLI, its notification configuration
#   is read before `up` and must be the same after `destroy` (yours kept, ours gone), and the
#   bucket with everything outside the prefix stays.
# On any failure or interrupt it still runs `destroy` and prints the state dir for cleaning up.
# At the end it prints a table: time of up and destroy, upload-to-thumbnail latency, and a rough
# cost of the run.
#
# Environment: the usual AWS ones (AWS_PROFILE, AWS_REGION, ...); THUMBCTL_BIN to use that
# thumbctl instead of building one in release mode; SMOKE_WAIT how long `upload --wait` waits
# (default 10m: the first invocation of a container-image function includes its cold start).
# Needs bash 4+, python3 (for JSON), curl (to fetch thumbnails back); the aws CLI is optional.
#
# Prices used for the cost estimate, on-demand, US East (N. Virginia), before any free tier,
# read on 2026-12-02 from stored copies of the AWS Lambda pricing page and the AWS whitepaper
# "How AWS Pricing Works" (Lambda), and from third-party summaries of the CodeBuild pricing page
# (CodeBuild: check that page before relying on the figure):
#   Lambda x86 duration      $0.0000166667 per GB-second
#   Lambda requests          $0.20 per million ($0.0000002 each)
#   CodeBuild                $0.01 per build minute for BUILD_GENERAL1_MEDIUM, the compute type
#                            `up` creates (src/resources/build_project.rs); general1.small would be
#                            $0.005. Counted in whole minutes, rounded up.
#   S3, DynamoDB (on-demand), SNS requests, ECR storage for minutes, log ingestion: a run makes
#   a few hundred requests and stores a few MB for minutes, far below $0.001: counted as 0.
# Other regions differ by a few percent; the estimate is a rough one.
set -euo pipefail
cd "$(dirname "$0")/.."

readonly LAMBDA_GB_S_USD=0.0000166667
readonly LAMBDA_REQUEST_USD=0.0000002
readonly CODEBUILD_MINUTE_USD=0.01
readonly CODEBUILD_COMPUTE=general1.medium

say() { printf 'aws-smoke: %s\n' "$*" >&2; }
step() { printf '\n\033[1m==> %s\033[0m\n' "$*" >&2; }
die() {
  say "$*"
  exit 1
}
fail() {
  say "FAILED: $*"
  exit 1
}
usage() {
  sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
}

assume_yes=0
cdn=0
adopt=""
for arg in "$@"; do
  case "$arg" in
    -y | --yes) assume_yes=1 ;;
    --cdn) cdn=1 ;;
    --source-bucket=?*) adopt="${arg#--source-bucket=}" ;;
    -h | --help)
      usage
      exit 0
      ;;
    *)
      say "unknown option \`$arg\` (usage: $0 [--yes] [--cdn] [--source-bucket=BUCKET])"
      exit 2
      ;;
  esac
done

now() {
  if [ -n "${EPOCHREALTIME:-}" ]; then
    printf '%s\n' "${EPOCHREALTIME/,/.}"
  else
    python3 -c 'import time; print(f"{time.time():.6f}")'
  fi
}
elapsed() { python3 -c 'import sys; print(f"{float(sys.argv[2]) - float(sys.argv[1]):.1f}")' "$1" "$2"; }

# --- 1. Refuse an emulator, and refuse to run without credentials (before building anything) --

endpoints=()
for name in $(compgen -e); do
  case "$name" in
    AWS_ENDPOINT_URL | AWS_ENDPOINT_URL_*) [ -n "${!name}" ] && endpoints+=("$name=${!name}") ;;
  esac
done
if [ "${#endpoints[@]}" -gt 0 ]; then
  die "refusing to run: ${endpoints[*]} is set, which points the AWS calls at an emulator, not AWS.
  This smoke test is for a real account; for the emulator run scripts/demo.sh or scripts/test.sh.
  hint: unset it (unset ${endpoints[0]%%=*}) to test against AWS"
fi

# From here on, everything this script writes goes to its own temp dir; on_exit removes it
# unless the stack may exist (then it keeps the state dir and says so).
work="$(mktemp -d "${TMPDIR:-/tmp}/thumbctl-smoke.XXXXXX")"
state_dir="$work/state"
stack="smoke-$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"
tc=""
region=""
# checks: nothing exists in AWS yet | creating: the stack may exist | destroyed | passed
phase=checks

tc_() {
  if [ -n "$region" ]; then
    "$tc" --stack "$stack" --state-dir "$state_dir" --region "$region" "$@"
  else
    "$tc" --stack "$stack" --state-dir "$state_dir" "$@"
  fi
}

on_exit() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  case "$phase" in
    checks | passed) rm -rf "$work" ;;
    creating)
      if [ "$rc" -ne 0 ]; then
        say "stopped (exit $rc) while stack $stack may exist; its state dir is $state_dir"
        say "destroying stack $stack anyway"
        if tc_ destroy --yes >&2; then
          say "destroy finished; looking for anything left with the stack's tag:"
          tc_ status --orphans >&2
        else
          say "destroy FAILED as well. Clean up by hand with:"
          say "  $tc --stack $stack --state-dir $state_dir --region ${region:-<region>} destroy --yes"
        fi
        say "then check:  $tc --stack $stack --state-dir $state_dir --region ${region:-<region>} status --orphans"
        say "  (and delete what it lists with: ... destroy --orphans --yes)"
        say "state dir kept: $state_dir   logs and outputs: $work"
      fi
      ;;
    destroyed)
      if [ "$rc" -ne 0 ]; then
        say "destroy ran, but a check after it failed. State dir kept: $state_dir   logs: $work"
        say "  see what is left:  $tc --stack $stack --state-dir $state_dir --region $region status --orphans"
        say "  delete it:         $tc --stack $stack --state-dir $state_dir --region $region destroy --orphans --yes"
      fi
      ;;
  esac
  exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

has_credential_source() {
  [ -n "${AWS_ACCESS_KEY_ID:-}" ] || [ -n "${AWS_PROFILE:-}" ] || [ -n "${AWS_WEB_IDENTITY_TOKEN_FILE:-}" ] \
    || [ -n "${AWS_CONTAINER_CREDENTIALS_RELATIVE_URI:-}" ] || [ -n "${AWS_CONTAINER_CREDENTIALS_FULL_URI:-}" ] \
    || [ -f "${AWS_SHARED_CREDENTIALS_FILE:-${HOME:-/nonexistent}/.aws/credentials}" ] \
    || [ -f "${AWS_CONFIG_FILE:-${HOME:-/nonexistent}/.aws/config}" ]
}

cli_account=""
if command -v aws >/dev/null 2>&1; then
  if ! aws sts get-caller-identity --query '[Account,Arn]' --output text >"$work/aws.out" 2>"$work/aws.err"; then
    die "no usable AWS credentials: \`aws sts get-caller-identity\` failed:
$(sed -n '/./s/^/  /p' "$work/aws.err" | head -n 3)
  Nothing was created. hint: set AWS_PROFILE (or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), or run \`aws configure\`"
  fi
  read -r cli_account cli_arn <"$work/aws.out" || true
  say "the aws CLI says you are ${cli_arn:-?} (account ${cli_account:-?})"
elif ! has_credential_source; then
  if [ "${AWS_EC2_METADATA_DISABLED:-}" = "true" ]; then
    die "no AWS credentials: none in the environment, no AWS_PROFILE, no ~/.aws/credentials or
  ~/.aws/config, and the instance metadata service is disabled (AWS_EC2_METADATA_DISABLED=true).
  Nothing was created. hint: set AWS_PROFILE (or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)"
  fi
  say "no credentials in the environment or ~/.aws and no aws CLI: thumbctl will try an instance role"
fi

# --- 2. thumbctl, and the identity thumbctl itself resolves ---------------------------------------

if [ -n "${THUMBCTL_BIN:-}" ]; then
  tc="$THUMBCTL_BIN"
  [ -x "$tc" ] || die "THUMBCTL_BIN=$tc is not an executable file"
else
  step "building thumbctl (release)"
  cargo build --release -q -p thumbctl
  tc="${CARGO_TARGET_DIR:-$PWD/target}/release/thumbctl"
fi

# `up --dry-run` resolves the identity and region exactly as the real `up` will, creates nothing.
if ! tc_ up --dry-run --output json >"$work/dry-run.json" 2>"$work/dry-run.err"; then
  die "thumbctl could not use your AWS credentials or region (\`thumbctl up --dry-run\` failed):
$(sed 's/^/  /' "$work/dry-run.err")
  Nothing was created. hint: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, and AWS_REGION"
fi
ident="$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["account"], d["region"])' "$work/dry-run.json")" \
  || die "could not read the account and region from \`thumbctl up --dry-run --output json\`"
read -r account region <<<"$ident"
if [ -z "$account" ] || [ -z "$region" ]; then
  die "thumbctl named no account or region"
fi
if [ -n "$cli_account" ] && [ "$cli_account" != "$account" ]; then
  die "the aws CLI uses account $cli_account but thumbctl uses account $account: refusing to guess.
  hint: set AWS_PROFILE so both use the same credentials"
fi
case "$account" in
  123456789012 | 000000000000)
    die "account $account is an emulator's default account (moto, LocalStack), not a real AWS account"
    ;;
esac

# An adopted bucket is used under the stack's own prefix only: `upload` puts the keys there.
key_prefix="smoke/"
up_args=()
if [ "$cdn" = 1 ]; then up_args+=(--cdn); fi
if [ -n "$adopt" ]; then
  key_prefix="$stack/smoke/"
  up_args+=(--source-bucket "$adopt" --source-prefix "$stack/")
fi
python3 - samples "$key_prefix" <<'PY' >"$work/expected-keys.txt" || die "samples/ has no files"
import os, sys
keys = []
for root, dirs, files in os.walk(sys.argv[1]):
    dirs.sort()
    for f in sorted(files):
        rel = os.path.relpath(os.path.join(root, f), sys.argv[1]).replace(os.sep, "/")
        keys.append(sys.argv[2] + rel)
if not keys:
    sys.exit(1)
print("\n".join(keys))
PY
samples="$(wc -l <"$work/expected-keys.txt" | tr -d ' ')"

cat >&2 <<EOF

This creates REAL resources and costs money (a few cents: $samples Lambda invocations, ECR
storage for minutes, a CodeBuild build only if this thumbctl cannot ship itself), then deletes
everything it created.
  AWS account : $account
  region      : $region
  stack       : $stack   (state: $state_dir)
  thumbctl    : $tc

EOF
if [ "$assume_yes" != 1 ]; then
  if [ ! -t 0 ]; then
    say "refusing to create anything without confirmation: stdin is not a terminal. hint: pass --yes"
    exit 2
  fi
  printf 'Type yes to create stack %s in account %s (%s): ' "$stack" "$account" "$region" >&2
  answer=""
  read -r answer || true
  if [ "$answer" != "yes" ]; then
    say "not confirmed; nothing was created"
    exit 2
  fi
fi

# --- 3. up ----------------------------------------------------------------------------------------

phase=creating

# Copies stdin to stderr, and to $1 with a timestamp per line (to time the CodeBuild build).
# It ignores Ctrl-C: thumbctl, on a first Ctrl-C, finishes its calls in flight and reports on
# stderr, which must still have a reader.
stamp() {
  local line
  trap '' INT
  while IFS= read -r line || [ -n "$line" ]; do
    printf '%s %s\n' "$(now)" "$line" >>"$1"
    printf '%s\n' "$line" >&2
  done
}

step "thumbctl up: stack $stack (the function: this thumbctl binary, or a CodeBuild build where it cannot be)"
t_up0="$(now)"
# Their bucket's notifications before we touch it: after destroy they must be exactly these.
if [ -n "$adopt" ] && command -v aws >/dev/null 2>&1; then
  aws s3api get-bucket-notification-configuration --bucket "$adopt" --output json \
    >"$work/their-notifications.json" 2>"$work/their-notifications.err" \
    || die "cannot read the notification configuration of $adopt: $(cat "$work/their-notifications.err")"
fi
{ tc_ up "${up_args[@]}" --output json 2>&1 >"$work/up.json"; } | stamp "$work/up.log" \
  || fail "thumbctl up failed (its output is above and in $work/up.log)"
t_up1="$(now)"
up_s="$(elapsed "$t_up0" "$t_up1")"

# The build: from "Started CodeBuild build" to "Image ... (codebuild)" in up's own output.
# Prints how the image was made and the seconds the build took (empty: not found).
build="$(
  python3 - "$work/up.log" <<'PY'
import re, sys
start = end = None
how = ""
for line in open(sys.argv[1]):
    t, _, text = line.rstrip("\n").partition(" ")
    if text.startswith("Started CodeBuild build"):
        start = float(t)
    m = re.match(r"Image \S+ \(([a-z-]+)\)", text)
    if m:
        end, how = float(t), m.group(1)
secs = f"{end - start:.1f}" if how == "codebuild" and start is not None else ""
print(how or "unknown", secs)
PY
)"

step "thumbctl status: every recorded resource exists"
tc_ status --output json >"$work/status.json" || fail "thumbctl status failed"
settings="$(
  python3 - "$work/status.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
missing = [r["id"] for r in d["resources"] if r.get("exists") is not True]
if missing:
    sys.exit("status: not found in AWS: " + ", ".join(missing))
s = d["settings"]
print(s["memory_mb"], len(s["sizes"]))
PY
)" || fail "the stack is not complete after up (see above)"
read -r memory_mb size_count <<<"$settings"
say "all resources exist; function memory ${memory_mb} MB, ${size_count} thumbnail sizes"

# --- 4. upload, list, get ------------------------------------------------------------------------

step "thumbctl upload samples/ --wait ($samples images)"
t_upload0="$(now)"
tc_ upload samples --prefix smoke/ --wait --timeout "${SMOKE_WAIT:-10m}" --output json >"$work/upload.json" \
  || fail "upload --wait failed (images still pending or failed; $work/upload.json)"
t_upload1="$(now)"
python3 - "$work/upload.json" "$work/expected-keys.txt" <<'PY' || fail "upload result"
import json, sys
d = json.load(open(sys.argv[1]))
expected = open(sys.argv[2]).read().split("\n")
expected = [k for k in expected if k]
keys = sorted(u["key"] for u in d["uploaded"])
if keys != sorted(expected):
    sys.exit(f"uploaded keys {keys} are not the samples {sorted(expected)}")
bad = [f'{u["key"]}: {u.get("status")} {u.get("error") or ""}' for u in d["uploaded"] if u.get("status") != "ok"]
if bad or d.get("pending"):
    sys.exit("not ok after --wait: " + "; ".join(bad + [f"{p}: pending" for p in d.get("pending", [])]))
PY
say "every image has its thumbnails"

# `list` reads a global secondary index, which lags the table by up to a second or so: ask
# again for a while before calling a difference a failure.
# list_is EXPECTED_IDS_FILE OUT_JSON: prints the ids once `list` shows exactly those, all ok.
list_is() {
  local attempt
  for attempt in 1 2 3 4 5 6 7 8 9 10; do
    tc_ list --limit 1000 --output json >"$2" || return 1
    if python3 - "$2" "$1" 2>"$work/list.err" <<'PY'; then
import json, sys
d = json.load(open(sys.argv[1]))
expected = sorted(k for k in open(sys.argv[2]).read().split("\n") if k)
ids = sorted(i["id"] for i in d["items"])
if ids != expected:
    sys.exit(f"list shows {ids}, expected {expected}")
bad = [i["id"] for i in d["items"] if i.get("status") != "ok"]
if bad:
    sys.exit("list: status not ok for " + ", ".join(bad))
print("\n".join(ids))
PY
      return 0
    fi
    [ "$attempt" = 10 ] || sleep 2
  done
  cat "$work/list.err" >&2
  return 1
}

step "thumbctl list"
ids_text="$(list_is "$work/expected-keys.txt" "$work/list.json")" || fail "list does not show every image as ok"
mapfile -t ids <<<"$ids_text"
say "list shows all ${#ids[@]} images, status ok"

step "thumbctl get, each image; fetching every thumbnail through its link"
command -v curl >/dev/null 2>&1 || say "no curl: thumbnails are not fetched back"
victim_url=""
n=0
for id in "${ids[@]}"; do
  n=$((n + 1))
  tc_ get "$id" --output json >"$work/get-$n.json" || fail "thumbctl get $id failed"
  thumbs="$(
    python3 - "$work/get-$n.json" "$id" "$size_count" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
id_, sizes = sys.argv[2], int(sys.argv[3])
if d.get("id") != id_ or d.get("status") != "ok":
    sys.exit(f"get {id_}: status {d.get('status')!r} {d.get('error') or ''}")
t = d.get("thumbnails") or []
if len(t) != sizes:
    sys.exit(f"get {id_}: {len(t)} thumbnails, expected {sizes}")
for x in t:
    if not x.get("url") or int(x.get("bytes", 0)) <= 0:
        sys.exit(f"get {id_}: thumbnail {x.get('key')} has no link or no bytes")
    print(f'{x["bytes"]}\t{x["url"]}')
PY
  )" || fail "get $id"
  if command -v curl >/dev/null 2>&1; then
    while IFS=$'\t' read -r bytes url; do
      curl -fsS --max-time 60 -o "$work/thumb" "$url" || fail "could not download a thumbnail of $id"
      got="$(wc -c <"$work/thumb" | tr -d ' ')"
      [ "$got" = "$bytes" ] || fail "a thumbnail of $id has $got bytes, its item says $bytes"
      [ -n "$victim_url" ] || victim_url="$url"
    done <<<"$thumbs"
  fi
  say "ok  $id"
done

# --- 5. delete one --------------------------------------------------------------------------------

victim="${ids[0]}"
step "thumbctl delete $victim"
tc_ delete "$victim" --yes >&2 || fail "thumbctl delete failed"
if out="$(tc_ get "$victim" 2>&1)"; then
  fail "get $victim still finds the image after delete"
fi
case "$out" in
  *"no image"*) ;;
  *) fail "get $victim after delete failed, but not with \"no image\": $out" ;;
esac
if [ "$cdn" = 1 ]; then
  # Through CloudFront the deleted thumbnail stays cached until the invalidation `delete` sent
  # has completed (usually under a minute or two): poll until the link stops answering.
  cdn_wait="${SMOKE_CDN_WAIT:-900}"
  t_inv0="$(now)"
  gone=0
  for _ in $(seq 1 "$((cdn_wait / 10 + 1))"); do
    if [ -n "$victim_url" ] && ! curl -fsS --max-time 30 -o /dev/null "$victim_url" 2>/dev/null; then
      gone=1
      break
    fi
    sleep 10
  done
  [ "$gone" = 1 ] || fail "the CDN still serves a thumbnail of $victim ${cdn_wait}s after delete: its invalidation did not happen"
  cdn_gone_s="$(elapsed "$t_inv0" "$(now)")"
  say "the CDN stopped serving the deleted thumbnail after ${cdn_gone_s}s"
elif [ -n "$victim_url" ] && curl -fsS --max-time 60 -o /dev/null "$victim_url" 2>/dev/null; then
  fail "a thumbnail of $victim can still be downloaded after delete"
fi
grep -vxF -- "$victim" "$work/expected-keys.txt" >"$work/expected-after.txt" || true
list_is "$work/expected-after.txt" "$work/list-after.json" >/dev/null || fail "list after deleting $victim"
say "deleted: gone from get and list, its thumbnail link fails"

# --- 6. destroy, and nothing left -----------------------------------------------------------------

step "thumbctl destroy --yes"
t_d0="$(now)"
tc_ destroy --yes >&2 || fail "thumbctl destroy failed"
t_d1="$(now)"
destroy_s="$(elapsed "$t_d0" "$t_d1")"
phase=destroyed
[ ! -e "$state_dir/$stack.json" ] || fail "the state file $state_dir/$stack.json is still there after destroy"
if [ -f "$work/their-notifications.json" ]; then
  aws s3api get-bucket-notification-configuration --bucket "$adopt" --output json \
    >"$work/their-notifications-after.json" || fail "cannot read $adopt's notifications after destroy"
  python3 - "$work/their-notifications.json" "$work/their-notifications-after.json" <<'PY' \
    || fail "destroy changed $adopt's own notification configuration"
import json, sys
load = lambda p: json.loads(open(p).read() or "{}")
before, after = load(sys.argv[1]), load(sys.argv[2])
before.pop("ResponseMetadata", None)
after.pop("ResponseMetadata", None)
if before != after:
    sys.exit(f"before up: {before}\nafter destroy: {after}")
PY
  say "$adopt: its own notification configuration is as it was before up"
fi

step "thumbctl status --orphans: nothing tagged thumbctl:stack=$stack may be left"
# Listings are eventually consistent (a just-deleted table or role can still be listed for a
# while): look again a few times before calling it a leak.
left=""
for attempt in 1 2 3 4 5 6; do
  tc_ status --orphans --output json >"$work/orphans.json" || fail "thumbctl status --orphans failed"
  left="$(python3 -c 'import json,sys; print(" ".join(o["kind"]+":"+o["name"] for o in json.load(open(sys.argv[1]))["orphans"]))' "$work/orphans.json")"
  [ -z "$left" ] && break
  say "attempt $attempt: still listed: $left"
  [ "$attempt" = 6 ] || sleep 10
done
[ -z "$left" ] || fail "left behind after destroy: $left"
say "no orphans"

# --- 7. The table -----------------------------------------------------------------------------------

python3 - "$work" "$memory_mb" "$samples" "$t_upload0" "$t_upload1" "$up_s" "$build" "$destroy_s" \
  "$LAMBDA_GB_S_USD" "$LAMBDA_REQUEST_USD" "$CODEBUILD_MINUTE_USD" "$CODEBUILD_COMPUTE" \
  "$stack" "$account" "$region" <<'PY'
import datetime, glob, json, math, statistics, sys

(work, memory_mb, samples, t0, t1, up_s, build, destroy_s, gbs_price, req_price, cb_price, cb_kind,
 stack, account, region) = sys.argv[1:]
memory_gb = int(memory_mb) / 1024
samples, t0, t1 = int(samples), float(t0), float(t1)
up_s, destroy_s = float(up_s), float(destroy_s)
how, _, build_s = build.partition(" ")

def ts(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()

items = [json.load(open(p)) for p in sorted(glob.glob(f"{work}/get-*.json"))]
# The function stamps updated_at when the thumbnails are made, just before it stores them.
lat = [ts(i["updated_at"]) - t0 for i in items]
fn_ms = [int(i.get("duration_ms", 0)) for i in items]
wait_s = t1 - t0

# Lambda: the handler's own time is a lower bound of the billed duration (which adds the
# runtime's overhead and a cold start's init); no invocation can have lasted longer than the
# whole upload --wait window, so that is charged.
handler_gbs = memory_gb * sum(fn_ms) / 1000
bound_gbs = max(handler_gbs, memory_gb * samples * wait_s)
duration_usd = bound_gbs * float(gbs_price)
requests_usd = samples * float(req_price)
if how == "codebuild" and build_s:
    minutes = max(1, math.ceil(float(build_s) / 60))
    build_value, build_basis = f"{float(build_s):.0f} s", "\"Started CodeBuild build\" to \"Image ... (codebuild)\" in up's output"
elif how == "already-in-ecr":
    minutes, build_value, build_basis = 0, "none", "ECR already held an image of these sources"
else:
    minutes = max(1, math.ceil(up_s / 60))
    build_value, build_basis = "?", "not found in up's output: the whole up is charged as build time"
build_usd = minutes * float(cb_price)
total = duration_usd + requests_usd + build_usd

rows = [
    ("up, wall time", f"{up_s:.1f} s", "includes the function's image build"),
    ("  CodeBuild build", build_value, build_basis),
    ("upload -> thumbnails, median", f"{statistics.median(lat):.2f} s",
     f"start of `upload` to each item's updated_at ({len(items)} images)"),
    ("upload -> thumbnails, max", f"{max(lat):.2f} s", "same"),
    ("  function time per image", f"{statistics.median(fn_ms):.0f} / {max(fn_ms)} ms",
     "median / max of the items' duration_ms"),
    ("  upload --wait returned", f"{wait_s:.1f} s", "after its start, every image ok"),
    ("destroy, wall time", f"{destroy_s:.1f} s", ""),
    ("cost: Lambda duration", f"${duration_usd:.6f}",
     f"at most {bound_gbs:.3f} GB-s ({samples} x {wait_s:.1f} s x {memory_gb:g} GB; handler alone "
     f"{handler_gbs:.3f}) x ${gbs_price}/GB-s"),
    ("cost: Lambda requests", f"${requests_usd:.6f}", f"{samples} x ${req_price}"),
    ("cost: CodeBuild", f"${build_usd:.4f}", f"{minutes} min (rounded up) x ${cb_price}/min {cb_kind}"),
    ("cost: S3, DynamoDB, SNS, ECR, logs", "~$0", "a few hundred requests, a few MB for minutes"),
    ("cost: total, before free tier", f"${total:.4f}", "rough; prices and their date: top of scripts/aws-smoke.sh"),
]
cols = [max(len(r[i]) for r in rows + [("measure", "value", "basis")]) for i in range(3)]
print(f"\nthumbctl smoke test on AWS: stack {stack}, account {account}, region {region}, "
      f"{samples} images, function {memory_mb} MB")
print(f"| {'measure'.ljust(cols[0])} | {'value'.rjust(cols[1])} | {'basis'.ljust(cols[2])} |")
print(f"|{'-' * (cols[0] + 2)}|{'-' * (cols[1] + 1)}:|{'-' * (cols[2] + 2)}|")
for name, value, basis in rows:
    print(f"| {name.ljust(cols[0])} | {value.rjust(cols[1])} | {basis.ljust(cols[2])} |")
print("Latency compares this machine's clock with AWS's (keep NTP on); it includes the upload itself.")
if min(lat) < 0:
    print(f"WARNING: a negative latency ({min(lat):.2f} s): this machine's clock is ahead of AWS's; "
          "the latency rows are not reliable.")
PY

phase=passed
step "smoke test passed: stack $stack was created, used and destroyed; nothing is left"
