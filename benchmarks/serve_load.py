"""A bounded load on `vitfer serve` over 127.0.0.1: throughput, latency percentiles and errors.

    python benchmarks/serve_load.py [--requests 2000] [--clients 8] [--detector yunet] [--backend auto] [--hostile 6]

With ``--hostile N`` the same load runs twice, first alone and then beside N hostile clients that
loop until it ends: image bombs (a PNG header claiming 30,000 x 30,000 pixels), slow uploads
(1 KB every 0.5 s), clients that hang up mid-upload, cross-origin posts from another page, clients that send
half a request line and stall, and chunked uploads of 64 MiB (the server should cut both off).
The table shows the normal clients' figures both ways, and what the server answered the hostile ones.

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
import struct
import tempfile
import time
import zlib
from collections import Counter
from typing import IO

import httpx
import numpy as np

from vitfer.shipped import EXAMPLE_IMAGE


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(port: int, args: argparse.Namespace, log: IO[str]) -> subprocess.Popen:
    command = [sys.executable, "-m", "vitfer.cli", "serve", "--port", str(port), "--detector", args.detector,
               "--backend", args.backend, "--max-concurrent", str(args.max_concurrent),
               "--read-timeout", str(args.read_timeout), "--workers", str(args.workers)]
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


def server_peak_rss(pid: int) -> float:
    """The server process's peak resident memory so far (MiB; the kernel's VmHWM), 0 if unknown."""
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def png_bomb(side: int = 30_000) -> bytes:
    """A valid PNG header (signature, IHDR with its CRC) claiming ``side`` x ``side`` pixels, and no pixels."""
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + header
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(header)) + chunk + struct.pack(">I", zlib.crc32(chunk))


async def slow_body(chunks: int = 400):
    for _ in range(chunks):
        yield b"\0" * 1024
        await asyncio.sleep(0.5)


async def stalled_headers(url: str) -> str:
    """Half a request line, then nothing: how the server ends it (it closes the connection at its deadline)."""
    host, port = url.removeprefix("http://").split(":")
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"POST /predict HT")
    await writer.drain()
    closed = await asyncio.wait_for(reader.read(1), timeout=60) == b""
    writer.close()
    return f"closed by the server after {time.perf_counter() - started:.0f} s" if closed else "answered"


async def chunked_over_limit(url: str) -> str:
    """A chunked multipart upload of 64 MiB: the server should answer 413 near its limit, not after all of it."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"POST /predict HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n"
                 "Content-Type: multipart/form-data; boundary=b\r\n\r\n".encode())
    sent = 0
    try:
        while sent < 64 * 1024 * 1024:
            writer.write(b"10000\r\n" + b"\xff" * 65536 + b"\r\n")
            await writer.drain()
            sent += 65536
            if reader.at_eof() or reader._buffer:  # noqa: SLF001 - an answer has arrived
                break
    except ConnectionError:
        pass
    answer = await asyncio.wait_for(reader.read(12), timeout=30)
    writer.close()
    return f"{answer.decode(errors='replace').strip()} after {sent // (1024 * 1024)} MiB sent"


async def hostile(url: str, image: bytes, stop: asyncio.Event, outcomes: Counter, kind: str) -> None:
    """One hostile client of the given kind, looping until ``stop``; each answer counted as 'kind: outcome'."""
    async with httpx.AsyncClient(timeout=30) as http:
        while not stop.is_set():
            try:
                if kind == "bomb":
                    reply = await http.post(url + "/predict", content=png_bomb(), headers={"content-type": "image/png"})
                elif kind == "cross-origin":
                    reply = await http.post(url + "/predict", content=image,
                                            headers={"content-type": "image/jpeg", "origin": "http://evil.example"})
                elif kind == "stalled-headers":
                    outcomes[f"{kind}: {await stalled_headers(url)}"] += 1
                    continue
                elif kind == "chunked-over-limit":
                    outcomes[f"{kind}: {(await chunked_over_limit(url)).split(' after ')[0]}"] += 1
                    continue
                elif kind == "slow":
                    reply = await http.post(url + "/predict", content=slow_body(),
                                            headers={"content-type": "image/jpeg", "content-length": str(400 * 1024)})
                else:  # hang up 0.2 s into an upload
                    await asyncio.wait_for(http.post(url + "/predict", content=slow_body(),
                                                     headers={"content-type": "image/jpeg",
                                                              "content-length": str(400 * 1024)}), timeout=0.2)
                    continue
                outcomes[f"{kind}: HTTP {reply.status_code}"] += 1
            except (asyncio.TimeoutError, ConnectionError):
                outcomes[f"{kind}: hung up"] += 1
            except asyncio.CancelledError:  # the load ended while this request was under way
                outcomes[f"{kind}: still under way when the load ended"] += 1
                raise
            except httpx.HTTPError as err:
                outcomes[f"{kind}: {type(err).__name__}"] += 1


