"""The async core: :class:`AgentConnection` (what ``connect()`` returns) and the one-socket
:class:`SocketConnection` behind it.

Where each job lives::

    _protocol.AgentProtocol   the session rules, no I/O (phase, pending calls, decode, hooks)
    SocketConnection          one socket, used once: open, handshake, read, write, close
    _PullMode                 lets ``async for`` read the socket itself while it keeps up
    _KeepaliveClock           one timer per event loop sends KeepAlive for idle connections
    _resume.ResumingConnection  reconnect-with-context: a fresh SocketConnection per socket

One server frame, in each API::

    socket ─ws.receive()─▶ reader task ─▶ AgentProtocol.receive_text/binary (decode, rules,
                                              │                              hooks: tools, history)
      async for:   ◀── AsyncQueue ◀──────────┘   or, while the loop keeps up, the loop calls
                                                 ws.receive() and AgentProtocol itself
      blocking:    ◀── ThreadQueue (batches) ◀── reader task          (sync.SyncAgentConnection)
      callbacks:   ◀── handler thread/task ◀── the same queues        (events.*Client)

One user send::

    send_audio / update_prompt / send(...) ─▶ _prepare (coerce + validate once)
      ─▶ AgentProtocol.prepare (encode; the pending-call rule) ─▶ held until SettingsApplied,
      or SocketConnection._write ─▶ ws.send_frame (a send stuck on a server that stopped
      reading is finished by a task of ours, bounded by ``send_timeout``)

Every wait is bounded (``ConnectOptions``); a frame that cannot be decoded becomes
``Unhandled`` and the stream goes on; the end of the stream is quiet on a normal close and a
:class:`~deepgram_agent.ConnectionClosedError` otherwise.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import re
import socket
import struct
import time
import types
import uuid
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine, Iterable, Mapping
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

import aiohttp
from aiohttp import WSMsgType

from . import messages as m
from ._api import AgentConnection, AgentEvent, ConnectionStatistics, audio_bytes
from ._codec import encode
from ._config import ConnectOptions, Credentials, HttpSessionPool, is_loopback
from ._protocol import AgentProtocol, Hook, Phase, _fast_decode
from ._queue import AnyQueue, AsyncQueue, End
from .exceptions import (
    AuthenticationError,
    ConcurrencyError,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    DeepgramApiError,
    DeepgramConnectionError,
    DeepgramError,
    DeepgramTimeoutError,
    SettingsRejected,
)

if TYPE_CHECKING:
    from ._prepare import PreparedSettings
    from .recording import FrameRecorder

__all__ = [
    "AgentConnection",
    "AgentEvent",
    "ConnectionStatistics",
    "SocketConnection",
    "SocketOwner",
    "audio_bytes",
]

logger = logging.getLogger("deepgram_agent.connection")

_KEEPALIVE = m.KeepAlive()
_HANDSHAKE = frozenset({m.Welcome, m.SettingsApplied, m.Error})
_NORMAL_CLOSE_CODES = frozenset({1000, 1005})
_TEXT = WSMsgType.TEXT
_BINARY = WSMsgType.BINARY
_CLOSE = WSMsgType.CLOSE


class SocketOwner(abc.ABC):
    """What a resumed session (:mod:`deepgram_agent._resume`) hears from each socket."""

    @abc.abstractmethod
    def socket_ended(self, conn: SocketConnection, error: BaseException | None) -> None:
        """The socket ended by itself (``error`` is ``None`` for a normal close). An owned
        socket never ends the shared stream: its owner does, or carries it on."""

    @abc.abstractmethod
    def text_sent(self, frame: bytes) -> None:
        """A text frame was written to the socket."""

    @abc.abstractmethod
    def socket_ready(self, conn: SocketConnection) -> None:
        """A resumed socket got ``SettingsApplied`` (it is in the stream just before)."""


# ---------------------------------------------------------------------- pull mode


class _PullMode:
    """Lets ``async for`` read the socket itself while it keeps up with it.

    The reader task reads the socket until the ``async for`` consumer waits on the empty queue
    for the very item the reader has just decoded; then it hands that item and the socket to
    the consumer and parks. From then on the consumer's item generator (``_Reader.stream``)
    calls ``ws.receive()`` itself: one task, no queue, what a bare aiohttp loop costs. The
    reader takes the socket back (``give_back``):

    * when the socket ends (the consumer hands it the terminal message);
    * on close (the reader, not the consumer, ends the stream);
    * when :class:`_PullWatch` finds the consumer suspended anywhere but in ``receive()``:
      its loop body is busy, or it left the loop. Frames behind it would otherwise wait
      unread, and so would their hooks (function tools, history, the end of the session).

    Whether the consumer is inside ``receive()`` is read off its generator (``ag_await``), so
    the hot path keeps no flag of its own.
    """

    __slots__ = ("active", "give_back_wanted", "handed_back", "park", "waiting")

    def __init__(self) -> None:
        self.active = False  # the consumer reads the socket
        self.waiting = False  # the consumer waits on the empty queue
        self.give_back_wanted = False
        self.park: asyncio.Future[None] | None = None  # the parked reader's wake-up
        self.handed_back: Any = None  # a socket-ending message the consumer read

    def give_back(self, reader: _Reader) -> None:
        """Return the socket to the reader task (deferred while the consumer is suspended in
        its generator: it gives the socket back before it next yields or reads)."""
        if not self.active:
            return
        if reader.consumer_waiting():
            self.give_back_wanted = True
            return
        self.release(reader)

    def release(self, reader: _Reader) -> None:
        """Return the socket now (the consumer's own generator, between two reads)."""
        self.active = False
        self.give_back_wanted = False
        _pull_watch(asyncio.get_running_loop()).discard(reader)
        park, self.park = self.park, None
        if park is not None and not park.done():
            park.set_result(None)


class _PullWatch:
    """One timer per event loop that gives the socket back to every idle ``async for``."""

    PERIOD = 0.05

    def __init__(self) -> None:
        self._readers: set[_Reader] = set()
        self._ticking = False

    def add(self, reader: _Reader) -> None:
        self._readers.add(reader)
        if not self._ticking:
            self._ticking = True
            asyncio.get_running_loop().call_later(self.PERIOD, self._tick)

    def discard(self, reader: _Reader) -> None:
        self._readers.discard(reader)

    def _tick(self) -> None:
        self._ticking = False
        readers = self._readers
        for reader in list(readers):
            pull = reader.pull
            if pull is None or not pull.active:
                readers.discard(reader)
            elif not reader.consumer_waiting():
                pull.give_back(reader)
        if readers:
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


# ---------------------------------------------------------------------- keepalive


class _KeepaliveClock:
    """One timer per event loop that sends ``KeepAlive`` for every connection that has sent
    nothing for its ``keepalive_interval`` (docs/protocol.md 3 rule 4).

    A connection that streams audio never gets one; a push-to-talk app never hits the server's
    idle timeout. One timer instead of a task per connection: with a thousand connections the
    garbage collector has a thousand fewer tasks to walk.
    """

    PERIOD = 0.5

    def __init__(self) -> None:
        self._conns: dict[SocketConnection, list[float]] = {}
        self._handle: asyncio.TimerHandle | None = None
        self._period = self.PERIOD

    def add(self, conn: SocketConnection) -> None:
        self._conns[conn] = [_sent(conn._proto), time.monotonic()]
        interval = conn.options.keepalive_interval or self.PERIOD
        if interval / 2 < self._period:  # checked at least twice per interval
            self._period = max(0.01, interval / 2)
            if self._handle is not None:
                self._handle.cancel()
                self._handle = None
        if self._handle is None:
            self._handle = asyncio.get_running_loop().call_later(self._period, self._tick)

    def discard(self, conn: SocketConnection) -> None:
        self._conns.pop(conn, None)
        if not self._conns and self._handle is not None:
            # Nothing left to watch: drop the timer (it refers to the loop, which this clock
            # must not keep alive).
            self._handle.cancel()
            self._handle = None
            self._period = self.PERIOD

    def _tick(self) -> None:
        self._handle = None
        now = time.monotonic()
        for conn, seen in list(self._conns.items()):
            proto = conn._proto
            proto.refresh_logging()
            sent = _sent(proto)
            if sent != seen[0]:
                seen[0], seen[1] = sent, now
                continue
            interval = conn.options.keepalive_interval
            if interval and now - seen[1] >= interval:
                seen[1] = now
                conn._spawn(conn._send_keepalive())
        if self._conns:
            self._handle = asyncio.get_running_loop().call_later(self._period, self._tick)
        else:
            self._period = self.PERIOD


def _sent(proto: AgentProtocol) -> float:
    return proto.messages_sent + proto.audio_frames_sent


_keepalive_clocks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _KeepaliveClock] = (
    weakref.WeakKeyDictionary()
)


