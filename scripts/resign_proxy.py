#!/usr/bin/env python3
"""Re-signs requests for moto's IAM enforcement (tests/permissions.rs only).

moto checks SigV4 signatures by rebuilding each request with botocore's canonical form. For
form-encoded bodies it rebuilds the body from the parsed fields, so a request from another
SDK that encodes a field differently (the Rust SDK escapes the JSON of an IAM policy
document more than botocore does) fails with SignatureDoesNotMatch although it was signed
correctly. This proxy, which knows the test users' secrets (--keys file: {"AKID": "secret"}),
re-encodes such bodies the way botocore does and signs the request again with the same key,
date, region and service. Who is calling, and therefore which IAM policy moto applies, does
not change. Run with moto's own Python (it needs botocore).

    resign_proxy.py --listen 127.0.0.1:PORT --target 127.0.0.1:MOTO --keys keys.json \
        [--cloudfront-target 127.0.0.1:MOTO2]

Under IAM enforcement moto rejects every CloudFront request as SignatureDoesNotMatch, botocore's
own too; with --cloudfront-target, CloudFront's requests (credential scope service
`cloudfront`) go unchanged to a moto that does not enforce IAM.
"""
import argparse
import http.client
import json
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlencode

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

COUNTS = {"requests": 0, "resigned": 0}
DEBUG = bool(__import__("os").environ.get("RESIGN_DEBUG"))


def between(first, second, text):
    return text.partition(first)[2].partition(second)[0]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        COUNTS["requests"] += 1
        headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
        auth = self.headers.get("Authorization", "")
        akid = between("Credential=", "/", auth)
        if akid and akid not in KEYS:
            load_keys()  # the test adds users as it goes
        scope = between("Credential=", ",", auth).split("/")
        if CLOUDFRONT and len(scope) > 3 and scope[3] == "cloudfront":
            return self.forward(CLOUDFRONT, body, headers)
        if akid in KEYS:
            region, service = scope[2], scope[3]
            if self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
                body = urlencode(parse_qsl(body.decode(), keep_blank_values=True)).encode()
                for k in [k for k in headers if k.lower() == "content-length"]:
                    headers[k] = str(len(body))
            elif not body and service != "s3":
                # moto signs an empty body as if it were its parsed parameters (for REST
                # calls, the headers): give it a body that is its own encoding, "{}".
                body = b"{}"
                if not any(k.lower() == "content-length" for k in headers):
                    headers["Content-Length"] = "2"
                for k in [k for k in headers if k.lower() == "content-length"]:
                    headers[k] = "2"
            signed = between("SignedHeaders=", ",", auth).split(";")
            request = AWSRequest(method=self.command, url="http://" + self.headers["Host"] + self.path,
                                 data=body, headers={k: v for k, v in headers.items() if k.lower() in signed})
            request.context["timestamp"] = self.headers["X-Amz-Date"]
            signer = SigV4Auth(Credentials(akid, KEYS[akid], self.headers.get("X-Amz-Security-Token")),
                               service, region)
            canonical = signer.canonical_request(request)
            signature = signer.signature(signer.string_to_sign(request, canonical), request)
            if DEBUG and signature != between("Signature=", ",", auth + ","):
                print("differs:", self.command, self.path, repr(canonical), file=sys.stderr, flush=True)
            for k in [k for k in headers if k.lower() == "authorization"]:
                headers[k] = auth.replace("Signature=" + between("Signature=", ",", auth + ","),
                                          "Signature=" + signature)
            COUNTS["resigned"] += 1
        self.forward((TARGET_HOST, TARGET_PORT), body, headers)

    def forward(self, target, body, headers):
        conn = http.client.HTTPConnection(target[0], target[1], timeout=60)
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        payload = resp.read()
        conn.close()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(k, v)
        length = resp.getheader("Content-Length") if self.command == "HEAD" else None
        self.send_header("Content-Length", str(length if length is not None else len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = handle_any


def load_keys():
    global KEYS
    try:
        with open(KEYS_FILE) as f:
            KEYS = json.load(f)
    except (OSError, ValueError):
        pass  # being rewritten: the next request reads it again


def main():
    global KEYS, KEYS_FILE, TARGET_HOST, TARGET_PORT, CLOUDFRONT
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--keys", required=True)
    ap.add_argument("--cloudfront-target")
    a = ap.parse_args()
    KEYS, KEYS_FILE = {}, a.keys
    load_keys()
    TARGET_HOST, port = a.target.rsplit(":", 1)
    TARGET_PORT = int(port)
    CLOUDFRONT = None
    if a.cloudfront_target:
        cf_host, cf_port = a.cloudfront_target.rsplit(":", 1)
        CLOUDFRONT = (cf_host, int(cf_port))
    host, port = a.listen.rsplit(":", 1)
    server = ThreadingHTTPServer((host, int(port)), Handler)
    server.daemon_threads = True

    def stop(*_):
        print(json.dumps(COUNTS), flush=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
