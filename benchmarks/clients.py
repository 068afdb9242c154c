"""Bench clients: one client kind runs one scenario in this process and prints one JSON line.

``run.py`` starts a fresh process per (client, scenario, run), so the CPU time
(``time.process_time``: every thread of the process) and the peak RSS (``ru_maxrss``) reported
here are this client's alone. Clocks start when the client is ready (``SettingsApplied`` seen)
and has sent its "go", so connection setup is outside the measured window for every client.

Clients:
    floor_raw       aiohttp receive loop, frames counted, nothing decoded
    floor_msgspec   the same, every text frame decoded by one reused ``msgspec.json.Decoder``
    official        deepgram-sdk 7.16.0 ``AsyncDeepgramClient().agent.v1.connect()``, ``async for``
    ours_async      ``async with client.agent.connect(...) as conn: async for msg in conn``
    ours_sync       ``client.agent.connect_sync(...)``, ``for msg in conn``
    ours_callbacks  ``client.agent.websocket.v("1")``, ``.on(...)`` handlers, ``.start(...)``

    ours_tools      ``ours_async`` with the call's function registered in a ``Tools`` registry
                    (calls scenario only: the tool answers ``FunctionCallRequest`` itself)

Scenarios: ``recv`` (flood), ``latency``, ``audio`` (send to the sink), ``conc`` (many
connections in this one process, flood each), ``calls`` (``--conns`` concurrent phone calls
for ``--duration`` seconds; see :class:`CallBook`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import resource
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import aiohttp
import msgspec
from _common import (
    AGENT_PATH,
    AUDIO_FRAME,
    CALL_ANSWERED,
    CALL_ANSWERS_PREFIX,
    CALL_FRAME,
    CALL_FUNCTION,
    CALL_FUNCTION_RESULT,
    CALL_PERIOD_NS,
    CALL_REPORT_PREFIX,
    CALL_SETTINGS,
    CALLS,
    EVENT_TYPES,
    FLOOD,
    LATENCY,
    SETTINGS,
    SINK,
    SINK_DONE,
    Histogram,
    bench_url,
    percentile,
    raw_stamp_of,
    stamp_in,
    stamp_of,
)

Result = dict[str, Any]

SETTINGS_TEXT = json.dumps(SETTINGS)
KEEPALIVE_TEXT = '{"type":"KeepAlive"}'
DONE_TEXT = json.dumps({"type": "InjectUserMessage", "content": SINK_DONE})
ANSWERED_TEXT = json.dumps({"type": "InjectUserMessage", "content": CALL_ANSWERED})
API_KEY = "bench-not-a-real-key"
CONNECT_CONCURRENCY = 64
CALL_SETTINGS_TEXT = json.dumps(CALL_SETTINGS)
#: The first frame of every call is due this long after the last call opened, and the calls'
#: first frames are spread evenly over one 20 ms period (calls start at random moments).
CALL_START_DELAY_NS = 50_000_000
#: A call stops sending when it is this far behind its schedule at the end of the call: the
#: frames it did not send by then are counted as ``unsent`` (a real bridge cannot send the
#: past); an overloaded client is unhealthy, not broken.
CALL_OVERRUN_NS = 5_000_000_000
#: How long (x 10 ms) a call waits for its function tools' answers before ``bench-answered``.
CALL_TOOL_WAIT_POLLS = 1000
#: Blocking calls: one media thread per this many calls (see ``OursSync.calls``).
CALLS_PER_MEDIA_THREAD = 25
#: How long a call waits for the server's report and close after ``bench-done``; a call still
#: going then is ``overrun`` (the client is too far behind), like ``unsent`` frames.
CALL_END_WAIT_NS = 60_000_000_000


class Meter:
    """Wall and process CPU time of the measured window."""

    def __init__(self) -> None:
        self.wall_s = 0.0
        self.cpu_s = 0.0
        self._t0 = 0.0
        self._c0 = 0.0

    def start(self) -> None:
        self._t0 = time.perf_counter()
        self._c0 = time.process_time()

    def stop(self) -> None:
        self.wall_s = time.perf_counter() - self._t0
        self.cpu_s = time.process_time() - self._c0

    def result(self, **extra: Any) -> Result:
        """The figures plus the process's peak RSS so far."""
        rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
        return {"wall_s": self.wall_s, "cpu_s": self.cpu_s, "rss_kib": rss_kib, **extra}


def latency_result(meter: Meter, samples_ns: list[int]) -> Result:
    """p50/p99 of the one-way latencies, in microseconds."""
    ordered = sorted(s / 1000 for s in samples_ns)
    return meter.result(
        samples=len(ordered),
        p50_us=percentile(ordered, 0.50),
        p99_us=percentile(ordered, 0.99),
        max_us=ordered[-1] if ordered else float("nan"),
    )


