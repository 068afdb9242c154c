"""Where one connection's receive time goes: the floor, the bare iterator, ours.

``run.py`` compares clients in separate processes, where the machine's noise between two
processes is often larger than the gap being measured. This script runs three receive loops
in one process, interleaved, against one ``server.py`` flood, so each ratio is a pair of runs
seconds apart on the same heap:

- ``floor``: ``clients.Floor`` (``await ws.receive()``, generic ``msgspec`` decode, count);
- ``iterator``: the same socket loop written as the least an ``async for`` over aiohttp can
  be: an async generator that awaits ``ws.receive()``, decodes, and yields, with nothing
  else (no session rules, no counters, no hand-over between tasks);
- ``ours``: ``clients.OursAsync`` (``async for msg in conn`` on deepgram_agent).

``iterator / floor`` is what the ``async for`` protocol itself costs on top of aiohttp's
``receive()`` (a resume and a yield per item); ``ours / iterator`` is what the SDK adds on top
of that. Usage: ``python benchmarks/anatomy.py [--rounds 12] [--events 200000]``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import clients
import msgspec
from _common import FLOOD
from run import start_server, stop_server

TEXT = aiohttp.WSMsgType.TEXT
BINARY = aiohttp.WSMsgType.BINARY


async def _bare_items(ws: aiohttp.ClientWebSocketResponse) -> AsyncIterator[Any]:
    receive = ws.receive
    decode = msgspec.json.Decoder().decode
    while True:
        msg = await receive()
        kind = msg.type
        if kind is TEXT:
            yield decode(msg.data)
        elif kind is BINARY:
            yield msg.data
        else:
            return


async def iterator_recv(base: str, n: int) -> float:
    """CPU seconds for the flood, read through the bare async generator."""
    async with aiohttp.ClientSession() as session:
        ws = await clients._floor_open(session, base, FLOOD, n)
        await ws.send_str(clients.KEEPALIVE_TEXT)
        texts = binaries = 0
        start = time.process_time()
        async for msg in _bare_items(ws):
            if type(msg) is bytes:
                binaries += 1
            else:
                texts += 1
        cpu = time.process_time() - start
        await ws.close()
    if texts != n or binaries != n:
        raise SystemExit(f"iterator: got {texts} events and {binaries} frames, sent {n} + {n}")
    return cpu


async def floor_recv(base: str, n: int) -> float:
    result = await clients.Floor(decode=True).recv(base, n)
    return float(result["cpu_s"])


async def ours_recv(base: str, n: int) -> float:
    result = await clients.OursAsync().recv(base, n)
    if result["texts"] != n or result["binaries"] != n:
        raise SystemExit(f"ours: got {result['texts']} + {result['binaries']}, sent {n} + {n}")
    return float(result["cpu_s"])


LOOPS = {"floor": floor_recv, "iterator": iterator_recv, "ours": ours_recv}


async def measure(base: str, rounds: int, n: int) -> dict[str, list[float]]:
    cpu: dict[str, list[float]] = {name: [] for name in LOOPS}
    order = list(LOOPS)
    for k in range(rounds):
        for name in order if k % 2 == 0 else reversed(order):
            cpu[name].append(await LOOPS[name](base, n))
    return cpu


def report(cpu: dict[str, list[float]], n: int) -> None:
    per_msg = {name: statistics.median(v) / (2 * n) * 1e9 for name, v in cpu.items()}
    print(f"{len(cpu['floor'])} interleaved rounds, {n} events + {n} audio frames each")
    print("| loop | CPU ns per message (median) | rate vs floor: floor CPU / its CPU (pairs) |")
    print("|---|---:|---:|")
    for name, values in cpu.items():
        ratios = sorted(f / v for f, v in zip(cpu["floor"], values, strict=True))
        spread = f"{statistics.median(ratios):.2f}x ({ratios[0]:.2f}-{ratios[-1]:.2f})"
        print(f"| {name} | {per_msg[name]:.0f} | {spread} |")
    steps = [("iterator", "floor"), ("ours", "iterator")]
    for a, b in steps:
        extra = sorted((x - y) / (2 * n) * 1e9 for x, y in zip(cpu[a], cpu[b], strict=True))
        print(f"{a} - {b}: {statistics.median(extra):+.0f} ns per message (median of pairs)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=12, help="interleaved rounds (default 12)")
    p.add_argument("--events", type=int, default=200_000, help="events (and audio frames) per run")
    args = p.parse_args()
    proc, base = start_server()
    try:
        cpu = asyncio.run(measure(base, args.rounds, args.events))
    finally:
        stop_server(proc)
    report(cpu, args.events)


if __name__ == "__main__":
    main()