def _keepalive_clock(loop: asyncio.AbstractEventLoop) -> _KeepaliveClock:
    clock = _keepalive_clocks.get(loop)
    if clock is None:
        clock = _keepalive_clocks[loop] = _KeepaliveClock()
    return clock


# ---------------------------------------------------------------------- write helpers


class _FinishWrite:
    """Finishes an aiohttp ``send_frame`` that suspended in flow control, in a task of ours.

    aiohttp waits for the server to read (its "drain") on one future shared by every send of
    the socket; cancelling a caller that waits on it would cancel that shared future and
    corrupt every later send. So the caller's coroutine never waits on it: it waits on this
    task, behind ``asyncio.shield``.
    """

    __slots__ = ("_coro", "_first")

    def __init__(self, coro: Coroutine[Any, Any, None], first: Any) -> None:
        self._coro = coro
        self._first = first

    def __await__(self) -> Any:
        try:
            yield self._first
        except BaseException:
            self._coro.close()
            raise
        return (yield from self._coro.__await__())


async def _finish_write(coro: Coroutine[Any, Any, None], first: Any) -> None:
    await _FinishWrite(coro, first)


# ---------------------------------------------------------------------- writing


class _Writer:
    """Writes one socket's frames: sends, the frames held until ``SettingsApplied``,
    keepalive, and the rule that a write stuck on a server that stopped reading fails the
    connection ``send_timeout`` seconds after it got stuck (see :class:`_FinishWrite`),
    whatever the callers' own timeouts. One per :class:`SocketConnection`."""

    __slots__ = ("conn", "direct", "proto", "stuck", "timed_out", "ws")

    def __init__(self, conn: SocketConnection, proto: AgentProtocol) -> None:
        self.conn = conn
        self.proto = proto
        self.ws: aiohttp.ClientWebSocketResponse[bool] | None = None
        #: Sends go straight to the socket (ready, nothing held, not closing).
        self.direct = False
        #: A send waiting for the server to read (finished by a task of ours).
        self.stuck: asyncio.Task[None] | None = None
        #: Why the connection failed when a stuck write outlived ``send_timeout``.
        self.timed_out: str | None = None

    def closed_error(self) -> ConnectionClosed:
        """What a send on the closed (or closing, or failed) connection raises."""
        conn = self.conn
        end = conn._end_error
        if end is not None:
            why = getattr(end, "detail", "")
            err = ConnectionClosedError(
                conn.close_code or 1006,
                conn.close_reason,
                "cannot send: the connection is closed" + (f" ({why})" if why else ""),
            )
            err.__cause__ = end
            return err
        return ConnectionClosedOK(
            conn.close_code, conn.close_reason, "cannot send: the connection is closed"
        )

    def check_open(self) -> aiohttp.ClientWebSocketResponse[bool]:
        ws = self.ws
        conn = self.conn
        if ws is None or conn._closed or ws.closed or conn._end_error is not None:
            raise self.closed_error()
        return ws

    async def write(self, data: Any, opcode: WSMsgType) -> None:
        """Write one frame. Cancelling is safe; a write the server does not read for
        ``send_timeout`` seconds fails the connection (see :class:`_FinishWrite`)."""
        if self.stuck is not None:
            await self._until_written(self.stuck)
        ws = self.check_open()
        coro = ws.send_frame(data, opcode)
        try:
            first = coro.send(None)
        except StopIteration:
            return  # written without waiting: the usual case
        except (ConnectionError, aiohttp.ClientError) as exc:
            raise self._failed(exc) from exc
        loop = asyncio.get_running_loop()
        task = self.stuck = loop.create_task(_finish_write(coro, first))
        timeout = self.conn.options.send_timeout
        if timeout is not None:
            # The deadline belongs to the stuck write, not to whoever waits for it: an app
            # that gives each send 0.1 s must not keep a dead uplink alive forever.
            timer = loop.call_later(timeout, self._expired, task, timeout)
            task.add_done_callback(lambda _: timer.cancel())
        await self._until_written(task)

    def _expired(self, task: asyncio.Task[None], timeout: float) -> None:
        if task.done():
            return
        self.timed_out = (
            f"the server has not read what was sent for {timeout} s (send_timeout); the "
            "connection is closed as failed"
        )
        self.conn._fail(DeepgramTimeoutError(self.timed_out))  # cancels the stuck write

    async def _until_written(self, task: asyncio.Task[None]) -> None:
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if not task.cancelled() or (current is not None and current.cancelling()):
                raise  # our caller was cancelled: the write goes on without it
            # The write itself was stopped (send_timeout, close, the socket failing): every
            # send that waited for it gets our error, never a bare CancelledError.
            if self.timed_out is not None:
                raise DeepgramTimeoutError(self.timed_out) from None
            raise self.closed_error() from None
        except (ConnectionError, aiohttp.ClientError) as exc:
            raise self._failed(exc) from exc
        finally:
            if task.done() and self.stuck is task:
                self.stuck = None

    def _failed(self, exc: BaseException) -> BaseException:
        conn = self.conn
        return ConnectionClosedError(
            conn.close_code or 1006, conn.close_reason, f"send failed: {exc}"
        )

    def stop(self) -> None:
        """Nothing more will be written (closing or failed)."""
        self.direct = False
        stuck = self.stuck
        if stuck is not None and not stuck.done():
            stuck.cancel()

    def _check_holdable(self) -> None:
        """A send that cannot go straight out is held until ``SettingsApplied``; raise when it
        would never be sent (closed, closing or failed) instead of holding it silently."""
        conn = self.conn
        if conn._closed or conn._closing_by_us or conn._end_error is not None:
            raise self.closed_error()

    async def send_audio(self, data: Any) -> None:
        if type(data) is not bytes:
            data = audio_bytes(data)
        if not data:
            return
        if not self.direct:
            self._check_holdable()
            self.proto.hold(True, bytes(data))
            return
        await self.write(data, _BINARY)
        self.proto.audio_sent(len(data))
        recorder = self.conn._recorder
        if recorder is not None:
            recorder.audio("out", data)

    async def send_text(self, frame: bytes) -> None:
        if not self.direct:
            self._check_holdable()
            self.proto.hold(False, frame)
            return
        await self.write(frame, _TEXT)
        self._text_written(frame)

    def _text_written(self, frame: bytes) -> None:
        self.proto.text_sent(frame)
        conn = self.conn
        if conn._recorder is not None:
            conn._recorder.text("out", frame)
        if conn._owner is not None:
            conn._owner.text_sent(frame)

    async def flush_held(self) -> None:
        """Send everything held, in order, then let sends go straight to the socket.

        Sends made while this runs are appended to the held frames and flushed by this same
        loop, so nothing overtakes what was held.
        """
        proto = self.proto
        recorder = self.conn._recorder
        while (held := proto.take_held()) is not None:
            is_audio, payload = held
            try:
                await self.write(payload, _BINARY if is_audio else _TEXT)
            except BaseException:
                proto.unhold(is_audio, payload)
                raise
            if is_audio:
                proto.audio_sent(len(payload))
                if recorder is not None:
                    recorder.audio("out", payload)
            else:
                self._text_written(payload)
        self.direct = not self.conn._closed and not self.conn._closing_by_us

    async def keep_alive(self) -> None:
        await self.send_text(encode(_KEEPALIVE))
        self.proto.keepalives_sent += 1