def sink_result(meter: Meter, content: str, sent: int) -> Result:
    """Frames/bytes the sink says it received."""
    frames, size = (int(x) for x in content.split())
    return meter.result(frames_sent=sent, frames_received=frames, bytes_received=size)


def raise_fd_limit(needed: int) -> None:
    """Raise the soft open-files limit to ``needed`` (bounded by the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


# --------------------------------------------------------------------------------- calls


def lookup_order(order_id: str) -> dict[str, str]:
    """The calls' trivial function (the work the app does for a FunctionCallRequest)."""
    return CALL_FUNCTION_RESULT


class Call:
    """One call's own counts (what it sent and received, and the server's report)."""

    __slots__ = (
        "answered",
        "audio_in",
        "error",
        "events_in",
        "overrun",
        "report",
        "sent",
        "unsent",
    )

    def __init__(self) -> None:
        self.answered: int | None = None
        self.sent = 0
        self.unsent = 0
        self.overrun = False
        self.audio_in = 0
        self.events_in = 0
        self.report: dict[str, Any] | None = None
        self.error: str | None = None


class CallBook:
    """Everything one client process's calls measure, and the per-call checks.

    Each call sends ``frames`` 20 ms frames on its own deadline timer (``first_due + i * 20
    ms``: it sleeps until the next deadline, never "20 ms", so it cannot drift); how late each
    send started is the send-timer lateness. Each server event carries its send time, so
    receive time minus that is the delivery lateness. At the end each call compares its counts
    with the server's report (``bench-report``): frames the server got vs sent, agent audio and
    events received vs what the server sent, function calls answered vs asked.
    """

    def __init__(self, conns: int, duration: float) -> None:
        self.conns = conns
        self.duration = duration
        self.frames = max(1, round(duration * 1e9 / CALL_PERIOD_NS))
        self.events = Histogram()
        self.sends = Histogram()
        self.calls = [Call() for _ in range(conns)]
        self.first_due = 0
        self._times0 = os.times()

    def schedule(self) -> None:
        """Fix every call's first deadline (call now, after all calls are open)."""
        self.first_due = time.monotonic_ns() + CALL_START_DELAY_NS
        self._times0 = os.times()

    def first_due_of(self, index: int) -> int:
        """The first deadline of call ``index``: the calls' phases spread over one period."""
        return self.first_due + index * CALL_PERIOD_NS // self.conns

    def give_up_at(self, first_due: int) -> int:
        """When a call that starts at ``first_due`` stops sending, however far behind."""
        return first_due + self.frames * CALL_PERIOD_NS + CALL_OVERRUN_NS

    def on_report(self, call: Call, content: str) -> int:
        """Take the server's reports: 1 for ``bench-report`` (the caller then answers with
        ``bench-answered``), 2 for ``bench-answers``, 0 for any other content."""
        if content.startswith(CALL_REPORT_PREFIX):
            call.report = json.loads(content[len(CALL_REPORT_PREFIX) :])
            return 1
        if content.startswith(CALL_ANSWERS_PREFIX):
            call.answered = json.loads(content[len(CALL_ANSWERS_PREFIX) :])["answered"]
            return 2
        return 0

    async def pace(self, call: Call, index: int, send: Callable[[bytes], Awaitable[Any]]) -> None:
        """Send this call's frames, each on its deadline (asyncio clients)."""
        clock = time.monotonic_ns
        sleep = asyncio.sleep
        add = self.sends.add
        first = self.first_due_of(index)
        give_up = self.give_up_at(first)
        frame = CALL_FRAME
        for i in range(self.frames):
            due = first + i * CALL_PERIOD_NS
            now = clock()
            if now < due:
                await sleep((due - now) / 1e9)
                now = clock()
            elif now > give_up:
                call.unsent = self.frames - i
                return
            add(now - due)
            await send(frame)
            call.sent += 1

    async def finish(self, call: Call, reader: asyncio.Future[None]) -> None:
        """Wait (bounded) for a call's reader to see the report and the close."""
        try:
            await asyncio.wait_for(reader, CALL_END_WAIT_NS / 1e9)
        except TimeoutError:
            call.overrun = True

    def result(self, meter: Meter) -> Result:
        """The process's figures: totals, losses, lateness, health."""
        lost_up = lost_audio = lost_events = unanswered = failed = unsent = overrun = 0
        errors: list[str] = []
        totals = {"frames_in": 0, "audio_out": 0, "events_out": 0, "functions_out": 0}
        for call in self.calls:
            rep = call.report
            unsent += call.unsent
            if call.error is None and call.overrun:
                overrun += 1
                continue
            if call.error is not None or rep is None or rep["stalled"] or call.answered is None:
                failed += 1
                if len(errors) < 5:
                    errors.append(
                        call.error
                        or ("no report from the server" if rep is None else "")
                        or ("stalled" if rep["stalled"] else "no answers report")
                    )
                continue
            for key in totals:
                totals[key] += int(rep[key])
            lost_up += abs(call.sent - rep["frames_in"])
            lost_audio += abs(rep["audio_out"] - call.audio_in)
            lost_events += abs(rep["events_out"] - call.events_in)
            unanswered += abs(rep["functions_out"] - call.answered)
        call_minutes = self.conns * self.duration / 60
        times = os.times()
        return meter.result(
            user_s=times.user - self._times0.user,
            system_s=times.system - self._times0.system,
            conns=self.conns,
            duration_s=self.duration,
            call_minutes=call_minutes,
            frames_sent=sum(c.sent for c in self.calls),
            audio_received=sum(c.audio_in for c in self.calls),
            events_received=sum(c.events_in for c in self.calls),
            server=totals,
            lost_up=lost_up,
            unsent=unsent,
            lost_down=lost_audio + lost_events,
            lost_audio=lost_audio,
            lost_events=lost_events,
            unanswered=unanswered,
            failed=failed,
            overrun=overrun,
            errors=errors,
            event_lateness=self.events.summary(),
            send_lateness=self.sends.summary(),
        )


