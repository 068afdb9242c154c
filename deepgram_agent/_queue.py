"""Bounded single-consumer queues between the socket reader and the consumer.

The reader task (on the event loop) puts; one consumer gets. Two flavours share one interface:

* :class:`AsyncQueue`: the consumer is a coroutine on the same loop (``async for msg in conn``).
* :class:`ThreadQueue`: the consumer is a thread (the blocking facade, ``for msg in conn``).

Both are bounded: when ``maxsize`` items wait, ``put`` suspends the reader, which stops reading
the socket, so TCP flow control pushes back on the server and memory stays bounded. The end of
the stream is an :class:`End` item that is always accepted, even when the queue is full.
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

    __slots__ = ("_getter", "_items", "_maxsize", "_putters", "high_water")

    def __init__(self, maxsize: int) -> None:
        self._items: deque[T | End] = deque()
        self._maxsize = maxsize
        self._getter: asyncio.Future[None] | None = None
        # Producers waiting for room (the reader, and the reconnect loop during an outage).
        self._putters: deque[asyncio.Future[None]] = deque()
        self.high_water = 0

    def __len__(self) -> int:
        return len(self._items)

    def put_nowait(self, item: T | End, *, force: bool = False) -> bool:
        """Append ``item`` unless the queue is full; return whether it was appended.

        ``force`` appends even to a full queue (for the few control items that must never wait
        on the consumer: the end of the stream, handshake frames, reconnect events).
        """
        items = self._items
        if len(items) >= self._maxsize and not force and not isinstance(item, End):
            return False
        items.append(item)
        n = len(items)
        if n > self.high_water:
            self.high_water = n
        getter = self._getter
        if getter is not None:
            self._getter = None
            if not getter.done():
                getter.set_result(None)
        return True

    async def put(self, item: T | End) -> None:
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
        # Wake every waiting producer; each re-checks for room (there are at most two).
        for putter in self._putters:
            if not putter.done():
                putter.set_result(None)

    async def get(self) -> T | End:
        """Remove and return the next item, waiting for one. Cancelling is safe."""
        items = self._items
        while not items:
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
        item = items[0]
        if isinstance(item, End):
            return item  # stays in place: every later get() sees the end too
        items.popleft()
        if self._putters:
            self._wake_putter()
        return item

    def get_nowait(self) -> T | End | None:
        """The next item, or ``None`` when the queue is empty."""
        items = self._items
        if not items:
            return None
        item = items[0]
        if isinstance(item, End):
            return item
        items.popleft()
        if self._putters:
            self._wake_putter()
        return item

    def clear(self) -> int:
        """Drop every waiting item but an ``End``; return how many were dropped."""
        items = self._items
        end = [i for i in items if isinstance(i, End)]
        dropped = len(items) - len(end)
        items.clear()
        items.extend(end)
        self._wake_putter()
        return dropped


class ThreadQueue(Generic[T]):
    """A bounded queue filled on the event loop and drained by one consumer thread."""

    def __init__(self, maxsize: int, loop: asyncio.AbstractEventLoop) -> None:
        self._items: deque[T | End] = deque()
        self._maxsize = maxsize
        self._loop = loop
        self._cond = threading.Condition(threading.Lock())
        self._putters: list[asyncio.Future[None]] = []
        self._reading = False
        self.high_water = 0

    def __len__(self) -> int:
        return len(self._items)

    def put_nowait(self, item: T | End, *, force: bool = False) -> bool:
        """Append ``item`` unless the queue is full (called on the loop); see AsyncQueue."""
        with self._cond:
            if len(self._items) >= self._maxsize and not force and not isinstance(item, End):
                return False
            self._items.append(item)
            n = len(self._items)
            if n > self.high_water:
                self.high_water = n
            if n == 1 or isinstance(item, End):
                self._cond.notify()
        return True

    async def put(self, item: T | End) -> None:
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
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            if self._reading:
                raise ConcurrencyError("another thread is already reading this connection")
            self._reading = True
            try:
                while not self._items:
                    # Wait in short slices so Ctrl-C reaches the main thread promptly.
                    if deadline is None:
                        self._cond.wait(0.25)
                    else:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            raise DeepgramTimeoutError(f"no message within {timeout} s")
                        self._cond.wait(min(left, 0.25))
                item = self._items[0]
                if isinstance(item, End):
                    return item
                self._items.popleft()
                wake = bool(self._putters) and len(self._items) <= self._maxsize // 2
            finally:
                self._reading = False
        if wake:
            self._loop.call_soon_threadsafe(self._wake)
        return item

    def clear(self) -> int:
        """Drop every waiting item but an ``End``; return how many were dropped."""
        with self._cond:
            end = [i for i in self._items if isinstance(i, End)]
            dropped = len(self._items) - len(end)
            self._items.clear()
            self._items.extend(end)
        self._loop.call_soon_threadsafe(self._wake)
        return dropped


AnyQueue = AsyncQueue[Any] | ThreadQueue[Any]
