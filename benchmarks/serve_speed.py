"""Requests/s and latency of `nmt serve` at several client counts, against `nmt translate`.

    python benchmarks/serve_speed.py --model runs/multi30k_de_en \
        --source ../shared/data/multi30k/test_2016_flickr.de.gz --lines 500 \
        --clients 1 --clients 8 --clients 64

Starts `nmt serve` in its own process on 127.0.0.1, then, for each client count, sends
every line as its own request to POST /api/translate from that many concurrent clients
(threads of this process, one connection per request) and records each request's
latency. Reports the median over --repeat runs of requests/s, with the p50 and p99
latency of that median run. The reference is the library call `nmt translate` makes,
`Translator.translate` on all the lines at once (model loading excluded), in this
process. Both sides use the same device, threads and the model's decode settings.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import http.client
import json
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from nmt.data.corpus import read_lines
from nmt.decode.translate import Translator

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ask(port: int, line: str) -> float:
    """Seconds for one translation request (its answer checked)."""
    start = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    conn.request(
        "POST", "/api/translate", json.dumps({"text": line}), {"Content-Type": "application/json"}
    )
    response = conn.getresponse()
    body = response.read()
    conn.close()
    if response.status != 200:
        raise RuntimeError(f"{response.status}: {body[:200]!r}")
    return time.perf_counter() - start


def start_server(args) -> tuple[subprocess.Popen, int]:
    port = free_port()
    command = [sys.executable, "-c", "from nmt.cli.main import main; main()", "serve"]
    command += ["--model", args.model, "--port", str(port), "--device", args.device]
    command += ["--max-wait-ms", str(args.max_wait_ms)]
    if args.threads:
        command += ["--threads", str(args.threads)]
    process = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return process, port
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("nmt serve did not start")


def measure_clients(port: int, lines: list[str], clients: int, repeat: int) -> dict:
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(clients) as pool:
            latencies = sorted(pool.map(lambda line: ask(port, line), lines))
        wall = time.perf_counter() - start
        runs.append((len(lines) / wall, latencies))
    runs.sort(key=lambda run: run[0])
    rate, latencies = runs[len(runs) // 2]
    return {
        "requests_per_second": round(rate, 1),
        "p50_ms": round(1000 * latencies[len(latencies) // 2], 1),
        "p99_ms": round(1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 1),
        "runs_requests_per_second": [round(r, 1) for r, _ in runs],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--source", required=True)
    parser.add_argument("--lines", type=int, default=500, help="the first N lines")
    parser.add_argument("--clients", type=int, action="append")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    args = parser.parse_args()
    lines = [line for line in read_lines(Path(args.source))[: args.lines]]
    if args.threads:
        torch.set_num_threads(args.threads)

    translator = Translator.load(args.model, args.device)
    translator.translate(lines[:20])  # warm-up
    walls = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        translator.translate(lines)
        walls.append(time.perf_counter() - start)
    del translator
    reference = {"lines_per_second": round(len(lines) / statistics.median(walls), 1)}

    process, port = start_server(args)
    try:
        ask(port, lines[0])  # warm-up
        served = {
            str(c): measure_clients(port, lines, c, args.repeat) for c in args.clients or [1, 8, 64]
        }
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
    print(
        json.dumps(
            {
                "model": args.model,
                "source": args.source,
                "lines": len(lines),
                "device": args.device,
                "threads": torch.get_num_threads(),
                "max_wait_ms": args.max_wait_ms,
                "nmt_translate": reference,
                "serve_by_clients": served,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