# ---------------------------------------------------------------------- reading


class _Reader:
    """Reads one socket: the reader task, and the ``async for`` consumer's direct path.

    Every frame goes through :class:`AgentProtocol` (decode, session rules, hooks) and then to
    the consumer: through the bounded queue, or, while ``async for`` keeps up, straight from
    the socket in the consumer's own task (see :class:`_PullMode`). Until ``SettingsApplied``
    is queued, the handshake messages (``Welcome``, ``SettingsApplied``, a rejecting ``Error``:
    a few per socket) are queued even when the queue is full, so opening or resuming never
    waits for the application; everything else is bounded by ``max_queue`` in every phase.
    One per :class:`SocketConnection`.
    """

    __slots__ = (
        "cancelled_receive",
        "conn",
        "gen",
        "handshaking",
        "items",
        "owners",
        "proto",
        "pull",
        "queue",
        "receive",
        "recorder",
        "resumed",
        "step",
        "task",
    )

    def __init__(self, conn: SocketConnection, queue: AnyQueue, *, resumed: bool) -> None:
        self.conn = conn
        self.proto = conn._proto
        self.queue = queue
        self.items = queue.items if type(queue) is AsyncQueue else None
        self.pull = _PullMode() if self.items is not None else None  # async consumers only
        self.receive: Any = None  # the socket's receive()
        self.recorder = conn._recorder
        self.task: asyncio.Task[None] | None = None
        self.handshaking = True
        self.resumed = resumed
        #: A direct receive() was cancelled: aiohttp now takes the socket for broken (1006)
        #: although it is not, so close() does the close handshake itself.
        self.cancelled_receive = False
        #: The consumer's item generator (see stream()), made on first use, and its __anext__.
        self.gen: types.AsyncGeneratorType[AgentEvent, None] | None = None
        self.step: Any = None
        #: The iterators (``_api._Reading``) whose ``__anext__`` slot holds ``step``, weakly.
        self.owners: list[weakref.ref[Any]] | None = None

    def start(self, ws: aiohttp.ClientWebSocketResponse[bool]) -> None:
        self.receive = ws.receive
        self.task = asyncio.get_running_loop().create_task(
            self.run(ws), name="deepgram-agent-reader"
        )

    async def run(self, ws: aiohttp.ClientWebSocketResponse[bool]) -> None:
        # No bound methods in locals beyond these: with many connections every parked
        # reader's frame is walked by each full garbage collection.
        proto = self.proto
        queue = self.queue
        items = self.items
        pull = self.pull
        recorder = self.recorder
        maxsize = queue.maxsize
        error: BaseException | None = None
        try:
            while True:
                if pull is not None:
                    if pull.active:
                        park = pull.park = asyncio.get_running_loop().create_future()
                        await park
                        continue
                    msg = pull.handed_back
                    if msg is not None:
                        pull.handed_back = None
                    else:
                        msg = await self.receive()
                else:
                    msg = await self.receive()
                kind = msg.type
                if kind is _TEXT:
                    item: Any = proto.receive_text(msg.data)
                    if recorder is not None:
                        recorder.text("in", msg.data)
                    if self.handshaking and type(item) in _HANDSHAKE:
                        self._queue_handshake(item)
                        continue
                elif kind is _BINARY:
                    item = proto.receive_binary(msg.data)
                    if recorder is not None:
                        recorder.audio("in", item)
                elif kind is _CLOSE:
                    self.on_close_frame(msg)
                    continue
                else:  # CLOSING, CLOSED, ERROR: the socket ended
                    if kind is WSMsgType.ERROR and isinstance(msg.data, BaseException):
                        error = msg.data
                    break
                if items is not None:
                    if queue.getter is None:  # type: ignore[union-attr]
                        n = len(items)
                        if n < maxsize:
                            items.append(item)
                            if n >= queue.high_water:
                                queue.high_water = n + 1
                            continue
                    elif pull is not None and pull.waiting and proto.phase is Phase.READY:
                        # ``async for`` waits on the empty queue for this very item: hand it
                        # over together with the socket (see _PullMode).
                        pull.active = True
                        _pull_watch(asyncio.get_running_loop()).add(self)
                if not queue.put_nowait(item):
                    await queue.put(item)
        except asyncio.CancelledError:
            await self.conn._reader_cancelled(ws)
            raise
        except Exception as exc:  # never expected; reported, not swallowed
            logger.exception("the reader failed")
            error = exc
        finally:
            if pull is not None:
                if pull.active:
                    pull.active = False
                    _pull_watch(asyncio.get_running_loop()).discard(self)
                pull.park = None
            self.conn._finish(ws, error)

    def _queue_handshake(self, item: Any) -> None:
        self.queue.put_nowait(item, force=True)
        if type(item) is m.SettingsApplied:
            self.handshaking = False
            owner = self.conn._owner
            if self.resumed and owner is not None:
                owner.socket_ready(self.conn)

    # -- the consumer's side: one async generator per reader (``async for``, ``recv()``)

    def stepper(self, owner: Any = None) -> Any:
        """What the consumer calls per item: the current generator's ``__anext__``.

        ``owner`` (an ``async for`` that holds this in its ``__anext__`` slot) is told about
        a replacement generator (see :meth:`stream`).
        """
        gen = self.gen
        if gen is None:
            gen = self.renew()
        elif gen.ag_running:
            raise ConcurrencyError(
                "another task is already reading this connection; use one reader "
                "(one 'async for' loop) per connection"
            )
        if owner is not None:
            # Every live iterator (an earlier ``aiter(conn)`` kept across another loop too)
            # must get a replacement generator; the ones gone are dropped here.
            owners = self.owners
            if owners is None:
                owners = self.owners = []
            owners[:] = [ref for ref in owners if ref() is not None]
            owners.append(weakref.ref(owner))
        return self.step

    def renew(self) -> types.AsyncGeneratorType[AgentEvent, None]:
        """Start a fresh item generator (the first, or after one ended with an exception)."""
        gen = self.gen = cast("types.AsyncGeneratorType[AgentEvent, None]", self.stream())
        self.step = gen.__anext__
        for ref in self.owners or ():
            owner = ref()
            if owner is not None:
                owner.__anext__ = self.step
        return gen

    def consumer_waiting(self) -> bool:
        """Whether the consumer is suspended in its generator (in ``receive()``, or on the
        queue), as opposed to in its own loop body or nowhere."""
        gen = self.gen
        return gen is not None and gen.ag_await is not None

    async def stream(self) -> AsyncGenerator[AgentEvent, None]:
        """The consumer's items, as one suspended frame.

        The state lives in this frame between items, so an item costs a resume, not a new
        coroutine and a dozen attribute loads. In pull mode it reads the socket itself and
        does what ``AgentProtocol.receive_text``/``receive_binary`` do, inline, for frames
        that need no rule (``AgentProtocol.plain``, ``AgentProtocol.steps``); anything else
        goes to the protocol object. An exception ends an async generator for good, so on
        one (a cancelled wait, the stream's error) a fresh generator takes this one's place
        before it propagates: the next step carries on where this one stopped.
        """
        items = self.items
        pull = self.pull
        proto = self.proto
        recorder = self.recorder
        decode = _fast_decode
        try:
            while True:
                if items:
                    item = items.popleft()
                    if self.queue.putters:  # type: ignore[union-attr]
                        self.queue.wake_putters()  # type: ignore[union-attr]
                    yield item
                    continue
                if pull is None or not pull.active:
                    yield await self._next_queued()
                    continue
                # The reader task handed us the socket: read it here (see _PullMode).
                if pull.give_back_wanted:  # asked for while we waited for the hand-over
                    pull.release(self)
                    continue
                receive = self.receive
                while True:
                    try:
                        msg = await receive()
                    except asyncio.CancelledError:
                        self.cancelled_receive = True
                        raise
                    kind = msg.type
                    if kind is _TEXT:
                        data = msg.data
                        if recorder is not None:
                            recorder.text("in", data)
                        if proto.plain:
                            try:
                                item = decode(data)
                            except Exception:
                                item = proto.receive_text(data)
                            else:
                                if type(item) in proto.steps:  # (a hook may add a type)
                                    item = proto.received_text(item, data)
                                else:
                                    proto.messages_received += 1
                        else:
                            item = proto.receive_text(data)
                    elif kind is _BINARY:
                        item = msg.data
                        if recorder is not None:
                            recorder.audio("in", item)
                        if proto.plain:
                            proto.audio_frames_received += 1
                            proto.audio_bytes_received += len(item)
                        else:
                            item = proto.receive_binary(item)
                    elif kind is _CLOSE:
                        self.on_close_frame(msg)
                        if pull.give_back_wanted:
                            pull.release(self)
                            break
                        continue
                    else:  # the end of the socket: the reader task decides what comes next
                        pull.handed_back = msg
                        pull.release(self)
                        break
                    if pull.give_back_wanted:  # asked for while we were in receive()
                        pull.release(self)
                    yield item
                    if not pull.active or items:  # given back, or taken while the body ran
                        break
        except StopAsyncIteration:
            return  # the quiet end (from _next_queued)
        except GeneratorExit:
            raise
        except BaseException:
            self.renew()
            raise

    async def _next_queued(self) -> AgentEvent:
        queue = self.queue
        if type(queue) is not AsyncQueue:
            raise ConcurrencyError(
                "this connection is read through its blocking facade (for msg in conn)"
            )
        item = queue.get_nowait()
        if item is None:
            pull = self.pull
            assert pull is not None
            pull.waiting = True
            try:
                item = await queue.get()
            finally:
                pull.waiting = False
        if type(item) is End:
            if item.error is not None:
                raise item.error
            raise StopAsyncIteration
        return item  # type: ignore[return-value]

    def on_close_frame(self, msg: Any) -> None:
        code = msg.data if isinstance(msg.data, int) else None
        # The reason ends up in ConnectionClosed errors: a server echoing the key is redacted.
        self.proto.receive_close(code, self.conn._auth.redact(msg.extra or ""))

    def give_back(self) -> None:
        """The reader task, not ``async for``, reads from now on (closing)."""
        if self.pull is not None:
            self.pull.give_back(self)


