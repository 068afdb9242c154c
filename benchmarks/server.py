"""The bench server: a Voice Agent look-alike built to be faster than any client it serves.

Run by ``run.py`` in a process of its own; prints ``READY ws://127.0.0.1:PORT`` once listening.
Every session has the real handshake shape (``Welcome`` first, wait for ``Settings``, answer
``SettingsApplied``), compression (permessage-deflate) is never negotiated, and the mode is
the start of the path (``/<mode>/<n>/v1/agent/converse``):

* ``flood``: after the client's first message (its "go"), send ``n`` JSON events of the
  realistic mix interleaved with ``n`` binary audio frames of 960 bytes, as fast as the socket
  takes them, then close with 1000. The frames are encoded once per ``n`` and written straight
  to the transport (with flow control), so the server costs almost no CPU.
* ``latency``: after "go", send ``n`` ``ConversationText`` messages ~1 ms apart, each carrying
  ``time.perf_counter_ns()`` taken just before the write (CLOCK_MONOTONIC, shared by every
  process of the machine) in ``content``, then close.
* ``sink``: count the client's binary frames until a text frame containing ``bench-done``,
  answer ``ConversationText`` with ``"<frames> <bytes>"`` in ``content``, then close.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import time

from _common import (
    AGENT_PATH,
    EVENT_FRAMES,
    FLOOD,
    LATENCY,
    LATENCY_PREFIX,
    LATENCY_SUFFIX,
    SINK,
    SINK_DONE,
    flood_stream,
    frame_header,
)
from aiohttp import WSMsgType, web

WELCOME = b'{"type":"Welcome","request_id":"7e1c4a92-35b0-4d8e-a1f6-0c93b2d57e10"}'
SETTINGS_APPLIED = b'{"type":"SettingsApplied"}'
CHUNK = 64 * 1024
#: Events per pre-encoded flood cycle (a multiple of the mix length, so cycles repeat exactly).
CYCLE_EVENTS = len(EVENT_FRAMES) * 50
LATENCY_SPACING_S = 0.001
#: How long ``close()`` waits for the client's close frame. A slow client still has the whole
#: flood to read before it sees ours; giving up earlier would reset the socket and lose data.
CLOSE_TIMEOUT_S = 600.0


class BenchServer:
    """The aiohttp application and the pre-encoded floods it serves."""

    def __init__(self) -> None:
        self._cycle = flood_stream(CYCLE_EVENTS)
        self._tails: dict[int, bytes] = {}
        self.app = web.Application()
        self.app.router.add_get(r"/{mode}/{n:\d+}" + AGENT_PATH, self.handle)

    def _flood_parts(self, n: int) -> list[bytes]:
        """The flood of ``n`` events as pre-encoded parts (whole cycles, then the rest)."""
        cycles, rest = divmod(n, CYCLE_EVENTS)
        tail = self._tails.get(rest)
        if tail is None:
            tail = self._tails[rest] = flood_stream(rest)
        return [self._cycle] * cycles + [tail]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """One agent session."""
        mode = request.match_info["mode"]
        n = int(request.match_info["n"])
        if mode not in (FLOOD, LATENCY, SINK):
            raise web.HTTPNotFound(text=f"unknown bench mode {mode!r}")
        ws = web.WebSocketResponse(
            timeout=CLOSE_TIMEOUT_S, compress=False, autoping=True, max_msg_size=16 * 1024 * 1024
        )
        await ws.prepare(request)
        await ws.send_frame(WELCOME, WSMsgType.TEXT)
        first = await ws.receive()
        if first.type is not WSMsgType.TEXT or '"Settings"' not in first.data:
            await ws.close(code=1008, message=b"expected Settings first")
            return ws
        parts = self._flood_parts(n) if mode == FLOOD else []  # encoded before the clock starts
        await ws.send_frame(SETTINGS_APPLIED, WSMsgType.TEXT)
        if mode == SINK:
            await self._sink(ws)
        else:
            go = await ws.receive()
            if go.type is not WSMsgType.TEXT:
                return ws  # the client went away
            if mode == FLOOD:
                await self._flood(request, parts)
            else:
                await self._latency(request, n)
        await ws.close()
        return ws

    async def _flood(self, request: web.Request, parts: list[bytes]) -> None:
        transport = request.transport
        if transport is None:
            return
        writer = request.writer
        for part in parts:
            data = memoryview(part)
            for offset in range(0, len(data), CHUNK):
                if transport.is_closing():
                    return
                transport.write(data[offset : offset + CHUNK])
                await writer.drain()

    async def _latency(self, request: web.Request, n: int) -> None:
        transport = request.transport
        if transport is None:
            return
        writer = request.writer
        clock = time.perf_counter_ns
        for _ in range(n):
            if transport.is_closing():
                return
            payload = LATENCY_PREFIX + str(clock()).encode() + LATENCY_SUFFIX
            transport.write(frame_header(0x1, len(payload)) + payload)
            await writer.drain()
            await asyncio.sleep(LATENCY_SPACING_S)

    async def _sink(self, ws: web.WebSocketResponse) -> None:
        frames = 0
        size = 0
        async for msg in ws:
            if msg.type is WSMsgType.BINARY:
                frames += 1
                size += len(msg.data)
            elif msg.type is WSMsgType.TEXT and SINK_DONE in msg.data:
                break
        reply = f'{{"type":"ConversationText","role":"assistant","content":"{frames} {size}"}}'
        with contextlib.suppress(ConnectionError):
            await ws.send_frame(reply.encode(), WSMsgType.TEXT)


async def serve(host: str, port: int) -> None:
    """Serve until SIGTERM or SIGINT."""
    server = BenchServer()
    runner = web.AppRunner(server.app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=4096, reuse_address=True)
    await site.start()
    bound = runner.addresses[0][1]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"READY ws://{host}:{bound}", flush=True)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main() -> None:
    """Command line: ``python benchmarks/server.py [--host H] [--port P]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