async def _open_all(conns: int, open_one: Callable[[int], Awaitable[Any]]) -> list[Any]:
    """Open ``conns`` connections, ``CONNECT_CONCURRENCY`` at a time, in index order."""
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def gated(i: int) -> Any:
        async with gate:
            return await open_one(i)

    return list(await asyncio.gather(*(gated(i) for i in range(conns))))


async def _run_calls(
    book: CallBook, conns: list[Any], one_call: Callable[[Any, Call, int], Awaitable[None]]
) -> Meter:
    """Run every call at once; a call that raises is a failed call, the others go on."""

    async def guarded(conn: Any, index: int) -> None:
        call = book.calls[index]
        try:
            await one_call(conn, call, index)
        except Exception as exc:  # the figure is "failed calls": count it, keep the others
            call.error = f"{type(exc).__name__}: {exc}"

    meter = Meter()
    book.schedule()
    meter.start()
    await asyncio.gather(*(guarded(c, i) for i, c in enumerate(conns)))
    meter.stop()
    return meter


# --------------------------------------------------------------------------------- the floor


async def _floor_open(
    session: aiohttp.ClientSession, base: str, mode: str, n: int
) -> aiohttp.ClientWebSocketResponse:
    ws = await session.ws_connect(
        bench_url(base, mode, n) + AGENT_PATH,
        compress=0,
        autoping=True,
        decode_text=False,
        max_msg_size=16 * 1024 * 1024,
    )
    await ws.receive()  # Welcome
    await ws.send_str(SETTINGS_TEXT)
    await ws.receive()  # SettingsApplied
    return ws


async def _floor_count(ws: aiohttp.ClientWebSocketResponse, decode: bool) -> tuple[int, int]:
    receive = ws.receive
    decoder = msgspec.json.Decoder().decode if decode else None
    TEXT = aiohttp.WSMsgType.TEXT
    BINARY = aiohttp.WSMsgType.BINARY
    texts = binaries = 0
    while True:
        msg = await receive()
        kind = msg.type
        if kind is TEXT:
            if decoder is not None:
                decoder(msg.data)
            texts += 1
        elif kind is BINARY:
            binaries += 1
        else:
            return texts, binaries


