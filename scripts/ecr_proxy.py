#!/usr/bin/env python3
"""An HTTP proxy that makes an OCI registry (Debian's docker-registry) answer blob uploads the
way Amazon ECR does, for the push tests.

ECR departs from the OCI distribution spec in ways a client must survive:
- a successful blob PATCH answers 201 Created, not 202 Accepted (aws/containers-roadmap#2831,
  dotnet/sdk-container-builds#279); Location and Range are kept;
- a request body over ~10 MiB is refused, so a large layer cannot go up in one PATCH; this
  proxy answers 413 with a distribution-spec error envelope (ECR's exact error code for this
  is not verified here, only that the push must never depend on it);
- with --stale-range, the Range of every PATCH after an upload's first repeats the first one,
  as ECR's does (aws/containers-roadmap#2831), so a client that follows Range re-sends data.

    ecr_proxy.py --listen 127.0.0.1:PORT --target 127.0.0.1:REGISTRY [--max-body BYTES]
                 [--stale-range]

Everything else is forwarded unchanged. Prints `ready` once listening; on exit (SIGTERM or
SIGINT) prints what it saw and did, e.g.
`max_patch_body=1048576 multi_patch_uploads=1 patch=5 patch201=5 range_stale=3 requests=14 too_large=0`.
"""
import argparse
import http.client
import json
import re
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COUNTS = {"requests": 0, "patch": 0, "patch201": 0, "too_large": 0, "range_stale": 0, "max_patch_body": 0}
# Upload session id -> [PATCHes seen, Range of the first answer]; ids are the path segment
# after /blobs/uploads/, which stays the same while docker-registry's _state query changes.
UPLOADS = {}
LOCK = threading.Lock()
UPLOAD_ID = re.compile(r"/blobs/uploads/([^/?]+)")


class TooLarge(Exception):
    pass


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def read_body(self):
        """The request body, de-chunked; TooLarge (after draining it) when over --max-body, so
        the client reads a clean 413 instead of a reset connection."""
        length = self.headers.get("Content-Length")
        if length is not None:
            remaining, size = int(length), int(length)
            if size > MAX_BODY:
                while remaining > 0:
                    got = self.rfile.read(min(remaining, 1 << 20))
                    if not got:
                        break
                    remaining -= len(got)
                raise TooLarge(size)
            return self.rfile.read(size) if size else b""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts, size = [], 0
            while True:
                line = self.rfile.readline()
                n = int(line.split(b";")[0].strip() or b"0", 16)
                if n == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                data = self.rfile.read(n)
                self.rfile.readline()
                size += n
                if size <= MAX_BODY:
                    parts.append(data)
            if size > MAX_BODY:
                raise TooLarge(size)
            return b"".join(parts)
        return b""

    def handle_any(self):
        with LOCK:
            COUNTS["requests"] += 1
        try:
            body = self.read_body()
        except TooLarge as e:
            with LOCK:
                COUNTS["too_large"] += 1
            payload = json.dumps({"errors": [{
                "code": "SIZE_INVALID",
                "message": f"request body of {e.args[0]} bytes exceeds the {MAX_BODY}-byte limit",
                "detail": None,
            }]}).encode()
            return self.answer(413, {"Content-Type": "application/json; charset=utf-8"}, payload)

        upload = UPLOAD_ID.search(self.path)
        is_patch = self.command == "PATCH" and upload is not None
        if is_patch:
            with LOCK:
                COUNTS["patch"] += 1
                COUNTS["max_patch_body"] = max(COUNTS["max_patch_body"], len(body))

        conn = http.client.HTTPConnection(TARGET_HOST, TARGET_PORT, timeout=120)
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in ("connection", "transfer-encoding", "content-length")}
        if body or self.command in ("POST", "PUT", "PATCH"):
            headers["Content-Length"] = str(len(body))
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        payload = resp.read()
        out = [(k, v) for k, v in resp.getheaders()
               if k.lower() not in ("transfer-encoding", "connection", "content-length")]
        status = resp.status
        if is_patch and status == 202:
            status = 201
            with LOCK:
                COUNTS["patch201"] += 1
                seen = UPLOADS.setdefault(upload.group(1), [0, None])
                seen[0] += 1
                got = next((v for k, v in out if k.lower() == "range"), None)
                if seen[1] is None:
                    seen[1] = got
                elif STALE_RANGE and got is not None and got != seen[1]:
                    out = [(k, seen[1] if k.lower() == "range" else v) for k, v in out]
                    COUNTS["range_stale"] += 1
        out = [(k, self.rewrite_location(v) if k.lower() == "location" else v) for k, v in out]
        self.answer(status, out, payload, head=self.command == "HEAD", length=resp.getheader("Content-Length"))
        conn.close()

    def rewrite_location(self, value):
        """Keeps the client on the proxy should the registry name its own address."""
        for prefix in (f"http://{TARGET_HOST}:{TARGET_PORT}", f"https://{TARGET_HOST}:{TARGET_PORT}"):
            if value.startswith(prefix):
                return f"http://{LISTEN}" + value[len(prefix):]
        return value

    def answer(self, status, headers, payload, head=False, length=None):
        self.send_response(status)
        items = headers.items() if isinstance(headers, dict) else headers
        for k, v in items:
            self.send_header(k, v)
        self.send_header("Content-Length", str(length if head and length is not None else len(payload)))
        self.end_headers()
        if not head:
            self.wfile.write(payload)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = handle_any


def main():
    global MAX_BODY, STALE_RANGE, TARGET_HOST, TARGET_PORT, LISTEN
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--max-body", type=int, default=10 * 1024 * 1024,
                    help="largest request body accepted, in bytes (default 10 MiB)")
    ap.add_argument("--stale-range", action="store_true",
                    help="repeat an upload's first PATCH Range in later PATCH answers, as ECR does")
    a = ap.parse_args()
    MAX_BODY, STALE_RANGE = a.max_body, a.stale_range
    TARGET_HOST, port = a.target.rsplit(":", 1)
    TARGET_PORT = int(port)
    host, port = a.listen.rsplit(":", 1)
    server = ThreadingHTTPServer((host, int(port)), Handler)
    server.daemon_threads = True
    LISTEN = f"{host}:{server.server_address[1]}"

    def stop(*_):
        with LOCK:
            counts = dict(COUNTS)
            counts["multi_patch_uploads"] = sum(1 for n, _ in UPLOADS.values() if n > 1)
        print(" ".join(f"{k}={v}" for k, v in sorted(counts.items())), flush=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
