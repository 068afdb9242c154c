"""Small hostile Voice Agent servers for the tests (not the emulator: it shares our assumptions).

A :class:`HostileServer` is a real aiohttp WebSocket server on 127.0.0.1, in a thread and event
loop of its own (so async tests, blocking tests and subprocess clients can all use it). Each
accepted socket is handed to a *script*, an ``async def script(peer: Peer)`` that speaks as much
of the protocol as it wants (:meth:`Peer.ready` sends ``Welcome``, reads ``Settings`` and sends
``SettingsApplied``) and then does one scripted nasty thing: raw text frames holding any bytes,
a frame of any size, a binary flood, silence, no reading, a drop::

    async def silent(peer: Peer) -> None:
        await peer.ready()
        peer.stop_reading()       # no frames, no pongs, the TCP window closes
        await peer.hold()         # keep the socket open until the server stops

    with HostileServer(silent, autoping=False) as srv:
        client = srv.client()
        ...

The test thread waits for what the server saw with :meth:`HostileServer.wait` (a condition
variable notified on every server-side event, bounded), never with sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import aiohttp
from aiohttp import WSMsgType, web

from deepgram_agent import DeepgramClient

from .conftest import PLAIN_SETTINGS, scaled

__all__ = ["KEY", "SETTINGS", "HostileServer", "Peer", "Script", "nest"]

T = TypeVar("T")

KEY = "hostile-test-key-5b1e"

#: Settings every hostile test opens with (valid locally; the hostile servers never check).
SETTINGS: dict[str, Any] = PLAIN_SETTINGS


def nest(depth: int, leaf: str = "1") -> str:
    """JSON text of ``leaf`` inside ``depth`` nested objects: ``{"a":{"a":...1...}}``."""
    return '{"a":' * depth + leaf + "}" * depth


class Peer:
    """One accepted client socket, as a script sees it (runs on the server's loop)."""

    def __init__(self, server: HostileServer, index: int, request: web.Request) -> None:
        self.server = server
        self.index = index
        self.request = request
        self.ws: web.WebSocketResponse | None = None
        #: The Settings the client sent (after :meth:`ready`).
        self.settings: dict[str, Any] | None = None
        #: Every text frame the script read, decoded, in order.
        self.received: list[dict[str, Any]] = []
        #: Binary frames (and their bytes) the script read.
        self.audio_frames = 0
        self.audio_bytes = 0
        self.opened_at = time.monotonic()
        self.ready_at: float | None = None
        self.closed_at: float | None = None
        #: The client's close frame, if one was read: (code, reason).
        self.client_close: tuple[int | None, str] | None = None

    @property
    def socket(self) -> web.WebSocketResponse:
        assert self.ws is not None
        return self.ws

    # ---------------------------------------------------------------- speaking

    async def send(self, message: dict[str, Any]) -> None:
        """A JSON text frame."""
        await self.socket.send_str(json.dumps(message))

    async def send_text(self, data: bytes) -> None:
        """A text frame holding exactly ``data`` (any bytes: invalid UTF-8 included)."""
        await self.socket.send_frame(data, WSMsgType.TEXT)

    async def send_binary(self, data: bytes) -> None:
        await self.socket.send_bytes(data)

    async def welcome(self, request_id: str | None = None) -> None:
        await self.send({"type": "Welcome", "request_id": request_id or f"hostile-{self.index}"})

    async def ready(self, *, timeout: float = 10.0) -> dict[str, Any]:
        """``Welcome``, then the client's ``Settings``, then ``SettingsApplied``."""
        await self.welcome()
        self.settings = await self.next_json("Settings", timeout=timeout)
        await self.send({"type": "SettingsApplied"})
        self.ready_at = time.monotonic()
        self.server._notify()
        return self.settings

    # ---------------------------------------------------------------- listening

    async def next_json(self, kind: str | None = None, *, timeout: float = 10.0) -> dict[str, Any]:
        """The next text frame the client sends (of type ``kind``; binary frames and other
        types are counted and skipped).

        Raises:
            ConnectionError: the client closed or the socket ended first.
            TimeoutError: nothing matching within ``timeout`` (scaled) seconds.
        """
        async with asyncio.timeout(scaled(timeout)):
            while True:
                msg = await self.socket.receive()
                if msg.type is WSMsgType.TEXT:
                    data = json.loads(msg.data)
                    self.received.append(data)
                    self.server._notify()
                    if kind is None or data.get("type") == kind:
                        return data  # type: ignore[no-any-return]
                elif msg.type is WSMsgType.BINARY:
                    self.audio_frames += 1
                    self.audio_bytes += len(msg.data)
                else:
                    if msg.type is WSMsgType.CLOSE:
                        self.client_close = (msg.data, msg.extra or "")
                    raise ConnectionError(f"the client socket ended ({msg.type.name})")

    async def drain(self) -> None:
        """Read (and record) everything the client sends until it closes."""
        with contextlib.suppress(ConnectionError, TimeoutError):
            while True:
                await self.next_json(timeout=3600)

    # ---------------------------------------------------------------- nasty things

    def stop_reading(self) -> None:
        """Stop reading the socket: the client's sends pile up in TCP until its window
        closes (and no ping is ever seen, so none is answered)."""
        transport = self.request.transport
        assert transport is not None
        transport.pause_reading()

    def abort(self) -> None:
        """Drop the TCP connection, no close frame."""
        transport = self.request.transport
        if transport is not None:
            transport.abort()

    async def hold(self) -> None:
        """Keep the socket open, doing nothing, until the server stops."""
        await self.server._stopping.wait()

    async def close(self, code: int = 1000, message: bytes = b"") -> None:
        with contextlib.suppress(Exception):
            await self.socket.close(code=code, message=message)


Script = Callable[[Peer], Awaitable[None]]


class HostileServer:
    """A WebSocket server on 127.0.0.1 that runs ``script`` for every client socket.

    Args:
        script: what to do with each socket (see :class:`Peer`).
        autoping: answer the client's pings (only while the script reads).
        refuse: ``refuse(request)`` returns the HTTP response that refuses the upgrade
            (``None``: accept).
    """

    def __init__(
        self,
        script: Script,
        *,
        autoping: bool = True,
        refuse: Callable[[web.Request], web.StreamResponse | None] | None = None,
    ) -> None:
        self._script = script
        self._autoping = autoping
        self._refuse = refuse
        self.peers: list[Peer] = []
        #: Exceptions the scripts raised (other than the client going away).
        self.script_errors: list[BaseException] = []
        self.requests: list[dict[str, str]] = []
        self._cond = threading.Condition()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="hostile-server", daemon=True)
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.port = 0

    # ---------------------------------------------------------------- lifecycle

    def __enter__(self) -> HostileServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(scaled(10))
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            self.call(self._stop(), timeout=15)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(scaled(10))

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()
        self._loop.close()

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/v1/agent/converse", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def _stop(self) -> None:
        self._stopping.set()
        for peer in self.peers:
            peer.abort()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=2)
        if self._runner is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await self._runner.cleanup()

    @property
    def url(self) -> str:
        """The base URL to give ``DeepgramClient(base_url=...)``."""
        return f"ws://127.0.0.1:{self.port}"

    def client(self, key: str = KEY, **kwargs: Any) -> DeepgramClient:
        return DeepgramClient(api_key=key, base_url=self.url, **kwargs)

    # ---------------------------------------------------------------- the handler

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(dict(request.headers))
        if self._refuse is not None:
            refusal = self._refuse(request)
            if refusal is not None:
                return refusal
        ws = web.WebSocketResponse(autoping=self._autoping, max_msg_size=0, compress=False)
        await ws.prepare(request)
        peer = Peer(self, len(self.peers), request)
        peer.ws = ws
        self.peers.append(peer)
        self._notify()
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._script(peer)
        except (ConnectionError, asyncio.CancelledError, aiohttp.ClientError):
            pass
        except Exception as exc:  # a broken script must fail its test, not hide
            self.script_errors.append(exc)
        finally:
            self._tasks.discard(task)
            peer.closed_at = time.monotonic()
            self._notify()
        return ws

    # ---------------------------------------------------------------- test side

    def _notify(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def wait(self, predicate: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
        """Block until ``predicate()`` holds (checked on every server event), or fail."""
        deadline = time.monotonic() + scaled(timeout)
        with self._cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"the hostile server never saw {what or predicate}")
                self._cond.wait(min(left, 0.2))

    async def async_wait(
        self, predicate: Callable[[], bool], timeout: float = 10.0, what: str = ""
    ) -> None:
        await asyncio.to_thread(self.wait, predicate, timeout, what)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        """Run ``coro`` on the server's loop from another thread."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(scaled(timeout))

    def frames_of(self, kind: str) -> list[tuple[int, dict[str, Any]]]:
        """``(peer index, frame)`` of every recorded client frame of type ``kind``."""
        return [(p.index, f) for p in self.peers for f in p.received if f.get("type") == kind]


# -------------------------------------------------------------------------------------------
# One session through each public API, collected until it ends (bounded)
# -------------------------------------------------------------------------------------------

#: The APIs a behaviour is checked in: the async iterator, the blocking facade, and the two
#: classic callback clients.
APIS = ("async", "blocking", "callbacks", "async_callbacks")


class Outcome:
    """What one session delivered: ``items`` in order (for the callback APIs, ``(event name,
    event)`` pairs, ``Open``/``Close``/``Error`` included), and how it ended."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        #: The exception iteration (or ``start()``) raised, if any.
        self.error: BaseException | None = None
        #: Whether ``start()`` returned True (callback APIs) / connect() returned.
        self.started = False
        self.elapsed = 0.0

    def of(self, cls: type) -> list[Any]:
        """Items (or callback events) that are instances of ``cls``."""
        out = []
        for item in self.items:
            value = item[1] if isinstance(item, tuple) else item
            if isinstance(value, cls):
                out.append(value)
        return out

    def names(self) -> list[str]:
        """Callback event names in order."""
        return [name for name, _ in self.items]


OnReady = Callable[[Any], Any]


async def run_async(
    client: DeepgramClient,
    *,
    timeout: float = 20.0,
    on_ready: OnReady | None = None,
    stop: Callable[[Any], bool] | None = None,
    **options: Any,
) -> Outcome:
    """``async with client.agent.connect(...)``, ``async for`` until the end (or ``stop``)."""
    out = Outcome()
    started = time.monotonic()
    try:
        async with asyncio.timeout(scaled(timeout)):
            async with client.agent.connect(SETTINGS, **options) as conn:
                out.started = True
                if on_ready is not None:
                    result = on_ready(conn)
                    if asyncio.iscoroutine(result):
                        await result
                async for msg in conn:
                    out.items.append(msg)
                    if stop is not None and stop(msg):
                        break
    except TimeoutError:
        raise AssertionError(f"the async session did not end within {timeout} s") from None
    except Exception as exc:
        out.error = exc
    out.elapsed = time.monotonic() - started
    return out


def run_blocking(
    client: DeepgramClient,
    *,
    timeout: float = 20.0,
    on_ready: OnReady | None = None,
    stop: Callable[[Any], bool] | None = None,
    **options: Any,
) -> Outcome:
    """``with client.agent.connect_sync(...)``, ``for`` until the end (or ``stop``), in a
    thread of its own so a hang fails the test instead of blocking it."""
    out = Outcome()

    def session() -> None:
        started = time.monotonic()
        try:
            with client.agent.connect_sync(SETTINGS, **options) as conn:
                out.started = True
                if on_ready is not None:
                    on_ready(conn)
                for msg in conn:
                    out.items.append(msg)
                    if stop is not None and stop(msg):
                        break
        except Exception as exc:
            out.error = exc
        out.elapsed = time.monotonic() - started

    thread = threading.Thread(target=session, name="hostile-blocking-session", daemon=True)
    thread.start()
    thread.join(scaled(timeout))
    if thread.is_alive():
        raise AssertionError(f"the blocking session did not end within {timeout} s")
    return out


def _record_everything(
    conn: Any,
    out: Outcome,
    closed: Callable[[], None],
    stop: Callable[[Any], bool] | None,
    stopped: Callable[[], None],
) -> None:
    from deepgram_agent import AgentWebSocketEvents

    for event in AgentWebSocketEvents:
        name = event.value

        def handler(_client: Any, payload: Any, *, _name: str = name) -> None:
            out.items.append((_name, payload))
            if stop is not None and stop(payload):
                stopped()
            if _name == "Close":
                closed()

        conn.on(event, handler)


def run_callbacks(
    client: DeepgramClient,
    *,
    timeout: float = 20.0,
    on_ready: OnReady | None = None,
    stop: Callable[[Any], bool] | None = None,
    **options: Any,
) -> Outcome:
    """The classic blocking callback client: every event recorded until ``Close`` (or until
    an event satisfies ``stop``: then it is closed)."""
    out = Outcome()
    closed = threading.Event()
    stopped = threading.Event()
    conn = client.agent.websocket.v("1")
    _record_everything(conn, out, closed.set, stop, stopped.set)
    started = time.monotonic()
    try:
        out.started = conn.start(SETTINGS, **options)
        if out.started:
            if on_ready is not None:
                on_ready(conn)
            if stop is not None:
                deadline = time.monotonic() + scaled(timeout)
                while not stopped.is_set() and not closed.is_set():
                    if time.monotonic() > deadline:
                        raise AssertionError(f"no stop event within {timeout} s")
                    stopped.wait(0.1)
                conn.finish()
        if not closed.wait(scaled(timeout)):
            raise AssertionError(f"the callback session did not end within {timeout} s")
    finally:
        conn.finish()
    out.elapsed = time.monotonic() - started
    return out


async def run_async_callbacks(
    client: DeepgramClient,
    *,
    timeout: float = 20.0,
    on_ready: OnReady | None = None,
    stop: Callable[[Any], bool] | None = None,
    **options: Any,
) -> Outcome:
    """The classic async callback client (see :func:`run_callbacks`)."""
    out = Outcome()
    closed = asyncio.Event()
    stopped = asyncio.Event()
    conn = client.agent.asyncwebsocket.v("1")
    _record_everything(conn, out, closed.set, stop, stopped.set)
    started = time.monotonic()
    try:
        async with asyncio.timeout(scaled(timeout)):
            out.started = await conn.start(SETTINGS, **options)
            if out.started:
                if on_ready is not None:
                    result = on_ready(conn)
                    if asyncio.iscoroutine(result):
                        await result
                if stop is not None:
                    wait_stop = asyncio.ensure_future(stopped.wait())
                    wait_close = asyncio.ensure_future(closed.wait())
                    await asyncio.wait({wait_stop, wait_close}, return_when="FIRST_COMPLETED")
                    wait_stop.cancel()
                    wait_close.cancel()
                    await conn.finish()
            await closed.wait()
    except TimeoutError:
        raise AssertionError(f"the callback session did not end within {timeout} s") from None
    finally:
        await conn.finish()
    out.elapsed = time.monotonic() - started
    return out


async def run_api(api: str, client: DeepgramClient, **kwargs: Any) -> Outcome:
    """One session through ``api`` (one of :data:`APIS`), from an async test."""
    if api == "async":
        return await run_async(client, **kwargs)
    if api == "async_callbacks":
        return await run_async_callbacks(client, **kwargs)
    if api == "blocking":
        return await asyncio.to_thread(run_blocking, client, **kwargs)
    if api == "callbacks":
        return await asyncio.to_thread(run_callbacks, client, **kwargs)
    raise ValueError(api)
