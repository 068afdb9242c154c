"""Record a session to a JSON-lines file, for debugging and for replay by the emulator.

Turn it on with ``client.agent.connect(settings, record="session.jsonl")`` (add
``record_audio=True`` to keep the audio bytes too). One line per frame, in order::

    {"dir": "out", "t": 0.000412, "kind": "text", "frame": "{\\"type\\":\\"Settings\\",...}"}
    {"dir": "in",  "t": 0.041877, "kind": "text", "frame": "{\\"type\\":\\"SettingsApplied\\"}"}
    {"dir": "in",  "t": 0.912003, "kind": "audio", "size": 960}
    {"dir": "in",  "t": 0.932114, "kind": "audio", "size": 960, "data": "<base64>"}

* ``dir``: ``"out"`` client to server, ``"in"`` server to client.
* ``t``: seconds since the recording started (monotonic clock).
* ``kind``: ``"text"`` (a JSON frame, in ``frame`` exactly as it travelled) or ``"audio"``
  (a binary frame: ``size`` in bytes, and ``data`` in base64 when audio is recorded).
* A first line ``{"recording": 1, "url": ...}`` names the format version and the socket URL.
* A reconnect shows up as a second ``Settings`` (``dir: out``) after a ``Welcome``.

Credentials never reach the file: the API key travels in an HTTP header, which is not
recorded, and in recorded ``Settings`` every value under a ``headers`` or ``credentials`` key
is replaced by ``"***"``. ``deepgram_agent.testing.AgentEmulator(replay=path)`` plays the
server's side of a recording back, so a bug seen in production becomes a deterministic test.
"""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import IO, Any

import msgspec

__all__ = ["FrameRecorder", "read_recording", "redact_settings"]

_SECRET_KEYS = frozenset({"headers", "credentials"})
_encoder = msgspec.json.Encoder()


def redact_settings(value: Any) -> Any:
    """Return ``value`` with every value under ``headers``/``credentials`` replaced by ``***``."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if k in _SECRET_KEYS and isinstance(v, dict):
                out[k] = {name: "***" for name in v}
            else:
                out[k] = redact_settings(v)
        return out
    if isinstance(value, list):
        return [redact_settings(v) for v in value]
    return value


class FrameRecorder:
    """Writes one connection's frames as JSON lines (see the module docstring)."""

    def __init__(self, path: str | Path, *, audio: bool = False, url: str = "") -> None:
        self.path = Path(path)
        self._audio = audio
        self._file: IO[bytes] | None = self.path.open("wb")
        self._t0 = time.monotonic()
        self._write({"recording": 1, "url": url, "audio": audio})

    def _write(self, entry: dict[str, Any]) -> None:
        f = self._file
        if f is not None:
            f.write(_encoder.encode(entry) + b"\n")

    def text(self, direction: str, frame: bytes) -> None:
        """Record a JSON text frame exactly as it travelled (Settings redacted)."""
        text = frame.decode("utf-8", "replace")
        if direction == "out" and b'"Settings"' in frame[:40]:
            try:
                text = _encoder.encode(redact_settings(msgspec.json.decode(frame))).decode()
            except msgspec.DecodeError:
                pass
        self._write(
            {
                "dir": direction,
                "t": round(time.monotonic() - self._t0, 6),
                "kind": "text",
                "frame": text,
            }
        )

    def audio(self, direction: str, data: bytes | bytearray | memoryview) -> None:
        """Record a binary frame (its size; its bytes too when audio recording is on)."""
        entry: dict[str, Any] = {
            "dir": direction,
            "t": round(time.monotonic() - self._t0, 6),
            "kind": "audio",
            "size": len(data),
        }
        if self._audio:
            entry["data"] = base64.b64encode(bytes(data)).decode()
        self._write(entry)

    def close(self) -> None:
        """Flush and close the file (idempotent)."""
        f, self._file = self._file, None
        if f is not None:
            f.close()


def read_recording(path: str | Path) -> list[dict[str, Any]]:
    """Read a recording's frame entries (the header line is skipped).

    Raises:
        ValueError: a line is not a JSON object, or the file is not a recording.
    """
    entries: list[dict[str, Any]] = []
    with Path(path).open("rb") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                entry = msgspec.json.decode(line)
            except msgspec.DecodeError as exc:
                raise ValueError(f"{path}:{n}: not a JSON line ({exc})") from None
            if not isinstance(entry, dict):
                raise ValueError(f"{path}:{n}: expected a JSON object")
            if n == 1 and "recording" in entry:
                continue
            if entry.get("dir") not in ("in", "out") or entry.get("kind") not in ("text", "audio"):
                raise ValueError(f"{path}:{n}: not a recording entry: {line[:80]!r}")
            entries.append(entry)
    return entries
