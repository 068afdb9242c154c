"""Replay a session recording (:mod:`deepgram_agent.recording`) as the emulator's script.

Sans-I/O: this module turns a recording into a plan of steps per session and keeps the tally
of what the client sent; :class:`~deepgram_agent.testing.EmulatorSession` does the socket work.

How a recording is played (``AgentEmulator(replay="session.jsonl")``):

* The recording is split into sessions at every server ``Welcome`` after the first one (a
  reconnect is a new socket); the emulator's connection attempt *i* plays recorded session
  *i*. An attempt beyond the last recorded session gets ``Error REPLAY_EXHAUSTED`` and a close.
* ``"in"`` entries (frames the server sent) are sent to the client verbatim, in order:
  ``Welcome`` included, so its ``request_id`` is the recorded one (the ``dg-request-id``
  header stays fresh). Garbage or unknown frames are sent byte for byte too.
* Audio sent by the server is replayed byte for byte when the recording holds its ``data``;
  with only its ``size``, that many bytes of silence in the session's ``audio.output``
  encoding (zero bytes for encodings without a defined silence byte, such as compressed ones).
* ``"out"`` entries (frames the client sent) are *expectations*: before going on, the emulator
  waits until the client has sent at least as many frames of that kind as the recording had
  by then (text frames matched by their JSON ``type``, audio frames only counted). So the
  interleaving is the recorded one whatever the timing. ``KeepAlive`` frames depend on timing
  and are not expected. A wait longer than ``replay_timeout`` ends the session with
  ``Error REPLAY_TIMEOUT`` (which says what was expected and what arrived) and a close.
* The client's frames are still checked like the real server checks them: ``Settings`` first
  and strictly validated, malformed messages rejected. A replay never masks a settings bug.
* Timing: as fast as possible by default; with ``replay_realtime=True`` the recorded gaps
  between consecutive server frames are kept.
* A recording holds no close frames: when the plan is done the session stays open until the
  client closes it (or the idle timeout). Combine with ``Faults(close_after=N)`` or
  ``Faults(drop_after=N)`` (replayed frames count as server frames) to reproduce an ending.
"""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from ..recording import read_recording

__all__ = [
    "AUDIO",
    "ClientTally",
    "ExpectFrames",
    "RealtimePacer",
    "Recording",
    "ReplayStep",
    "SendFrame",
    "client_key",
    "silence",
]

#: The tally key of binary (audio) client frames.
AUDIO = "<audio>"
#: Client frames that depend on timing, so a replay does not wait for them.
DEFAULT_IGNORED: frozenset[str] = frozenset({"KeepAlive"})

_SILENCE_BYTE = {"linear16": 0x00, "linear32": 0x00, "mulaw": 0xFF, "alaw": 0xD5}


@dataclass(frozen=True, slots=True)
class SendFrame:
    """Send one recorded server frame.

    Attributes:
        t: the recorded time (seconds since the recording started).
        text: the JSON text frame as bytes, or ``None`` for audio.
        audio: the recorded audio bytes, or ``None`` when only ``size`` was recorded.
        size: the frame size in bytes.
        type: the JSON ``type`` of a text frame (``"<raw>"`` when it is not a JSON object).
        entry: the entry's position in the recording (0-based, header not counted).
    """

    t: float
    text: bytes | None
    audio: bytes | None
    size: int
    type: str
    entry: int

    @property
    def is_audio(self) -> bool:
        """True for a binary frame."""
        return self.text is None


@dataclass(frozen=True, slots=True)
class ExpectFrames:
    """Wait until the client has sent ``count`` frames of ``key`` in this session.

    Attributes:
        key: a JSON ``type``, or :data:`AUDIO` for binary frames.
        count: the cumulative number the recording shows at this point.
        t: the recorded time of the frame.
        entry: the entry's position in the recording (0-based).
    """

    key: str
    count: int
    t: float
    entry: int

    def describe(self) -> str:
        """A human-readable phrase, e.g. ``"2 'InjectUserMessage' frame(s)"``."""
        what = "audio" if self.key == AUDIO else repr(self.key)
        return f"{self.count} {what} frame(s) (recording entry #{self.entry})"


ReplayStep = SendFrame | ExpectFrames


def _text_type(frame: str) -> str:
    try:
        value = msgspec.json.decode(frame)
    except msgspec.DecodeError:
        return "<raw>"
    if isinstance(value, dict) and isinstance(value.get("type"), str):
        return str(value["type"])
    return "<raw>"


def client_key(item: dict[str, Any] | int) -> str:
    """The tally key of one received client frame (as in ``EmulatorSession.received``)."""
    if isinstance(item, int):
        return AUDIO
    value = item.get("type")
    return value if isinstance(value, str) else ""