# ---------------------------------------------------------------------- one socket


class SocketConnection(AgentConnection):
    """One Voice Agent socket, used once: open, handshake, read, write, close.

    Built by the client (``client.agent.connect``); not reused after it closes (a resumed
    session opens a new one).
    """

    __slots__ = (
        "__weakref__",
        "_auth",
        "_close_hooks",
        "_close_task",
        "_closed",
        "_closed_waiters",
        "_closing_by_us",
        "_end_error",
        "_open_hooks",
        "_owner",
        "_owns_session",
        "_phase_waiter",
        "_pool",
        "_proto",
        "_recorder",
        "_rx",
        "_session",
        "_tasks",
        "_tx",
        "_url",
        "_ws",
        "failed_start",
        "options",
        "settings",
        "settings_wire",
    )

    def __init__(
        self,
        *,
        url: str,
        credentials: Credentials,
        prepared: PreparedSettings,
        options: ConnectOptions | None = None,
        session: aiohttp.ClientSession | None = None,
        pool: HttpSessionPool | None = None,
        queue: AnyQueue | None = None,
        owner: SocketOwner | None = None,
        protocol: AgentProtocol | None = None,
        recorder: FrameRecorder | None = None,
        resumed: bool = False,
    ) -> None:
        self._url = url
        self._auth = credentials
        self.settings = prepared.typed
        self.settings_wire = prepared.wire
        self.options = options or ConnectOptions()
        self._session = session
        self._owns_session = session is None
        self._pool = pool
        self._owner = owner
        self._proto = protocol or AgentProtocol(
            prepared.frame, max_held_audio=self.options.max_pending_audio_bytes
        )
        self._proto.on_phase = self._on_phase
        self._proto.redact = credentials.redact
        self._recorder = recorder
        self._ws: aiohttp.ClientWebSocketResponse[bool] | None = None
        self._phase_waiter: asyncio.Future[None] | None = None
        queue = queue if queue is not None else AsyncQueue(self.options.max_queue)
        self._rx = _Reader(self, queue, resumed=resumed)
        self._tx = _Writer(self, self._proto)
        self._closed = False
        self._closed_waiters: list[asyncio.Future[None]] | None = None
        self._closing_by_us = False
        self._close_task: asyncio.Task[None] | None = None
        self._end_error: BaseException | None = None
        self._open_hooks: tuple[Callable[[], object], ...] = ()
        self._close_hooks: tuple[Callable[[BaseException | None], None], ...] = ()
        self._tasks: set[asyncio.Task[Any]] | None = None
        self._reader: asyncio.Task[Any] | None = None
        self._readers = 0
        self.failed_start: BaseException | None = None

    def __repr__(self) -> str:
        state = "closed" if self._closed else self._proto.phase.name.lower()
        return f"<SocketConnection {state} url={self._url!r} request_id={self.request_id!r}>"

    # ------------------------------------------------------------------ properties

    @property
    def url(self) -> str:
        return self._url

    @property
    def protocol(self) -> AgentProtocol:
        """The session state of this socket (phase, pending calls, counters)."""
        return self._proto

    @property
    def request_id(self) -> str | None:
        return self._proto.request_id

    @property
    def ready(self) -> bool:
        return self._proto.phase is Phase.READY and not self._closed

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def close_code(self) -> int | None:
        return self._proto.close_code

    @property
    def close_reason(self) -> str:
        return self._proto.close_reason

    @property
    def reading_directly(self) -> bool:
        """Whether ``async for`` reads the socket itself right now (see :class:`_PullMode`)."""
        pull = self._rx.pull
        return pull is not None and pull.active

    @property
    def end_error(self) -> BaseException | None:
        """Why the socket ended abnormally (``None`` while open or after a normal close)."""
        return self._end_error

    @property
    def pending_function_calls(self) -> dict[str, str]:
        return self._proto.pending.as_dict()

    def add_hook(self, message_type: type | None, hook: Hook) -> None:
        self._proto.add_hook(message_type, hook)

    def add_open_hook(self, hook: Callable[[], object]) -> None:
        self._open_hooks = (*self._open_hooks, hook)

    def add_close_hook(self, hook: Callable[[BaseException | None], None]) -> None:
        self._close_hooks = (*self._close_hooks, hook)

    def preload(self, frames: Iterable[tuple[bool, bytes]]) -> None:
        """Frames to send first, in order, right after ``SettingsApplied`` (a resumed session
        carries what its predecessor could not send)."""
        for is_audio, payload in frames:
            self._proto.hold(is_audio, payload)

    # ------------------------------------------------------------------ opening

    async def start(self) -> None:
        """Open the socket, send ``Settings`` and wait for ``SettingsApplied``.

        Bounded by ``options.open_timeout``. Cancelling is safe: the socket is closed.

        Raises:
            AuthenticationError: 401/403 at the handshake.
            DeepgramApiError: any other refused handshake.
            SettingsRejected: the server answered ``Settings`` with ``Error``.
            DeepgramConnectionError: the server could not be reached.
            ConnectionClosedError: the server closed before the session was ready.
            DeepgramTimeoutError: ``open_timeout`` ran out.
        """
        failure: BaseException | None = None
        try:
            async with asyncio.timeout(self.options.open_timeout):
                await self._open_socket()
                await self._handshake()
        except TimeoutError:
            failure = DeepgramTimeoutError(
                f"the agent session did not become ready within {self.options.open_timeout} s "
                f"({'no Welcome' if self._proto.phase <= Phase.AWAITING_WELCOME else 'no SettingsApplied'} "
                f"from {self._url}); raise open_timeout or check the server"
            )
        except BaseException as exc:
            failure = exc
        if failure is None:
            return
        self.failed_start = failure
        await self._abort()
        # Raised here, outside any except block, so nothing of aiohttp's (whose request_info
        # holds our headers) is left in __context__.
        raise failure

    async def _open_socket(self) -> None:
        parts = urlsplit(self._url)
        hostname = parts.hostname
        if parts.scheme == "ws" and not self.options.allow_insecure and not is_loopback(hostname):
            raise DeepgramError(
                f"refusing unencrypted ws:// to {hostname!r}: use wss://, or pass "
                "allow_insecure=True if you really mean it (only loopback is allowed by default)"
            )
        if self._session is None:
            self._session = self._pool.acquire() if self._pool is not None else _new_session()
        try:
            ws = await _dial(self._session, self._url, self._auth, self.options)
        except DeepgramConnectionError:
            if self._closing_by_us:
                raise ConnectionClosedOK(
                    None, "", "closed by the application while connecting"
                ) from None
            raise
        if self._closing_by_us:
            with contextlib.suppress(Exception):
                await ws.close()
            raise ConnectionClosedOK(None, "", "closed by the application while connecting")
        self._ws = self._tx.ws = ws
        self._proto.connection_made()
        for hook in self._open_hooks:
            try:
                hook()
            except Exception:
                logger.exception("an open hook raised")
        self._rx.start(ws)
        logger.debug("socket open to %s", self._url)

    async def _wait_phase(self, done: Callable[[Phase], bool]) -> None:
        proto = self._proto
        while not done(proto.phase) and not self._closed and proto.phase is not Phase.CLOSED:
            waiter = self._phase_waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                self._phase_waiter = None

    def _on_phase(self, phase: Phase) -> None:
        waiter = self._phase_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _handshake(self) -> None:
        proto = self._proto
        await self._wait_phase(lambda p: p >= Phase.AWAITING_APPLIED)
        self._check_handshake("Welcome")
        frame = proto.settings_frame
        await self._tx.write(frame, _TEXT)
        proto.settings_sent()
        if self._recorder is not None:
            self._recorder.text("out", frame)
        await self._wait_phase(lambda p: p >= Phase.READY)
        if self._rx.handshaking or self._closing_by_us:  # no SettingsApplied, or we closed
            self._check_handshake("SettingsApplied")
        if self._closed:
            # Ready, and ended at once (before this task ran again): the session did open, so
            # the stream delivers what arrived and then the end, whatever the scheduling.
            return
        await self._tx.flush_held()
        if self.options.keepalive_interval:
            _keepalive_clock(asyncio.get_running_loop()).add(self)

    def _check_handshake(self, what: str) -> None:
        proto = self._proto
        if proto.rejection is not None:
            # Raised to the app (and its error tracker, which records every frame's locals):
            # a description echoing the key is redacted, in place, so no unredacted copy is
            # left reachable (the server's Error message itself is delivered as sent).
            proto.rejection = _redacted(proto.rejection, self._auth)
            raise proto.rejection
        if self._closing_by_us:
            raise ConnectionClosedOK(None, "", "closed by the application while connecting")
        if self._closed or proto.phase is Phase.CLOSED:
            code = proto.close_code if proto.close_code is not None else 1006
            end = self._end_error
            why = getattr(end, "detail", "")
            err = ConnectionClosedError(
                code,
                proto.close_reason,
                f"the server closed the connection before sending {what}"
                + (f" ({why})" if why else ""),
            )
            cause = end.__cause__ if end is not None else None
            if cause is not None:
                err.__cause__ = cause
            raise err

    async def _abort(self) -> None:
        # A session that never became ready need not wait long for the server's close frame.
        with contextlib.suppress(BaseException):
            await self._close_once(1000, "", graceful=min(0.5, self.options.close_timeout))

    # ------------------------------------------------------------------ writing (see _Writer)

    def send_audio(self, data: bytes | bytearray | memoryview) -> Coroutine[Any, Any, None]:
        """Send one chunk of user audio (in the ``audio.input`` format) as a binary frame.

        Empty chunks are skipped (the protocol forbids empty binary frames). Audio sent before
        ``SettingsApplied`` is held (up to ``max_pending_audio_bytes``, oldest dropped first)
        and sent right after it. Cancelling is safe.

        Raises:
            TypeError: ``data`` is not audio (bytes, bytearray, memoryview, int16 array).
            ConnectionClosed: the connection is closed.
            DeepgramTimeoutError: the server did not read for ``send_timeout`` seconds.
        """
        return self._tx.send_audio(data)

    async def _send_message(self, message: m.ClientMessage) -> None:
        frame = self._proto.prepare(message)
        if frame is not None:
            await self._tx.send_text(frame)

    async def send_raw(self, payload: bytes | str | Mapping[str, Any]) -> None:
        """Send a JSON text frame exactly as given, with no validation (escape hatch).

        Use it to reach server features this SDK does not model yet. A mapping is encoded as
        JSON; ``str``/``bytes`` are sent verbatim.
        """
        if isinstance(payload, Mapping):
            data = encode(dict(payload))
        elif isinstance(payload, str):
            data = payload.encode()
        elif isinstance(payload, bytes | bytearray | memoryview):
            data = bytes(payload)
        else:
            raise TypeError(f"send_raw() takes a dict, str or bytes, not {type(payload).__name__}")
        await self._tx.send_text(data)

    def keep_alive(self) -> Coroutine[Any, Any, None]:
        """Send ``KeepAlive`` now (automatic keepalive makes this rarely necessary)."""
        return self._tx.keep_alive()

    async def _send_keepalive(self) -> None:
        with contextlib.suppress(DeepgramError):
            await self._tx.keep_alive()

    def _fail(self, cause: BaseException) -> None:
        """End the connection as failed (the server stopped reading): shut the socket down,
        so the reader sees the end and finishes the session with this cause."""
        if self._closing_by_us or self._closed:
            return
        if self._end_error is None:
            self._end_error = ConnectionClosedError(1006, "", f"send failed: {cause}")
            self._end_error.__cause__ = cause
        self._tx.stop()
        ws = self._ws
        sock = ws.get_extra_info("socket") if ws is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        if self._tasks is None:
            self._tasks = set()
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ------------------------------------------------------------------ reading (see _Reader)

    def _next(self) -> Awaitable[AgentEvent]:
        return self._rx.stepper()()  # type: ignore[no-any-return]

    def _stepper(self, owner: Any = None) -> Callable[[], Awaitable[AgentEvent]]:
        return self._rx.stepper(owner)  # type: ignore[no-any-return]  # straight to the reader

    async def _reader_cancelled(self, ws: aiohttp.ClientWebSocketResponse[bool]) -> None:
        if self._closing_by_us:
            return
        # Cancelled from outside (e.g. asyncio.run() ending with the connection open): close
        # the socket and our HTTP session on the way out.
        self._closing_by_us = True
        with contextlib.suppress(BaseException):
            async with asyncio.timeout(0.5):
                await ws.close()
        with contextlib.suppress(BaseException):
            await self._release_session()

    def _finish(
        self, ws: aiohttp.ClientWebSocketResponse[bool], error: BaseException | None
    ) -> None:
        proto = self._proto
        saw_close = proto.close_code is not None
        if not saw_close and self._closing_by_us:
            proto.close_code = ws.close_code
        cause = error or ws.exception()
        end_error: BaseException | None
        if self._end_error is not None:  # failed on purpose (see _fail)
            end_error = self._end_error
        elif self._closing_by_us or (saw_close and proto.close_code in _NORMAL_CLOSE_CODES):
            end_error = None
        else:
            end_error = _abnormal_end(proto, cause, saw_close, self.options)
        self._end_error = end_error
        proto.connection_lost()
        self._tx.stop()
        _keepalive_clock(asyncio.get_running_loop()).discard(self)
        self._end_stream(end_error)
        owner = self._owner
        if owner is not None and not self._closing_by_us:
            owner.socket_ended(self, end_error)
        if not self._closing_by_us and self._owns_session and self._session is not None:
            self._spawn(self._release_session())

    def _end_stream(self, error: BaseException | None) -> None:
        if self._owner is not None:
            self._mark_closed()  # the owner ends the shared stream, or carries it on
            return
        if self._recorder is not None:
            self._recorder.close()
        self._rx.queue.end(End(error))
        self._mark_closed()
        for hook in self._close_hooks:
            try:
                hook(error)
            except Exception:
                logger.exception("a close hook raised")

    def _mark_closed(self) -> None:
        self._closed = True
        self._on_phase(Phase.CLOSED)
        for waiter in self._closed_waiters or ():
            if not waiter.done():
                waiter.set_result(None)
        self._closed_waiters = None

    # ------------------------------------------------------------------ closing

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection. Idempotent, bounded by ``close_timeout``, safe from any task.

        Iteration then ends quietly. Cancelling is safe: the socket is closed regardless.
        """
        # A session that is not ready has nothing in flight worth a long close handshake.
        graceful = None if self.ready else min(0.5, self.options.close_timeout)
        await self._close_once(code, reason, graceful=graceful)

    async def _close_once(self, code: int, reason: str, *, graceful: float | None) -> None:
        self._closing_by_us = True
        self._tx.stop()
        task = self._close_task
        if task is None:
            # One shutdown task every close() waits for: cancelling a close() does not cancel
            # the shutdown, and a second close() joins it instead of starting another.
            task = self._close_task = asyncio.get_running_loop().create_task(
                self._shutdown(code, reason, graceful), name="deepgram-agent-close"
            )
        if task is asyncio.current_task():
            return
        await asyncio.shield(task)

    async def _shutdown(self, code: int, reason: str, graceful: float | None) -> None:
        ws = self._ws
        timeout = self.options.close_timeout if graceful is None else graceful
        current = asyncio.current_task()
        _keepalive_clock(asyncio.get_running_loop()).discard(self)
        self._tx.stop()  # we are closing: nothing more will be written
        try:
            if ws is not None and not ws.closed:
                with contextlib.suppress(TimeoutError, aiohttp.ClientError, OSError):
                    async with asyncio.timeout(timeout):
                        await self._close_handshake(ws, code, reason)
            if ws is not None and self._proto.close_code is None:
                self._proto.close_code = code
            self._rx.give_back()  # the reader task, not async for, ends the stream
            reader = self._rx.task
            if reader is not None and reader is not current and not reader.done():
                # The socket is closed; the reader ends at once unless it is parked on a full
                # queue (its consumer may be the one closing): then cancel it, which is safe.
                await asyncio.wait({reader}, timeout=0.5)
                if not reader.done():
                    reader.cancel()
                    await asyncio.wait({reader}, timeout=self.options.close_timeout)
        finally:
            if not self._closed:
                self._proto.connection_lost()
                self._end_stream(None)
            with contextlib.suppress(Exception):
                await self._release_session()

    async def _close_handshake(
        self, ws: aiohttp.ClientWebSocketResponse[bool], code: int, reason: str
    ) -> None:
        if not self._rx.cancelled_receive:
            await ws.close(code=code, message=reason.encode())
            return
        # A cancelled receive() left aiohttp taking the socket for broken, and its close()
        # would skip the handshake: send our close frame ourselves, let the reader see the
        # server's reply, then let aiohttp release the socket.
        payload = struct.pack("!H", code) + reason.encode()
        with contextlib.suppress(Exception):
            await ws.send_frame(payload, WSMsgType.CLOSE)
            reader = self._rx.task
            self._rx.give_back()
            if reader is not None and not reader.done():
                await asyncio.wait({reader}, timeout=self.options.close_timeout)
        await ws.close(code=code, message=reason.encode())

    async def _release_session(self) -> None:
        """Give back the HTTP session: close ours, return a pooled one, keep the caller's."""
        session, self._session = self._session, None
        if session is None or not self._owns_session:
            return
        if self._pool is not None:
            await self._pool.release(session)
        else:
            await session.close()

    async def wait_closed(self, timeout: float | None = None) -> None:
        if self._closed:
            return
        waiter = asyncio.get_running_loop().create_future()
        if self._closed_waiters is None:
            self._closed_waiters = []
        self._closed_waiters.append(waiter)
        try:
            async with asyncio.timeout(timeout):
                await waiter
        except TimeoutError:
            raise DeepgramTimeoutError(f"still open after {timeout} s") from None

    # ------------------------------------------------------------------ introspection

    def statistics(self) -> ConnectionStatistics:
        p = self._proto
        return ConnectionStatistics(
            messages_received=p.messages_received,
            audio_frames_received=p.audio_frames_received,
            audio_bytes_received=p.audio_bytes_received,
            unhandled_received=p.unhandled_received,
            messages_sent=p.messages_sent,
            audio_frames_sent=p.audio_frames_sent,
            audio_bytes_sent=p.audio_bytes_sent,
            keepalives_sent=p.keepalives_sent,
            queued=len(self._rx.queue),
            queue_high_water=self._rx.queue.high_water,
            max_queue=self.options.max_queue,
            pending_before_ready=p.held,
            dropped_before_ready=p.dropped_before_ready,
            reconnects=0,
            stale_responses_dropped=0,
        )


