"""Blocking ``send_audio`` without a round trip to the loop thread per frame.

A phone bridge written against the blocking facade sends one 20 ms frame per call every 20 ms.
Waiting for each frame to be written (submit a coroutine to the loop thread, block on its
future, wake up) cost more CPU than everything else the facade does: at 100 calls 2.6x the
bare aiohttp client's CPU, and at 300 calls a quarter of the frames never went out.

So a blocking ``send_audio`` hands the frame to an :class:`Outbox` and returns. Every
connection of one loop thread shares one :class:`SendPump`: the threads append
``(outbox, item)`` to one deque and the first of a burst wakes the loop once; one task on the
loop then writes every waiting frame. The rules:

* **Order.** A connection's frames and the messages sent after them go out in the order they
  were given: while an outbox has frames in flight, ``send()``/``close()`` and friends queue
  behind them instead of overtaking.
* **Bounded.** An outbox holds at most :data:`LIMIT` bytes not yet written (a frame larger than
  that is taken when nothing else waits); a sender that finds it full waits for room, bounded,
  and gets ``DeepgramTimeoutError`` if the server has not read in time.
* **Nothing lost silently.** A write that fails is reported by the *next* ``send_audio`` (or
  ``flush()``), once, as a socket's ``send`` reports an earlier failure; the frames behind it
  are still tried (on a closed connection they fail at once; a resuming connection carries
  them to its next socket). A send on a connection already closed raises at once, as before.
* **One stuck server stalls only its own connection.** For a plain socket connection the pump
  drives each write by hand; a write that has to wait for the server (TCP flow control) is
  finished by a task of that connection, and its later frames queue behind it there, while the
  pump goes on with the other connections. (``SocketConnection.send_audio`` holds no
  ``asyncio.timeout`` across that first suspension, which is what makes handing it to another
  task sound.) Any other connection type (``ResumingConnection``) gets its writes run in a
  task of its own, one per burst.
"""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from collections.abc import Coroutine
from typing import Any

from .exceptions import DeepgramTimeoutError

__all__ = ["LIMIT", "Outbox", "SendPump"]

#: Bytes one connection may hold accepted and not yet written (aiohttp's own write buffer
#: holds as much again before it waits for the server): ~4 s of 8 kHz mu-law, ~2 s of 16 kHz
#: linear16.
LIMIT = 64 * 1024


class _Job:
    """A non-audio send queued behind audio in flight; its caller waits on ``done``."""

    __slots__ = ("coro", "done")

    def __init__(self, coro: Coroutine[Any, Any, Any]) -> None:
        self.coro = coro
        self.done: Any = None  # concurrent.futures.Future, set by the caller


class _Resume:
    """Finishes a send coroutine that suspended in its first step, in a task of ours."""

    __slots__ = ("_coro", "_first")

    def __init__(self, coro: Coroutine[Any, Any, Any], first: Any) -> None:
        self._coro = coro
        self._first = first

    def __await__(self) -> Any:
        # ``yield from`` for a coroutine whose first value was already taken: what the task
        # sends or throws in (a cancellation included) goes on into the coroutine, which
        # turns it into the connection's own error.
        coro = self._coro
        value = self._first
        while True:
            try:
                sent = yield value
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:
                try:
                    value = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    value = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


class Outbox:
    """The frames of one blocking connection on their way to the socket.

    ``inflight`` counts items accepted and not finished; ``pending`` their audio bytes. Both,
    and ``error``, are guarded by the pump's lock. ``busy`` and ``backlog`` belong to the loop
    thread: while a write of this connection waits for the server, the rest waits in
    ``backlog`` for the task finishing it.
    """

    __slots__ = (
        "backlog",
        "busy",
        "by_hand",
        "core",
        "drained",
        "error",
        "inflight",
        "pending",
        "waiters",
    )

    def __init__(self, core: Any, *, by_hand: bool) -> None:
        self.core = core
        #: Writes may be driven by hand in the pump (see the module docstring).
        self.by_hand = by_hand
        self.inflight = 0
        self.pending = 0
        self.waiters = 0
        self.error: BaseException | None = None
        self.busy = False
        self.backlog: collections.deque[Any] = collections.deque()
        self.drained: asyncio.Future[None] | None = None  # loop side, see wait_drained


