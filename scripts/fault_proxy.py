#!/usr/bin/env python3
"""A fault-injecting HTTP proxy in front of the AWS emulator, for the retry tests.

On a seeded random fraction of requests it answers as AWS does when it throttles (each
protocol's real throttling status and error body), or with HTTP 500/503, or resets the
connection, and it can add latency. Everything else is forwarded to the target unchanged.
Which requests fail is random; the kinds of --kinds are given in turn, so any run with at
least as many faults as kinds meets every kind.

    fault_proxy.py --listen 127.0.0.1:PORT --target 127.0.0.1:MOTO --rate 0.1 [--seed 1]
                   [--latency-ms 0] [--kinds throttle,500,503,reset] [--match REGEX] [--log]

--match makes faults certain instead of random: every request whose description matches REGEX
(a Python regular expression, searched in "METHOD PATH [X-Amz-Target] [Action=Name]", e.g.
"POST / DynamoDB_20120810.CreateTable" or "POST / Action=CreateTopic") gets the first fault
of --kinds, every time; --rate still applies to the other requests (give 0 for none).
--log prints each request's description, and its fault if any, to stderr.

On exit (SIGTERM/SIGINT) it prints on one line the number of requests, of random faults
(random=N), of matched requests (matched=N, with --match) and of each kind of fault injected.
"""
import argparse
import http.client
import random
import re
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COUNTS = {"requests": 0, "random": 0}
LOCK = threading.Lock()


def protocol(handler, body):
    """Which AWS wire protocol a request uses, from what the SDK sends."""
    if handler.headers.get("X-Amz-Target"):
        return "json"
    path = handler.path
    if path.startswith("/2015-03-31/") or path.startswith("/2019-09-25/") or path.startswith("/2017-03-31/"):
        return "rest-json"  # Lambda
    if b"Action=" in body[:200] and handler.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
        return "query"  # IAM, STS, SNS
    return "s3"


def describe(handler, body):
    """The call a request makes, on one line, for --match and --log."""
    parts = [handler.command, handler.path]
    target = handler.headers.get("X-Amz-Target")
    if target:
        parts.append(target)
    if protocol(handler, body) == "query":
        action = re.search(rb"(?:^|&)Action=([A-Za-z0-9]+)", body)
        if action:
            parts.append("Action=" + action.group(1).decode())
    return " ".join(parts)


def throttle(proto):
    """(status, headers, body) of AWS's throttling answer in each protocol."""
    if proto == "json":
        return 400, {"Content-Type": "application/x-amz-json-1.1"}, b'{"__type":"ThrottlingException","message":"Rate exceeded"}'
    if proto == "rest-json":
        return 429, {"Content-Type": "application/json", "x-amzn-ErrorType": "TooManyRequestsException"}, \
            b'{"Type":"User","message":"Rate exceeded","Reason":"CallerRateLimitExceeded"}'
    if proto == "query":
        return 400, {"Content-Type": "text/xml"}, (
            b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message>"
            b"</Error><RequestId>fault-proxy</RequestId></ErrorResponse>")
    return 503, {"Content-Type": "application/xml"}, (
        b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
        b"<Message>Please reduce your request rate.</Message><RequestId>fault-proxy</RequestId></Error>")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        call = describe(self, body)
        with LOCK:
            COUNTS["requests"] += 1
            if MATCH is not None and MATCH.search(call):
                COUNTS["matched"] += 1
                kind = KINDS[0]
            else:
                kind = None
                if RNG.random() < RATE:
                    kind = KINDS[COUNTS["random"] % len(KINDS)]
                    COUNTS["random"] += 1
            if kind:
                COUNTS[kind] = COUNTS.get(kind, 0) + 1
        if LOG:
            sys.stderr.write(f"{call} -> {kind or 'forwarded'}\n")
            sys.stderr.flush()
        if LATENCY:
            time.sleep(LATENCY)
        if kind == "reset":
            self.close_connection = True
            try:
                self.connection.shutdown(2)
            except OSError:
                pass
            return
        if kind == "throttle":
            status, headers, payload = throttle(protocol(self, body))
            return self.answer(status, headers, payload)
        if kind in ("500", "503"):
            return self.answer(int(kind), {"Content-Type": "text/plain"}, b"injected fault")
        conn = http.client.HTTPConnection(TARGET_HOST, TARGET_PORT, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection",)}
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        payload = resp.read()
        out = {k: v for k, v in resp.getheaders() if k.lower() not in ("transfer-encoding", "connection", "content-length")}
        self.answer(resp.status, out, payload, head=self.command == "HEAD", length=resp.getheader("Content-Length"))
        conn.close()

    def answer(self, status, headers, payload, head=False, length=None):
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(length if head and length is not None else len(payload)))
        self.end_headers()
        if not head:
            self.wfile.write(payload)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = handle_any


def main():
    global RNG, RATE, KINDS, LATENCY, TARGET_HOST, TARGET_PORT, MATCH, LOG
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--rate", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--latency-ms", type=float, default=0)
    ap.add_argument("--kinds", default="throttle,500,503,reset")
    ap.add_argument("--match", help="regular expression: matching calls always get the first kind")
    ap.add_argument("--log", action="store_true", help="print every call and its fault to stderr")
    a = ap.parse_args()
    MATCH, LOG = (re.compile(a.match) if a.match else None), a.log
    if MATCH is not None:
        COUNTS["matched"] = 0
    RNG, RATE, KINDS, LATENCY = random.Random(a.seed), a.rate, a.kinds.split(","), a.latency_ms / 1000
    TARGET_HOST, port = a.target.rsplit(":", 1)
    TARGET_PORT = int(port)
    host, port = a.listen.rsplit(":", 1)
    server = ThreadingHTTPServer((host, int(port)), Handler)
    server.daemon_threads = True

    def stop(*_):
        print(" ".join(f"{k}={v}" for k, v in sorted(COUNTS.items())), flush=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
