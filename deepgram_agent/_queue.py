"""Bounded single-consumer queues between the socket reader and the consumer.

The reader task (on the event loop) puts; one consumer gets. Two flavours share one interface:

* :class:`AsyncQueue`: the consumer is a coroutine on the same loop (``async for msg in conn``).
* :class:`ThreadQueue`: the consumer is a thread (the blocking facade, ``for msg in conn``).

Both are bounded: when ``maxsize`` items wait, ``put`` suspends the reader, which stops reading
the socket, so TCP flow control pushes back on the server and memory stays bounded. The end of
the stream is an :class:`End` item that is always accepted, even when the queue is full; it is
kept apart from the items, so every later ``get`` sees it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from typing import Any, Generic, TypeVar

from .exceptions import ConcurrencyError, DeepgramTimeoutError

__all__ = ["End", "AsyncQueue", "ThreadQueue"]

T = TypeVar("T")


class End:
    """The end of the stream; ``error`` is raised to the consumer (``None``: a quiet end)."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException | None) -> None:
        self.error = error


class AsyncQueue(Generic[T]):
    """A bounded queue with one producer and one consumer on the same event loop."""

    __slots__ = ("_end", "_getter", "_items", "_maxsize", "_putters", "high_water")

    def __init__(self, maxsize: int) -> None:
        self._items: deque[T] = deque()
        self._end: End | None = None
        self._maxsize = maxsize
        self._getter: asyncio.Future[None] | None = None
        # Producers waiting for room (the reader, and the reconnect loop during an outage).
        self._putters: deque[asyncio.Future[None]] = deque()
        self.high_water = 0

    def __len__(self) -> int:
        return len(self._items)

    def _wake_getter(self) -> None:
        getter = self._getter
        if getter is not None:
            self._getter = None
            if not getter.done():
                getter.set_result(None)

    def end(self, end: End) -> None:
        """Mark the end of the stream (after the items already queued)."""
        if self._end is None:
            self._end = end
        self._wake_getter()

    def put_nowait(self, item: T, *, force: bool = False) -> bool:
        """Append ``item`` unless the queue is full; return whether it was appended.

        ``force`` appends even to a full queue (for the few control items that must never wait
        on the consumer: handshake frames, reconnect events).
        """
        items = self._items
        n = len(items)
        if n >= self._maxsize and not force:
            return False
        items.append(item)
        if n >= self.high_water:
            self.high_water = n + 1
        if self._getter is not None:
            self._wake_getter()
        return True

    async def put(self, item: T) -> None:
        """Append ``item``, waiting while the queue is full. Cancelling is safe."""
        while not self.put_nowait(item):
            fut = asyncio.get_running_loop().create_future()
            self._putters.append(fut)
            try:
                await fut
            finally:
                with contextlib.suppress(ValueError):
                    self._putters.remove(fut)

    def _wake_putter(self) -> None:
        # Wake every waiting producer once; each re-checks for room (there are at most two).
        putters = self._putters
        while putters:
            putter = putters.popleft()
            if not putter.done():
                putter.set_result(None)

    async def get(self) -> T | End:
        """Remove and return the next item, waiting for one. Cancelling is safe."""
        items = self._items
        while not items:
            if self._end is not None:
                return self._end
            if self._getter is not None:
                raise ConcurrencyError(
                    "another task is already reading this connection; use one reader "
                    "(one 'async for' loop) per connection"
                )
            fut = asyncio.get_running_loop().create_future()
            self._getter = fut
            try:
                await fut
            finally:
                self._getter = None
        item = items.popleft()
        if self._putters:
            self._wake_putter()
        return item

    def get_nowait(self) -> T | End | None:
        """The next item, the ``End``, or ``None`` when nothing is there yet."""
        items = self._items
        if items:
            item = items.popleft()
            if self._putters:
                self._wake_putter()
            return item
        return self._end


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
        self._maxsize = maxsize
        self._loop = loop
        self._cond = threading.Condition(threading.Lock())
        self._putters: list[asyncio.Future[None]] = []
        self._consumer_waiting = False
        self._reading = False
        self.high_water = 0

    def __len__(self) -> int:
        return len(self._items) + len(self._batch)

    def end(self, end: End) -> None:
        """Mark the end of the stream (after the items already queued)."""
        with self._cond:
            if self._end is None:
                self._end = end
            self._cond.notify()

    def put_nowait(self, item: T, *, force: bool = False) -> bool:
        """Append ``item`` unless the queue is full (called on the loop); see AsyncQueue."""
        with self._cond:
            n = len(self._items)
            if n >= self._maxsize and not force:
                return False
            self._items.append(item)
            if n >= self.high_water:
                self.high_water = n + 1
            if self._consumer_waiting:
                self._cond.notify()
        return True

    async def put(self, item: T) -> None:
        """Append ``item``, suspending the reader while the queue is full."""
        while not self.put_nowait(item):
            fut = self._loop.create_future()
            with self._cond:
                if len(self._items) < self._maxsize:
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
        """
        batch = self._batch
        if batch:
            return batch.popleft()
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            if self._reading:
                raise ConcurrencyError("another thread is already reading this connection")
            self._reading = True
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
                self._reading = False
        if wake:
            self._loop.call_soon_threadsafe(self._wake)
        return self._batch.popleft()


AnyQueue = AsyncQueue[Any] | ThreadQueue[Any]
