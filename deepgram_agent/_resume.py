"""Reconnect with context: :class:`ResumingConnection`, a fresh socket per outage.

``client.agent.connect(settings, reconnect=True)`` returns one of these. It has the API of any
:class:`~deepgram_agent.AgentConnection`; underneath, each socket is a
:class:`~deepgram_agent._connection.SocketConnection` used once. When a socket ends
abnormally (lost TCP, an abnormal close code, or a server ``Error`` such as
``SERVER_GOING_AWAY``), this wrapper opens a new one and sends the original ``Settings``
rebuilt by :class:`~deepgram_agent._reconnect.ConversationHistory` (``agent.context`` from the
``History`` events, no greeting, runtime updates applied), so the agent continues the
conversation (docs/protocol.md 3 rule 7). It never swaps a socket inside a live connection.

What it carries across an outage:

* the consumer's stream: every socket puts into one queue; the consumer sees
  ``Reconnecting`` (per attempt) and ``Reconnected`` (instead of the new socket's
  ``Welcome``/``SettingsApplied``), and the end only when the session ends for good;
* what could not be sent: injections the dead socket never acknowledged, frames it still
  held, and what the app sent during the outage (audio bounded by
  ``policy.buffer_seconds``, messages by ``policy.max_queued_messages``), all sent first, in
  order, right after the new ``SettingsApplied``;
* stale calls: a ``FunctionCallResponse`` for a call only the dead socket asked for is never
  sent (the new session asks again if it needs it, and that request is answered once);
* health: a socket counts as healthy only after ``policy.healthy_after`` seconds or a user
  turn; until then a drop continues the same outage (attempts, backoff and total time go on).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any

from . import messages as m
from ._codec import encode
from ._config import ConnectOptions
from ._connection import (
    AgentConnection,
    AgentEvent,
    ConnectionStatistics,
    SocketConnection,
    SocketOwner,
    audio_bytes,
)
from ._protocol import AgentProtocol, Hook
from ._queue import AnyQueue, End
from ._reconnect import ConversationHistory, ReconnectPolicy
from .exceptions import (
    AuthenticationError,
    ConnectionClosed,
    ConnectionClosedError,
    DeepgramError,
    DeepgramTimeoutError,
    SettingsRejected,
)

if TYPE_CHECKING:
    from .recording import FrameRecorder

__all__ = ["ResumingConnection"]

logger = logging.getLogger("deepgram_agent.connection")

_KEEPALIVE = encode(m.KeepAlive())

#: Counters summed over the sockets of a session.
_SUMMED = ConnectionStatistics._fields[:8]

#: Builds one socket of the session: ``make(protocol, owner, resumed)``.
SocketFactory = Callable[[AgentProtocol, SocketOwner, bool], SocketConnection]


def _frame_type(frame: bytes) -> str:
    from ._codec import message_type_of

    return message_type_of(frame) or "?"


class ResumingConnection(AgentConnection, SocketOwner):
    """A Voice Agent session that survives dropped sockets (see the module docstring)."""

    def __init__(
        self,
        *,
        make_socket: SocketFactory,
        settings_wire: dict[str, Any],
        settings: m.Settings,
        options: ConnectOptions,
        policy: ReconnectPolicy,
        queue: AnyQueue,
        recorder: FrameRecorder | None = None,
    ) -> None:
        self._make = make_socket
        self._recorder = recorder
        self._wire = self.settings_wire = settings_wire
        self.settings = settings
        self.options = options
        self._policy = policy
        self._queue = queue
        self._history = ConversationHistory(policy.max_history)
        self._hooks: dict[type, tuple[Hook, ...]] = {}
        self._all_hooks: tuple[Hook, ...] = ()
        self._open_hooks: tuple[Callable[[], object], ...] = ()
        self._close_hooks: tuple[Callable[[BaseException | None], None], ...] = ()
        self._conn: SocketConnection | None = None
        self._reading: SocketConnection | None = None
        self._started = False
        self._closing = False
        self._ended = False
        self._end_error: BaseException | None = None
        self._close_waiters: list[asyncio.Future[None]] = []
        self._reconnect_task: asyncio.Task[None] | None = None
        # What goes out first on the next socket, in order: (is_audio, frame).
        self._carry: deque[tuple[bool, bytes]] = deque()
        self._carry_audio = 0
        self._resent: list[str] = []
        self._stale: set[str] = set()
        self._n_stale = 0
        self._n_reconnects = 0
        self._n_dropped = 0
        self._past = ConnectionStatistics(*([0] * 15))
        self._attempt = 0
        self._outage_start = 0.0
        self._ready_at = 0.0
        self._turn_seen = False
        self.failed_start: BaseException | None = None
        self._reader: asyncio.Task[Any] | None = None
        self._readers = 0
        h = self._history
        self.add_hook(m.History, h.on_history)
        self.add_hook(m.ConversationText, h.on_conversation_text)
        self.add_hook(m.ConversationText, self._on_text)
        self.add_hook(m.InjectionRefused, h.ack_refused)

    def __repr__(self) -> str:
        state = "closed" if self._ended else ("ready" if self.ready else "resuming")
        return f"<ResumingConnection {state} url={self.url!r} request_id={self.request_id!r}>"

    # ------------------------------------------------------------------ properties

    @property
    def url(self) -> str:
        return self._conn.url if self._conn is not None else ""

    @property
    def request_id(self) -> str | None:
        return self._conn.request_id if self._conn is not None else None

    @property
    def ready(self) -> bool:
        return not self._ended and self._conn is not None and self._conn.ready

    @property
    def closed(self) -> bool:
        return self._ended

    @property
    def close_code(self) -> int | None:
        return self._conn.close_code if self._conn is not None else None

    @property
    def close_reason(self) -> str:
        return self._conn.close_reason if self._conn is not None else ""

    @property
    def pending_function_calls(self) -> dict[str, str]:
        return self._conn.pending_function_calls if self._conn is not None else {}

    @property
    def reading_directly(self) -> bool:
        """Whether ``async for`` reads the current socket itself right now."""
        return self._reading is not None and self._reading.reading_directly

    @property
    def policy(self) -> ReconnectPolicy:
        """The reconnect policy in force."""
        return self._policy

    def add_hook(self, message_type: type | None, hook: Hook) -> None:
        if message_type is None:
            self._all_hooks = (*self._all_hooks, hook)
            if self._conn is not None:
                self._conn.add_hook(None, hook)
        else:
            self._hooks[message_type] = (*self._hooks.get(message_type, ()), hook)
            if self._conn is not None:
                self._conn.add_hook(message_type, hook)

    def add_open_hook(self, hook: Callable[[], object]) -> None:
        self._open_hooks = (*self._open_hooks, hook)

    def add_close_hook(self, hook: Callable[[BaseException | None], None]) -> None:
        self._close_hooks = (*self._close_hooks, hook)

    def _on_text(self, msg: m.ConversationText) -> None:
        self._history.ack_text(msg)
        if msg.role == "user":
            self._turn_seen = True

    # ------------------------------------------------------------------ sockets

    def _socket(self, frame: bytes, *, resumed: bool) -> SocketConnection:
        held = self.options.max_pending_audio_bytes
        if resumed:
            held = max(held, self._buffer_limit())
        proto = AgentProtocol(
            frame, max_held_audio=held, hooks=self._hooks, all_hooks=self._all_hooks
        )
        conn = self._make(proto, self, resumed)
        for hook in self._open_hooks:
            conn.add_open_hook(hook)
        return conn

    async def start(self) -> None:
        """Open the first socket (no reconnect if this fails: the error is raised)."""
        conn = self._conn = self._reading = self._socket(encode(self._wire), resumed=False)
        try:
            await conn.start()
        except BaseException as exc:
            self.failed_start = exc
            self._end(None)  # the consumer sees failed_start (the callback API reports it)
            raise
        self._started = True
        self._ready_at = time.monotonic()

    def socket_ready(self, conn: SocketConnection) -> None:
        """A resumed socket got ``SettingsApplied``: tell the consumer, in stream order."""
        if conn is not self._conn:
            return
        self._n_reconnects += 1
        self._ready_at = time.monotonic()
        self._turn_seen = False
        downtime = self._ready_at - self._outage_start
        logger.info("reconnected after %d attempt(s)", self._attempt)
        self._queue.put_nowait(
            m.Reconnected(
                attempt=self._attempt,
                request_id=conn.request_id,
                downtime=downtime,
                context_items=len(self._history.items),
                resent=list(self._resent),
            ),
            force=True,
        )

    def socket_ended(self, conn: SocketConnection, error: BaseException | None) -> None:
        if conn is not self._conn or self._closing or self._ended:
            return  # an old socket, or we are closing: nothing of it matters any more
        if not self._started or self._reconnect_task is not None:
            return  # start() or a reconnect attempt is running: it sees the failure itself
        self._add_past(conn)
        if not self._should_reconnect(conn, error):
            self._end(error)
            return
        now = time.monotonic()
        healthy = now - self._ready_at >= self._policy.healthy_after or self._turn_seen
        if healthy or self._attempt == 0:
            # A new outage starts; after a socket that died young, the old one goes on.
            self._attempt = 0
            self._outage_start = now
        # Calls only this socket asked for are never answered on the next one.
        self._stale.update(conn.pending_function_calls)
        unacked = self._history.take_unacked()
        self._resent = [_frame_type(f) for f in unacked]
        frames = [(False, f) for f in unacked] + conn.protocol.held_frames()
        for item in reversed(frames):
            self._carry.appendleft(item)
        code = conn.protocol.last_error.code if conn.protocol.last_error is not None else None
        what = f"server Error {code}" if error is None else str(error)
        logger.warning("session lost (%s); reconnecting", what)
        self._reconnect_task = asyncio.get_running_loop().create_task(
            self._reconnect(what, error), name="deepgram-agent-reconnect"
        )

    def text_sent(self, frame: bytes) -> None:
        if frame.startswith(b'{"type":"Inject'):
            self._history.on_sent_injection(frame)

    def _should_reconnect(self, conn: SocketConnection, error: BaseException | None) -> bool:
        last = conn.protocol.last_error
        code = last.code if last is not None and last.code else None
        if error is None:
            # A normal close: only after a server Error that says "come back".
            return code is not None and self._policy.reconnects_after(code)
        return self._policy.reconnects_after(code)

    async def _reconnect(self, what: str, cause: BaseException | None) -> None:
        policy = self._policy
        last: BaseException | None = cause
        try:
            while True:
                self._attempt += 1
                elapsed = time.monotonic() - self._outage_start
                if self._attempt > policy.max_attempts or elapsed > policy.max_total_time:
                    self._give_up(self._attempt - 1, last, what)
                    return
                delay = policy.delay(self._attempt)
                self._queue.put_nowait(
                    m.Reconnecting(attempt=self._attempt, delay=delay, cause=what), force=True
                )
                await asyncio.sleep(delay)
                if self._closing:
                    return
                frame = encode(self._history.resume_settings(self._wire))
                conn = self._conn = self._socket(frame, resumed=True)
                conn.preload(self._carry)
                self._carry.clear()
                self._carry_audio = 0
                try:
                    await conn.start()
                except (AuthenticationError, SettingsRejected) as exc:
                    self._give_up(self._attempt, exc, what)
                    return
                except (DeepgramError, OSError) as exc:
                    if self._closing:
                        return
                    last = exc
                    what = f"reconnect attempt {self._attempt} failed: {exc or type(exc).__name__}"
                    self._add_past(conn)
                    self._carry.extend(conn.protocol.held_frames())
                    continue
                return
        finally:
            self._reconnect_task = None
            current = self._conn
            if current is not None and current.closed and not self._ended and not self._closing:
                # The new socket died during its first moments: it told nobody (we were busy).
                self._spawn_check(current, current.end_error)

    def _spawn_check(self, conn: SocketConnection, err: BaseException | None) -> None:
        asyncio.get_running_loop().call_soon(self._late_end, conn, err)

    def _late_end(self, conn: SocketConnection, err: BaseException | None) -> None:
        if conn is self._conn and not self._ended and self._reconnect_task is None:
            self.socket_ended(conn, err)

    def _give_up(self, attempts: int, last: BaseException | None, what: str) -> None:
        names = [_frame_type(f) for a, f in self._carry if not a]
        n_audio = sum(1 for a, _ in self._carry if a)
        detail = f"reconnecting gave up after {attempts} attempt(s) ({what})"
        if names or n_audio:
            detail += f"; not sent: {', '.join(names) or 'no messages'}"
            detail += f" and {n_audio} audio chunk(s)" if n_audio else ""
        conn = self._conn
        code = (conn.close_code if conn is not None else None) or 1006
        err = ConnectionClosedError(code, conn.close_reason if conn else "", detail)
        err.unsent = names  # type: ignore[attr-defined]
        if last is not None:
            err.__cause__ = last
        self._carry.clear()
        logger.error("%s", detail)
        self._end(err)

    def _end(self, error: BaseException | None) -> None:
        if self._ended:
            return
        self._ended = True
        self._end_error = error
        if self._recorder is not None:
            self._recorder.close()
        self._queue.end(End(error))
        for hook in self._close_hooks:
            try:
                hook(error)
            except Exception:
                logger.exception("a close hook raised")
        for waiter in self._close_waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _add_past(self, conn: SocketConnection) -> None:
        s = conn.statistics()
        p = self._past
        self._past = p._replace(
            **{f: getattr(p, f) + getattr(s, f) for f in _SUMMED},
            dropped_before_ready=p.dropped_before_ready + s.dropped_before_ready,
        )

    # ------------------------------------------------------------------ receiving

    def _next(self) -> Coroutine[Any, Any, AgentEvent]:
        return self._next_item()

    async def _next_item(self) -> AgentEvent:
        reading = self._reading
        if reading is None:
            raise DeepgramError("the connection was not started")
        item = await reading._next()
        if type(item) is m.Reconnected and self._conn is not None:
            self._reading = self._conn
        return item

    # ------------------------------------------------------------------ sending

    def _live(self) -> SocketConnection | None:
        conn = self._conn
        if self._ended:
            raise ConnectionClosedError(
                self.close_code or 1006, self.close_reason, "cannot send: the connection is closed"
            ) from self._end_error
        if conn is None or conn.closed:
            return None
        return conn

    async def _through(
        self, send: Callable[[SocketConnection], Any], carry: Callable[[], None]
    ) -> None:
        """Send on the live socket; during an outage (or if the socket dies under the send),
        keep it for the next socket instead."""
        conn = self._live()
        if conn is None:
            carry()
            return
        try:
            await send(conn)
        except ConnectionClosed:
            # The socket died under this send; wait (bounded) until it has told us.
            with contextlib.suppress(DeepgramTimeoutError):
                await conn.wait_closed(self.options.close_timeout)
            if self._reconnect_task is None or self._ended:
                raise
            carry()

    async def _send_message(self, message: m.ClientMessage) -> None:
        if isinstance(message, m.FunctionCallResponse):
            call_id = message.id if isinstance(message.id, str) else None
            conn = self._conn
            pending_here = conn is not None and call_id in conn.pending_function_calls
            if call_id in self._stale and not pending_here:
                self._stale.discard(call_id or "")
                self._n_stale += 1
                logger.warning(
                    "not sending the response to call %s (%s): it was asked by a session that "
                    "has since been replaced; the new session asks again if it needs it",
                    call_id,
                    message.name,
                )
                return
        else:
            self._history.on_update(message)
        await self._through(
            lambda c: c._send_message(message), lambda: self._carry_text(encode(message))
        )

    async def send_raw(self, payload: bytes | str | Mapping[str, Any]) -> None:
        if isinstance(payload, Mapping):
            data = encode(dict(payload))
        elif isinstance(payload, str):
            data = payload.encode()
        elif isinstance(payload, bytes | bytearray | memoryview):
            data = bytes(payload)
        else:
            raise TypeError(f"send_raw() takes a dict, str or bytes, not {type(payload).__name__}")
        await self._through(lambda c: c.send_raw(data), lambda: self._carry_text(data))

    async def send_audio(self, data: bytes | bytearray | memoryview) -> None:
        chunk = audio_bytes(data) if type(data) is not bytes else data
        if not chunk:
            return
        await self._through(lambda c: c.send_audio(chunk), lambda: self._carry_bytes(bytes(chunk)))

    async def keep_alive(self) -> None:
        await self._through(lambda c: c.keep_alive(), lambda: self._carry_text(_KEEPALIVE))

    def _carry_text(self, frame: bytes) -> None:
        queued = sum(1 for a, _ in self._carry if not a)
        if queued >= self._policy.max_queued_messages:
            raise ConnectionClosedError(
                1006,
                "",
                f"reconnecting: {queued} messages already wait to be sent "
                "(max_queued_messages); this one was not queued",
            )
        self._carry.append((False, frame))

    def _buffer_limit(self) -> int:
        encoding, rate = self.settings.input_format
        width = {"mulaw": 1, "alaw": 1, "linear32": 4}.get(encoding, 2)
        return int(self._policy.buffer_seconds * rate * width)

    def _carry_bytes(self, chunk: bytes) -> None:
        self._carry.append((True, chunk))
        self._carry_audio += len(chunk)
        limit = self._buffer_limit()
        while self._carry_audio > limit:
            for i, (is_audio, old) in enumerate(self._carry):
                if is_audio:
                    del self._carry[i]
                    self._carry_audio -= len(old)
                    self._n_dropped += 1
                    break
            else:  # pragma: no cover - only text left
                break

    # ------------------------------------------------------------------ closing

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self._closing = True
        task = self._reconnect_task
        if task is not None and task is not asyncio.current_task() and not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=self.options.close_timeout)
        conn = self._conn
        if conn is not None:
            await conn.close(code, reason)
        self._end(None)

    async def wait_closed(self, timeout: float | None = None) -> None:
        if self._ended:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._close_waiters.append(waiter)
        try:
            async with asyncio.timeout(timeout):
                await waiter
        except TimeoutError:
            raise DeepgramTimeoutError(f"still open after {timeout} s") from None

    def statistics(self) -> ConnectionStatistics:
        conn = self._conn
        now = conn.statistics() if conn is not None else ConnectionStatistics(*([0] * 15))
        p = self._past
        return now._replace(
            **{f: getattr(p, f) + getattr(now, f) for f in _SUMMED},
            queued=len(self._queue),
            queue_high_water=self._queue.high_water,
            max_queue=self.options.max_queue,
            pending_before_ready=now.pending_before_ready + len(self._carry),
            dropped_before_ready=p.dropped_before_ready
            + now.dropped_before_ready
            + self._n_dropped,
            reconnects=self._n_reconnects,
            stale_responses_dropped=self._n_stale,
        )