class Floor:
    """A minimal aiohttp client: the fastest a Python client of this server can be."""

    def __init__(self, decode: bool) -> None:
        self.decode = decode

    async def recv(self, base: str, n: int) -> Result:
        meter = Meter()
        async with aiohttp.ClientSession() as session:
            ws = await _floor_open(session, base, FLOOD, n)
            await ws.send_str(KEEPALIVE_TEXT)
            meter.start()
            texts, binaries = await _floor_count(ws, self.decode)
            meter.stop()
            await ws.close()
        return meter.result(texts=texts, binaries=binaries)

    async def latency(self, base: str, n: int) -> Result:
        meter = Meter()
        samples: list[int] = []
        clock = time.perf_counter_ns
        decode = msgspec.json.Decoder().decode
        async with aiohttp.ClientSession() as session:
            ws = await _floor_open(session, base, LATENCY, n)
            await ws.send_str(KEEPALIVE_TEXT)
            meter.start()
            async for msg in ws:
                now = clock()
                if msg.type is aiohttp.WSMsgType.TEXT:
                    if self.decode:
                        samples.append(now - stamp_of(decode(msg.data)["content"]))
                    else:
                        samples.append(now - raw_stamp_of(msg.data))
            meter.stop()
        return latency_result(meter, samples)

    async def audio(self, base: str, n: int) -> Result:
        meter = Meter()
        async with aiohttp.ClientSession() as session:
            ws = await _floor_open(session, base, SINK, n)
            send = ws.send_bytes
            meter.start()
            for _ in range(n):
                await send(AUDIO_FRAME)
            await ws.send_str(DONE_TEXT)
            reply = await ws.receive()
            meter.stop()
            content = msgspec.json.decode(reply.data)["content"]
            await ws.close()
        return sink_result(meter, content, n)

    async def conc(self, base: str, n: int, conns: int) -> Result:
        raise_fd_limit(conns * 2 + 256)
        meter = Meter()
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def open_one() -> aiohttp.ClientWebSocketResponse:
                async with gate:
                    return await _floor_open(session, base, FLOOD, n)

            async def consume(ws: aiohttp.ClientWebSocketResponse) -> tuple[int, int]:
                await ws.send_str(KEEPALIVE_TEXT)
                counts = await _floor_count(ws, self.decode)
                await ws.close()
                return counts

            t0 = time.perf_counter()
            sockets = await asyncio.gather(*(open_one() for _ in range(conns)))
            connect_s = time.perf_counter() - t0
            meter.start()
            counts = await asyncio.gather(*(consume(ws) for ws in sockets))
            meter.stop()
        return meter.result(
            conns=conns,
            texts=sum(c[0] for c in counts),
            binaries=sum(c[1] for c in counts),
            connect_s=connect_s,
        )

    async def calls(self, base: str, duration: float, conns: int) -> Result:
        """``conns`` calls on one shared aiohttp session; msgspec decodes every event."""
        raise_fd_limit(conns * 2 + 256)
        book = CallBook(conns, duration)
        decode = msgspec.json.Decoder().decode
        encode = msgspec.json.Encoder().encode
        clock = time.monotonic_ns
        add = book.events.add
        TEXT = aiohttp.WSMsgType.TEXT
        BINARY = aiohttp.WSMsgType.BINARY
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def open_one(_i: int) -> aiohttp.ClientWebSocketResponse:
                ws = await session.ws_connect(
                    bench_url(base, CALLS, 0) + AGENT_PATH, compress=0, autoping=True
                )
                await ws.receive()  # Welcome
                await ws.send_str(CALL_SETTINGS_TEXT)
                await ws.receive()  # SettingsApplied
                return ws

            async def receive(ws: aiohttp.ClientWebSocketResponse, call: Call) -> None:
                while True:
                    msg = await ws.receive()
                    kind = msg.type
                    if kind is BINARY:
                        call.audio_in += 1
                    elif kind is TEXT:
                        now = clock()
                        event = decode(msg.data)
                        if event["type"] == "FunctionCallRequest":
                            call.events_in += 1
                            for f in event["functions"]:
                                add(now - stamp_in(f["id"]))
                                if f["client_side"] and f["name"] == CALL_FUNCTION:
                                    content = encode(lookup_order(**decode(f["arguments"])))
                                    reply = {
                                        "type": "FunctionCallResponse",
                                        "id": f["id"],
                                        "name": f["name"],
                                        "content": content.decode(),
                                    }
                                    await ws.send_str(encode(reply).decode())
                        else:
                            report = book.on_report(call, event["content"])
                            if report == 0:
                                call.events_in += 1
                                add(now - stamp_in(event["content"]))
                            elif report == 1:
                                await ws.send_str(ANSWERED_TEXT)
                    else:
                        return

            async def one_call(ws: aiohttp.ClientWebSocketResponse, call: Call, i: int) -> None:
                reader = asyncio.ensure_future(receive(ws, call))
                try:
                    await book.pace(call, i, ws.send_bytes)
                    await ws.send_str(DONE_TEXT)
                    await book.finish(call, reader)
                finally:
                    reader.cancel()
                    await ws.close()

            opened = await _open_all(conns, open_one)
            meter = await _run_calls(book, opened, one_call)
        return book.result(meter)


# --------------------------------------------------------------------------------- official


