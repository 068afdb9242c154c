"""The blocking facade: the async core on a private event-loop thread.

Every blocking connection of the process shares one daemon thread running one asyncio loop
(started on first use), so a thousand connections cost one thread. Data flow of one server
frame: the core's reader task decodes it on the loop thread and puts it in a bounded
:class:`~deepgram_agent._queue.ThreadQueue`; ``for msg in conn`` takes whole batches of them at
a time. A user send goes the other way: ``send_audio`` appends the chunk to the loop thread's
send pump (:mod:`deepgram_agent._outbox`) and returns, one wake-up of the loop per burst;
other sends are submitted to the loop and waited for, behind any audio still queued. All are
safe from any thread (a microphone callback, a handler)::

    with client.agent.connect_sync(settings) as conn:
        conn.inject_user_message("Hello")
        for msg in conn:
            ...

The loop thread survives any exception from user code run on it (an async tool raising
``SystemExit`` included); should it ever die, every blocking connection fails at once with a
clear error instead of hanging. At interpreter exit, connections still open are closed
together, bounded as a whole, so a script that forgets ``close()`` still exits promptly.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import logging
import threading
import time
import weakref
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

from ._connection import (
    AgentConnection,
    AgentEvent,
    ConnectionStatistics,
    SocketConnection,
    audio_bytes,
)
from ._outbox import Outbox, SendPump, _Job
from ._queue import End, ThreadQueue
from .exceptions import (
    ConcurrencyError,
    ConnectionClosedOK,
    DeepgramError,
    DeepgramTimeoutError,
)
from .messages import AudioFormat

__all__ = ["LoopThreadDied", "SyncAgentConnection", "connect", "loop_thread"]

logger = logging.getLogger("deepgram_agent.connection")

T = TypeVar("T")

#: Extra seconds granted on top of a connection's own bounds for a cross-thread wait.
_SLACK = 5.0
#: ``statistics()`` waits at most this long for queued audio to be written before it counts.
_STATS_FLUSH = 1.0
#: At interpreter exit, every connection still open is closed within this many seconds in all.
_EXIT_BUDGET = 2.0


class LoopThreadDied(DeepgramError):
    """The SDK's private event-loop thread stopped; blocking connections cannot go on."""