async def _dial(
    session: aiohttp.ClientSession, url: str, auth: Credentials, options: ConnectOptions
) -> aiohttp.ClientWebSocketResponse[bool]:
    """The WebSocket upgrade, with every aiohttp failure translated, and nothing of aiohttp's
    that holds our headers (its ``request_info``) left reachable from what is raised."""
    headers = {
        "Authorization": auth.header(),
        "User-Agent": "deepgram-agent-python",
        "x-deepgram-session-id": str(uuid.uuid4()),
        **options.extra_headers,
    }
    error: BaseException | None = None
    cause: BaseException | None = None
    try:
        ws = await session.ws_connect(
            url,
            headers=headers,
            autoping=True,
            autoclose=True,
            compress=0,
            heartbeat=options.ping_interval,
            # aiohttp refuses a frame of exactly its limit: ours is the largest frame accepted.
            max_msg_size=options.max_message_size + 1 if options.max_message_size > 0 else 0,
            timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=options.close_timeout),
            decode_text=False,
        )
    except aiohttp.WSServerHandshakeError as exc:
        error = _refused(exc, auth)
    except (aiohttp.ClientError, OSError, RuntimeError) as exc:
        error = DeepgramConnectionError(f"could not connect to {url}: {auth.redact(str(exc))}")
        # Chained for the cause, unless it is an HTTP error (its request_info holds our headers).
        if not isinstance(exc, aiohttp.ClientResponseError):
            cause = exc
    else:
        redirect = _redirect_of(ws)
        if redirect is None:
            return ws
        # aiohttp follows redirects of the upgrade and cannot be told not to. The Voice Agent
        # API does not redirect: a server that does would get the Settings (which may hold
        # provider credentials), maybe over ws:// to another host (allow_insecure bypassed).
        with contextlib.suppress(Exception):
            await ws.close()
        error = DeepgramApiError(
            f"the server answered the WebSocket upgrade with a redirect (HTTP {redirect[0]}) to "
            f"{auth.redact(redirect[1])}; redirects are not followed: pass that URL as "
            "base_url if it is the right server",
            status=redirect[0],
        )
    finally:
        del headers
    # Raised here, outside the except blocks, so no aiohttp error is left in __context__.
    if cause is not None:
        raise error from cause
    raise error