class Official:
    """deepgram-sdk 7.16.0's async agent client, pointed at the bench server."""

    def _client(self, base: str, mode: str, n: int) -> Any:
        from deepgram import AsyncDeepgramClient
        from deepgram.environment import DeepgramClientEnvironment

        url = bench_url(base, mode, n)  # the SDK appends /v1/agent/converse
        http = url.replace("ws://", "http://", 1)
        env = DeepgramClientEnvironment(base=http, production=url, agent=url, agent_rest=http)
        return AsyncDeepgramClient(api_key=API_KEY, environment=env)

    async def _run(self, base: str, mode: str, n: int, body: Callable[[Any], Awaitable[Result]]):
        client = self._client(base, mode, n)
        async with client.agent.v1.connect() as conn:
            await conn.recv()  # Welcome
            await conn.send_raw(SETTINGS)
            await conn.recv()  # SettingsApplied
            return await body(conn)

    async def recv(self, base: str, n: int) -> Result:
        async def body(conn: Any) -> Result:
            meter = Meter()
            texts = binaries = 0
            await conn.send_keep_alive()
            meter.start()
            async for msg in conn:
                if type(msg) is bytes:
                    binaries += 1
                else:
                    texts += 1
            meter.stop()
            return meter.result(texts=texts, binaries=binaries)

        return await self._run(base, FLOOD, n, body)

    async def latency(self, base: str, n: int) -> Result:
        async def body(conn: Any) -> Result:
            meter = Meter()
            samples: list[int] = []
            clock = time.perf_counter_ns
            await conn.send_keep_alive()
            meter.start()
            async for msg in conn:
                now = clock()
                samples.append(now - stamp_of(msg.content))
            meter.stop()
            return latency_result(meter, samples)

        return await self._run(base, LATENCY, n, body)

    async def audio(self, base: str, n: int) -> Result:
        async def body(conn: Any) -> Result:
            meter = Meter()
            send = conn.send_media
            meter.start()
            for _ in range(n):
                await send(AUDIO_FRAME)
            await conn.send_raw({"type": "InjectUserMessage", "content": SINK_DONE})
            content = ""
            async for msg in conn:
                if type(msg) is not bytes:
                    content = msg.content
                    break
            meter.stop()
            return sink_result(meter, content, n)

        return await self._run(base, SINK, n, body)

    async def calls(self, base: str, duration: float, conns: int) -> Result:
        """``conns`` calls, each ``async with client.agent.v1.connect()``, ``async for``."""
        from deepgram.agent.v1 import AgentV1SendFunctionCallResponse

        raise_fd_limit(conns * 2 + 256)
        book = CallBook(conns, duration)
        client = self._client(base, CALLS, 0)
        clock = time.monotonic_ns
        add = book.events.add
        async with contextlib.AsyncExitStack() as stack:

            async def open_one(_i: int) -> Any:
                conn = await stack.enter_async_context(client.agent.v1.connect())
                await conn.recv()  # Welcome
                await conn.send_raw(CALL_SETTINGS)
                await conn.recv()  # SettingsApplied
                return conn

            async def receive(conn: Any, call: Call) -> None:
                async for msg in conn:
                    if type(msg) is bytes:
                        call.audio_in += 1
                        continue
                    now = clock()
                    if msg.type == "FunctionCallRequest":
                        call.events_in += 1
                        for f in msg.functions:
                            add(now - stamp_in(f.id))
                            if f.client_side and f.name == CALL_FUNCTION:
                                result = lookup_order(**json.loads(f.arguments))
                                await conn.send_function_call_response(
                                    AgentV1SendFunctionCallResponse(
                                        type="FunctionCallResponse",
                                        id=f.id,
                                        name=f.name,
                                        content=json.dumps(result),
                                    )
                                )
                    else:
                        report = book.on_report(call, msg.content)
                        if report == 0:
                            call.events_in += 1
                            add(now - stamp_in(msg.content))
                        elif report == 1:
                            await conn.send_raw(
                                {"type": "InjectUserMessage", "content": CALL_ANSWERED}
                            )

            async def one_call(conn: Any, call: Call, i: int) -> None:
                reader = asyncio.ensure_future(receive(conn, call))
                try:
                    await book.pace(call, i, conn.send_media)
                    await conn.send_raw({"type": "InjectUserMessage", "content": SINK_DONE})
                    await book.finish(call, reader)
                finally:
                    reader.cancel()

            opened = await _open_all(conns, open_one)
            meter = await _run_calls(book, opened, one_call)
        return book.result(meter)


# --------------------------------------------------------------------------------- ours


def _ours_client(base: str, mode: str, n: int) -> Any:
    from deepgram_agent import DeepgramClient

    return DeepgramClient(api_key=API_KEY, base_url=bench_url(base, mode, n) + AGENT_PATH)


