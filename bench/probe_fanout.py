"""Probe fan-out: 200 HTTP services on one local server, each answering after 300 ms.

Targets (issue 2): the whole round takes at most 1.3 x the slowest probe, and every reported latency is within
20 % of 300 ms (a probe that measured its own queueing would report more). Baseline in the same run: the same
200 probes one after another. Prints figures and ratios; asserts nothing.

    python bench/probe_fanout.py [--services 200] [--delay-ms 300] [--sequential N]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bot.config import parse_config
from bot.status import check_status, to_probe_target
from probes.http import build_http_client
from probes.rounds import Prober

# A minimal asyncio HTTP server, so the figures show the probe's overhead and not a framework's: it reads the
# request head, waits the delay, answers 200 and closes.
SERVER_CODE = """
import asyncio, sys
delay = float(sys.argv[2]) / 1000
async def handle(reader, writer):
    try:
        await reader.readuntil(b"\\r\\n\\r\\n")
    except asyncio.IncompleteReadError:  # the bench's readiness check connects and leaves
        writer.close()
        return
    await asyncio.sleep(delay)
    writer.write(b"HTTP/1.1 200 OK\\r\\ncontent-length: 2\\r\\nconnection: close\\r\\n\\r\\nok")
    await writer.drain()
    writer.close()
async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", int(sys.argv[1]), backlog=4096)
    async with server:
        await server.serve_forever()
asyncio.run(main())
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_listening(port: int, deadline_s: float = 15) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"bench server did not start on port {port}")


def config_text(port: int, services: int) -> str:
    blocks = [
        f'[services.svc{i:03d}]\nkind = "http"\nurl = "http://127.0.0.1:{port}/svc{i:03d}/health"\n'
        f"degraded_ms = 5000\ntimeout_s = 10\n"
        for i in range(services)
    ]
    return '[environment]\nname = "bench"\n\n' + "\n".join(blocks)


async def raw_request_ms(port: int, path: str) -> float:
    """Time one request with bare asyncio sockets: the floor any client could reach on this loop."""
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
    await reader.read()
    writer.close()
    return (time.perf_counter() - started) * 1000


async def run(port: int, services: int, delay_ms: float, sequential: int) -> None:
    config = parse_config(config_text(port, services), source="bench", environ={}, base_dir=Path("."))
    await check_status(config, only={"svc000", "svc001"})  # warm-up: imports, TLS context, first connections

    report = await check_status(config)
    latencies = [s.latency_ms for s in report.services if s.latency_ms is not None]
    up = sum(1 for s in report.services if s.state.value == "up")
    slowest = max(latencies)
    low, high = delay_ms * 0.8, delay_ms * 1.2
    outside = [x for x in latencies if not low <= x <= high]
    round_ms = report.elapsed_ms

    raw = await asyncio.gather(*(raw_request_ms(port, f"/svc{i:03d}/health") for i in range(services)))

    targets = [to_probe_target(s) for s in list(config.services.values())[:sequential]]
    async with build_http_client() as client:
        prober = Prober(client)
        started = time.perf_counter()
        for target in targets:
            await prober.probe(target)
        sequential_ms = (time.perf_counter() - started) * 1000
    sequential_full_ms = sequential_ms * services / max(1, sequential)

    print(f"services: {services}, each answering after {delay_ms:.0f} ms; {up}/{services} up")
    print(f"concurrent round: {round_ms:,.0f} ms; slowest probe {slowest:,.0f} ms")
    print(f"  ratio round / slowest probe: {round_ms / slowest:.3f}  (target <= 1.3)")
    print(
        f"  reported latency: min {min(latencies):.0f} / p50 {statistics.median(latencies):.0f} / "
        f"max {max(latencies):.0f} ms; {len(outside)} outside {low:.0f}-{high:.0f} ms (target 0)"
    )
    print(
        f"baseline, bare sockets, same fan-out: min {min(raw):.0f} / p50 {statistics.median(raw):.0f} / "
        f"max {max(raw):.0f} ms; probe p50 / bare p50: {statistics.median(latencies) / statistics.median(raw):.3f}"
    )
    label = "sequential" if sequential == services else f"sequential ({sequential} measured, scaled to {services})"
    print(f"{label}: {sequential_full_ms:,.0f} ms")
    print(f"  ratio sequential / concurrent: {sequential_full_ms / round_ms:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--services", type=int, default=200)
    parser.add_argument("--delay-ms", type=float, default=300)
    parser.add_argument("--sequential", type=int, default=None, help="probes to time sequentially (default: all)")
    args = parser.parse_args()
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER_CODE, str(port), str(args.delay_ms)])
    try:
        wait_until_listening(port)
        asyncio.run(run(port, args.services, args.delay_ms, args.sequential or args.services))
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