class _LoopThread:
    """One asyncio loop on one daemon thread, shared by every blocking connection."""

    _lock = threading.Lock()
    _instance: _LoopThread | None = None

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.dead: BaseException | None = None
        self._pending: weakref.WeakSet[concurrent.futures.Future[Any]] = weakref.WeakSet()
        self._ready = threading.Event()
        #: Blocking send_audio() hands frames to this instead of waiting per frame.
        self.pump = SendPump(self.loop)
        self.thread = threading.Thread(target=self._run, name="deepgram-agent-loop", daemon=True)
        self.thread.start()
        self._ready.wait(5)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        try:
            while True:
                try:
                    self.loop.run_forever()
                    return  # stopped on purpose
                except BaseException as exc:  # SystemExit, KeyboardInterrupt from user code
                    logger.error(
                        "user code raised %s on the SDK's event-loop thread; the loop goes on "
                        "(raise it from your own thread instead)",
                        type(exc).__name__,
                        exc_info=exc,
                    )
        except BaseException as exc:  # pragma: no cover - the loop itself broke
            self._die(exc)
            raise
        finally:
            if self.dead is None:
                self._die(None)

    def _die(self, exc: BaseException | None) -> None:
        err = LoopThreadDied(
            "the SDK's event-loop thread has stopped"
            + (f" ({type(exc).__name__}: {exc})" if exc is not None else "")
            + "; open a new connection"
        )
        self.dead = err
        for fut in list(self._pending):
            if not fut.done():
                fut.set_exception(err)
        for conn in list(_open_connections):
            if conn._lt is self:
                conn._queue.end(End(err))
                self.pump.fail(conn._outbox, err)

    @classmethod
    def get(cls) -> _LoopThread:
        with cls._lock:
            inst = cls._instance
            if inst is None or not inst.thread.is_alive() or inst.dead is not None:
                inst = cls._instance = _LoopThread()
            return inst

    def in_loop_thread(self) -> bool:
        return threading.current_thread() is self.thread

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None) -> T:
        """Run ``coro`` on the loop and wait for it (bounded by ``timeout``).

        The coroutine's own exceptions (a ``DeepgramTimeoutError`` with its reason among them)
        reach the caller unchanged; only a wait that outlives ``timeout`` is reported here.
        """
        if self.in_loop_thread():
            coro.close()
            raise ConcurrencyError(
                "a blocking deepgram_agent call was made on the SDK's own loop thread (from "
                "an async handler or tool); use the async API there (await conn.method())"
            )
        if self.dead is not None:
            coro.close()
            raise self.dead
        return self.wait(asyncio.run_coroutine_threadsafe(coro, self.loop), timeout)

    def wait(self, fut: concurrent.futures.Future[T], timeout: float | None) -> T:
        """Wait for ``fut``, run on the loop (bounded by ``timeout``); see :meth:`run`."""
        self._pending.add(fut)
        try:
            return fut.result(timeout)
        except concurrent.futures.TimeoutError:
            if fut.done() and not fut.cancelled():
                raise  # the coroutine's own timeout, e.g. open_timeout, with its message
            fut.cancel()
            raise DeepgramTimeoutError(
                f"the SDK's loop thread did not finish the operation within {timeout} s"
            ) from None
        except BaseException:
            fut.cancel()
            raise

    def submit(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Schedule ``coro`` without waiting."""
        if self.dead is not None:
            coro.close()
            return
        asyncio.run_coroutine_threadsafe(coro, self.loop)


def loop_thread() -> _LoopThread:
    """The shared loop thread (started on first use)."""
    return _LoopThread.get()


_open_connections: weakref.WeakSet[SyncAgentConnection] = weakref.WeakSet()


@atexit.register
def _close_all_at_exit() -> None:
    """Close every blocking connection still open, together, within ``_EXIT_BUDGET``."""
    conns = [c for c in list(_open_connections) if not c.closed]
    if not conns:
        return
    by_loop: dict[_LoopThread, list[SyncAgentConnection]] = {}
    for conn in conns:
        by_loop.setdefault(conn._lt, []).append(conn)
    deadline = time.monotonic() + _EXIT_BUDGET
    for lt, group in by_loop.items():
        if lt.dead is not None or not lt.thread.is_alive():
            continue

        async def close_group(members: list[SyncAgentConnection] = group) -> None:
            await asyncio.wait(
                [asyncio.ensure_future(c._core.close()) for c in members],
                timeout=max(0.1, deadline - time.monotonic()),
            )

        with contextlib.suppress(BaseException):
            lt.run(close_group(), max(0.1, deadline - time.monotonic()) + 0.5)


class _Reading:
    """One ``for`` loop over a blocking connection; it claims the connection for its thread."""

    __slots__ = ("_conn",)

    def __init__(self, conn: SyncAgentConnection) -> None:
        conn._claim()
        self._conn = conn

    def __iter__(self) -> _Reading:
        return self

    def __next__(self) -> AgentEvent:
        return self._conn._next()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self._conn._release()


class SyncAgentConnection:
    """A blocking view of :class:`~deepgram_agent.AgentConnection`: same method names, no
    ``await``. Iterating yields what the async connection yields; ``recv(timeout=...)`` waits
    for one item. All methods are safe from any thread; one thread reads at a time.
    """

    def __init__(self, core: AgentConnection, queue: ThreadQueue[Any], lt: _LoopThread) -> None:
        self._core = core
        self._queue = queue
        self._lt = lt
        opts = core.options
        self._bound = opts.open_timeout + opts.close_timeout + _SLACK
        self._send_bound = (opts.send_timeout or opts.close_timeout) + opts.close_timeout + _SLACK
        self._reader: threading.Thread | None = None
        self._readers = 0
        self._outbox = Outbox(core, by_hand=isinstance(core, SocketConnection))

    def start(self) -> None:
        """Open the socket and wait for ``SettingsApplied`` (bounded by ``open_timeout``)."""
        _open_connections.add(self)
        try:
            self._lt.run(self._core.start(), self._bound)
        except BaseException:
            _open_connections.discard(self)
            raise

    @property
    def core(self) -> AgentConnection:
        """The async connection underneath (use it only from the SDK's loop thread)."""
        return self._core

    def __repr__(self) -> str:
        inner = repr(self._core)
        return "<SyncAgentConnection" + inner[inner.index(" ") :] if " " in inner else inner

    @property
    def request_id(self) -> str | None:
        """``Welcome.request_id`` of this session."""
        return self._core.request_id

    @property
    def input_format(self) -> AudioFormat:
        """The user audio format this session's Settings declared."""
        return self._core.input_format

    @property
    def output_format(self) -> AudioFormat:
        """The agent audio format this session's Settings asked for."""
        return self._core.output_format

    @property
    def ready(self) -> bool:
        """True once ``SettingsApplied`` arrived and until the connection closes."""
        return self._core.ready

    @property
    def closed(self) -> bool:
        """True once the connection has closed."""
        return self._core.closed

    @property
    def close_code(self) -> int | None:
        """The close code once closed."""
        return self._core.close_code

    @property
    def close_reason(self) -> str:
        """The close reason once closed."""
        return self._core.close_reason

    # ---------------------------------------------------------------- receiving

    def _claim(self) -> None:
        me = threading.current_thread()
        owner = self._reader
        if self._readers and owner is not None and owner is not me and owner.is_alive():
            raise ConcurrencyError(
                f"thread {owner.name!r} is already reading this connection with a 'for' loop; "
                "read it from one thread only (hand messages on with a queue.Queue)"
            )
        self._reader = me
        self._readers += 1

    def _release(self) -> None:
        self._readers = max(0, self._readers - 1)
        if not self._readers:
            self._reader = None

    def _check_reader(self) -> None:
        owner = self._reader
        if (
            self._readers
            and owner is not None
            and owner is not threading.current_thread()
            and owner.is_alive()
        ):
            raise ConcurrencyError(
                f"thread {owner.name!r} is already reading this connection; read it from one "
                "thread only"
            )

    def _next(self) -> AgentEvent:
        item = self._queue.get(None)
        if isinstance(item, End):
            if item.error is not None:
                raise item.error
            raise StopIteration
        return item  # type: ignore[no-any-return]

    def recv(self, timeout: float | None = None) -> AgentEvent:
        """Return the next message, ``Unhandled`` frame or audio chunk.

        Raises:
            ConnectionClosedOK: the connection closed normally.
            ConnectionClosedError: it closed abnormally.
            DeepgramTimeoutError: nothing arrived within ``timeout`` seconds.
        """
        self._check_reader()
        item = self._queue.get(timeout)
        if isinstance(item, End):
            if item.error is not None:
                raise item.error
            raise ConnectionClosedOK(self._core.close_code, self._core.close_reason)
        return item  # type: ignore[no-any-return]

    def __iter__(self) -> Iterator[AgentEvent]:
        return _Reading(self)

    def __next__(self) -> AgentEvent:
        self._check_reader()
        return self._next()

    def __aiter__(self) -> Any:
        raise TypeError(
            "this is a blocking connection: iterate it with 'for msg in conn', or open an async "
            "one with 'async with client.agent.connect(settings) as conn'"
        )

    def __await__(self) -> Any:
        raise TypeError(
            "connect_sync() already returned an open blocking connection: do not await it; in "
            "async code use 'async with client.agent.connect(settings) as conn' instead"
        )

    async def __aenter__(self) -> Any:
        raise TypeError(
            "a blocking connection is not an async context manager: use 'with "
            "client.agent.connect_sync(...)', or 'async with client.agent.connect(...)'"
        )

    async def __aexit__(self, *exc: object) -> None:  # pragma: no cover - __aenter__ raises
        return None

    # ---------------------------------------------------------------- sending

    def _call(self, coro: Coroutine[Any, Any, T], bound: float | None = None) -> T:
        lt = self._lt
        bound = self._send_bound if bound is None else bound
        if self._outbox.inflight and lt.dead is None and not lt.in_loop_thread():
            # Audio is still on its way out: this send goes behind it, never ahead of it.
            job = _Job(coro)
            job.done = concurrent.futures.Future()
            if lt.pump.put_job(self._outbox, job):
                result: T = lt.wait(job.done, bound)
                return result
        return lt.run(coro, bound)

    def send_audio(self, data: bytes | bytearray | memoryview) -> None:
        """Send one chunk of user audio (see ``AgentConnection.send_audio``).

        It returns once the chunk is queued for the SDK's loop thread, without waiting for the
        write (a real-time sender must not pay a thread round trip per 20 ms frame). Chunks and
        the messages sent after them go out in order. At most 64 KiB wait per connection; a
        sender that finds them all still unwritten waits for room, bounded. A write that
        failed is reported once, by the next ``send_audio`` or :meth:`flush`; a send on a
        connection already closed raises at once. :meth:`flush` waits until all is written.

        Raises:
            TypeError: ``data`` is not audio bytes (or an int16 array).
            ConnectionClosed: the connection has closed (now, or under an earlier chunk).
            DeepgramTimeoutError: the server has not read the queued audio in time.
        """
        chunk = audio_bytes(data) if type(data) is not bytes else data
        if not chunk:
            return
        lt = self._lt
        if lt.dead is not None or self._core.closed or lt.in_loop_thread():
            self._call(self._core.send_audio(bytes(chunk)))  # raises the reason
            return
        lt.pump.put_audio(self._outbox, bytes(chunk), self._send_bound)

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every chunk given to :meth:`send_audio` has been written to the socket.

        Raises:
            ConnectionClosed: a chunk could not be written (the connection closed).
            DeepgramTimeoutError: not all written within ``timeout`` (default: the send bound).
        """
        box = self._outbox
        if box.inflight and not self._lt.in_loop_thread():
            self._call(_noop(), timeout)
        with self._lt.pump.lock:
            if box.error is not None:
                raise self._lt.pump.take_error(box)

    def send(self, message: Any) -> None:
        """Validate and send any client message (see ``AgentConnection.send``)."""
        self._call(self._core.send(message))

    def send_raw(self, payload: Any) -> None:
        """Send a JSON text frame without validation (escape hatch)."""
        self._call(self._core.send_raw(payload))

    def update_prompt(self, prompt: str) -> None:
        """Send ``UpdatePrompt``."""
        self._call(self._core.update_prompt(prompt))

    def update_speak(self, speak: Any) -> None:
        """Send ``UpdateSpeak``."""
        self._call(self._core.update_speak(speak))

    def update_think(self, think: Any) -> None:
        """Send ``UpdateThink``."""
        self._call(self._core.update_think(think))

    def update_listen(self, listen: Any) -> None:
        """Send ``UpdateListen``."""
        self._call(self._core.update_listen(listen))

    def inject_user_message(self, content: str) -> None:
        """Send ``InjectUserMessage``."""
        self._call(self._core.inject_user_message(content))

    def inject_agent_message(self, message: str, *, behavior: str | None = None) -> None:
        """Send ``InjectAgentMessage``."""
        self._call(self._core.inject_agent_message(message, behavior=behavior))

    def send_function_call_response(
        self,
        response: Any = None,
        *,
        id: str | None = None,
        name: str | None = None,
        content: Any = None,
    ) -> None:
        """Send ``FunctionCallResponse`` (see ``AgentConnection.send_function_call_response``)."""
        self._call(
            self._core.send_function_call_response(response, id=id, name=name, content=content)
        )

    def keep_alive(self) -> None:
        """Send ``KeepAlive`` now."""
        self._call(self._core.keep_alive())

    def force_end_turn(self) -> None:
        """Send ``ForceEndTurn``."""
        self._call(self._core.force_end_turn())

    # ---------------------------------------------------------------- closing

    def close(self, *, timeout: float | None = None) -> None:
        """Close the connection. Idempotent, bounded, safe from any thread and from handlers."""
        _open_connections.discard(self)
        if self._lt.in_loop_thread():
            self._lt.submit(self._flush_then_close(self._core.options.close_timeout))
            return
        close_timeout = self._core.options.close_timeout
        bound = timeout if timeout is not None else close_timeout * 3 + _SLACK
        with contextlib.suppress(DeepgramTimeoutError, LoopThreadDied):
            self._lt.run(self._flush_then_close(min(close_timeout, bound / 2)), bound)

    async def _flush_then_close(self, drain: float) -> None:
        # Audio already handed to send_audio goes out first, for at most ``drain`` seconds (a
        # server that stopped reading does not hold the close up); the close itself runs
        # whatever happens to that wait.
        try:
            await self._lt.pump.wait_drained(self._outbox, drain)
        finally:
            await self._core.close()

    def wait_closed(self, timeout: float | None = None) -> None:
        """Block until the connection has closed (``DeepgramTimeoutError`` after ``timeout``)."""
        self._lt.run(self._core.wait_closed(timeout), None if timeout is None else timeout + _SLACK)

    def statistics(self) -> ConnectionStatistics:
        """Counters of this connection (audio queued by ``send_audio`` is written first,
        bounded, so the counts include it)."""
        if self._outbox.inflight and not self._lt.in_loop_thread():
            with contextlib.suppress(DeepgramError):
                self._call(_noop(), _STATS_FLUSH)
        return self._core.statistics()

    @property
    def pending_function_calls(self) -> dict[str, str]:
        """Client-side calls requested and not answered yet: ``{id: name}``."""
        return self._core.pending_function_calls

    def __enter__(self) -> SyncAgentConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


async def _noop() -> None:
    """Queued behind audio in flight: done once that audio is written (flush)."""


def connect(
    client: Any, settings: Any, *, tools: Any = None, validate: bool = True, **options: Any
) -> SyncAgentConnection:
    """Open a blocking connection: ``deepgram_agent.sync.connect(client, settings)``."""
    conn: SyncAgentConnection = client.agent.connect_sync(
        settings, tools=tools, validate=validate, **options
    )
    return conn
