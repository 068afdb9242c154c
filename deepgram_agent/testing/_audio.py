"""Audio for the emulator: G.711 tables, the synthetic agent voice and an energy VAD.

Everything here is free of I/O, so it is cheap to unit-test; the G.711 codec is the package's
own (``deepgram_agent.audio._g711``).

* **Agent voice.** The emulator has no TTS. It "speaks" a deterministic tone of about 440 Hz at a
  quarter of full scale, :data:`DEFAULT_MS_PER_CHAR` milliseconds of audio per character of reply
  text, in the negotiated ``audio.output`` format (``linear16`` at any rate, ``mulaw``,
  ``alaw``). Compressed encodings (``mp3``, ``opus``, ``flac``, ``aac``) cannot be produced
  without a codec; for them the emulator sends the ``linear16`` tone bytes unchanged, which is
  enough to exercise a client's byte plumbing but is not decodable as that format.
* **User audio.** :class:`EnergyVad` decodes ``linear16``, ``linear32``, ``mulaw`` and ``alaw``
  and reports speech start/end from the RMS level of 20 ms windows. The clock is the *audio*
  clock (samples received), never the wall clock, so a test may push audio as fast as it likes.
"""

from __future__ import annotations

import math
import struct
from array import array
from dataclasses import dataclass, field
from typing import Literal

# G.711: one codec for the package, in deepgram_agent.audio (fast tables, numpy when present).
from ..audio._g711 import alaw_decode, alaw_encode, mulaw_decode, mulaw_encode

__all__ = [
    "DEFAULT_MS_PER_CHAR",
    "PCM_ENCODINGS",
    "EnergyVad",
    "VadEvent",
    "alaw_decode",
    "alaw_encode",
    "bytes_per_sample",
    "decode_to_pcm",
    "mulaw_decode",
    "mulaw_encode",
    "tone",
    "wav_header",
]

#: Milliseconds of agent audio per character of reply text.
DEFAULT_MS_PER_CHAR = 60.0

#: Encodings the emulator can decode (input) or produce faithfully (output).
PCM_ENCODINGS = frozenset({"linear16", "linear32", "mulaw", "alaw"})

_TONE_HZ = 440.0
_TONE_AMPLITUDE = 0.25


def bytes_per_sample(encoding: str) -> int:
    """Bytes per (mono) sample of an uncompressed encoding; 2 for anything unknown."""
    return {"linear16": 2, "linear32": 4, "mulaw": 1, "alaw": 1}.get(encoding, 2)


def decode_to_pcm(data: bytes, encoding: str) -> list[float]:
    """Decode whole samples of ``data`` to floats in [-1, 1].

    Raises:
        ValueError: ``encoding`` is not one of :data:`PCM_ENCODINGS`.
    """
    if encoding == "linear16":
        pcm = array("h")
        pcm.frombytes(data[: len(data) - len(data) % 2])
        return [s / 32768.0 for s in pcm]
    if encoding == "linear32":
        floats = array("f")
        floats.frombytes(data[: len(data) - len(data) % 4])
        return list(floats)
    if encoding == "mulaw":
        return [s / 32768.0 for s in mulaw_decode(data)]
    if encoding == "alaw":
        return [s / 32768.0 for s in alaw_decode(data)]
    raise ValueError(f"cannot decode {encoding!r} audio")


# ---------------------------------------------------------------------------------------------
# The agent's voice
# ---------------------------------------------------------------------------------------------

_tone_cache: dict[tuple[str, int], bytes] = {}


def _one_period(encoding: str, sample_rate: int) -> bytes:
    key = (encoding, sample_rate)
    cached = _tone_cache.get(key)
    if cached is not None:
        return cached
    period = max(2, round(sample_rate / _TONE_HZ))
    samples = array(
        "h",
        (
            round(_TONE_AMPLITUDE * 32767 * math.sin(2 * math.pi * n / period))
            for n in range(period)
        ),
    )
    if encoding == "mulaw":
        out = mulaw_encode(samples)
    elif encoding == "alaw":
        out = alaw_encode(samples)
    elif encoding == "linear32":
        out = array("f", (s / 32768.0 for s in samples)).tobytes()
    else:
        out = samples.tobytes()
    _tone_cache[key] = out
    return out