class OursAsync:
    """``async for msg in conn`` on our core."""

    async def _open(self, client: Any) -> Any:
        from deepgram_agent import messages as m

        conn = await client.agent.connect(SETTINGS)
        async for msg in conn:  # Welcome, SettingsApplied
            if isinstance(msg, m.SettingsApplied):
                break
        return conn

    async def recv(self, base: str, n: int) -> Result:
        meter = Meter()
        conn = await self._open(_ours_client(base, FLOOD, n))
        try:
            await conn.keep_alive()
            meter.start()
            texts = binaries = 0
            async for msg in conn:
                if type(msg) is bytes:
                    binaries += 1
                else:
                    texts += 1
            meter.stop()
        finally:
            await conn.close()
        stats = conn.statistics()
        return meter.result(texts=texts, binaries=binaries, unhandled=stats.unhandled_received)

    async def latency(self, base: str, n: int) -> Result:
        meter = Meter()
        samples: list[int] = []
        clock = time.perf_counter_ns
        conn = await self._open(_ours_client(base, LATENCY, n))
        try:
            await conn.keep_alive()
            meter.start()
            async for msg in conn:
                now = clock()
                samples.append(now - stamp_of(msg.content))
            meter.stop()
        finally:
            await conn.close()
        return latency_result(meter, samples)

    async def audio(self, base: str, n: int) -> Result:
        from deepgram_agent import messages as m

        meter = Meter()
        conn = await self._open(_ours_client(base, SINK, n))
        try:
            send = conn.send_audio
            meter.start()
            for _ in range(n):
                await send(AUDIO_FRAME)
            await conn.inject_user_message(SINK_DONE)
            content = ""
            async for msg in conn:
                if isinstance(msg, m.ConversationText):
                    content = msg.content
                    break
            meter.stop()
        finally:
            await conn.close()
        return sink_result(meter, content, n)

    async def conc(self, base: str, n: int, conns: int) -> Result:
        raise_fd_limit(conns * 2 + 256)
        client = _ours_client(base, FLOOD, n)
        meter = Meter()
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

        async def open_one() -> Any:
            async with gate:
                return await self._open(client)

        async def consume(conn: Any) -> tuple[int, int, int]:
            texts = binaries = 0
            try:
                await conn.keep_alive()
                async for msg in conn:
                    if type(msg) is bytes:
                        binaries += 1
                    else:
                        texts += 1
            finally:
                await conn.close()
            return texts, binaries, conn.statistics().unhandled_received

        t0 = time.perf_counter()
        opened = await asyncio.gather(*(open_one() for _ in range(conns)))
        connect_s = time.perf_counter() - t0
        meter.start()
        counts = await asyncio.gather(*(consume(c) for c in opened))
        meter.stop()
        return meter.result(
            conns=conns,
            texts=sum(c[0] for c in counts),
            binaries=sum(c[1] for c in counts),
            unhandled=sum(c[2] for c in counts),
            connect_s=connect_s,
        )

    #: Registered function tools (``OursTools`` sets one; here the loop answers by hand).
    tools: Any = None

    async def calls(self, base: str, duration: float, conns: int) -> Result:
        """``conns`` calls from one client: ``async for msg in conn`` plus a sender task each."""
        from deepgram_agent import messages as m

        raise_fd_limit(conns * 2 + 256)
        book = CallBook(conns, duration)
        client = _calls_client(base)
        tools = self.tools
        clock = time.monotonic_ns
        add = book.events.add
        decode = json.loads
        FunctionCallRequest = m.FunctionCallRequest

        async def open_one(_i: int) -> Any:
            conn = await client.agent.connect(CALL_SETTINGS, tools=tools)
            async for msg in conn:  # Welcome, SettingsApplied
                if isinstance(msg, m.SettingsApplied):
                    break
            return conn

        async def receive(conn: Any, call: Call) -> None:
            async for msg in conn:
                if type(msg) is bytes:
                    call.audio_in += 1
                    continue
                now = clock()
                if type(msg) is FunctionCallRequest:
                    call.events_in += 1
                    for f in msg.functions:
                        add(now - stamp_in(f.id))
                        if tools is None and f.client_side and f.name == CALL_FUNCTION:
                            await conn.send_function_call_response(
                                id=f.id, name=f.name, content=lookup_order(**decode(f.arguments))
                            )
                else:
                    report = book.on_report(call, msg.content)
                    if report == 0:
                        call.events_in += 1
                        add(now - stamp_in(msg.content))
                    elif report == 1:
                        # Function tools answer in tasks of their own: let them finish first.
                        for _ in range(CALL_TOOL_WAIT_POLLS):
                            if not conn.pending_function_calls:
                                break
                            await asyncio.sleep(0.01)
                        await conn.inject_user_message(CALL_ANSWERED)

        async def one_call(conn: Any, call: Call, i: int) -> None:
            reader = asyncio.ensure_future(receive(conn, call))
            try:
                await book.pace(call, i, conn.send_audio)
                await conn.inject_user_message(SINK_DONE)
                await book.finish(call, reader)
            finally:
                reader.cancel()
                await conn.close()

        opened = await _open_all(conns, open_one)
        meter = await _run_calls(book, opened, one_call)
        return book.result(meter)


class OursTools(OursAsync):
    """``OursAsync`` with the call's function in a ``Tools`` registry, which answers it."""

    def __init__(self) -> None:
        from deepgram_agent.tools import Tools

        tools = Tools()

        @tools.tool
        async def lookup_order(order_id: str) -> dict[str, str]:
            """Look up an order's delivery status.

            Args:
                order_id: the order number.
            """
            return CALL_FUNCTION_RESULT

        self.tools = tools


