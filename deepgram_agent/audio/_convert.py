"""Sample format conversion: linear16 <-> mu-law / A-law (and from linear32).

The G.711 codec lives in :mod:`._g711` (lookup tables; numpy when installed, stdlib otherwise);
this module is the byte-level API the audio helpers, the bridges and the CLI use.
"""

from __future__ import annotations

from array import array

from ._g711 import pcm_from_alaw, pcm_from_mulaw, pcm_to_alaw, pcm_to_mulaw

__all__ = [
    "StreamConverter",
    "alaw_to_linear16",
    "convert",
    "linear16_to_alaw",
    "linear16_to_mulaw",
    "mulaw_to_linear16",
    "to_linear16",
]


def linear16_to_mulaw(data: bytes | bytearray | memoryview) -> bytes:
    """Encode little-endian 16-bit PCM as G.711 mu-law (one byte per sample)."""
    return pcm_to_mulaw(data)


def linear16_to_alaw(data: bytes | bytearray | memoryview) -> bytes:
    """Encode little-endian 16-bit PCM as G.711 A-law (one byte per sample)."""
    return pcm_to_alaw(data)


def mulaw_to_linear16(data: bytes | bytearray | memoryview) -> bytes:
    """Decode G.711 mu-law to little-endian 16-bit PCM."""
    return pcm_from_mulaw(data)


def alaw_to_linear16(data: bytes | bytearray | memoryview) -> bytes:
    """Decode G.711 A-law to little-endian 16-bit PCM."""
    return pcm_from_alaw(data)


def to_linear16(data: bytes | bytearray | memoryview, encoding: str) -> bytes:
    """Convert ``data`` in ``encoding`` (linear16, linear32, mulaw, alaw) to 16-bit PCM.

    Raises:
        ValueError: a compressed encoding (mp3, opus, ...) that needs a codec.
    """
    if encoding == "linear16":
        raw = bytes(data)
        return raw[: len(raw) - len(raw) % 2]
    if encoding == "mulaw":
        return mulaw_to_linear16(data)
    if encoding == "alaw":
        return alaw_to_linear16(data)
    if encoding == "linear32":
        raw = bytes(data)
        floats = array("f")
        floats.frombytes(raw[: len(raw) - len(raw) % 4])
        return array("h", (max(-32768, min(32767, round(f * 32767))) for f in floats)).tobytes()
    raise ValueError(
        f"cannot convert {encoding!r} audio to linear16 without a codec; "
        "ask the agent for linear16, mulaw or alaw output"
    )


def convert(data: bytes | bytearray | memoryview, source: str, target: str) -> bytes:
    """Convert between ``linear16``, ``mulaw`` and ``alaw`` (and from ``linear32``).

    Raises:
        ValueError: an encoding this function cannot produce or read.
    """
    if source == target:
        return bytes(data)
    pcm = to_linear16(data, source)
    if target == "linear16":
        return pcm
    if target == "mulaw":
        return linear16_to_mulaw(pcm)
    if target == "alaw":
        return linear16_to_alaw(pcm)
    raise ValueError(f"cannot convert audio to {target!r}; use linear16, mulaw or alaw")


class StreamConverter:
    """Converts a stream of audio from one wire format to another, chunk by chunk.

    Encodings ``linear16``, ``mulaw`` and ``alaw`` (and ``linear32`` as a source); a change
    of sample rate goes through a :class:`~deepgram_agent.audio.Resampler` (soxr, or numpy),
    which keeps state across chunks. Identical formats pass through untouched.

    Args:
        source: ``(encoding, sample_rate)`` of the input.
        target: ``(encoding, sample_rate)`` wanted.

    Raises:
        ValueError: an encoding that needs a codec (mp3, opus, ...).
        MissingDependencyError: the rates differ and neither soxr nor numpy is installed.
    """

    def __init__(self, source: tuple[str, int], target: tuple[str, int]) -> None:
        from ._resample import Resampler

        self.source = (source[0], int(source[1]))
        self.target = (target[0], int(target[1]))
        to_linear16(b"", self.source[0])
        convert(b"", "linear16", self.target[0])
        self.identity = self.source == self.target
        self._resampler = (
            Resampler(self.source[1], self.target[1]) if self.source[1] != self.target[1] else None
        )

    def process(self, data: bytes | bytearray | memoryview) -> bytes:
        """Convert the next chunk; returns what is ready (a resampler holds a little back)."""
        if self.identity:
            return bytes(data)
        pcm = to_linear16(data, self.source[0])
        if self._resampler is not None:
            pcm = self._resampler.process(pcm)
        return convert(pcm, "linear16", self.target[0]) if pcm else b""

    def reset(self) -> None:
        """Forget the stream so far (after a barge-in: the next reply starts clean)."""
        if self._resampler is not None:
            self._resampler.reset()
