"""Microphone capture as an async iterator of chunks ready for ``send_audio``."""

from __future__ import annotations

import asyncio
import collections
import threading
from collections.abc import Callable, Iterator
from typing import Any

from ..options import input_format
from ._convert import convert
from ._device import SoundDevice, Stream, open_stream
from ._player import resolve_settings
from ._resample import Resampler

__all__ = ["Microphone"]


class Microphone:
    """Captures the microphone in the Settings' ``audio.input`` format.

    The device callback never blocks: it appends the block to a bounded buffer (the oldest block
    is dropped when the consumer falls behind, and counted in :attr:`dropped_blocks`) and wakes
    the event loop with ``call_soon_threadsafe``::

        async with Microphone(conn) as mic:
            async for chunk in mic:
                await conn.send_audio(chunk)

    Args:
        settings: the connection (preferred) or the Settings it was opened with.
        device: the sound device boundary (default: ``sounddevice``, loaded lazily).
        device_name: which input device (``None``: the default).
        device_rate: capture at this sample rate and resample to the Settings' input rate
            (numpy, in the ``audio`` extra) when they differ; ``None`` captures at the Settings'
            rate. Chunks then hold about ``block_ms`` of audio (the count varies by a sample).
        block_ms: duration of each captured block.
        max_blocks: how many blocks may wait for the consumer before the oldest is dropped.
        mute: half-duplex: a callable checked per block; while it returns true the block is
            discarded (e.g. ``lambda: player.playing`` for speakers without echo cancellation).
    """

    def __init__(
        self,
        settings: Any,
        *,
        device: SoundDevice | None = None,
        device_name: Any = None,
        device_rate: int | None = None,
        block_ms: float = 20.0,
        max_blocks: int = 50,
        mute: Callable[[], bool] | None = None,
    ) -> None:
        self.encoding, self.sample_rate = input_format(resolve_settings(settings))
        convert(b"", "linear16", self.encoding)  # only linear16/mulaw/alaw can be captured
        self._device = device
        self._device_name = device_name
        #: The rate the device captures at (the Settings' input rate unless ``device_rate``).
        self.device_rate = device_rate or self.sample_rate
        self._resampler = (
            Resampler(self.device_rate, self.sample_rate)
            if self.device_rate != self.sample_rate
            else None
        )
        self.block_frames = max(1, round(self.device_rate * block_ms / 1000))
        self.mute = mute
        self._blocks: collections.deque[bytes] = collections.deque(maxlen=max(1, max_blocks))
        self._stream: Stream | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake_pending = False
        self._ready = asyncio.Event()
        self._ready_sync = threading.Event()
        self._closed = False
        #: Blocks dropped because the consumer fell behind.
        self.dropped_blocks = 0
        #: Blocks discarded by ``mute`` (half-duplex).
        self.muted_blocks = 0

    def start(self) -> None:
        """Open and start the input stream (call from the event loop)."""
        if self._stream is not None:
            return
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:  # blocking code: iterate with ``for chunk in mic``
            self._loop = None
        self._stream = open_stream(
            self._device,
            output=False,
            rate=self.device_rate,
            block_frames=self.block_frames,
            callback=self._callback,
            device_name=self._device_name,
        )

    def close(self) -> None:
        """Stop capturing; the iterator ends after the blocks already captured."""
        self._closed = True
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.stop()
            stream.close()
        self._ready_sync.set()
        if self._loop is not None:
            self._ready.set()

    def __enter__(self) -> Microphone:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[bytes]:
        """Blocking iteration (for the blocking facade): ends after :meth:`close`."""
        while True:
            if self._blocks:
                yield self._to_wire(self._blocks.popleft())
                continue
            if self._closed:
                return
            self._ready_sync.clear()
            if not self._blocks and not self._closed:
                self._ready_sync.wait()

    async def __aenter__(self) -> Microphone:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def _to_wire(self, block: bytes) -> bytes:
        """Consumer side: resample (if the device rate differs) and encode one block."""
        if self._resampler is not None:
            block = self._resampler.process(block)
        return convert(block, "linear16", self.encoding)

    def _callback(self, indata: Any, frames: int, time_info: Any, status: Any) -> None:
        """Device thread: copy the block, never wait."""
        if self.mute is not None and self.mute():
            self.muted_blocks += 1
            return
        if len(self._blocks) == self._blocks.maxlen:
            self.dropped_blocks += 1
        self._blocks.append(bytes(indata))  # deque(maxlen) drops the oldest
        self._ready_sync.set()
        loop = self._loop
        if loop is not None and not self._wake_pending:
            self._wake_pending = True
            try:
                loop.call_soon_threadsafe(self._wake)
            except RuntimeError:  # the loop is closed: nobody is listening any more
                pass

    def _wake(self) -> None:
        self._wake_pending = False
        self._ready.set()

    def __aiter__(self) -> Microphone:
        return self

    async def __anext__(self) -> bytes:
        while True:
            if self._blocks:
                return self._to_wire(self._blocks.popleft())
            if self._closed:
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()
