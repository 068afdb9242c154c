"""Speaker playback of the agent's audio, with a jitter buffer and barge-in done right."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping
from typing import Any, Literal

from .. import messages as m
from ..options import coerce_settings, output_format
from ._bargein import BargeIn, BargeInAction
from ._convert import to_linear16
from ._device import SoundDevice, Stream, open_stream
from ._resample import Resampler

__all__ = ["Player", "resolve_settings"]

FinishReason = Literal["drained", "interrupted"]


def _in_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def resolve_settings(settings: Any) -> m.Settings:
    """The typed Settings from a connection, ``messages.Settings``, options, dict or JSON."""
    if isinstance(settings, m.Settings):
        return settings
    typed = getattr(settings, "settings", None)  # an AgentConnection
    if isinstance(typed, m.Settings):
        return typed
    if isinstance(settings, Mapping | str | bytes) or hasattr(settings, "_compile"):
        return coerce_settings(settings)[0]
    raise TypeError(
        "pass the connection, or the Settings it was opened with, so the audio format matches "
        f"what the server sends; got {type(settings).__name__}"
    )


class Player:
    """Plays agent audio on a speaker; its format comes from the Settings actually sent.

    Feed it every event of the connection (:meth:`handle`): audio bytes are queued; on
    ``UserStartedSpeaking`` every queued sample is dropped at once (the device plays at most the
    block it already holds) and agent audio is ignored until the next reply starts. The rules
    are :class:`~deepgram_agent.audio.BargeIn`'s (the next reply is recognised by its own audio
    after its text, never by ``AgentStartedSpeaking``, which the server sends only with
    ``experimental``). Playback-finished is reported when the device has drained after
    ``AgentAudioDone``, not when that message arrives.

    Args:
        settings: the connection (preferred), or the Settings it was opened with; the format is
            ``audio.output`` (encoding, sample rate). Never pass the format separately.
        device: the sound device boundary (default: the ``sounddevice`` module, loaded lazily;
            raises :class:`~deepgram_agent.MissingDependencyError` without the extra).
        device_name: which output device (sounddevice's ``device=``; ``None``: the default).
        device_rate: open the device at this sample rate and resample the agent's audio to it
            (numpy, in the ``audio`` extra) when it differs from the Settings' rate; ``None``
            plays at the Settings' rate. The sample counters then count device samples.
        block_ms: device block duration; a barge-in takes effect within one block.
        prebuffer_ms: jitter buffer: audio held before a reply starts playing (and after an
            underrun), so network jitter does not crackle.
        on_finished: called on the event loop with ``"drained"`` or ``"interrupted"``.
    """

    def __init__(
        self,
        settings: Any,
        *,
        device: SoundDevice | None = None,
        device_name: Any = None,
        device_rate: int | None = None,
        block_ms: float = 20.0,
        prebuffer_ms: float = 60.0,
        on_finished: Callable[[FinishReason], object] | None = None,
    ) -> None:
        typed = resolve_settings(settings)
        self.encoding, self.sample_rate = output_format(typed)
        to_linear16(b"", self.encoding)  # compressed output cannot be played: fail now
        self._device = device
        self._device_name = device_name
        #: The rate the device runs at (the Settings' output rate unless ``device_rate``).
        self.device_rate = device_rate or self.sample_rate
        self._resampler = (
            Resampler(self.sample_rate, self.device_rate)
            if self.device_rate != self.sample_rate
            else None
        )
        self.block_frames = max(1, round(self.device_rate * block_ms / 1000))
        self._prebuffer = 2 * max(0, round(self.device_rate * prebuffer_ms / 1000))
        self.on_finished = on_finished
        self._lock = threading.Lock()
        self._buf = bytearray()
        #: The barge-in rules (shared with the phone and browser bridges).
        self.gate = BargeIn()
        self._reply_done = False
        self._flowing = False
        self._had_audio = False
        self._stream: Stream | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._finished = asyncio.Event()
        self._finished_sync = threading.Event()
        #: Agent samples dropped by barge-ins (queued, then discarded).
        self.dropped_samples = 0
        #: Agent samples ignored because they arrived after a barge-in, before the next reply.
        self.ignored_samples = 0
        #: Agent samples handed to the device.
        self.played_samples = 0
        #: Device blocks that found the buffer empty in the middle of a reply.
        self.underruns = 0

    # ------------------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Open and start the output stream (call from the event loop)."""
        if self._stream is not None:
            return
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:  # blocking code: finish notifications come from the device thread
            self._loop = None
        self._stream = open_stream(
            self._device,
            output=True,
            rate=self.device_rate,
            block_frames=self.block_frames,
            callback=self._callback,
            device_name=self._device_name,
        )

    def close(self) -> None:
        """Stop and release the device (idempotent)."""
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.stop()
            stream.close()

    def __enter__(self) -> Player:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Player:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------ state

    @property
    def playing(self) -> bool:
        """Whether agent audio is queued or being played (for half-duplex muting)."""
        return bool(self._buf) or (self._had_audio and not self._finished.is_set())

    @property
    def queued_samples(self) -> int:
        """Agent samples waiting for the device (at the device rate)."""
        return len(self._buf) // 2

    def wait_finished_sync(self, timeout: float | None = None) -> bool:
        """Blocking :meth:`wait_finished`; returns False on timeout."""
        return self._finished_sync.wait(timeout)

    async def wait_finished(self, timeout: float | None = None) -> None:
        """Wait until the current reply has drained from the device (or was interrupted)."""
        async with asyncio.timeout(timeout):
            await self._finished.wait()

    # ------------------------------------------------------------------------------ input

    def handle(self, event: Any) -> None:
        """Feed one connection event (audio bytes or a server message); others are ignored."""
        if isinstance(event, bytes | bytearray | memoryview):
            self.feed(event)
            return
        with self._lock:
            action = self.gate.handle(event)
        if action is BargeInAction.FLUSH:
            self._flush()
        elif action is BargeInAction.REPLY_DONE:
            with self._lock:
                self._reply_done = True
                idle = not self._buf
            if idle and not self._had_audio:
                self._finish("drained")

    def feed(self, audio: bytes | bytearray | memoryview) -> None:
        """Queue agent audio (in the Settings' output encoding)."""
        pcm = to_linear16(audio, self.encoding)
        with self._lock:
            action = self.gate.audio(len(audio))
            if action is BargeInAction.DROP:
                self.ignored_samples += round(len(pcm) // 2 * self.device_rate / self.sample_rate)
                return
            if action is BargeInAction.REPLY_START:
                self._reply_done = False
            if self._resampler is not None:  # under the lock: a barge-in resets its state
                pcm = self._resampler.process(pcm)
            self._buf += pcm
            self._had_audio = True
            self._finished.clear()
            self._finished_sync.clear()

    def barge_in(self) -> None:
        """Drop every queued sample now and ignore agent audio until the next reply starts."""
        with self._lock:
            self.gate.barge_in()
        self._flush()

    def _flush(self) -> None:
        with self._lock:
            self.dropped_samples += len(self._buf) // 2
            self._buf.clear()
            if self._resampler is not None:
                self._resampler.reset()
            self._flowing = False
            self._reply_done = False
            was_playing = self._had_audio
            self._had_audio = False
        if was_playing:
            self._finish("interrupted")

    # ------------------------------------------------------------------------------ device side

    def _callback(self, outdata: Any, frames: int, time_info: Any, status: Any) -> None:
        """Fill one device block (runs on the device thread; never blocks for long)."""
        need = frames * 2
        drained = False
        with self._lock:
            buf = self._buf
            if not self._flowing and buf and (len(buf) >= self._prebuffer or self._reply_done):
                self._flowing = True
            if self._flowing:
                chunk = bytes(buf[:need])
                del buf[:need]
                if not buf:
                    self._flowing = False
                    if not self._reply_done and len(chunk) < need:
                        self.underruns += 1
            else:
                chunk = b""
                if self._had_audio and self._reply_done and not buf:
                    # The previous block held the last samples and has now been played.
                    self._had_audio = False
                    drained = True
            self.played_samples += len(chunk) // 2
        outdata[: len(chunk)] = chunk
        if len(chunk) < need:
            outdata[len(chunk) : need] = bytes(need - len(chunk))
        if drained:
            if self._loop is not None:
                self._loop.call_soon_threadsafe(self._finish, "drained")
            else:
                self._finish("drained")

    def _finish(self, reason: FinishReason) -> None:
        self._finished_sync.set()
        if self._loop is not None or _in_loop():
            self._finished.set()
        if self.on_finished is not None:
            self.on_finished(reason)
