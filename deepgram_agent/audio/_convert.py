"""Sample format conversion, pure Python (stdlib only): linear16 <-> mu-law / A-law.

The G.711 tables are the emulator's (``deepgram_agent.testing._audio``); this module only adds the
byte-level API the audio helpers and the CLI use.
"""

from __future__ import annotations

from array import array

from ..testing._audio import alaw_decode, alaw_encode, mulaw_decode, mulaw_encode

__all__ = [
    "alaw_to_linear16",
    "convert",
    "linear16_to_alaw",
    "linear16_to_mulaw",
    "mulaw_to_linear16",
    "to_linear16",
]


def _samples(data: bytes | bytearray | memoryview) -> array[int]:
    raw = bytes(data)
    pcm = array("h")
    pcm.frombytes(raw[: len(raw) - len(raw) % 2])
    return pcm


def linear16_to_mulaw(data: bytes | bytearray | memoryview) -> bytes:
    """Encode little-endian 16-bit PCM as G.711 mu-law (one byte per sample)."""
    return mulaw_encode(_samples(data))


def linear16_to_alaw(data: bytes | bytearray | memoryview) -> bytes:
    """Encode little-endian 16-bit PCM as G.711 A-law (one byte per sample)."""
    return alaw_encode(_samples(data))


def mulaw_to_linear16(data: bytes | bytearray | memoryview) -> bytes:
    """Decode G.711 mu-law to little-endian 16-bit PCM."""
    return mulaw_decode(bytes(data)).tobytes()


def alaw_to_linear16(data: bytes | bytearray | memoryview) -> bytes:
    """Decode G.711 A-law to little-endian 16-bit PCM."""
    return alaw_decode(bytes(data)).tobytes()


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
