"""AgentConnection: the one async core that owns the Voice Agent WebSocket.

Data flow (DESIGN.md 1)::

    server ──aiohttp ws──▶ reader task ──decode_server──▶ hooks ──▶ bounded queue ──▶ consumer
                      └──▶ async for (while it keeps up) ──decode_server──▶ hooks ──┘

* Every text frame is decoded once, straight from bytes, and a bad frame never ends the stream
  (an undecodable one becomes :class:`~deepgram_agent.messages.Unhandled`).
* Hooks (``add_hook``) see every message, in order, before the consumer does; the function-tool
  dispatcher and the history recorder are hooks, so they work even when nobody iterates.
* Exactly one party reads the socket at a time. The reader task does, until an ``async for``
  consumer waits on the empty queue: then the reader hands it the socket and parks, and the
  consumer reads frames itself (one task, no queue: what a bare aiohttp loop costs). The reader
  takes the socket back when the socket ends, on close, and when the consumer is found suspended
  anywhere but in ``receive()`` (:class:`_PullWatch`), so hooks never wait on the application.
* The blocking facade and the callback dispatchers always read through the reader task and a
  queue (a thread-safe one for threads).
* A keepalive task sends ``KeepAlive`` only when nothing else was sent for a while.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import threading
import time
import uuid
import weakref
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, NamedTuple, TypeAlias
from urllib.parse import urlsplit

import aiohttp
import msgspec
from aiohttp import WSMsgType

from . import messages as m
from ._codec import _server_decoder, decode_server, encode
from ._queue import AnyQueue, AsyncQueue, End
from ._reconnect import ConversationRecorder, ReconnectPolicy
from .exceptions import (
    AuthenticationError,
    ConcurrencyError,
    ConnectionClosedError,
    ConnectionClosedOK,
    DeepgramApiError,
    DeepgramConnectionError,
    DeepgramError,
    DeepgramTimeoutError,
    ProtocolError,
    SettingsRejected,
)
from .recording import SessionRecorder

__all__ = [
    "AgentConnection",
    "AgentEvent",
    "ConnectionStatistics",
    "ConnectOptions",
    "DEFAULT_BASE_URL",
    "AGENT_PATH",
    "build_url",
]

logger = logging.getLogger("deepgram_agent")

DEFAULT_BASE_URL = "wss://agent.deepgram.com"
AGENT_PATH = "/v1/agent/converse"

#: What the connection yields: a typed server message, an undecodable frame, or agent audio.
AgentEvent: TypeAlias = m.ServerMessage | m.Unhandled | m.Reconnecting | m.Reconnected | bytes

_KEEPALIVE_FRAME = encode(m.KeepAlive())
_fast_decode = _server_decoder.decode
_DECODE_ERRORS = (msgspec.ValidationError, msgspec.DecodeError)
_NORMAL_CLOSE_CODES = frozenset({1000, 1005})
_TEXT = WSMsgType.TEXT
_BINARY = WSMsgType.BINARY
_CLOSE = WSMsgType.CLOSE


def _undo_cancelled_receive(ws: Any) -> None:
    """Clear the 1006 aiohttp records when a ``receive()`` waiting on an open socket is cancelled.

    ``recv(timeout=...)`` (or any cancellation of ``async for``) cancels aiohttp's
    ``receive()`` while it waits; no frame is lost, but aiohttp then takes the socket for
    abnormally closed: it reports 1006 and skips the close handshake. A socket that was
    waiting for a frame was open and healthy (a closing one would have returned a message).
    """
    if ws is not None and not ws.closed and getattr(ws, "_close_code", None) is not None:
        ws._close_code = None


class _PullWatch:
    """Gives the socket back to the reader task of every ``async for`` that is not keeping up.

    While ``async for msg in conn`` keeps up with the socket it reads it itself (one task, no
    queue: as cheap as a bare aiohttp loop). A consumer that is not waiting for a frame when
    the event loop is free to run this timer is suspended somewhere in its own loop body (or
    has left the loop): frames behind it would wait unread, and so would their hooks (function
    tools, history, the end of the session). One timer per event loop checks the pulling
    connections every ``PERIOD`` seconds and gives the socket back to the reader task of any
    consumer found outside ``receive()``; the reader then reads ahead (up to ``max_queue``)
    and hands the socket over again once the consumer drains the queue and waits.
    """

    PERIOD = 0.05

    def __init__(self) -> None:
        # Nothing here refers to the loop (it keys this watch weakly), and a connection leaves
        # as soon as its reader task has the socket again or ends.
        self._conns: set[AgentConnection] = set()
        self._ticking = False

    def add(self, conn: AgentConnection) -> None:
        self._conns.add(conn)
        if not self._ticking:
            self._ticking = True
            asyncio.get_running_loop().call_later(self.PERIOD, self._tick)

    def discard(self, conn: AgentConnection) -> None:
        self._conns.discard(conn)

    def _tick(self) -> None:
        self._ticking = False
        conns = self._conns
        for conn in list(conns):
            if not conn._consumer_reads:
                conns.discard(conn)
            elif not conn._consumer_inside:
                conns.discard(conn)
                conn._give_socket_back()
        if conns:
            self._ticking = True
            asyncio.get_running_loop().call_later(self.PERIOD, self._tick)


_pull_watches: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _PullWatch] = (
    weakref.WeakKeyDictionary()
)


def _pull_watch(loop: asyncio.AbstractEventLoop) -> _PullWatch:
    watch = _pull_watches.get(loop)
    if watch is None:
        watch = _pull_watches[loop] = _PullWatch()
    return watch


class ConnectionStatistics(NamedTuple):
    """Counters of one connection (``conn.statistics()``)."""

    messages_received: int
    audio_frames_received: int
    audio_bytes_received: int
    unhandled_received: int
    messages_sent: int
    audio_frames_sent: int
    audio_bytes_sent: int
    keepalives_sent: int
    queued: int
    queue_high_water: int
    max_queue: int
    pending_before_ready: int
    dropped_before_ready: int
    reconnects: int
    stale_responses_dropped: int


class ConnectOptions(msgspec.Struct, kw_only=True):
    """Tunables of a connection. Every wait is bounded by one of these.

    Attributes:
        open_timeout: seconds for the handshake, ``Welcome`` and ``SettingsApplied`` together.
        close_timeout: seconds ``close()`` waits for the server's close frame.
        keepalive_interval: send ``KeepAlive`` when nothing was sent for this long (seconds);
            ``None`` turns automatic keepalive off. The server closes an idle session after
            about 10 s (protocol.md 3 rule 4).
        max_queue: received messages held for a slow consumer before the reader pauses.
        max_message_size: largest frame accepted from the server, in bytes.
        max_pending_audio_bytes: audio held while the session is not ready yet (older
            frames are dropped and counted beyond this).
        allow_insecure: allow ``ws://`` to a host that is not loopback.
        extra_headers: more HTTP headers for the upgrade request.
        reconnect: bring an abnormally closed session back with its conversation
            (``True`` for the default :class:`ReconnectPolicy`, or a policy); off by default.
        record: write every frame of the session to this JSON-lines file
            (:mod:`deepgram_agent.recording`); credentials are never written.
        record_audio: also write the audio bytes (base64), not only their sizes.
    """

    open_timeout: float = 10.0
    close_timeout: float = 5.0
    keepalive_interval: float | None = 5.0
    max_queue: int = 1024
    max_message_size: int = 16 * 1024 * 1024
    max_pending_audio_bytes: int = 5 * 48_000 * 2
    allow_insecure: bool = False
    extra_headers: dict[str, str] = msgspec.field(default_factory=dict)
    reconnect: ReconnectPolicy | bool | None = None
    record: str | None = None
    record_audio: bool = False

    def __post_init__(self) -> None:
        if self.reconnect is True:
            self.reconnect = ReconnectPolicy()
        elif self.reconnect is False:
            self.reconnect = None

    @property
    def reconnect_policy(self) -> ReconnectPolicy | None:
        """The reconnect policy in force, if any."""
        return self.reconnect if isinstance(self.reconnect, ReconnectPolicy) else None


def build_url(base_url: str | None) -> str:
    """The full socket URL for a base URL (``wss://host`` -> ``wss://host/v1/agent/converse``).

    ``http``/``https`` are accepted as ``ws``/``wss``. A URL that already has a path is used
    as given.
    """
    base = (base_url or DEFAULT_BASE_URL).strip()
    if "://" not in base:
        base = "wss://" + base
    scheme, rest = base.split("://", 1)
    scheme = {"http": "ws", "https": "wss"}.get(scheme.lower(), scheme.lower())
    if scheme not in ("ws", "wss"):
        raise DeepgramError(f"unsupported URL scheme {scheme!r}: use wss:// (or ws:// locally)")
    url = f"{scheme}://{rest}"
    path = urlsplit(url).path
    if path in ("", "/"):
        url = url.rstrip("/") + AGENT_PATH
    return url


def _new_session() -> aiohttp.ClientSession:
    # No per-host connection limit: every agent session holds one socket for its whole life,
    # and aiohttp's default of 100 would make the 101st connection wait.
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))


class SessionPool:
    """One aiohttp ``ClientSession`` per event loop, shared by a client's connections.

    A session costs memory (connector, cookie jar, resolver); a thousand connections need only
    one. It is created by the first connection on a loop and closed when the last one on that
    loop is closed, so nothing is left open at exit.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_loop: dict[asyncio.AbstractEventLoop, list[Any]] = {}

    def acquire(self) -> aiohttp.ClientSession:
        """The loop's shared session (created if needed); pair with :meth:`release`."""
        loop = asyncio.get_running_loop()
        with self._lock:
            entry = self._by_loop.get(loop)
            if entry is None or entry[0].closed:
                entry = self._by_loop[loop] = [_new_session(), 0]
            entry[1] += 1
            session: aiohttp.ClientSession = entry[0]
            return session

    async def release(self, session: aiohttp.ClientSession) -> None:
        """Return a session; the last connection of its loop closes it."""
        loop = asyncio.get_running_loop()
        with self._lock:
            entry = self._by_loop.get(loop)
            if entry is None or entry[0] is not session:
                last = True
            else:
                entry[1] -= 1
                last = entry[1] <= 0
                if last:
                    del self._by_loop[loop]
        if last:
            await session.close()


def _frame_type(frame: bytes) -> str:
    try:
        kind = msgspec.json.decode(frame).get("type")
    except (msgspec.DecodeError, AttributeError):
        return "?"
    return str(kind)


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


Hook: TypeAlias = Callable[[Any], None]
_ConnHook: TypeAlias = Callable[["AgentConnection", Any], None]


class AgentConnection:
    """An open Voice Agent session.

    Create it with ``client.agent.connect(settings)`` (an async context manager) rather than
    directly. Iterate it to receive, in arrival order, every server message (typed), every
    undecodable frame (:class:`~deepgram_agent.messages.Unhandled`) and the agent's audio
    (``bytes``)::

        async with client.agent.connect(settings) as conn:
            await conn.inject_user_message("Hello")
            async for msg in conn:
                ...

    Iteration ends quietly when the connection closes normally (code 1000, or ``close()``)
    and raises :class:`~deepgram_agent.ConnectionClosedError` when it closes abnormally.
    Server ``Error`` and ``Warning`` messages are yielded, never raised.
    """

    __slots__ = (
        "__weakref__",
        "_all_hooks",
        "_applied_on_socket",
        "_auth_header",
        "_b_audio_in",
        "_b_audio_out",
        "_bg_tasks",
        "_close_hooks",
        "_close_started",
        "_closed",
        "_closing_by_us",
        "_consumer_inside",
        "_consumer_reads",
        "_direct",
        "_dropped_before_ready",
        "_dropping_socket",
        "_final_error",
        "_give_back_wanted",
        "_handed_back",
        "_hooks",
        "_items",
        "_keepalive_task",
        "_last_error_code",
        "_n_audio_in",
        "_n_audio_out",
        "_n_keepalive",
        "_n_msgs",
        "_n_reconnects",
        "_n_sent",
        "_n_stale_responses",
        "_n_unhandled",
        "_open_hooks",
        "_opened_at",
        "_owns_session",
        "_park",
        "_pending",
        "_pending_audio_bytes",
        "_pending_calls",
        "_pool",
        "_pull_waiting",
        "_queue",
        "_reader_task",
        "_ready",
        "_rec",
        "_receive",
        "_reconnect_task",
        "_reconnecting",
        "_recorder",
        "_resent",
        "_saw_close",
        "_session",
        "_settings_json",
        "_shutdown_task",
        "_socket_ended",
        "_stale_calls",
        "_start_error",
        "_url",
        "_welcome",
        "_ws",
        "close_code",
        "close_reason",
        "failed_start",
        "options",
        "request_id",
        "settings",
    )

    def __init__(
        self,
        *,
        url: str,
        auth_header: str,
        settings: m.Settings,
        settings_json: bytes,
        options: ConnectOptions | None = None,
        session: aiohttp.ClientSession | None = None,
        queue: AnyQueue | None = None,
        pool: SessionPool | None = None,
    ) -> None:
        self._pool = pool
        self._url = url
        self._auth_header = auth_header
        self.settings = settings
        self._settings_json = settings_json
        self.options = options or ConnectOptions()
        self._session = session
        self._owns_session = session is None
        self._queue: AnyQueue = queue if queue is not None else AsyncQueue(self.options.max_queue)
        # The async queue's deque, for the consumer's hot path (None for the blocking facade).
        self._items = self._queue._items if type(self._queue) is AsyncQueue else None
        self._ws: aiohttp.ClientWebSocketResponse[bool] | None = None
        self._reader_task: asyncio.Task[None] | None = None
        # Who reads the socket: the reader task, or (while ``async for`` keeps up with it) the
        # consumer itself; see _read_loop, __anext__ and _PullWatch.
        self._consumer_reads = False
        self._consumer_inside = False
        self._pull_waiting = False
        self._give_back_wanted = False
        self._park: asyncio.Future[None] | None = None
        self._handed_back: Any = None
        self._saw_close = False
        self._receive: Any = None  # the socket's bound receive(), for the hot path
        self._keepalive_task: asyncio.Task[None] | None = None
        # Hooks per message type, called as hook(conn, msg): the core's own (shared by every
        # connection, see _CORE_HOOKS) until add_hook() gives this connection a table of its
        # own. Tuples, so a connection that adds nothing carries no hook objects of its own
        # (fewer objects for the garbage collector to walk with many connections).
        self._hooks: dict[type, tuple[_ConnHook, ...]] = _CORE_HOOKS
        self._all_hooks: tuple[_ConnHook, ...] = ()
        self._close_hooks: tuple[Callable[[BaseException | None], None], ...] = ()
        self._open_hooks: tuple[Callable[[], object], ...] = ()
        self._welcome = asyncio.Event()
        self._ready = asyncio.Event()
        self._closed = asyncio.Event()
        self._start_error: BaseException | None = None
        #: Why ``start()`` failed, if it did (the callback API reports it before ``Close``).
        self.failed_start: BaseException | None = None
        self._close_started = False
        self._closing_by_us = False
        self._shutdown_task: asyncio.Task[None] | None = None
        self._dropping_socket = False
        # True while sends may go straight to the socket: ready, nothing held, no flush running.
        # Otherwise they are held in order (see _hold), so nothing overtakes held data.
        self._direct = False
        self._bg_tasks: set[asyncio.Task[Any]] = set()
        self.request_id: str | None = None
        self.close_code: int | None = None
        self.close_reason: str = ""
        self._final_error: BaseException | None = None
        # Held until SettingsApplied: (is_audio, payload)
        self._pending: deque[tuple[bool, bytes]] = deque()
        self._pending_audio_bytes = 0
        self._dropped_before_ready = 0
        # function calls waiting for an answer: id -> name
        self._pending_calls: dict[str, str] = {}
        # counters
        self._n_msgs = 0
        self._n_audio_in = 0
        self._b_audio_in = 0
        self._n_unhandled = 0
        self._n_sent = 0
        self._n_audio_out = 0
        self._b_audio_out = 0
        self._n_keepalive = 0
        self._opened_at = time.monotonic()
        self._n_reconnects = 0
        # Reconnect with context (off unless options.reconnect is set)
        self._socket_ended = asyncio.Event()
        self._applied_on_socket = False
        self._last_error_code: str | None = None
        self._reconnecting = False
        self._reconnect_task: asyncio.Task[None] | None = None
        self._stale_calls: set[str] = set()
        self._resent: list[str] = []
        self._n_stale_responses = 0
        self._recorder: ConversationRecorder | None = None
        self._rec: SessionRecorder | None = None
        policy = self.options.reconnect_policy
        if policy is not None:
            self._recorder = ConversationRecorder(policy.max_history)
            self.add_hook(m.History, self._recorder.on_history)
            self.add_hook(m.ConversationText, self._recorder.on_conversation_text)
            self.add_hook(m.ConversationText, self._recorder.ack_text)
            self.add_hook(m.InjectionRefused, self._recorder.ack_refused)

    # ------------------------------------------------------------------ lifecycle

    def __repr__(self) -> str:
        state = (
            "closed" if self._closed.is_set() else ("ready" if self._ready.is_set() else "opening")
        )
        return f"<AgentConnection {state} url={self._url!r} request_id={self.request_id!r}>"

    @property
    def url(self) -> str:
        """The socket URL (never carries credentials)."""
        return self._url

    @property
    def input_format(self) -> m.AudioFormat:
        """The user audio format this session's Settings declared (what ``send_audio`` takes)."""
        return self.settings.input_format

    @property
    def output_format(self) -> m.AudioFormat:
        """The agent audio format this session's Settings asked for (what iteration yields)."""
        return self.settings.output_format

    @property
    def ready(self) -> bool:
        """True once ``SettingsApplied`` arrived and until the connection closes."""
        return self._ready.is_set() and not self._closed.is_set()

    @property
    def closed(self) -> bool:
        """True once the connection has closed (for whatever reason)."""
        return self._closed.is_set()

    async def start(self) -> None:
        """Open the socket, send ``Settings`` and wait for ``SettingsApplied``.

        Bounded by ``options.open_timeout``. Cancelling is safe: the socket is closed.

        Raises:
            AuthenticationError: 401/403 at the handshake.
            DeepgramApiError: any other refused handshake.
            SettingsRejected: the server answered ``Settings`` with ``Error``.
            DeepgramConnectionError: the server could not be reached.
            DeepgramTimeoutError: ``open_timeout`` ran out.
        """
        if self.options.record and self._rec is None:
            self._rec = SessionRecorder(
                str(self.options.record), audio=self.options.record_audio, url=self._url
            )
        try:
            async with asyncio.timeout(self.options.open_timeout):
                await self._open_socket()
                await self._handshake()
        except TimeoutError:
            err = DeepgramTimeoutError(
                f"the agent session did not become ready within {self.options.open_timeout} s "
                f"({'no Welcome' if not self._welcome.is_set() else 'no SettingsApplied'} from "
                f"{self._url}); raise open_timeout or check the server"
            )
            self.failed_start = err
            await self._abort()
            raise err from None
        except BaseException as exc:
            self.failed_start = exc
            await self._abort()
            raise

    async def _open_socket(self) -> None:
        parts = urlsplit(self._url)
        if (
            parts.scheme == "ws"
            and not self.options.allow_insecure
            and not _is_loopback(parts.hostname)
        ):
            raise DeepgramError(
                f"refusing unencrypted ws:// to {parts.hostname!r}: use wss://, or pass "
                "allow_insecure=True if you really mean it (only loopback is allowed by default)"
            )
        if self._session is None:
            self._session = self._pool.acquire() if self._pool is not None else _new_session()
        headers = {
            "Authorization": self._auth_header,
            "User-Agent": "deepgram-agent-python",
            "x-deepgram-session-id": str(uuid.uuid4()),
        }
        headers.update(self.options.extra_headers)
        try:
            ws = await self._session.ws_connect(
                self._url,
                headers=headers,
                autoping=True,
                autoclose=True,
                compress=0,
                max_msg_size=self.options.max_message_size,
                timeout=aiohttp.ClientWSTimeout(
                    ws_receive=None, ws_close=self.options.close_timeout
                ),
                decode_text=False,
            )
        except aiohttp.WSServerHandshakeError as exc:
            # Not chained: the aiohttp error's request_info holds our request headers.
            headers_in: Mapping[str, str] = exc.headers or {}
            detail = headers_in.get("dg-error") or exc.message or "handshake refused"
            rid = headers_in.get("dg-request-id")
            cls = AuthenticationError if exc.status in (401, 403) else DeepgramApiError
            hint = (
                "; check DEEPGRAM_API_KEY (or api_key=/access_token=)"
                if cls is AuthenticationError
                else ""
            )
            raise cls(f"{detail}{hint}", status=exc.status, request_id=rid) from None
        except (aiohttp.ClientError, OSError, RuntimeError) as exc:
            if self._close_started:
                raise ConnectionClosedOK(
                    None, "", "closed by the application while connecting"
                ) from None
            raise DeepgramConnectionError(f"could not connect to {self._url}: {exc}") from exc
        if self._close_started:
            with contextlib.suppress(Exception):
                await ws.close()
            raise ConnectionClosedOK(None, "", "closed by the application while connecting")
        self._ws = ws
        self._receive = ws.receive
        self._consumer_reads = False
        self._handed_back = None
        self._saw_close = False
        self._socket_ended = asyncio.Event()
        self._applied_on_socket = False
        for open_hook in self._open_hooks:
            try:
                open_hook()
            except Exception:
                logger.exception("deepgram_agent: an open hook raised")
        loop = asyncio.get_running_loop()
        self._reader_task = loop.create_task(self._read_loop(ws), name="deepgram-agent-reader")
        logger.debug("socket open to %s", self._url)

    async def _handshake(
        self, settings_json: bytes | None = None, *, resuming: bool = False
    ) -> None:
        ws = self._ws
        assert ws is not None
        waiter = asyncio.ensure_future(self._welcome.wait())
        closed = asyncio.ensure_future(self._socket_ended.wait())
        try:
            await asyncio.wait({waiter, closed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            closed.cancel()
        if self._close_started:
            raise ConnectionClosedOK(None, "", "closed by the application while connecting")
        if not self._welcome.is_set():
            raise self._start_failure("the server closed before sending Welcome")
        frame = settings_json or self._settings_json
        await ws.send_frame(frame, WSMsgType.TEXT)
        self._n_sent += 1
        if self._rec is not None:
            self._rec.text("out", frame)
        ready = asyncio.ensure_future(self._ready.wait())
        closed = asyncio.ensure_future(self._socket_ended.wait())
        try:
            await asyncio.wait({ready, closed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ready.cancel()
            closed.cancel()
        if self._start_error is not None:
            raise self._start_error
        if self._close_started:
            raise ConnectionClosedOK(None, "", "closed by the application while connecting")
        if not self._applied_on_socket:
            raise self._start_failure("the server closed before SettingsApplied")
        if self._socket_ended.is_set():
            if resuming:
                raise self._start_failure("the server closed right after SettingsApplied")
            return  # ready, then dropped at once: the reader reports it (or reconnects)
        if resuming:
            self._reconnecting = False
        await self._flush_pending()
        if self.options.keepalive_interval:
            self._keepalive_task = asyncio.get_running_loop().create_task(
                self._keepalive_loop(self.options.keepalive_interval),
                name="deepgram-agent-keepalive",
            )

    def _start_failure(self, what: str) -> BaseException:
        if self._start_error is not None:
            return self._start_error
        err = self._final_error
        detail = f"code {self.close_code}" + (
            f", {self.close_reason!r}" if self.close_reason else ""
        )
        exc = ProtocolError(f"{what} ({detail})")
        if err is not None:
            exc.__cause__ = err
        return exc

    async def _abort(self) -> None:
        # A session that never became ready need not wait long for the server's close frame.
        with contextlib.suppress(Exception):
            await self._close_once(graceful_timeout=min(0.5, self.options.close_timeout))

    # ------------------------------------------------------------------ reader

    def _take_close_frame(self, ws: aiohttp.ClientWebSocketResponse[bool], msg: Any) -> None:
        self._saw_close = True
        self.close_code = ws.close_code if ws.close_code is not None else msg.data
        self.close_reason = msg.extra or ""

    async def _read_loop(self, ws: aiohttp.ClientWebSocketResponse[bool]) -> None:
        # No bound methods kept in locals: with many connections every parked reader's frame
        # is walked by each full garbage collection.
        receive = self._receive
        queue = self._queue
        TEXT = WSMsgType.TEXT
        BINARY = WSMsgType.BINARY
        # Hot path for the async consumer: append straight to the AsyncQueue's deque while it
        # has room and nobody waits on it (the rest goes through put_nowait/put).
        fast = type(queue) is AsyncQueue
        items = queue._items if type(queue) is AsyncQueue else None
        maxsize = queue._maxsize
        loop = asyncio.get_running_loop()
        error: BaseException | None = None
        try:
            while True:
                if self._consumer_reads:
                    # ``async for`` reads the socket itself (see __anext__): wait until the
                    # socket comes back (its end, close, or a consumer busy elsewhere).
                    park = self._park = loop.create_future()
                    await park
                    continue
                msg = self._handed_back
                if msg is not None:
                    self._handed_back = None
                else:
                    msg = await receive()
                kind = msg.type
                # Decode, count, record and run the hooks: the same steps as the consumer's
                # direct path in __anext__ (inlined in both: this is the hot path).
                if kind is TEXT:
                    data = msg.data
                    try:
                        item: Any = _fast_decode(data)
                    except _DECODE_ERRORS:
                        item = decode_server(data)  # Unhandled, with the reason
                    self._n_msgs += 1
                    if self._rec is not None:
                        self._rec.text("in", data)
                    handlers = self._hooks.get(type(item))
                    if handlers is not None:
                        for hook in handlers:
                            self._run_hook(hook, item)
                    if self._all_hooks:
                        for hook in self._all_hooks:
                            self._run_hook(hook, item)
                elif kind is BINARY:
                    item = msg.data
                    self._n_audio_in += 1
                    self._b_audio_in += len(item)
                    if self._rec is not None:
                        self._rec.audio("in", item)
                    if self._all_hooks:
                        for hook in self._all_hooks:
                            self._run_hook(hook, item)
                elif kind is WSMsgType.CLOSE:
                    self._take_close_frame(ws, msg)
                    continue
                elif kind is WSMsgType.ERROR:
                    error = msg.data if isinstance(msg.data, BaseException) else None
                    break
                else:  # CLOSED / CLOSING
                    break
                if fast:
                    n = len(items)  # type: ignore[arg-type]
                    getter = queue._getter  # type: ignore[union-attr]
                    if getter is None:
                        if n < maxsize:
                            items.append(item)  # type: ignore[union-attr]
                            if n >= queue.high_water:
                                queue.high_water = n + 1
                            continue
                    elif self._pull_waiting and self._may_hand_over():
                        # ``async for`` waits on the empty queue for this very item: hand it
                        # over together with the socket, so from now on the consumer reads
                        # frames itself, without a hop through this task and the queue (the
                        # floor's path). Only then: a consumer that was woken but has not run
                        # yet may have a full queue to drain first.
                        self._consumer_reads = True
                        _pull_watch(loop).add(self)
                if not queue.put_nowait(item):
                    if self._applied_on_socket and type(item) is not m.SettingsApplied:
                        await queue.put(item)
                    else:
                        # Frames before SettingsApplied (Welcome, an Error) must not wait for
                        # the consumer, or a (re)connect would depend on the app reading.
                        queue.put_nowait(item, force=True)
        except asyncio.CancelledError:
            error = None
            if not self._closing_by_us and not self._dropping_socket:
                # Cancelled from outside (e.g. asyncio.run() ending while the connection is
                # open): close the socket and our HTTP session on the way out.
                self._closing_by_us = True
                await self._close_quietly(ws)
            raise
        except Exception as exc:  # never expected; reported, not swallowed
            logger.exception("deepgram_agent reader failed")
            error = exc
        finally:
            if self._consumer_reads:
                self._consumer_reads = False
                _pull_watch(loop).discard(self)
            self._park = None
            self._finish_reader(ws, error, self._saw_close)

    def _may_hand_over(self) -> bool:
        # Only a settled session: while a (re)connect is in flight, Welcome, SettingsApplied
        # and Reconnected reach the queue from elsewhere, and a consumer waiting on the socket
        # would not see them.
        rtask = self._reconnect_task
        return self._applied_on_socket and (rtask is None or rtask.done())

    def _give_socket_back(self) -> None:
        """Return the socket to the reader task (``async for`` stopped reading it itself).

        Deferred while the consumer is inside ``receive()``: it gives the socket back on its
        way out of ``__anext__``.
        """
        if not self._consumer_reads:
            return
        if self._consumer_inside:
            self._give_back_wanted = True
            return
        self._consumer_reads = False
        self._give_back_wanted = False
        watch = _pull_watches.get(asyncio.get_running_loop())
        if watch is not None:
            watch.discard(self)
        park, self._park = self._park, None
        if park is not None and not park.done():
            park.set_result(None)

    async def _close_quietly(self, ws: aiohttp.ClientWebSocketResponse[bool]) -> None:
        with contextlib.suppress(BaseException):
            async with asyncio.timeout(0.5):
                await ws.close()
        with contextlib.suppress(BaseException):
            await self._release_session()

    async def _release_session(self) -> None:
        """Give back the HTTP session: close ours, return a pooled one, keep the caller's."""
        session, self._session = self._session, None
        if session is None or not self._owns_session:
            return
        if self._pool is not None:
            await self._pool.release(session)
        else:
            await session.close()

    def _run_hook(self, hook: _ConnHook, item: Any) -> None:
        try:
            hook(self, item)
        except Exception:
            logger.exception("deepgram_agent: a message hook raised; the stream goes on")

    def _finish_reader(
        self,
        ws: aiohttp.ClientWebSocketResponse[bool],
        error: BaseException | None,
        saw_close: bool,
    ) -> None:
        self._socket_ended.set()
        if self._reconnecting and not self._closing_by_us:
            return  # a failed reconnect attempt: the reconnect loop decides what comes next
        if self.close_code is None:
            self.close_code = ws.close_code
        exc_cause = error or ws.exception()
        code = self.close_code
        if self._closing_by_us or (saw_close and code in _NORMAL_CLOSE_CODES):
            end_error: BaseException | None = None
            self._final_error = None
        else:
            if not saw_close or code is None:
                code = 1006
                self.close_code = 1006
            reason = self.close_reason
            detail = "the connection was lost" if not saw_close else "the server closed the session"
            err = ConnectionClosedError(code, reason, detail)
            if exc_cause is not None:
                err.__cause__ = exc_cause
            end_error = err
            self._final_error = err
        if self._should_reconnect(end_error):
            self._begin_reconnect(end_error)
            return
        self._end(end_error)

    def _end(self, end_error: BaseException | None) -> None:
        if self._rec is not None:
            self._rec.close()
        self._closed.set()
        self._queue.end(End(end_error))
        for hook in self._close_hooks:
            try:
                hook(end_error)
            except Exception:
                logger.exception("deepgram_agent: a close hook raised")
        if self._keepalive_task is not None:
            self._keepalive_task.cancel()

    # ------------------------------------------------------------------ reconnect with context

    def _should_reconnect(self, end_error: BaseException | None) -> bool:
        policy = self.options.reconnect_policy
        if policy is None or self._closing_by_us or not self._ready.is_set():
            return False
        code = self._last_error_code
        if end_error is None:
            # A normal close: only after a server Error that says "come back".
            return code is not None and policy.reconnects_after(code)
        return policy.reconnects_after(code)

    def _begin_reconnect(self, cause: BaseException | None) -> None:
        self._reconnecting = True
        self._direct = False
        self._ready.clear()
        self._welcome.clear()
        if self._keepalive_task is not None:
            self._keepalive_task.cancel()
        # Calls the old session asked for are never answered on the new one; if the new
        # session wants them, it asks again (with new ids).
        self._stale_calls.update(self._pending_calls)
        self._pending_calls.clear()
        # Injections the dead session never acknowledged go out again, first, in order.
        if self._recorder is not None:
            resend = self._recorder.take_unacked()
            self._resent = [_frame_type(f) for f in resend]
            for frame in reversed(resend):
                self._pending.appendleft((False, frame))
        what = f"server Error {self._last_error_code}" if cause is None else str(cause)
        logger.warning("deepgram_agent: session lost (%s); reconnecting", what)
        self._reconnect_task = asyncio.get_running_loop().create_task(
            self._reconnect_loop(what, cause), name="deepgram-agent-reconnect"
        )

    async def _reconnect_loop(self, what: str, cause: BaseException | None) -> None:
        policy = self.options.reconnect_policy
        assert policy is not None
        started = time.monotonic()
        attempt = 0
        last: BaseException | None = cause
        while True:
            attempt += 1
            if attempt > policy.max_attempts or time.monotonic() - started > policy.max_total_time:
                self._give_up(attempt - 1, last, what)
                return
            delay = policy.delay(attempt)
            self._queue.put_nowait(
                m.Reconnecting(attempt=attempt, delay=delay, cause=what), force=True
            )
            await asyncio.sleep(delay)
            if self._closing_by_us:
                return
            resume = self._resume_settings()
            self._last_error_code = None
            self._start_error = None
            self.close_code = None
            self.close_reason = ""
            try:
                async with asyncio.timeout(self.options.open_timeout):
                    await self._open_socket()
                    await self._handshake(resume, resuming=True)
            except (AuthenticationError, SettingsRejected) as exc:
                self._give_up(attempt, exc, what)
                return
            except (DeepgramError, TimeoutError, OSError, aiohttp.ClientError) as exc:
                if self._reconnect_task is not asyncio.current_task() or self._closing_by_us:
                    return  # closed meanwhile, or a newer outage took over
                last = exc
                what = f"reconnect attempt {attempt} failed: {exc or type(exc).__name__}"
                self._welcome.clear()
                self._ready.clear()
                await self._drop_socket()
                continue
            self._n_reconnects += 1
            items = len(self._recorder.items) if self._recorder is not None else 0
            logger.info("deepgram_agent: reconnected after %d attempt(s)", attempt)
            self._queue.put_nowait(
                m.Reconnected(
                    attempt=attempt,
                    request_id=self.request_id,
                    downtime=time.monotonic() - started,
                    context_items=items,
                    resent=self._resent,
                ),
                force=True,
            )
            return

    def _resume_settings(self) -> bytes:
        if self._recorder is None:
            return self._settings_json
        wire = msgspec.json.decode(self._settings_json)
        return encode(self._recorder.resume_settings(wire))

    async def _drop_socket(self) -> None:
        ws, reader = self._ws, self._reader_task
        if ws is not None and not ws.closed:
            with contextlib.suppress(BaseException):
                async with asyncio.timeout(1.0):
                    await ws.close()
        self._give_socket_back()
        if reader is not None and not reader.done():
            self._dropping_socket = True
            try:
                reader.cancel()
                await asyncio.wait({reader}, timeout=1.0)
            finally:
                self._dropping_socket = False

    def _give_up(self, attempts: int, last: BaseException | None, what: str) -> None:
        unsent = [
            "audio" if is_audio else (msgspec.json.decode(p).get("type", "?") if p else "?")
            for is_audio, p in self._pending
        ]
        names = [u for u in unsent if u != "audio"]
        n_audio = len(unsent) - len(names)
        detail = f"reconnecting gave up after {attempts} attempt(s) ({what})"
        if unsent:
            detail += f"; not sent: {', '.join(names) or 'no messages'}"
            detail += f" and {n_audio} audio chunk(s)" if n_audio else ""
        err = ConnectionClosedError(self.close_code or 1006, self.close_reason, detail)
        err.unsent = names  # type: ignore[attr-defined]
        if last is not None:
            err.__cause__ = last
        self._final_error = err
        self._pending.clear()
        self._pending_audio_bytes = 0
        self._reconnecting = False
        logger.error("deepgram_agent: %s", detail)
        self._end(err)
        if self._owns_session and self._session is not None:
            task = asyncio.get_running_loop().create_task(self._release_session())
            self._bg_tasks.add(task)
            task.add_done_callback(self._bg_tasks.discard)

    # The reader calls these for the handshake and function-call bookkeeping.
    def _on_welcome(self, msg: m.Welcome) -> None:
        self.request_id = msg.request_id or None
        self._welcome.set()

    def _on_settings_applied(self, msg: m.SettingsApplied) -> None:
        self._applied_on_socket = True
        self._ready.set()

    def _on_error(self, msg: m.Error) -> None:
        self._last_error_code = msg.code or None
        if not self._ready.is_set() and self._start_error is None:
            self._start_error = SettingsRejected(
                msg.description or "the server rejected the Settings",
                code=msg.code or None,
                request_id=self.request_id,
            )
            self._ready.set()

    def _on_function_call_request(self, msg: m.FunctionCallRequest) -> None:
        for item in msg.functions:
            if item.client_side and item.id:
                self._pending_calls[item.id] = item.name

    def _on_function_call_cancelled(self, msg: m.FunctionCallCancelled) -> None:
        for item in msg.functions:
            self._pending_calls.pop(item.id, None)

    def _on_unhandled(self, msg: m.Unhandled) -> None:
        self._n_unhandled += 1
        if msg.reason is not None:
            logger.warning(
                "deepgram_agent: undecodable %s frame from the server (%s); delivered as Unhandled",
                msg.message_type or "text",
                msg.reason[:200],
            )

    def add_hook(self, message_type: type | None, hook: Hook) -> None:
        """Call ``hook(msg)`` in the reader for every message of ``message_type``.

        ``None`` means every item, audio ``bytes`` included. Hooks run in arrival order before
        the consumer gets the message, in the reader task or in the iterating task; they must be
        quick and must not block (start a task for real work). A hook that raises is logged;
        the stream goes on.
        """

        def call(conn: AgentConnection, msg: Any) -> None:
            hook(msg)

        if message_type is None:
            self._all_hooks = (*self._all_hooks, call)
        else:
            if self._hooks is _CORE_HOOKS:
                self._hooks = dict(_CORE_HOOKS)
            self._hooks[message_type] = (*self._hooks.get(message_type, ()), call)

    def add_open_hook(self, hook: Callable[[], object]) -> None:
        """Call ``hook()`` once the socket is open, before any message is read."""
        self._open_hooks = (*self._open_hooks, hook)

    def add_close_hook(self, hook: Callable[[BaseException | None], None]) -> None:
        """Call ``hook(error_or_None)`` once when the connection has closed."""
        self._close_hooks = (*self._close_hooks, hook)

    # ------------------------------------------------------------------ receiving

    def __aiter__(self) -> AsyncIterator[AgentEvent]:
        return self

    async def __anext__(self) -> AgentEvent:
        items = self._items
        if items:  # a message is waiting (inlined AsyncQueue.get_nowait)
            item = items.popleft()
            if self._queue._putters:
                self._queue._wake_putter()  # type: ignore[union-attr]
            return item  # type: ignore[no-any-return]
        if self._consumer_reads and not self._consumer_inside:
            # The reader task handed us the socket: read it here, like a bare aiohttp loop
            # (the same steps as _read_loop's, inlined in both: this is the hot path).
            self._consumer_inside = True
            try:
                while True:
                    try:
                        msg = await self._receive()
                    except asyncio.CancelledError:
                        _undo_cancelled_receive(self._ws)
                        raise
                    kind = msg.type
                    if kind is _TEXT:
                        data = msg.data
                        try:
                            item = _fast_decode(data)
                        except _DECODE_ERRORS:
                            item = decode_server(data)
                        self._n_msgs += 1
                        if self._rec is not None:
                            self._rec.text("in", data)
                        handlers = self._hooks.get(type(item))
                        if handlers is not None:
                            for hook in handlers:
                                self._run_hook(hook, item)
                        if self._all_hooks:
                            for hook in self._all_hooks:
                                self._run_hook(hook, item)
                        return item  # type: ignore[no-any-return]
                    if kind is _BINARY:
                        data = msg.data
                        self._n_audio_in += 1
                        self._b_audio_in += len(data)
                        if self._rec is not None:
                            self._rec.audio("in", data)
                        if self._all_hooks:
                            for hook in self._all_hooks:
                                self._run_hook(hook, data)
                        return data  # type: ignore[no-any-return]
                    if kind is _CLOSE:
                        self._take_close_frame(self._ws, msg)  # type: ignore[arg-type]
                        continue
                    # The end of the socket (closed, closing, error): the reader task decides
                    # what comes next (the end of the stream, or a reconnect).
                    self._handed_back = msg
                    self._give_back_wanted = True
                    break
            finally:
                self._consumer_inside = False
                if self._give_back_wanted:
                    self._give_socket_back()
        elif self._consumer_reads:
            raise ConcurrencyError(
                "another task is already reading this connection; use one reader "
                "(one 'async for' loop) per connection"
            )
        return await self._next_queued()

    async def _next_queued(self) -> AgentEvent:
        queue = self._queue
        if type(queue) is not AsyncQueue:
            raise ConcurrencyError("this connection is read through its blocking facade")
        item = queue.get_nowait()
        if item is None:
            self._pull_waiting = True
            try:
                item = await queue.get()
            finally:
                self._pull_waiting = False
        if type(item) is End:
            if item.error is not None:
                raise item.error
            raise StopAsyncIteration
        return item  # type: ignore[return-value]

    async def recv(self, timeout: float | None = None) -> AgentEvent:
        """Return the next message, ``Unhandled`` frame or audio chunk.

        Args:
            timeout: seconds to wait at most (``None``: until something arrives).

        Raises:
            ConnectionClosedOK: the connection closed normally.
            ConnectionClosedError: it closed abnormally.
            DeepgramTimeoutError: nothing arrived within ``timeout``.

        Cancelling is safe: no message is lost.
        """
        try:
            async with asyncio.timeout(timeout):
                return await self.__anext__()
        except StopAsyncIteration:
            raise ConnectionClosedOK(self.close_code, self.close_reason) from None
        except TimeoutError:
            raise DeepgramTimeoutError(f"no message within {timeout} s") from None

    # ------------------------------------------------------------------ sending

    def _check_open(self) -> aiohttp.ClientWebSocketResponse[bool]:
        ws = self._ws
        if ws is None or self._closed.is_set() or ws.closed:
            if self._final_error is not None:
                raise ConnectionClosedError(
                    self.close_code, self.close_reason, "cannot send: the connection is closed"
                ) from self._final_error
            raise ConnectionClosedOK(
                self.close_code, self.close_reason, "cannot send: the connection is closed"
            )
        return ws

    async def send_audio(self, data: bytes | bytearray | memoryview) -> None:
        """Send one chunk of user audio (in the ``audio.input`` format) as a binary frame.

        Empty chunks are skipped (the protocol forbids empty binary frames). Audio sent before
        ``SettingsApplied`` is held (up to ``max_pending_audio_bytes``, oldest dropped first)
        and sent right after it.

        Raises:
            ConnectionClosed: the connection is closed.
        """
        if not data:
            return
        if not self._direct:
            self._hold(True, bytes(data))
            return
        ws = self._check_open()
        try:
            await ws.send_frame(data, WSMsgType.BINARY)  # type: ignore[arg-type]
        except (ConnectionError, aiohttp.ClientError) as exc:
            raise self._send_failed(exc) from exc
        self._n_audio_out += 1
        self._b_audio_out += len(data)
        if self._rec is not None:
            self._rec.audio("out", data)

    def _send_failed(self, exc: BaseException) -> BaseException:
        return ConnectionClosedError(
            self.close_code or 1006, self.close_reason, f"send failed: {exc}"
        )

    def _pending_audio_limit(self) -> int:
        policy = self.options.reconnect_policy
        if self._reconnecting and policy is not None:
            from .options import input_format

            encoding, rate = input_format(self.settings)
            width = {"mulaw": 1, "alaw": 1, "linear32": 4}.get(encoding, 2)
            return int(policy.buffer_seconds * rate * width)
        return self.options.max_pending_audio_bytes

    def _hold(self, is_audio: bool, payload: bytes) -> None:
        if self._closed.is_set():
            self._check_open()
        policy = self.options.reconnect_policy
        if not is_audio and self._reconnecting and policy is not None:
            queued = sum(1 for a, _ in self._pending if not a)
            if queued >= policy.max_queued_messages:
                raise ConnectionClosedError(
                    1006,
                    "",
                    f"reconnecting: {queued} messages already wait to be sent "
                    f"(max_queued_messages); this one was not queued",
                )
        self._pending.append((is_audio, payload))
        if is_audio:
            self._pending_audio_bytes += len(payload)
            limit = self._pending_audio_limit()
            while self._pending_audio_bytes > limit:
                for i, (audio, chunk) in enumerate(self._pending):
                    if audio:
                        del self._pending[i]
                        self._pending_audio_bytes -= len(chunk)
                        self._dropped_before_ready += 1
                        break
                else:  # pragma: no cover - only control frames left
                    break

    async def _flush_pending(self) -> None:
        """Send everything held, in order, then let sends go straight to the socket.

        Sends made while this runs are appended to the held queue and flushed by this same
        loop, so nothing overtakes what was held.
        """
        ws = self._check_open()
        while self._pending:
            is_audio, payload = self._pending.popleft()
            try:
                await ws.send_frame(payload, WSMsgType.BINARY if is_audio else WSMsgType.TEXT)
            except (ConnectionError, aiohttp.ClientError) as exc:
                self._pending.appendleft((is_audio, payload))
                raise self._send_failed(exc) from exc
            if is_audio:
                self._pending_audio_bytes -= len(payload)
                self._n_audio_out += 1
                self._b_audio_out += len(payload)
            else:
                self._n_sent += 1
                if self._recorder is not None and payload.startswith(b'{"type":"Inject'):
                    self._recorder.on_sent_injection(payload)
            if self._rec is not None:
                if is_audio:
                    self._rec.audio("out", payload)
                else:
                    self._rec.text("out", payload)
        self._direct = True

    async def send_raw(self, payload: bytes | str | Mapping[str, Any]) -> None:
        """Send a JSON text frame exactly as given, with no validation (escape hatch).

        Use it to reach server features this SDK does not model yet. A mapping is encoded as
        JSON; ``str``/``bytes`` are sent verbatim.
        """
        if isinstance(payload, Mapping):
            data = encode(dict(payload))
        elif isinstance(payload, str):
            data = payload.encode()
        else:
            data = bytes(payload)
        await self._send_text(data)

    async def _send_text(self, data: bytes) -> None:
        if not self._direct:
            self._hold(False, data)
            return
        ws = self._check_open()
        try:
            await ws.send_frame(data, WSMsgType.TEXT)
        except (ConnectionError, aiohttp.ClientError) as exc:
            raise self._send_failed(exc) from exc
        self._n_sent += 1
        if self._rec is not None:
            self._rec.text("out", data)
        if self._recorder is not None and data.startswith(b'{"type":"Inject'):
            self._recorder.on_sent_injection(data)

    async def send(self, message: Any) -> None:
        """Validate and send any client message.

        Accepts a ``deepgram_agent.messages`` struct, one of the seed's option objects
        (``UpdatePromptOptions``, ``FunctionCallResponse``, ...) or a plain dict. A
        ``FunctionCallResponse`` without an id gets the id of the oldest pending request for
        that function name.

        Raises:
            SettingsError: the message is invalid (names the JSON path).
            TypeError: not a message.
            ConnectionClosed: the connection is closed.
        """
        from .options import coerce_client_message

        msg = coerce_client_message(message)
        if isinstance(msg, m.Settings):
            raise DeepgramApiError(
                "Settings can only be sent once, when connecting (the server answers a second "
                "one with SETTINGS_ALREADY_APPLIED); open a new connection to change them "
                "wholesale, or use update_prompt/update_speak/update_think/update_listen",
                code="SETTINGS_ALREADY_APPLIED",
            )
        if isinstance(msg, m.FunctionCallResponse):
            completed = self._complete_function_response(msg)
            if completed is None:
                return
            msg = completed
        elif self._recorder is not None:
            self._recorder.on_update(msg)
        await self._send_text(encode(msg))

    def _complete_function_response(
        self, msg: m.FunctionCallResponse
    ) -> m.FunctionCallResponse | None:
        if isinstance(msg.id, str) and msg.id in self._stale_calls:
            self._stale_calls.discard(msg.id)
            self._n_stale_responses += 1
            logger.warning(
                "deepgram_agent: not sending the response to call %s (%s): it was asked by a "
                "session that has since been replaced; the new session asks again if it needs it",
                msg.id,
                msg.name,
            )
            return None
        if isinstance(msg.id, str) and msg.id:
            self._pending_calls.pop(msg.id, None)
            return msg
        for call_id, name in self._pending_calls.items():
            if name == msg.name:
                del self._pending_calls[call_id]
                return m.FunctionCallResponse(id=call_id, name=msg.name, content=msg.content)
        raise DeepgramError(
            f"no pending FunctionCallRequest for function {msg.name!r}, so the response has no "
            "id to answer; pass id=<the request's functions[i].id>"
        )

    async def update_prompt(self, prompt: str) -> None:
        """Send ``UpdatePrompt``; the server answers ``PromptUpdated``."""
        await self.send(m.UpdatePrompt(prompt=prompt))

    async def update_speak(self, speak: Any) -> None:
        """Send ``UpdateSpeak`` (a ``Speak`` option, ``messages.SpeakSettings``, a list, or a dict)."""
        from .options import UpdateSpeakOptions

        await self.send(
            speak if isinstance(speak, UpdateSpeakOptions) else UpdateSpeakOptions(speak=speak)
        )

    async def update_think(self, think: Any) -> None:
        """Send ``UpdateThink`` (a ``Think`` option, ``messages.ThinkSettings``, a list, or a dict)."""
        from .options import UpdateThinkOptions

        await self.send(
            think if isinstance(think, UpdateThinkOptions) else UpdateThinkOptions(think=think)
        )

    async def update_listen(self, listen: Any) -> None:
        """Send ``UpdateListen`` (a ``Listen`` option, ``messages.ListenSettings`` or a dict)."""
        from .options import UpdateListenOptions

        await self.send(
            listen
            if isinstance(listen, UpdateListenOptions)
            else UpdateListenOptions(listen=listen)
        )

    async def inject_user_message(self, content: str) -> None:
        """Send ``InjectUserMessage``: the agent acts as if the user said ``content``."""
        await self.send(m.InjectUserMessage(content=content))

    async def inject_agent_message(self, message: str, *, behavior: str | None = None) -> None:
        """Send ``InjectAgentMessage``: the agent says ``message`` verbatim.

        Args:
            message: the text to speak.
            behavior: ``"default"``, ``"queue"`` or ``"interrupt"`` (server default when omitted).
        """
        if behavior is None:
            await self.send(m.InjectAgentMessage(message=message))
        else:  # validated: anything but default/queue/interrupt is a SettingsError
            await self.send(
                {"type": "InjectAgentMessage", "message": message, "behavior": behavior}
            )

    async def send_function_call_response(
        self,
        response: Any = None,
        *,
        id: str | None = None,
        name: str | None = None,
        content: Any = None,
    ) -> None:
        """Answer a client-side function call with ``FunctionCallResponse {id, name, content}``.

        Pass either a response object (``FunctionCallResponse`` option or message) or the
        keywords. ``content`` that is not a string is sent as JSON text.
        """
        if response is None:
            if name is None:
                raise TypeError("send_function_call_response() needs a response object or name=")
            text = content if isinstance(content, str) else msgspec.json.encode(content).decode()
            response = (
                m.FunctionCallResponse(name=name, content=text, id=id)
                if id
                else m.FunctionCallResponse(name=name, content=text)
            )
        await self.send(response)

    async def keep_alive(self) -> None:
        """Send ``KeepAlive`` now (automatic keepalive makes this rarely necessary)."""
        await self._send_text(_KEEPALIVE_FRAME)
        self._n_keepalive += 1

    async def force_end_turn(self) -> None:
        """Send ``ForceEndTurn``: end the current user turn now (Flux listen only)."""
        await self.send(m.ForceEndTurn())

    async def _keepalive_loop(self, interval: float) -> None:
        period = interval / 2
        last = (self._n_sent, self._n_audio_out)
        try:
            while not self._closed.is_set():
                await asyncio.sleep(period)
                now = (self._n_sent, self._n_audio_out)
                if now == last:
                    try:
                        await self.keep_alive()
                    except DeepgramError:
                        return
                    now = (self._n_sent, self._n_audio_out)
                last = now
        except asyncio.CancelledError:
            pass

    # ------------------------------------------------------------------ closing

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection. Idempotent, bounded by ``close_timeout``, safe from any task.

        Iteration then ends quietly. Cancelling is safe: the socket is closed regardless.
        """
        # A session that is not ready (connecting, reconnecting) has nothing in flight worth a
        # long close handshake: do not wait more than half a second for the server's answer.
        quick = None if self._ready.is_set() else min(0.5, self.options.close_timeout)
        await self._close_once(code=code, reason=reason, graceful_timeout=quick)

    async def _close_once(
        self, code: int = 1000, reason: str = "", graceful_timeout: float | None = None
    ) -> None:
        self._closing_by_us = True
        self._close_started = True
        self._direct = False
        task = self._shutdown_task
        if task is None:
            # One shutdown task that every close() waits for: cancelling a close() does not
            # cancel the shutdown, and a second close() joins it instead of waiting forever.
            task = self._shutdown_task = asyncio.get_running_loop().create_task(
                self._shutdown(code=code, reason=reason, graceful_timeout=graceful_timeout),
                name="deepgram-agent-close",
            )
        if task is asyncio.current_task():
            return
        await asyncio.shield(task)

    async def _shutdown(
        self, code: int = 1000, reason: str = "", *, graceful_timeout: float | None = None
    ) -> None:
        self._close_started = True
        ws = self._ws
        close_timeout = self.options.close_timeout if graceful_timeout is None else graceful_timeout
        current = asyncio.current_task()
        rtask = self._reconnect_task
        if rtask is not None and rtask is not current and not rtask.done():
            rtask.cancel()
            await asyncio.wait({rtask}, timeout=self.options.close_timeout)
        self._reconnecting = False
        if self._keepalive_task is not None and self._keepalive_task is not current:
            self._keepalive_task.cancel()
        try:
            if ws is not None and not ws.closed:
                try:
                    async with asyncio.timeout(close_timeout):
                        await ws.close(code=code, message=reason.encode())
                except (TimeoutError, aiohttp.ClientError, OSError):
                    pass
            if ws is not None and self.close_code is None:
                # The reader may have ended before the server's close frame was read.
                self.close_code = ws.close_code or code
            self._give_socket_back()  # the reader task, not ``async for``, ends the session
            reader = self._reader_task
            if reader is not None and reader is not current and not reader.done():
                # The socket is closed; the reader ends at once unless it is parked on a full
                # queue (its consumer may be the one closing): then cancel it, which is safe.
                await asyncio.wait({reader}, timeout=0.5)
                if not reader.done():
                    reader.cancel()
                    await asyncio.wait({reader}, timeout=self.options.close_timeout)
            if not self._closed.is_set():
                self._closed.set()
                self._queue.end(End(None))
                for hook in self._close_hooks:
                    with contextlib.suppress(Exception):
                        hook(None)
        finally:
            if not self._closed.is_set():  # only if something above was cancelled or failed
                self._closed.set()
                self._queue.end(End(None))
            if self._rec is not None:
                self._rec.close()
            with contextlib.suppress(Exception):
                await self._release_session()

    async def wait_closed(self, timeout: float | None = None) -> None:
        """Wait until the connection has closed.

        Raises:
            DeepgramTimeoutError: still open after ``timeout`` seconds.
        """
        try:
            async with asyncio.timeout(timeout):
                await self._closed.wait()
        except TimeoutError:
            raise DeepgramTimeoutError(f"still open after {timeout} s") from None

    async def __aenter__(self) -> AgentConnection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ introspection

    def statistics(self) -> ConnectionStatistics:
        """Counters of this connection."""
        return ConnectionStatistics(
            messages_received=self._n_msgs,
            audio_frames_received=self._n_audio_in,
            audio_bytes_received=self._b_audio_in,
            unhandled_received=self._n_unhandled,
            messages_sent=self._n_sent,
            audio_frames_sent=self._n_audio_out,
            audio_bytes_sent=self._b_audio_out,
            keepalives_sent=self._n_keepalive,
            queued=len(self._queue),
            queue_high_water=self._queue.high_water,
            max_queue=self.options.max_queue,
            pending_before_ready=len(self._pending),
            dropped_before_ready=self._dropped_before_ready,
            reconnects=self._n_reconnects,
            stale_responses_dropped=self._n_stale_responses,
        )

    @property
    def pending_function_calls(self) -> dict[str, str]:
        """Client-side calls requested and not answered or cancelled yet: ``{id: name}``."""
        return dict(self._pending_calls)


#: The core's own hooks (handshake and function-call bookkeeping), shared by every connection.
_CORE_HOOKS: dict[type, tuple[_ConnHook, ...]] = {
    m.Welcome: (AgentConnection._on_welcome,),
    m.SettingsApplied: (AgentConnection._on_settings_applied,),
    m.Error: (AgentConnection._on_error,),
    m.FunctionCallRequest: (AgentConnection._on_function_call_request,),
    m.FunctionCallCancelled: (AgentConnection._on_function_call_cancelled,),
    m.Unhandled: (AgentConnection._on_unhandled,),
}