class SendPump:
    """One per loop thread: takes frames from any thread, writes them on the loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.lock = threading.Lock()
        self.room = threading.Condition(self.lock)
        self.items: collections.deque[tuple[Outbox, Any]] = collections.deque()
        self.scheduled = False

    # ------------------------------------------------------------ caller threads

    def put_audio(self, box: Outbox, chunk: bytes, timeout: float | None) -> None:
        """Queue one frame (any thread but the loop's); wait, bounded, while ``box`` is full."""
        size = len(chunk)
        with self.lock:
            if box.error is not None:
                raise self.take_error(box)
            if box.pending and box.pending + size > LIMIT:
                self._wait_for_room(box, size, timeout)
            box.pending += size
            kick = self._append(box, chunk)
        if kick:
            self.loop.call_soon_threadsafe(self._kick)

    def _append(self, box: Outbox, item: Any) -> bool:
        """Queue ``item`` (lock held); True when the loop must be woken (first of a burst)."""
        box.inflight += 1
        self.items.append((box, item))
        if self.scheduled:
            return False
        self.scheduled = True
        return True

    def _wait_for_room(self, box: Outbox, size: int, timeout: float | None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        box.waiters += 1
        try:
            while box.pending and box.pending + size > LIMIT and box.error is None:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise DeepgramTimeoutError(
                        f"the server has not taken the last {box.pending} bytes of audio within "
                        f"{timeout} s; this frame was not sent (the connection stays open: "
                        "set send_timeout to have a stalled server fail it)"
                    )
                self.room.wait(left)
        finally:
            box.waiters -= 1
        if box.error is not None:
            raise self.take_error(box)

    @staticmethod
    def take_error(box: Outbox) -> BaseException:
        """The error of a failed write, reported once (call with the lock held)."""
        error = box.error
        assert error is not None
        box.error = None
        return error.with_traceback(None)

    def put_job(self, box: Outbox, job: _Job) -> bool:
        """Queue ``job`` behind ``box``'s frames; False when nothing is in flight (run it
        directly then)."""
        with self.lock:
            if not box.inflight:
                return False
            kick = self._append(box, job)
        if kick:
            self.loop.call_soon_threadsafe(self._kick)
        return True

    def fail(self, box: Outbox, error: BaseException) -> None:
        """End ``box`` with ``error`` (the loop thread died): waiting senders wake up."""
        with self.lock:
            if box.error is None:
                box.error = error
            self.room.notify_all()

    # ------------------------------------------------------------ the loop thread

    def _kick(self) -> None:
        self.loop.create_task(self._pump(), name="deepgram-agent-send")

    async def _pump(self) -> None:
        # A task, not a plain callback: a send's synchronous first step may need a current task.
        lock = self.lock
        items = self.items
        while True:
            with lock:
                if not items:
                    self.scheduled = False
                    return
                box, item = items.popleft()
            if box.busy:
                box.backlog.append(item)
            else:
                self._start(box, item)

    def _start(self, box: Outbox, item: Any) -> None:
        if type(item) is _Job or not box.by_hand:
            box.busy = True
            self.loop.create_task(self._finish(box, None, item))
            return
        try:
            coro = box.core.send_audio(item)
        except BaseException as exc:  # pragma: no cover - send_audio is a coroutine function
            self._done(box, len(item), exc)
            return
        try:
            first = coro.send(None)
        except StopIteration:
            self._done(box, len(item), None)
            return
        except BaseException as exc:
            self._done(box, len(item), exc)
            return
        box.busy = True
        self.loop.create_task(self._finish(box, _Resume(coro, first), item))

    async def _finish(self, box: Outbox, resume: _Resume | None, item: Any) -> None:
        """Finish ``box``'s suspended write (or job), then its backlog, in this task."""
        while True:
            if type(item) is _Job:
                await self._run_job(box, item)
            else:
                error: BaseException | None = None
                try:
                    if resume is not None:
                        await resume
                    else:
                        await box.core.send_audio(item)
                except BaseException as exc:
                    error = exc
                self._done(box, len(item), error)
            resume = None
            if not box.backlog:
                box.busy = False
                return
            item = box.backlog.popleft()

    async def _run_job(self, box: Outbox, job: _Job) -> None:
        done = job.done
        if done.cancelled():  # its caller gave up waiting (bounded): it is not sent late
            job.coro.close()
            self._done(box, 0, None)
            return
        try:
            result = await job.coro
        except BaseException as exc:
            if not done.done():
                done.set_exception(exc)
        else:
            if not done.done():
                done.set_result(result)
        self._done(box, 0, None)

    def _done(self, box: Outbox, size: int, error: BaseException | None) -> None:
        with self.lock:
            box.inflight -= 1
            box.pending -= size
            if error is not None and box.error is None:
                box.error = error
            if box.waiters:
                self.room.notify_all()
            drained = not box.inflight
        if drained and box.drained is not None:
            if not box.drained.done():
                box.drained.set_result(None)
            box.drained = None

    async def wait_drained(self, box: Outbox, timeout: float) -> None:
        """On the loop: wait (bounded) until ``box`` has nothing in flight."""
        with self.lock:
            if not box.inflight:
                return
        if box.drained is None:
            box.drained = self.loop.create_future()
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(box.drained)
        except TimeoutError:
            pass
