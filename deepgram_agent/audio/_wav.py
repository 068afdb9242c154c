"""WAV files as a user-audio source and as a sink for the agent's audio (stdlib ``wave``)."""

from __future__ import annotations

import asyncio
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from types import TracebackType

from ._convert import to_linear16

__all__ = ["WavInfo", "WavWriter", "read_wav_info", "wav_chunks"]


class WavInfo:
    """Format of a 16-bit PCM WAV file.

    Attributes:
        sample_rate: frames per second.
        channels: interleaved channels (the agent expects 1).
        frames: number of frames.
    """

    def __init__(self, sample_rate: int, channels: int, frames: int) -> None:
        self.sample_rate = sample_rate
        self.channels = channels
        self.frames = frames

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.frames / self.sample_rate if self.sample_rate else 0.0

    def __repr__(self) -> str:
        return (
            f"WavInfo(sample_rate={self.sample_rate}, channels={self.channels}, "
            f"frames={self.frames})"
        )


def read_wav_info(path: str | Path) -> WavInfo:
    """Read the format of a WAV file.

    Raises:
        ValueError: not a 16-bit PCM WAV file (what the agent's ``linear16`` input needs).
        OSError: the file cannot be read.
    """
    try:
        with wave.open(str(path), "rb") as wav:
            if wav.getsampwidth() != 2:
                raise ValueError(
                    f"{path}: {8 * wav.getsampwidth()}-bit samples; need 16-bit PCM "
                    "(e.g. `sox in.wav -b 16 out.wav`)"
                )
            return WavInfo(wav.getframerate(), wav.getnchannels(), wav.getnframes())
    except wave.Error as exc:
        raise ValueError(f"{path}: not a PCM WAV file ({exc})") from exc


async def wav_chunks(
    path: str | Path, *, chunk_ms: float = 20.0, realtime: bool = True
) -> AsyncIterator[bytes]:
    """Yield a 16-bit PCM WAV file's audio in ``chunk_ms`` pieces, ready for ``send_audio``.

    Args:
        path: the WAV file (16-bit PCM; stereo is sent as is, so prefer mono).
        chunk_ms: duration of each chunk.
        realtime: pace the chunks at the audio's real-time rate (like a microphone); ``False``
            yields them as fast as the consumer takes them.
    """
    info = read_wav_info(path)
    frames_per_chunk = max(1, round(info.sample_rate * chunk_ms / 1000))
    loop = asyncio.get_running_loop()
    start = loop.time()
    sent = 0
    with wave.open(str(path), "rb") as wav:
        while True:
            data = wav.readframes(frames_per_chunk)
            if not data:
                return
            if realtime:
                delay = start + sent / info.sample_rate - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            else:
                await asyncio.sleep(0)
            sent += len(data) // (2 * info.channels)
            yield data


class WavWriter:
    """Write audio to a 16-bit mono PCM WAV file (mu-law/A-law/linear32 are converted).

    Use it as a context manager, or call :meth:`close`::

        with WavWriter("reply.wav", *output_format(conn.settings)) as out:
            out.write(chunk)

    Args:
        path: the file to create (overwritten).
        encoding: encoding of the bytes given to :meth:`write` (the Settings' ``audio.output``).
        sample_rate: their sample rate.
    """

    def __init__(self, path: str | Path, encoding: str, sample_rate: int) -> None:
        to_linear16(b"", encoding)  # fail now for formats that cannot be written
        self.path = Path(path)
        self.encoding = encoding
        self.sample_rate = sample_rate
        self.frames = 0
        # Open the file first: wave.open(path) leaves a half-built writer behind on failure.
        self._file = open(self.path, "wb")
        try:
            self._wav = wave.open(self._file, "wb")
        except BaseException:
            self._file.close()
            raise
        self._wav.setnchannels(1)
        self._wav.setsampwidth(2)
        self._wav.setframerate(sample_rate)

    @property
    def duration(self) -> float:
        """Seconds of audio written so far."""
        return self.frames / self.sample_rate

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Append audio in the writer's ``encoding``."""
        pcm = to_linear16(data, self.encoding)
        self._wav.writeframes(pcm)
        self.frames += len(pcm) // 2

    def close(self) -> None:
        """Finish the header and close the file (idempotent)."""
        try:
            self._wav.close()
        finally:
            self._file.close()

    def __enter__(self) -> WavWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