def tone(encoding: str, sample_rate: int, seconds: float) -> bytes:
    """A deterministic ~440 Hz tone of ``seconds`` in ``encoding`` at ``sample_rate``.

    The length is exactly ``round(seconds * sample_rate)`` samples.
    """
    n_samples = max(0, round(seconds * sample_rate))
    width = bytes_per_sample(encoding)
    period = _one_period(encoding, sample_rate)
    n_bytes = n_samples * width
    reps = n_bytes // len(period) + 1
    return (period * reps)[:n_bytes]


def wav_header(encoding: str, sample_rate: int, data_bytes: int) -> bytes:
    """A 44-byte RIFF/WAVE header for ``container: "wav"`` output."""
    fmt_code = {"linear16": 1, "linear32": 3, "alaw": 6, "mulaw": 7}.get(encoding, 1)
    width = bytes_per_sample(encoding)
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + data_bytes,
        b"WAVE",
        b"fmt ",
        16,
        fmt_code,
        1,
        sample_rate,
        sample_rate * width,
        width,
        width * 8,
        b"data",
        data_bytes,
    )


# ---------------------------------------------------------------------------------------------
# Voice activity detection
# ---------------------------------------------------------------------------------------------

VadEvent = Literal["start", "end"]


@dataclass
class EnergyVad:
    """A simple energy voice-activity detector on the audio clock.

    A 20 ms window whose RMS level is at least ``threshold`` (fraction of full scale) is
    speech. The first speech window starts an utterance (``"start"``); ``silence`` seconds of
    non-speech windows after it end it (``"end"``).

    Attributes:
        encoding: the ``audio.input`` encoding; anything outside :data:`PCM_ENCODINGS` is
            counted but never analysed (no events).
        sample_rate: the ``audio.input`` sample rate.
        threshold: RMS level (0..1) that counts as speech.
        silence: seconds of quiet that end an utterance.
        speaking: whether an utterance is in progress.
    """

    encoding: str
    sample_rate: int
    threshold: float = 0.02
    silence: float = 0.3
    speaking: bool = False
    _pending: bytes = field(default=b"", repr=False)
    _quiet: float = field(default=0.0, repr=False)

    @property
    def supported(self) -> bool:
        """Whether this encoding can be analysed."""
        return self.encoding in PCM_ENCODINGS and self.sample_rate > 0

    def feed(self, data: bytes) -> list[VadEvent]:
        """Analyse more audio; return the events it produced, in order."""
        if not self.supported:
            return []
        window = max(1, self.sample_rate // 50) * bytes_per_sample(self.encoding)
        buf = self._pending + data if self._pending else data
        events: list[VadEvent] = []
        start = 0
        while len(buf) - start >= window:
            chunk = buf[start : start + window]
            start += window
            samples = decode_to_pcm(chunk, self.encoding)
            rms = math.sqrt(sum(s * s for s in samples) / len(samples)) if samples else 0.0
            if rms >= self.threshold:
                self._quiet = 0.0
                if not self.speaking:
                    self.speaking = True
                    events.append("start")
            elif self.speaking:
                self._quiet += 0.02
                if self._quiet >= self.silence - 1e-9:
                    self.speaking = False
                    self._quiet = 0.0
                    events.append("end")
        self._pending = bytes(buf[start:])
        return events

    def force_end(self) -> bool:
        """End the current utterance now (``ForceEndTurn``). True if one was in progress."""
        if not self.speaking:
            return False
        self.speaking = False
        self._quiet = 0.0
        return True
