#!/usr/bin/env python3
"""Cold start of the lambda-image binary: time from spawning the process to its first
GET /2018-06-01/runtime/invocation/next on a Runtime API served here (never answered; the
process is killed after the request arrives).

usage: cold_start.py [BINARY] [--runs N]      (default target/release/lambda-image, 20 runs)
"""
import os
import socket
import statistics
import subprocess
import sys
import time


def one(binary):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    env = {
        "PATH": "/usr/bin:/bin",
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}",
        "AWS_LAMBDA_FUNCTION_NAME": "thumbs",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_EC2_METADATA_DISABLED": "true",
        "DEST_BUCKET": "dest",
        "TABLE_NAME": "table",
        "TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:t",
        "THUMB_SIZES": "256,1024",
    }
    t0 = time.perf_counter()
    p = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    srv.settimeout(10)
    conn, _ = srv.accept()
    buf = b""
    while b"\r\n" not in buf:
        chunk = conn.recv(4096)
        if not chunk:
            break
        buf += chunk
    t1 = time.perf_counter()
    p.kill()
    p.wait()
    conn.close()
    srv.close()
    line = buf.split(b"\r\n", 1)[0].decode(errors="replace")
    if not line.startswith("GET /2018-06-01/runtime/invocation/next"):
        raise SystemExit(f"unexpected first request: {line!r}")
    return (t1 - t0) * 1e3


def main():
    args = sys.argv[1:]
    runs = 20
    if "--runs" in args:
        i = args.index("--runs")
        runs = int(args[i + 1])
        del args[i : i + 2]
    binary = args[0] if args else "target/release/lambda-image"
    one(binary)  # warm the page cache
    ms = sorted(one(binary) for _ in range(runs))
    print(f"{binary}: process start -> first GET /next, {runs} runs: "
          f"median {statistics.median(ms):.1f} ms, min {ms[0]:.1f} ms, max {ms[-1]:.1f} ms")


if __name__ == "__main__":
    main()
