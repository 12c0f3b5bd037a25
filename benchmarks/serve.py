"""Load test of ``tmt serve`` on 127.0.0.1: N requests from C concurrent clients, batched against
one at a time, side by side in one run. Prints throughput, p50/p95 latency and errors.

    python benchmarks/serve.py --requests 200 --clients 8 --direction text-image --threads 1

Each configuration starts its own ``tmt serve`` (the built-in bundle unless --model), warms it
with a few requests, then runs the load; the server's torch threads are --threads.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

from tmt.paths import EXAMPLES

CAPTIONS = ["a small red circle on the left", "a large blue star on the right",
            "a small green square at the top", "a large yellow cross below a small black hexagon",
            "a small white triangle above a large purple diamond", "a large orange heart in the middle"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def multipart(fields: dict[str, str], file: tuple[str, bytes, str] | None) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                     f"{value}\r\n".encode())
    if file is not None:
        filename, data, kind = file
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                     f'filename="{filename}"\r\nContent-Type: {kind}\r\n\r\n'.encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def request_body(direction: str, k: int) -> tuple[bytes, str]:
    source, target = direction.split("-")
    fields = {"source": source, "target": target}
    if source == "text":
        return multipart({**fields, "text": CAPTIONS[k % len(CAPTIONS)]}, None)
    name = {"speech": ("speech.wav", "audio/wav"), "image": ("image.png", "image/png")}[source]
    return multipart(fields, (name[0], (EXAMPLES / name[0]).read_bytes(), name[1]))


def ask(url: str, body: bytes, kind: str) -> tuple[float, bool]:
    started = time.perf_counter()
    request = urllib.request.Request(url + "translate", data=body, headers={"Content-Type": kind})
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            response.read()
            ok = response.status == 200
    except (urllib.error.URLError, OSError):
        ok = False
    return time.perf_counter() - started, ok


def run(args: argparse.Namespace, max_batch: int) -> dict[str, float]:
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    server = subprocess.Popen(
        [sys.executable, "-m", "tmt", "serve", "--model", args.model, "--port", str(port),
         "--threads", str(args.threads), "--max-batch", str(max_batch),
         "--batch-window-ms", str(args.window_ms)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(1200):
            try:
                urllib.request.urlopen(url + "health", timeout=1).read()
                break
            except OSError:
                if server.poll() is not None:
                    raise SystemExit(server.stderr.read().decode() if server.stderr else "failed") from None
                time.sleep(0.1)
        bodies = [request_body(args.direction, k) for k in range(args.requests)]
        for body, kind in bodies[:4]:  # warm-up
            ask(url, body, kind)
        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(args.clients) as pool:
            results = list(pool.map(lambda b: ask(url, *b), bodies))
        wall = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(30)
    latencies = sorted(seconds for seconds, _ in results)
    return {"requests/s": len(results) / wall, "p50 s": statistics.median(latencies),
            "p95 s": latencies[int(0.95 * (len(latencies) - 1))],
            "errors": sum(not ok for _, ok in results), "wall s": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--direction", default="text-image",
                        help="source-target; speech and image inputs are the built-in examples")
    parser.add_argument("--threads", type=int, default=1, help="the server's torch threads")
    parser.add_argument("--max-batch", type=int, default=8, help="the batched configuration's cap")
    parser.add_argument("--window-ms", type=float, default=10.0)
    parser.add_argument("--model", default="shapes")
    args = parser.parse_args()
    print(f"{args.requests} requests {args.direction}, {args.clients} clients, server threads "
          f"{args.threads}, load average {os.getloadavg()[0]:.2f} (before)")
    rows = {}
    for label, max_batch in ((f"batched (max {args.max_batch})", args.max_batch), ("one at a time", 1)):
        rows[label] = run(args, max_batch)
    print(f"load average {os.getloadavg()[0]:.2f} (after)")
    print("| server | requests/s | p50 latency s | p95 latency s | errors |\n| --- | ---: | ---: | ---: | ---: |")
    for label, row in rows.items():
        print(f"| {label} | {row['requests/s']:.2f} | {row['p50 s']:.2f} | {row['p95 s']:.2f} | "
              f"{int(row['errors'])} |")
    labels = list(rows)
    print(f"throughput ratio batched / one at a time: "
          f"{rows[labels[0]]['requests/s'] / rows[labels[1]]['requests/s']:.2f}x")


if __name__ == "__main__":
    main()
