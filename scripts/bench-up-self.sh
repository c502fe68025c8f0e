#!/usr/bin/env bash
# `thumbctl up` shipping itself as the function, measured on this machine:
#   - `up` of a new stack, push included, against moto and Debian's docker-registry standing
#     in for ECR (htpasswd user AWS, moto's ECR token as the password);
#   - an unchanged rerun, and how many bytes it pushed (must be 0);
#   - the image's compressed size (layer + config) and what the layer holds;
#   - the cold start of the shipped function: process start -> its first Runtime API request
#     (GET .../invocation/next), with the image pulled back from the registry, unpacked, and
#     its entrypoint run chrooted there (as root; `unshare -r` otherwise), RUNS times.
#
#   scripts/bench-up-self.sh [THUMBCTL]    default: a release build (cargo build --release)
#   RUNS=20                                cold-start runs
#
# A binary given is shipped as it is: e.g. the static one scripts/dist.sh makes.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${RUNS:-20}"

for tool in docker-registry htpasswd python3; do
  command -v "$tool" >/dev/null || {
    echo "needs $tool (Debian: apt-get install docker-registry apache2-utils python3-venv)" >&2
    exit 1
  }
done
if [ $# -ge 1 ]; then
  thumbctl="$(realpath "$1")"
else
  cargo build --locked --release -q -p thumbctl
  thumbctl="${CARGO_TARGET_DIR:-$PWD/target}/release/thumbctl"
fi

work="$(mktemp -d -t bench-up-self.XXXXXX)"
# A copy: a cargo running alongside cannot replace the binary between the two runs.
cp "$thumbctl" "$work/thumbctl"
reg_pid=""
source scripts/moto.sh
cleanup() {
  if [ -n "$reg_pid" ]; then kill "$reg_pid" 2>/dev/null || true; wait "$reg_pid" 2>/dev/null || true; fi
  moto_stop
  rm -rf "$work"
}
moto_start
trap cleanup EXIT

# moto's ECR token is base64 of AWS:<this>; the registry accepts exactly that.
password="123456789012-auth-token"
htpasswd -Bbn AWS "$password" >"$work/htpasswd"
reg_port="$(moto_free_port)"
cat >"$work/registry.yml" <<EOF
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: 127.0.0.1:$reg_port
  secret: bench
auth:
  htpasswd:
    realm: bench
    path: $work/htpasswd
EOF
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
reg_pid=$!
for _ in $(seq 1 100); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1', $reg_port), 1)" 2>/dev/null && break
  sleep 0.1
done
registry="http://127.0.0.1:$reg_port"

export AWS_ENDPOINT_URL="$MOTO_URL" AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test \
  AWS_SECRET_ACCESS_KEY=test AWS_EC2_METADATA_DISABLED=true
stack="bench$$"
now() { python3 -c 'import time; print(f"{time.time():.4f}")'; }

echo "==> up of a new stack ($thumbctl)" >&2
t0=$(now)
"$work/thumbctl" -q --stack "$stack" --state-dir "$work/state" up --registry-url "$registry" \
  --output json >"$work/up1.json"
t1=$(now)
echo "==> up again, nothing changed" >&2
"$work/thumbctl" -q --stack "$stack" --state-dir "$work/state" up --registry-url "$registry" \
  --output json >"$work/up2.json"
t2=$(now)

echo "==> pulling the image back and timing the function's cold start, chrooted ($runs runs)" >&2
python3 - "$work" "$registry" "$password" "$t0" "$t1" "$t2" "$runs" "$thumbctl" <<'PY'
import base64, io, json, os, shutil, socket, statistics, subprocess, sys, tarfile, time
import urllib.request

work, registry, password = sys.argv[1], sys.argv[2], sys.argv[3]
t0, t1, t2 = map(float, sys.argv[4:7])
runs, binary = int(sys.argv[7]), sys.argv[8]
up1 = json.load(open(f"{work}/up1.json"))
up2 = json.load(open(f"{work}/up2.json"))
img1, img2 = up1["image"], up2["image"]
repo = up1["function"]
auth = "Basic " + base64.b64encode(f"AWS:{password}".encode()).decode()

def get(path, accept=None):
    req = urllib.request.Request(registry + path, headers={"Authorization": auth})
    if accept:
        req.add_header("Accept", accept)
    return urllib.request.urlopen(req, timeout=60).read()

manifest = json.loads(get(f"/v2/{repo}/manifests/{img1['digest']}",
                          "application/vnd.oci.image.manifest.v1+json"))
config_bytes = get(f"/v2/{repo}/blobs/{manifest['config']['digest']}")
config = json.loads(config_bytes)
root = f"{work}/root"
os.makedirs(root)
layer_total = 0
listing = []
for layer in manifest["layers"]:
    blob = get(f"/v2/{repo}/blobs/{layer['digest']}")
    layer_total += len(blob)
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as t:
        listing += [(m.name, m.size) for m in t.getmembers() if m.isfile()]
        try:
            t.extractall(root, filter="fully_trusted")
        except TypeError:  # Python before the extraction filters: the same behaviour
            t.extractall(root)
entry = config["config"]["Entrypoint"][0]

chroot = shutil.which("chroot") or "/usr/sbin/chroot"
jail = [chroot] if os.geteuid() == 0 else ["unshare", "-r", chroot]

def one():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    env = dict(e.split("=", 1) for e in config["config"].get("Env", []))
    env.update({
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{srv.getsockname()[1]}",
        "AWS_LAMBDA_FUNCTION_NAME": repo, "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024", "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_EC2_METADATA_DISABLED": "true", "DEST_BUCKET": up1["dest_bucket"],
        "SOURCE_BUCKET": up1["source_bucket"], "TABLE_NAME": up1["table"],
        "TOPIC_ARN": up1["topic_arn"], "THUMB_SIZES": "128,256,512",
    })
    t = time.perf_counter()
    p = subprocess.Popen(jail + [root, entry], env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    srv.settimeout(10)
    conn, _ = srv.accept()
    buf = b""
    while b"\r\n" not in buf:
        chunk = conn.recv(4096)
        if not chunk:
            break
        buf += chunk
    ms = (time.perf_counter() - t) * 1e3
    p.kill(); p.wait(); conn.close(); srv.close()
    if not buf.startswith(b"GET /2018-06-01/runtime/invocation/next"):
        raise SystemExit(f"unexpected first request: {buf[:80]!r}")
    return ms

one()  # the page cache, as on a warm host
ms = sorted(one() for _ in range(runs))

mb = lambda n: f"{n / 1e6:.1f} MB"
print(f"binary            {binary} ({mb(os.path.getsize(binary))})")
print(f"up, new stack     {t1 - t0:.2f} s wall (thumbctl says {up1['seconds']:.2f} s; image step {img1['seconds']:.2f} s, pushed {mb(img1['uploaded_bytes'])})")
print(f"up, unchanged     {t2 - t1:.2f} s wall, pushed {img2['uploaded_bytes']} bytes")
print(f"image             {mb(layer_total + len(config_bytes))} compressed ({layer_total} bytes in {len(manifest['layers'])} layer(s) + {len(config_bytes)} bytes config), {config['architecture']}")
for name, size in sorted(listing):
    print(f"  /{name:<45} {mb(size)}")
print(f"cold start        median {statistics.median(ms):.1f} ms, min {ms[0]:.1f} ms, max {ms[-1]:.1f} ms "
      f"({runs} runs, process start -> first GET /next, chrooted via {' '.join(os.path.basename(j) for j in jail)})")
PY

"$work/thumbctl" -q --stack "$stack" --state-dir "$work/state" destroy --yes >/dev/null