async def load_beside_hostiles(url: str, image: bytes, args: argparse.Namespace, outcomes: Counter):
    stop = asyncio.Event()
    kinds = ["bomb", "slow", "disconnect", "cross-origin", "stalled-headers", "chunked-over-limit"]
    attackers = [asyncio.create_task(hostile(url, image, stop, outcomes, kinds[i % len(kinds)]))
                 for i in range(args.hostile)]
    try:
        return await run_load(url, image, args.requests, args.clients)
    finally:
        stop.set()
        for task in attackers:
            task.cancel()
        await asyncio.gather(*attackers, return_exceptions=True)


def table_row(label: str, args: argparse.Namespace, latencies: list[float], errors: list[str], elapsed: float) -> str:
    ms = np.array(latencies) * 1000
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return (f"| {label} | {args.requests} | {args.clients} | {elapsed:.1f} | {args.requests / elapsed:.1f} | {p50:.1f} | "
            f"{p95:.1f} | {p99:.1f} | {ms.max():.1f} | {len(errors)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--detector", default="yunet", help="haar | yunet | ssd | none")
    parser.add_argument("--detector-model", help="local detector file (else fetched by name)")
    parser.add_argument("--backend", default="auto", help="auto (the shipped ONNX file) | onnx | torch")
    parser.add_argument("--max-concurrent", type=int, default=2, help="the server's inference slots")
    parser.add_argument("--read-timeout", type=float, default=5.0, help="the server's upload time limit (s)")
    parser.add_argument("--hostile", type=int, default=0, help="hostile clients beside the load (0: none)")
    parser.add_argument("--workers", type=int, default=1, help="server processes (vitfer serve --workers)")
    args = parser.parse_args()

    image = EXAMPLE_IMAGE.read_bytes()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tempfile.TemporaryFile("w+")  # a file, not a pipe: a full pipe would stall the server
    server = start_server(port, args, log)
    outcomes: Counter = Counter()
    try:
        wait_healthy(url, server, log)
        asyncio.run(run_load(url, image, 2 * args.clients, args.clients))  # warm-up, not counted
        runs = [("alone", asyncio.run(run_load(url, image, args.requests, args.clients)))]
        if args.hostile:
            runs.append((f"beside {args.hostile} hostile clients",
                         asyncio.run(load_beside_hostiles(url, image, args, outcomes))))
        peak_rss = server_peak_rss(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)

    print(f"vitfer serve, default model, detector {args.detector}, backend {args.backend}, "
          f"{args.workers} worker process(es), {args.max_concurrent} inference slots each, read timeout {args.read_timeout:g} s, {os.cpu_count()} CPUs; "
          f"{len(image)}-byte JPEG, one face\n")
    print("| normal clients | requests | clients | seconds | requests/s | p50 (ms) | p95 (ms) | p99 (ms) | max (ms) "
          "| errors |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    errors_all = []
    for label, (latencies, errors, elapsed) in runs:
        print(table_row(label, args, latencies, errors, elapsed))
        errors_all += errors
    if len(runs) == 2:
        p99 = [np.percentile(np.array(r[1][0]) * 1000, 99) for r in runs]
        print(f"\np99 beside hostile clients / alone: {p99[1] / p99[0]:.2f}x\n")
        print("| hostile client: server's answer | count |\n|---|---|")
        for outcome, count in sorted(outcomes.items()):
            print(f"| {outcome} | {count} |")
    print(f"\nserver peak RSS after the run(s): {peak_rss:.0f} MiB (VmHWM; one worker process)")
    for message in sorted(set(errors_all))[:10]:
        print(f"error: {message}")
    sys.exit(1 if errors_all else 0)


if __name__ == "__main__":
    main()
