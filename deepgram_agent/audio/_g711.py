"""G.711 mu-law and A-law, the telephony codecs: per-sample reference code and fast tables.

The reference functions follow the classic CCITT code (the same results as the stdlib's old
``audioop``). Bulk conversion never loops in Python per sample:

* **decoding** uses two 256-byte ``bytes.translate`` tables (the low and the high byte of each
  16-bit sample) interleaved by slice assignment: pure C work, with or without numpy;
* **encoding** looks each 16-bit sample up in a 65536-entry table, with numpy's fancy indexing
  when numpy is installed, else with ``map`` over the table (C-level, still ~15x the old
  per-sample Python).

The tables are built on first use (a few milliseconds), not at import. The emulator
(``deepgram_agent.testing``) imports these functions too: one codec in the package.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Callable
from typing import Any

__all__ = [
    "alaw_decode",
    "alaw_decode_sample",
    "alaw_encode",
    "alaw_encode_sample",
    "mulaw_decode",
    "mulaw_decode_sample",
    "mulaw_encode",
    "mulaw_encode_sample",
    "pcm_from_alaw",
    "pcm_from_mulaw",
    "pcm_to_alaw",
    "pcm_to_mulaw",
]

_MULAW_BIAS = 0x84
_LITTLE = sys.byteorder == "little"


def mulaw_encode_sample(sample: int) -> int:
    """One signed 16-bit sample to its mu-law byte (reference implementation)."""
    value = sample >> 2  # the reference works on 14-bit magnitudes
    if value < 0:
        value = -value
        mask = 0x7F
    else:
        mask = 0xFF
    value = min(value, 8159) + 0x21
    segment = (value >> 6).bit_length()
    if segment > 7:
        return (0x7F ^ mask) & 0xFF
    return (((segment << 4) | ((value >> (segment + 1)) & 0x0F)) ^ mask) & 0xFF


def mulaw_decode_sample(byte: int) -> int:
    """One mu-law byte to its signed 16-bit sample (reference implementation)."""
    u = ~byte & 0xFF
    exponent = (u >> 4) & 0x07
    sample = (((u & 0x0F) << 3) + _MULAW_BIAS) << exponent
    sample -= _MULAW_BIAS
    return -sample if u & 0x80 else sample


def alaw_encode_sample(sample: int) -> int:
    """One signed 16-bit sample to its A-law byte (reference implementation)."""
    if sample >= 0:
        mask = 0xD5
    else:
        mask = 0x55
        sample = -sample - 1
    sample = min(sample, 32767)
    if sample >= 256:
        exponent = ((sample >> 8) & 0x7F).bit_length()
        mantissa = (sample >> (exponent + 3)) & 0x0F
        value = (exponent << 4) | mantissa
    else:
        value = sample >> 4
    return (value ^ mask) & 0xFF


def alaw_decode_sample(byte: int) -> int:
    """One A-law byte to its signed 16-bit sample (reference implementation)."""
    a = byte ^ 0x55
    t = (a & 0x0F) << 4
    segment = (a & 0x70) >> 4
    if segment == 0:
        t += 8
    elif segment == 1:
        t += 0x108
    else:
        t = (t + 0x108) << (segment - 1)
    return t if a & 0x80 else -t


# ---------------------------------------------------------------------------------------------
# Tables (built lazily)
# ---------------------------------------------------------------------------------------------


class _Law:
    """The lookup tables of one law."""

    def __init__(
        self, encode_sample: Callable[[int], int], decode_sample: Callable[[int], int]
    ) -> None:
        self._encode_sample = encode_sample
        self._decode_sample = decode_sample
        self._enc: bytes | None = None  # 65536 entries, indexed by the sample as uint16
        self._enc_np: Any = None
        self._lo: bytes | None = None
        self._hi: bytes | None = None
        self._dec: array[int] | None = None

    def decode_table(self) -> array[int]:
        if self._dec is None:
            self._dec = array("h", (self._decode_sample(b) for b in range(256)))
        return self._dec

    def byte_tables(self) -> tuple[bytes, bytes]:
        if self._lo is None or self._hi is None:
            raw = self.decode_table().tobytes()  # native order
            first, second = raw[0::2], raw[1::2]
            self._lo, self._hi = (first, second) if _LITTLE else (second, first)
        return self._lo, self._hi

    def encode_table(self) -> bytes:
        if self._enc is None:
            enc = self._encode_sample
            self._enc = bytes(enc(s - 65536 if s >= 32768 else s) for s in range(65536))
        return self._enc

    def encode(self, pcm: bytes | bytearray | memoryview) -> bytes:
        """Little-endian int16 bytes to one law byte per sample (an odd last byte is ignored)."""
        data = memoryview(pcm).cast("B")
        n = len(data) // 2
        if not n:
            return b""
        np = _numpy()
        if np is not None:
            if self._enc_np is None:
                self._enc_np = np.frombuffer(self.encode_table(), dtype=np.uint8)
            idx = np.frombuffer(data[: 2 * n], dtype="<u2")
            return bytes(self._enc_np[idx].tobytes())
        samples = array("H")
        samples.frombytes(data[: 2 * n])
        if not _LITTLE:
            samples.byteswap()
        return bytes(map(self.encode_table().__getitem__, samples))

    def decode(self, data: bytes | bytearray | memoryview) -> bytes:
        """Law bytes to little-endian int16 bytes."""
        raw = bytes(data)
        lo, hi = self.byte_tables()
        out = bytearray(2 * len(raw))
        out[0::2] = raw.translate(lo)
        out[1::2] = raw.translate(hi)
        return bytes(out)


_MULAW = _Law(mulaw_encode_sample, mulaw_decode_sample)
_ALAW = _Law(alaw_encode_sample, alaw_decode_sample)

_np_module: Any = None
_np_checked = False


def _numpy() -> Any:
    global _np_module, _np_checked
    if not _np_checked:
        _np_checked = True
        try:
            import numpy
        except ImportError:  # pragma: no cover - numpy is in the dev and audio extras
            numpy = None  # type: ignore[assignment]
        _np_module = numpy
    return _np_module


# ---------------------------------------------------------------------------------------------
# Byte API (little-endian int16 PCM <-> one byte per sample)
# ---------------------------------------------------------------------------------------------


def pcm_to_mulaw(pcm: bytes | bytearray | memoryview) -> bytes:
    """Encode little-endian 16-bit PCM as mu-law."""
    return _MULAW.encode(pcm)


def pcm_to_alaw(pcm: bytes | bytearray | memoryview) -> bytes:
    """Encode little-endian 16-bit PCM as A-law."""
    return _ALAW.encode(pcm)


def pcm_from_mulaw(data: bytes | bytearray | memoryview) -> bytes:
    """Decode mu-law to little-endian 16-bit PCM."""
    return _MULAW.decode(data)


def pcm_from_alaw(data: bytes | bytearray | memoryview) -> bytes:
    """Decode A-law to little-endian 16-bit PCM."""
    return _ALAW.decode(data)


# ---------------------------------------------------------------------------------------------
# Sample-array API (what the emulator has always used)
# ---------------------------------------------------------------------------------------------


def _pcm_bytes(samples: array[int]) -> bytes:
    if samples.typecode != "h":
        samples = array("h", samples)
    if _LITTLE:
        return samples.tobytes()
    swapped = array("h", samples)  # pragma: no cover - big-endian hosts
    swapped.byteswap()  # pragma: no cover
    return swapped.tobytes()  # pragma: no cover


def _samples(pcm: bytes) -> array[int]:
    out = array("h")
    out.frombytes(pcm)
    if not _LITTLE:  # pragma: no cover - big-endian hosts
        out.byteswap()
    return out


def mulaw_encode(samples: array[int]) -> bytes:
    """Encode 16-bit samples (``array('h')``) as G.711 mu-law bytes."""
    return _MULAW.encode(_pcm_bytes(samples))


def alaw_encode(samples: array[int]) -> bytes:
    """Encode 16-bit samples (``array('h')``) as G.711 A-law bytes."""
    return _ALAW.encode(_pcm_bytes(samples))


def mulaw_decode(data: bytes) -> array[int]:
    """Decode G.711 mu-law bytes to 16-bit samples."""
    return _samples(_MULAW.decode(data))


def alaw_decode(data: bytes) -> array[int]:
    """Decode G.711 A-law bytes to 16-bit samples."""
    return _samples(_ALAW.decode(data))
