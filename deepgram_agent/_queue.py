"""Bounded single-consumer queues between the socket reader and the consumer.

The reader task (on the event loop) puts; one consumer gets. Two flavours share one interface:

* :class:`AsyncQueue`: the consumer is a coroutine on the same loop (``async for msg in conn``).
* :class:`ThreadQueue`: the consumer is a thread (the blocking facade, ``for msg in conn``).

Both are bounded in every phase: when ``maxsize`` items wait, ``put`` suspends the reader,
which stops reading the socket, so TCP flow control pushes back on the server and memory stays
bounded. ``put_nowait(..., force=True)`` is for the few SDK events that must never wait
(``Reconnecting``/``Reconnected``: at most a handful per outage). The end of the stream is an
:class:`End` item that is always accepted; it is kept apart from the items, so every later
``get`` sees it too.

The async consumer's hot path reads :attr:`AsyncQueue.items` directly (a ``deque``): popping
from it and then calling :meth:`AsyncQueue.wake_putters` when :attr:`AsyncQueue.putters` is
non-empty is the documented fast way to take an item.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from typing import Any, Generic, TypeVar

from .exceptions import ConcurrencyError, DeepgramTimeoutError

__all__ = ["End", "AsyncQueue", "ThreadQueue", "AnyQueue"]

T = TypeVar("T")


class End:
    """The end of the stream; ``error`` is raised to the consumer (``None``: a quiet end)."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException | None) -> None:
        self.error = error


class AsyncQueue(Generic[T]):
    """A bounded queue with one consumer coroutine on the producer's event loop."""

    __slots__ = ("end_item", "getter", "high_water", "items", "maxsize", "putters")

    def __init__(self, maxsize: int) -> None:
        self.items: deque[T] = deque()
        self.end_item: End | None = None
        self.maxsize = maxsize
        #: The consumer's wake-up future while it waits for an item.
        self.getter: asyncio.Future[None] | None = None
        #: Producers waiting for room.
        self.putters: deque[asyncio.Future[None]] = deque()
        self.high_water = 0

    def __len__(self) -> int:
        return len(self.items)

    def _wake_getter(self) -> None:
        getter = self.getter
        if getter is not None:
            self.getter = None
            if not getter.done():
                getter.set_result(None)

    def end(self, end: End) -> None:
        """Mark the end of the stream (after the items already queued)."""
        if self.end_item is None:
            self.end_item = end
        self._wake_getter()

    def put_nowait(self, item: T, *, force: bool = False) -> bool:
        """Append ``item`` unless the queue is full; return whether it was appended."""
        items = self.items
        n = len(items)
        if n >= self.maxsize and not force:
            return False
        items.append(item)
        if n >= self.high_water:
            self.high_water = n + 1
        if self.getter is not None:
            self._wake_getter()
        return True

    async def put(self, item: T) -> None:
        """Append ``item``, waiting while the queue is full. Cancelling is safe."""
        while not self.put_nowait(item):
            fut = asyncio.get_running_loop().create_future()
            self.putters.append(fut)
            try:
                await fut
            finally:
                with contextlib.suppress(ValueError):
                    self.putters.remove(fut)

    def wake_putters(self) -> None:
        """Wake every waiting producer once; each re-checks for room."""
        putters = self.putters
        while putters:
            putter = putters.popleft()
            if not putter.done():
                putter.set_result(None)

    async def get(self) -> T | End:
        """Remove and return the next item, waiting for one. Cancelling is safe.

        Raises:
            ConcurrencyError: another coroutine is already waiting on this queue.
        """
        items = self.items
        while not items:
            if self.end_item is not None:
                return self.end_item
            if self.getter is not None:
                raise ConcurrencyError(
                    "another task is already reading this connection; use one reader "
                    "(one 'async for' loop) per connection"
                )
            fut = asyncio.get_running_loop().create_future()
            self.getter = fut
            try:
                await fut
            finally:
                if self.getter is fut:
                    self.getter = None
        item = items.popleft()
        if self.putters:
            self.wake_putters()
        return item

    def get_nowait(self) -> T | End | None:
        """The next item, the ``End``, or ``None`` when nothing is there yet."""
        items = self.items
        if items:
            item = items.popleft()
            if self.putters:
                self.wake_putters()
            return item
        return self.end_item


