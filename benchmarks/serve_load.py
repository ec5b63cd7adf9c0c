"""A bounded load on `vitfer serve` over 127.0.0.1: throughput, latency percentiles and errors.

    python benchmarks/serve_load.py [--requests 2000] [--clients 8] [--detector yunet --detector-model PATH] [--backend torch]

Starts `vitfer serve` in its own process on a free port, waits for /health, then sends
`--requests` POST /predict requests (the bundled example photo, one face) from `--clients`
concurrent HTTP clients, and prints one Markdown table. Any non-200 answer, a reply without a
face, or a transport error counts as an error; the script exits 1 if there was any.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from typing import IO

import httpx
import numpy as np

from vitfer.inference.backends import EXAMPLE_IMAGE


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(port: int, args: argparse.Namespace, log: IO[str]) -> subprocess.Popen:
    command = [sys.executable, "-m", "vitfer.cli", "serve", "--port", str(port), "--detector", args.detector,
               "--backend", args.backend, "--max-concurrent", str(args.max_concurrent)]
    if args.detector_model:
        command += ["--detector-model", args.detector_model]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log, text=True)


def wait_healthy(url: str, server: subprocess.Popen, log: IO[str], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            log.seek(0)
            raise SystemExit(f"server exited with code {server.returncode}: {log.read()[-2000:]}")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"server at {url} not healthy after {timeout:.0f} s")


async def run_load(url: str, image: bytes, requests: int, clients: int) -> tuple[list[float], list[str], float]:
    latencies: list[float] = []
    errors: list[str] = []
    remaining = iter(range(requests))

    async def client(http: httpx.AsyncClient) -> None:
        for _ in remaining:
            start = time.perf_counter()
            try:
                reply = await http.post(url + "/predict", content=image, headers={"content-type": "image/jpeg"})
                if reply.status_code != 200:
                    errors.append(f"HTTP {reply.status_code}: {reply.text[:200]}")
                elif not reply.json()["faces"]:
                    errors.append("no face in reply")
            except httpx.HTTPError as err:
                errors.append(f"{type(err).__name__}: {err}")
            latencies.append(time.perf_counter() - start)

    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        start = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        elapsed = time.perf_counter() - start
    return latencies, errors, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--detector", default="yunet", help="haar | yunet | ssd | none")
    parser.add_argument("--detector-model", help="local detector file (else fetched by name)")
    parser.add_argument("--backend", default="torch", help="torch | onnx")
    parser.add_argument("--max-concurrent", type=int, default=2, help="the server's inference slots")
    args = parser.parse_args()

    image = EXAMPLE_IMAGE.read_bytes()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tempfile.TemporaryFile("w+")  # a file, not a pipe: a full pipe would stall the server
    server = start_server(port, args, log)
    try:
        wait_healthy(url, server, log)
        asyncio.run(run_load(url, image, 2 * args.clients, args.clients))  # warm-up, not counted
        latencies, errors, elapsed = asyncio.run(run_load(url, image, args.requests, args.clients))
    finally:
        server.terminate()
        server.wait(timeout=30)

    ms = np.array(latencies) * 1000
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    print(f"vitfer serve, default model, detector {args.detector}, backend {args.backend}, "
          f"{args.max_concurrent} inference slots, {os.cpu_count()} CPUs; {len(image)}-byte JPEG, one face\n")
    print("| requests | clients | seconds | requests/s | p50 (ms) | p95 (ms) | p99 (ms) | max (ms) | errors |")
    print("|---|---|---|---|---|---|---|---|---|")
    print(f"| {args.requests} | {args.clients} | {elapsed:.1f} | {args.requests / elapsed:.1f} | {p50:.1f} | "
          f"{p95:.1f} | {p99:.1f} | {ms.max():.1f} | {len(errors)} |")
    for message in sorted(set(errors))[:10]:
        print(f"error: {message}")
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