class OursSync:
    """``for msg in conn`` on our blocking facade (run from the main thread, no loop here)."""

    def _open(self, base: str, mode: str, n: int) -> Any:
        from deepgram_agent import messages as m

        conn = _ours_client(base, mode, n).agent.connect_sync(SETTINGS)
        for msg in conn:
            if isinstance(msg, m.SettingsApplied):
                break
        return conn

    def recv(self, base: str, n: int) -> Result:
        meter = Meter()
        with self._open(base, FLOOD, n) as conn:
            conn.keep_alive()
            meter.start()
            texts = binaries = 0
            for msg in conn:
                if type(msg) is bytes:
                    binaries += 1
                else:
                    texts += 1
            meter.stop()
        stats = conn.statistics()
        return meter.result(texts=texts, binaries=binaries, unhandled=stats.unhandled_received)

    def latency(self, base: str, n: int) -> Result:
        meter = Meter()
        samples: list[int] = []
        clock = time.perf_counter_ns
        with self._open(base, LATENCY, n) as conn:
            conn.keep_alive()
            meter.start()
            for msg in conn:
                now = clock()
                samples.append(now - stamp_of(msg.content))
            meter.stop()
        return latency_result(meter, samples)

    def calls(self, base: str, duration: float, conns: int) -> Result:
        """``conns`` blocking calls served by a few media threads (no thread per call).

        What a blocking phone bridge does: a media engine clocks its calls' audio in 20 ms
        ticks, a handful of threads each serving many calls. Here each media thread owns
        ``CALLS_PER_MEDIA_THREAD`` calls; on every tick it sends each call's frame
        (``conn.send_audio``) and then takes whatever that call received since the last tick
        (``conn.recv(timeout=0)`` until empty), answering the function call by hand. So an
        event waits up to one tick (20 ms) in the queue: that is part of this design's
        delivery lateness, and it is reported as measured.
        """
        from deepgram_agent import ConnectionClosed, DeepgramTimeoutError
        from deepgram_agent import messages as m

        raise_fd_limit(conns * 2 + 256)
        book = CallBook(conns, duration)
        client = _calls_client(base)
        clock = time.monotonic_ns
        add = book.events.add
        decode = json.loads
        FunctionCallRequest = m.FunctionCallRequest

        def open_one(_i: int) -> Any:
            conn = client.agent.connect_sync(CALL_SETTINGS)
            for msg in conn:  # Welcome, SettingsApplied
                if isinstance(msg, m.SettingsApplied):
                    break
            return conn

        with ThreadPoolExecutor(16) as pool:
            opened = list(pool.map(open_one, range(conns)))

        def drain(conn: Any, call: Call) -> bool:
            """Take what ``conn`` received; False once it has ended."""
            while True:
                try:
                    msg = conn.recv(timeout=0)
                except DeepgramTimeoutError:
                    return True
                except ConnectionClosed:
                    return False
                if type(msg) is bytes:
                    call.audio_in += 1
                    continue
                now = clock()
                if type(msg) is FunctionCallRequest:
                    call.events_in += 1
                    for f in msg.functions:
                        add(now - stamp_in(f.id))
                        if f.client_side and f.name == CALL_FUNCTION:
                            conn.send_function_call_response(
                                id=f.id, name=f.name, content=lookup_order(**decode(f.arguments))
                            )
                else:
                    report = book.on_report(call, msg.content)
                    if report == 0:
                        call.events_in += 1
                        add(now - stamp_in(msg.content))
                    elif report == 1:
                        conn.inject_user_message(CALL_ANSWERED)

        threads = max(1, math.ceil(conns / CALLS_PER_MEDIA_THREAD))

        def media_thread(k: int) -> None:
            mine = [(i, opened[i], book.calls[i]) for i in range(k, conns, threads)]
            live = list(mine)
            first = book.first_due_of(k * conns // threads)
            add_send = book.sends.add
            frame = CALL_FRAME
            tick = 0
            done_sent = stopped = False
            stop_sending = book.give_up_at(first)
            give_up = stop_sending + CALL_END_WAIT_NS
            while live:
                due = first + tick * CALL_PERIOD_NS
                now = clock()
                if now > give_up:
                    for _, _conn, call in live:
                        call.overrun = True
                    break
                if now < due:
                    time.sleep((due - now) / 1e9)
                sending = tick < book.frames and not stopped
                if sending and now > stop_sending:
                    for _, _conn, call in live:
                        call.unsent = book.frames - tick
                    sending = False
                    stopped = True
                still = []
                for entry in live:
                    _, conn, call = entry
                    try:
                        if sending:
                            add_send(clock() - due)
                            conn.send_audio(frame)
                            call.sent += 1
                        elif not done_sent:
                            conn.inject_user_message(SINK_DONE)
                        if drain(conn, call):
                            still.append(entry)
                    except Exception as exc:
                        call.error = f"{type(exc).__name__}: {exc}"
                if not sending:
                    done_sent = True
                live = still
                tick += 1
            for _, conn, _call in mine:
                conn.close()

        meter = Meter()
        book.schedule()
        meter.start()
        workers = [threading.Thread(target=media_thread, args=(k,)) for k in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        meter.stop()
        return book.result(meter)


def _calls_client(base: str) -> Any:
    """Our client pointed at the calls mode of the bench server."""
    from deepgram_agent import DeepgramClient

    return DeepgramClient(api_key=API_KEY, base_url=bench_url(base, CALLS, 0) + AGENT_PATH)


class OursCallbacks:
    """``.on(event, handler)`` + ``.start(settings)`` on our blocking callback client."""

    def _run(self, base: str, mode: str, n: int, on_text: Callable[..., None], timeout: float):
        from deepgram_agent import AgentWebSocketEvents

        closed = threading.Event()
        binaries = [0]

        def on_audio(_client: Any, data: bytes, **kwargs: Any) -> None:
            binaries[0] += 1

        def on_close(_client: Any, close: Any, **kwargs: Any) -> None:
            closed.set()

        ws = _ours_client(base, mode, n).agent.websocket.v("1")
        for name in EVENT_TYPES:
            ws.on(name, on_text)
        ws.on(AgentWebSocketEvents.AudioData, on_audio)
        ws.on(AgentWebSocketEvents.Close, on_close)
        if not ws.start(SETTINGS):
            raise RuntimeError("the callback client failed to start")
        meter = Meter()
        ws.keep_alive()
        meter.start()
        if not closed.wait(timeout):
            raise TimeoutError(f"no Close event within {timeout} s")
        meter.stop()
        ws.finish()
        return meter, binaries[0], ws.connection.statistics()

    def recv(self, base: str, n: int, timeout: float = 600.0) -> Result:
        texts = [0]

        def on_text(_client: Any, event: Any, **kwargs: Any) -> None:
            texts[0] += 1

        meter, binaries, stats = self._run(base, FLOOD, n, on_text, timeout)
        return meter.result(texts=texts[0], binaries=binaries, unhandled=stats.unhandled_received)

    def latency(self, base: str, n: int, timeout: float = 600.0) -> Result:
        samples: list[int] = []
        clock = time.perf_counter_ns

        def on_text(_client: Any, event: Any, **kwargs: Any) -> None:
            samples.append(clock() - stamp_of(event.content))

        meter, _, _ = self._run(base, LATENCY, n, on_text, timeout)
        return latency_result(meter, samples)


CLIENTS: dict[str, Callable[[], Any]] = {
    "floor_raw": lambda: Floor(decode=False),
    "floor_msgspec": lambda: Floor(decode=True),
    "official": Official,
    "ours_async": OursAsync,
    "ours_tools": OursTools,
    "ours_sync": OursSync,
    "ours_callbacks": OursCallbacks,
}
SCENARIOS = ("recv", "latency", "audio", "conc", "calls")


def official_available() -> bool:
    """True when deepgram-sdk (the official client) can be imported."""
    try:
        import deepgram  # noqa: F401
    except ImportError:
        return False
    return True


def run_one(
    client: str,
    scenario: str,
    base: str,
    n: int,
    conns: int,
    timeout: float,
    duration: float = 0.0,
) -> Result:
    """Run ``scenario`` with ``client`` and return its figures."""
    impl = CLIENTS[client]()
    method = getattr(impl, scenario, None)
    if method is None:
        raise SystemExit(f"client {client!r} has no {scenario!r} scenario")
    args: tuple[Any, ...] = (base, n)
    if scenario == "conc":
        args = (base, n, conns)
    elif scenario == "calls":
        args = (base, duration, conns)
    if asyncio.iscoroutinefunction(method):

        async def bounded() -> Result:
            async with asyncio.timeout(timeout):
                result: Result = await method(*args)
                return result

        return asyncio.run(bounded())
    result: Result = method(*args)
    return result


def main() -> None:
    """Command line: ``python benchmarks/clients.py CLIENT SCENARIO --url WS --n N``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("client", choices=sorted(CLIENTS))
    parser.add_argument("scenario", choices=SCENARIOS)
    parser.add_argument("--url", required=True, help="the bench server, ws://127.0.0.1:PORT")
    parser.add_argument("--n", type=int, required=True, help="events / messages / frames")
    parser.add_argument("--conns", type=int, default=1, help="connections (conc, calls)")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per call (calls)")
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args()
    result = run_one(
        args.client, args.scenario, args.url, args.n, args.conns, args.timeout, args.duration
    )
    result.update(client=args.client, scenario=args.scenario, n=args.n)
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
