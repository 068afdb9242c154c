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
* ``calls``: a phone call. From the client's first audio frame on, the session is served by
  the one shared 20 ms ticker (:class:`Ticker`): agent audio (160-byte mu-law frames) on the
  ticks of its speaking periods (2 s on, 1 s off) and one JSON event every 500 ms stamped with
  ``time.monotonic_ns()`` at the write (``_common.CALL_EVENTS``; one of them a client-side
  ``FunctionCallRequest``). It counts the client's frames and ``FunctionCallResponse``s. On
  ``bench-done`` it stops sending and reports its counts in a ``ConversationText``
  (``bench-report {json}``); on the client's ``bench-answered`` it reports the function-call
  answers it got (``bench-answers {json}``) and closes (``_common.CALL_REPORT_PREFIX``).
  ``GET /calls-stats`` returns (and with ``?reset=1`` restarts) the ticker's lag and the
  server's CPU time since the last reset.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import time

from _common import (
    AGENT_PATH,
    CALL_ANSWERED,
    CALL_ANSWERS_PREFIX,
    CALL_CYCLE_TICKS,
    CALL_EVENT_TICKS,
    CALL_EVENT_WIRE,
    CALL_FRAME,
    CALL_FUNCTION_SLOT,
    CALL_PERIOD_NS,
    CALL_REPORT_PREFIX,
    CALL_SPEAK_TICKS,
    CALLS,
    EVENT_FRAMES,
    FLOOD,
    LATENCY,
    LATENCY_PREFIX,
    LATENCY_SUFFIX,
    SINK,
    SINK_DONE,
    Histogram,
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
#: Agent audio of a call, one frame, encoded once.
CALL_AUDIO_WIRE = frame_header(0x2, len(CALL_FRAME)) + CALL_FRAME
#: A call whose client reads nothing for this much buffered output is dropped (a stalled
#: client; at 8 kB/s per call this is minutes of backlog, so only a hung client gets here).
CALL_STALL_BYTES = 1 << 20
#: Spreads the calls' cycles over the ticks (a prime, so serials map to distinct phases).
CALL_PHASE_STEP = 37
#: The ticker serves one of this many groups of calls every 20 ms / CALL_GROUPS.
CALL_GROUPS = 4
#: The server's scheduling priority (``os.nice``), when it may raise it (root): it stands for
#: a service on machines of its own, so an overloaded client must not make its ticks late.
SERVER_NICE = -10


class CallSession:
    """What the ticker needs of one call, and what the call counted."""

    __slots__ = (
        "answered",
        "audio_out",
        "events_out",
        "frames_in",
        "functions_out",
        "group",
        "phase",
        "stalled",
        "transport",
    )

    def __init__(self, transport: asyncio.Transport, phase: int, group: int) -> None:
        self.transport = transport
        self.phase = phase
        self.group = group
        self.frames_in = 0
        self.audio_out = 0
        self.events_out = 0
        self.functions_out = 0
        self.answered = 0
        self.stalled = False

    def report(self) -> bytes:
        """The ``ConversationText`` with what this call sent and got (after ``bench-done``)."""
        counts = {
            "frames_in": self.frames_in,
            "audio_out": self.audio_out,
            "events_out": self.events_out,
            "functions_out": self.functions_out,
            "stalled": self.stalled,
        }
        return _conversation_text(CALL_REPORT_PREFIX + json.dumps(counts))

    def answers(self) -> bytes:
        """The ``ConversationText`` with the answers this call got (after ``bench-answered``)."""
        return _conversation_text(CALL_ANSWERS_PREFIX + json.dumps({"answered": self.answered}))


def _conversation_text(content: str) -> bytes:
    return json.dumps(
        {"type": "ConversationText", "role": "assistant", "content": content}
    ).encode()


class Ticker:
    """One timer for every call of the server (no timer per call, frames pre-encoded).

    The calls are split into ``CALL_GROUPS`` groups; the timer fires every 20 ms /
    ``CALL_GROUPS`` and each firing serves one group, so every call gets exactly one tick per
    20 ms while the server's writes are spread over the period (real calls are not in phase,
    and one burst of every call's frame at once would add its own queueing to every client's
    lateness). Ticks are on an absolute schedule (no drift); a late tick is recorded as lag and
    the ticks missed meanwhile run back to back, so no call loses a tick.
    """

    def __init__(self) -> None:
        self.groups: list[dict[int, CallSession]] = [{} for _ in range(CALL_GROUPS)]
        self.sessions: dict[int, CallSession] = {}
        self.serial = 0
        self.lag = Histogram()
        self.max_sessions = 0
        self._cpu0 = time.process_time()
        self._wall0 = time.perf_counter()
        self._task: asyncio.Task[None] | None = None

    def add(self, session_id: int, session: CallSession) -> None:
        """Start serving a call from its group's next tick on."""
        self.sessions[session_id] = session
        self.groups[session.group][session_id] = session
        self.max_sessions = max(self.max_sessions, len(self.sessions))
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def remove(self, session_id: int) -> None:
        """Stop serving a call."""
        session = self.sessions.pop(session_id, None)
        if session is not None:
            self.groups[session.group].pop(session_id, None)

    def new_session(self, transport: asyncio.Transport) -> CallSession:
        """A call, its cycle phase and its group spread over the others'."""
        self.serial += 1
        phase = (self.serial * CALL_PHASE_STEP) % CALL_CYCLE_TICKS
        return CallSession(transport, phase, self.serial % CALL_GROUPS)

    def stats(self, reset: bool) -> dict[str, object]:
        """Lag of the ticks that had calls to serve, and CPU since the last reset."""
        out: dict[str, object] = {
            "ticks": self.lag.n,
            "lag": self.lag.summary(),
            "cpu_s": time.process_time() - self._cpu0,
            "wall_s": time.perf_counter() - self._wall0,
            "max_sessions": self.max_sessions,
        }
        if reset:
            self.lag = Histogram()
            self.max_sessions = len(self.sessions)
            self._cpu0 = time.process_time()
            self._wall0 = time.perf_counter()
        return out

    async def _run(self) -> None:
        clock = time.monotonic_ns
        step = CALL_PERIOD_NS // CALL_GROUPS
        due = clock()
        fired = 0
        while True:
            due += step
            delay = due - clock()
            # Always yield, even when late, so the sessions' readers run between ticks.
            await asyncio.sleep(delay / 1e9 if delay > 0 else 0)
            fired += 1
            group = self.groups[fired % CALL_GROUPS]
            if self.sessions:
                self.lag.add(clock() - due)
            if group:
                self._tick(group, fired // CALL_GROUPS)

    def _tick(self, group: dict[int, CallSession], tick: int) -> None:
        clock = time.monotonic_ns
        audio = CALL_AUDIO_WIRE
        for session in list(group.values()):
            transport = session.transport
            if transport.is_closing():
                continue
            if transport.get_write_buffer_size() > CALL_STALL_BYTES:
                session.stalled = True
                transport.abort()
                continue
            pos = (tick + session.phase) % CALL_CYCLE_TICKS
            if pos < CALL_SPEAK_TICKS:
                transport.write(audio)
                session.audio_out += 1
            if pos % CALL_EVENT_TICKS == 0:
                slot = pos // CALL_EVENT_TICKS
                head, tail = CALL_EVENT_WIRE[slot]
                transport.write(b"%s%020d%s" % (head, clock(), tail))
                session.events_out += 1
                if slot == CALL_FUNCTION_SLOT:
                    session.functions_out += 1


class BenchServer:
    """The aiohttp application and the pre-encoded floods it serves."""

    def __init__(self) -> None:
        self._cycle = flood_stream(CYCLE_EVENTS)
        self._tails: dict[int, bytes] = {}
        self.ticker = Ticker()
        self.app = web.Application()
        self.app.router.add_get(r"/{mode}/{n:\d+}" + AGENT_PATH, self.handle)
        self.app.router.add_get("/calls-stats", self.calls_stats)

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
        if mode not in (FLOOD, LATENCY, SINK, CALLS):
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
        elif mode == CALLS:
            await self._call(request, ws)
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

    async def calls_stats(self, request: web.Request) -> web.Response:
        """``GET /calls-stats[?reset=1]``: the ticker's lag and the server's CPU time."""
        return web.json_response(self.ticker.stats("reset" in request.query))

    async def _call(self, request: web.Request, ws: web.WebSocketResponse) -> None:
        transport = request.transport
        if transport is None:
            return
        ticker = self.ticker
        session = ticker.new_session(transport)
        key = id(session)
        BINARY = WSMsgType.BINARY
        TEXT = WSMsgType.TEXT
        done = False
        try:
            while True:
                msg = await ws.receive()
                kind = msg.type
                if kind is BINARY:
                    session.frames_in += 1
                    if session.frames_in == 1:
                        ticker.add(key, session)  # the call starts with its first frame
                elif kind is TEXT:
                    data = msg.data
                    if '"FunctionCallResponse"' in data:
                        session.answered += 1
                    elif done and CALL_ANSWERED in data:
                        break
                    elif not done and SINK_DONE in data:
                        ticker.remove(key)  # nothing is sent after the report
                        done = True
                        await ws.send_frame(session.report(), WSMsgType.TEXT)
                else:
                    return  # the client went away
        finally:
            ticker.remove(key)
        with contextlib.suppress(ConnectionError):
            await ws.send_frame(session.answers(), WSMsgType.TEXT)

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
    with contextlib.suppress(OSError):
        os.nice(SERVER_NICE)
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
