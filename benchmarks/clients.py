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

Scenarios: ``recv`` (flood), ``latency``, ``audio`` (send to the sink), ``conc`` (many
connections in this one process, flood each).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import msgspec
from _common import (
    AGENT_PATH,
    AUDIO_FRAME,
    EVENT_TYPES,
    FLOOD,
    LATENCY,
    SETTINGS,
    SINK,
    SINK_DONE,
    bench_url,
    percentile,
    raw_stamp_of,
    stamp_of,
)

Result = dict[str, Any]

SETTINGS_TEXT = json.dumps(SETTINGS)
KEEPALIVE_TEXT = '{"type":"KeepAlive"}'
DONE_TEXT = json.dumps({"type": "InjectUserMessage", "content": SINK_DONE})
API_KEY = "bench-not-a-real-key"
CONNECT_CONCURRENCY = 64


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
    "ours_sync": OursSync,
    "ours_callbacks": OursCallbacks,
}
SCENARIOS = ("recv", "latency", "audio", "conc")


def official_available() -> bool:
    """True when deepgram-sdk (the official client) can be imported."""
    try:
        import deepgram  # noqa: F401
    except ImportError:
        return False
    return True


def run_one(client: str, scenario: str, base: str, n: int, conns: int, timeout: float) -> Result:
    """Run ``scenario`` with ``client`` and return its figures."""
    impl = CLIENTS[client]()
    method = getattr(impl, scenario, None)
    if method is None:
        raise SystemExit(f"client {client!r} has no {scenario!r} scenario")
    args: tuple[Any, ...] = (base, n, conns) if scenario == "conc" else (base, n)
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
    parser.add_argument("--conns", type=int, default=1, help="connections (conc scenario)")
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args()
    result = run_one(args.client, args.scenario, args.url, args.n, args.conns, args.timeout)
    result.update(client=args.client, scenario=args.scenario, n=args.n)
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
