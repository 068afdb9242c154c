"""The sounddevice boundary: the only place that touches audio hardware.

:class:`SoundDevice` is the tiny part of the ``sounddevice`` module the helpers use. The real
module is loaded lazily by :func:`load_sounddevice`; tests pass an in-memory object implementing
the same two factories instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from ..exceptions import MissingDependencyError

__all__ = ["AudioCallback", "SoundDevice", "Stream", "load_sounddevice"]

#: ``callback(buffer, frames, time_info, status)`` as sounddevice calls it on its own thread.
AudioCallback = Callable[[Any, int, Any, Any], None]

INSTALL_HINT = 'pip install "deepgram-agent[audio]"'


class Stream(Protocol):
    """A started/stopped audio stream (``sounddevice.RawOutputStream``/``RawInputStream``)."""

    def start(self) -> None:
        """Start calling the callback."""

    def stop(self) -> None:
        """Stop after the queued buffers have played."""

    def close(self) -> None:
        """Release the device."""


class SoundDevice(Protocol):
    """The factories the helpers call, with sounddevice's keyword names.

    Both are called with ``samplerate``, ``blocksize``, ``channels=1``, ``dtype="int16"``,
    ``callback`` and ``device`` (``None`` for the default device). The output callback must
    fill ``buffer`` (``frames * 2`` bytes, writable by slice); the input callback reads it.
    """

    def RawOutputStream(self, **kwargs: Any) -> Stream:
        """Open a playback stream."""

    def RawInputStream(self, **kwargs: Any) -> Stream:
        """Open a capture stream."""


def load_sounddevice() -> Any:
    """Import ``sounddevice`` (the ``audio`` extra).

    Raises:
        MissingDependencyError: the package or its PortAudio library is missing.
    """
    try:
        import sounddevice  # type: ignore[import-not-found, unused-ignore]
    except ImportError as exc:
        raise MissingDependencyError(
            f"audio devices need the 'audio' extra: {INSTALL_HINT}"
        ) from exc
    except OSError as exc:  # sounddevice raises OSError when PortAudio is not installed
        raise MissingDependencyError(
            f"the PortAudio library was not found ({exc}); install it (e.g. "
            f"`apt-get install libportaudio2`) and the 'audio' extra: {INSTALL_HINT}"
        ) from exc
    return sounddevice


def open_stream(
    device: Any,
    *,
    output: bool,
    rate: int,
    block_frames: int,
    callback: Any,
    device_name: Any = None,
) -> Stream:
    """Open and start a mono 16-bit raw stream on ``device`` (sounddevice when ``None``)."""
    dev = device if device is not None else load_sounddevice()
    factory = dev.RawOutputStream if output else dev.RawInputStream
    stream: Stream = factory(
        samplerate=rate,
        blocksize=block_frames,
        channels=1,
        dtype="int16",
        callback=callback,
        device=device_name,
    )
    stream.start()
    return stream