class ThreadQueue(Generic[T]):
    """A bounded queue filled on the event loop and drained by one consumer thread.

    The consumer takes everything waiting in one locked step and then works through that batch
    without locking, so the cost per message is a deque append and pop, not a lock round trip.
    At most ``maxsize`` items wait in the queue plus one batch of at most ``maxsize`` in the
    consumer's hands.
    """

    def __init__(self, maxsize: int, loop: asyncio.AbstractEventLoop) -> None:
        self._items: deque[T] = deque()
        self._batch: deque[T] = deque()
        self._end: End | None = None
        self.maxsize = maxsize
        self._loop = loop
        self._cond = threading.Condition(threading.Lock())
        self._putters: list[asyncio.Future[None]] = []
        self._consumer_waiting = False
        self._reader: threading.Thread | None = None
        self.high_water = 0

    def __len__(self) -> int:
        return len(self._items) + len(self._batch)

    def end(self, end: End) -> None:
        """Mark the end of the stream (after the items already queued)."""
        with self._cond:
            if self._end is None:
                self._end = end
            self._cond.notify_all()

    def put_nowait(self, item: T, *, force: bool = False) -> bool:
        """Append ``item`` unless the queue is full (called on the loop); see AsyncQueue."""
        with self._cond:
            n = len(self._items)
            if n >= self.maxsize and not force:
                return False
            self._items.append(item)
            if n >= self.high_water:
                self.high_water = n + 1
            if self._consumer_waiting:
                self._cond.notify()
        return True

    async def put(self, item: T) -> None:
        """Append ``item``, suspending the reader while the queue is full. Cancelling is safe."""
        while not self.put_nowait(item):
            fut = self._loop.create_future()
            with self._cond:
                if len(self._items) < self.maxsize:
                    continue
                self._putters.append(fut)
            try:
                await fut
            finally:
                with self._cond, contextlib.suppress(ValueError):
                    self._putters.remove(fut)

    def _wake(self) -> None:
        with self._cond:
            putters = list(self._putters)
            self._putters.clear()
        for fut in putters:
            if not fut.done():
                fut.set_result(None)

    def get(self, timeout: float | None = None) -> T | End:
        """Remove and return the next item, blocking the calling thread.

        Args:
            timeout: seconds to wait at most; ``None`` waits until an item arrives.

        Raises:
            DeepgramTimeoutError: nothing arrived within ``timeout``.
            ConcurrencyError: another thread is waiting on this queue right now.
        """
        batch = self._batch
        if batch:
            return batch.popleft()
        deadline = None if timeout is None else time.monotonic() + timeout
        me = threading.current_thread()
        with self._cond:
            if self._reader is not None and self._reader is not me:
                raise ConcurrencyError(
                    f"thread {self._reader.name!r} is already waiting for a message on this "
                    "connection; read it from one thread (one 'for' loop) only"
                )
            self._reader = me
            try:
                while not self._items:
                    if self._end is not None:
                        return self._end
                    # Wait in short slices so Ctrl-C reaches the main thread promptly.
                    self._consumer_waiting = True
                    if deadline is None:
                        self._cond.wait(0.25)
                    else:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            raise DeepgramTimeoutError(f"no message within {timeout} s")
                        self._cond.wait(min(left, 0.25))
                    self._consumer_waiting = False
                # Take the whole waiting batch at once.
                self._batch, self._items = self._items, batch
                wake = bool(self._putters)
            finally:
                self._consumer_waiting = False
                self._reader = None
        if wake:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                self._loop.call_soon_threadsafe(self._wake)
        return self._batch.popleft()


AnyQueue = AsyncQueue[Any] | ThreadQueue[Any]