class ClientTally:
    """Counts the client's frames by key, fed incrementally from ``EmulatorSession.received``."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._seen = 0

    def update(self, received: Sequence[dict[str, Any] | int]) -> None:
        """Count the frames appended to ``received`` since the last call."""
        for item in received[self._seen :]:
            self.counts[client_key(item)] += 1
        self._seen = len(received)

    def satisfied(self, step: ExpectFrames) -> bool:
        """Whether the client has sent what ``step`` expects."""
        return self.counts[step.key] >= step.count

    def describe(self) -> str:
        """What arrived so far, e.g. ``"Settings x1, audio x3"``."""
        parts = [
            f"{'audio' if k == AUDIO else k or '<not JSON>'} x{n}" for k, n in self.counts.items()
        ]
        return ", ".join(parts) or "nothing"


def silence(encoding: str, size: int) -> bytes:
    """``size`` bytes of silence in ``encoding`` (zeros when it has no silence byte)."""
    return bytes([_SILENCE_BYTE.get(encoding, 0)]) * size


class Recording:
    """A recording split into per-session replay plans.

    Args:
        entries: the recording's frame entries (:func:`deepgram_agent.recording.read_recording`).
        ignore: client frame types the replay never waits for.

    Raises:
        ValueError: an entry lacks a field the replay needs.
    """

    def __init__(
        self, entries: Iterable[dict[str, Any]], *, ignore: Iterable[str] = DEFAULT_IGNORED
    ) -> None:
        self.ignored = frozenset(ignore)
        self.sessions: list[list[ReplayStep]] = []
        steps: list[ReplayStep] = []
        tally: Counter[str] = Counter()
        for n, entry in enumerate(entries):
            t = float(entry.get("t", 0.0))
            kind = entry["kind"]
            if entry["dir"] == "in":
                step = self._send_step(entry, n, t)
                if step.type == "Welcome" and any(isinstance(s, SendFrame) for s in steps):
                    self.sessions.append(steps)
                    steps, tally = [], Counter()
                steps.append(step)
                continue
            key = AUDIO if kind == "audio" else _text_type(str(entry.get("frame", "")))
            if key == "<raw>":
                key = ""  # EmulatorSession records a non-JSON frame with type ""
            if key in self.ignored:
                continue
            tally[key] += 1
            steps.append(ExpectFrames(key=key, count=tally[key], t=t, entry=n))
        if steps or not self.sessions:
            self.sessions.append(steps)

    @staticmethod
    def _send_step(entry: dict[str, Any], n: int, t: float) -> SendFrame:
        if entry["kind"] == "text":
            frame = entry.get("frame")
            if not isinstance(frame, str):
                raise ValueError(f"recording entry #{n}: a text entry needs a 'frame' string")
            data = frame.encode("utf-8")
            return SendFrame(
                t=t, text=data, audio=None, size=len(data), type=_text_type(frame), entry=n
            )
        audio: bytes | None = None
        if isinstance(entry.get("data"), str):
            audio = base64.b64decode(entry["data"])
        size = entry.get("size", len(audio) if audio is not None else None)
        if not isinstance(size, int) or size < 0:
            raise ValueError(f"recording entry #{n}: an audio entry needs a 'size'")
        return SendFrame(t=t, text=None, audio=audio, size=size, type=AUDIO, entry=n)

    @classmethod
    def load(cls, path: str | Path, *, ignore: Iterable[str] = DEFAULT_IGNORED) -> Recording:
        """Read and plan a recording file.

        Raises:
            OSError: the file cannot be read.
            ValueError: it is not a recording.
        """
        return cls(read_recording(path), ignore=ignore)

    def plan(self, index: int) -> list[ReplayStep] | None:
        """The steps of recorded session ``index`` (0-based), or ``None`` past the last one."""
        return self.sessions[index] if 0 <= index < len(self.sessions) else None


class RealtimePacer:
    """Keeps the recorded gaps between consecutive server frames (sans-I/O: give it times).

    ``delay(step, now)`` says how long to wait before sending ``step``: the recorded gap since
    the previous server frame minus the time already spent since it was sent.
    """

    def __init__(self) -> None:
        self._anchor: tuple[float, float] | None = None  # (loop time sent, recorded t)

    def delay(self, step: SendFrame, now: float) -> float:
        """Seconds to wait before sending ``step`` at loop time ``now``."""
        if self._anchor is None:
            return 0.0
        sent_at, recorded = self._anchor
        return max(0.0, sent_at + (step.t - recorded) - now)

    def sent(self, step: SendFrame, now: float) -> None:
        """Note that ``step`` went out at loop time ``now``."""
        self._anchor = (now, step.t)