def _redacted(rejection: SettingsRejected, auth: Credentials) -> SettingsRejected:
    return SettingsRejected(
        auth.redact(rejection.description), code=rejection.code, request_id=rejection.request_id
    )


def _redirect_of(ws: aiohttp.ClientWebSocketResponse[bool]) -> tuple[int, str] | None:
    """``(status, origin reached)`` when the upgrade was redirected, else ``None``."""
    response = getattr(ws, "_response", None)
    history = getattr(response, "history", None)
    if not history or response is None:
        return None
    return history[0].status, str(response.url.origin())


def _refused(exc: aiohttp.WSServerHandshakeError, auth: Credentials) -> DeepgramApiError:
    headers_in: Mapping[str, str] = exc.headers or {}
    detail = auth.redact(headers_in.get("dg-error") or exc.message or "handshake refused")
    rid = headers_in.get("dg-request-id")
    if exc.status in (401, 403):
        return AuthenticationError(
            f"{detail}; check DEEPGRAM_API_KEY (or api_key=/access_token=)",
            status=exc.status,
            request_id=rid,
        )
    return DeepgramApiError(detail, status=exc.status, request_id=rid)


def _abnormal_end(
    proto: AgentProtocol, cause: BaseException | None, saw_close: bool, options: ConnectOptions
) -> ConnectionClosed:
    """The error an abnormal end of the socket raises to the consumer."""
    code = proto.close_code
    detail = "the server closed the session" if saw_close else "the connection was lost"
    if isinstance(cause, aiohttp.WebSocketError) and cause.code == 1009:
        code = 1009
        # aiohttp says "Message size N exceeds limit L" with its own limit (ours + 1).
        size = re.search(r"size (\d+)", str(cause))
        detail = (
            f"the server sent a frame of {size.group(1) + ' bytes' if size else 'more bytes'}, "
            f"more than max_message_size ({options.max_message_size} bytes); raise "
            "max_message_size if that is expected"
        )
    elif isinstance(cause, aiohttp.ServerTimeoutError):
        ping = options.ping_interval or 0
        detail = (
            f"the server stopped answering: nothing received for {ping:g} s and no pong to our "
            f"ping within {ping / 2:g} s (ping_interval={options.ping_interval})"
        )
    if not saw_close or code is None:
        code = code if code == 1009 else 1006
    proto.close_code = code
    err = ConnectionClosedError(code, proto.close_reason, detail)
    if cause is not None:
        err.__cause__ = cause
    return err


def _new_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
