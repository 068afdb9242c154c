"""The carrier layer: a media-stream WebSocket dialect as plain data in, plain text out.

A :class:`Carrier` turns one text frame from the carrier into a :class:`CarrierEvent` and builds
the frames the bridge sends back (agent audio, ``clear`` on barge-in, ``mark`` at the end of a
reply). It does no I/O and keeps no per-call state except what the start frame said, so a
carrier whose protocol has the same shape (connected / start / media / mark / dtmf / stop in,
media / clear / mark out) is one small subclass: see ``_twilio.py`` and ``_telnyx.py``.
"""

from __future__ import annotations

import base64
import binascii
import logging
from dataclasses import dataclass, field
from typing import Any, ClassVar

import msgspec

from ..messages import AudioFormat

TELEPHONY_FORMAT = AudioFormat("mulaw", 8000)

__all__ = [
    "CallInfo",
    "Carrier",
    "CarrierEvent",
    "CarrierFrameError",
    "Dtmf",
    "Media",
    "PlaybackMark",
    "Start",
    "Stop",
]

log = logging.getLogger("deepgram_agent.telephony")

_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()


class CarrierFrameError(ValueError):
    """A frame from the carrier that cannot be used (not JSON, wrong shape, bad payload)."""


@dataclass(frozen=True, kw_only=True)
class CallInfo:
    """What the carrier said about the call when its stream started.

    Attributes:
        carrier: ``"twilio"``, ``"telnyx"``, ...
        call_id: the carrier's call id (Twilio ``callSid``, Telnyx ``call_control_id``).
        stream_id: the media stream's id (Twilio ``streamSid``, Telnyx ``stream_id``).
        account_id: the carrier account (Twilio ``accountSid``), when given.
        custom_parameters: the stream's custom parameters (TwiML ``<Parameter>``; Telnyx
            ``client_state`` is passed as ``{"client_state": ...}``).
        media_format: the line's audio format, as the Voice Agent API names it.
        tracks: the tracks the carrier streams (``["inbound"]`` usually).
        raw: the start frame as received.
    """

    carrier: str
    call_id: str
    stream_id: str
    account_id: str | None = None
    custom_parameters: dict[str, str] = field(default_factory=dict)
    media_format: AudioFormat = TELEPHONY_FORMAT
    tracks: tuple[str, ...] = ("inbound",)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class Start:
    """The stream started (the call's metadata)."""

    info: CallInfo


@dataclass(frozen=True)
class Media:
    """Caller audio, already base64-decoded, in the line's format."""

    payload: bytes
    track: str = "inbound"


@dataclass(frozen=True)
class PlaybackMark:
    """The carrier echoed a mark: the audio sent before it has played (or was cleared)."""

    name: str


@dataclass(frozen=True)
class Dtmf:
    """The caller pressed a key."""

    digit: str


@dataclass(frozen=True)
class Stop:
    """The stream ended (the caller hung up, or the call moved on)."""


@dataclass(frozen=True)
class Other:
    """A frame the bridge has no use for (``connected``, an unknown event): ignored."""

    event: str


CarrierEvent = Start | Media | PlaybackMark | Dtmf | Stop | Other

#: What the carriers' documents call the G.711 formats, and the names of the Voice Agent API.
ENCODINGS = {
    "audio/x-mulaw": "mulaw",
    "audio/mulaw": "mulaw",
    "pcmu": "mulaw",
    "mulaw": "mulaw",
    "ulaw": "mulaw",
    "audio/x-alaw": "alaw",
    "pcma": "alaw",
    "alaw": "alaw",
}


def agent_encoding(name: Any) -> str | None:
    """The Voice Agent API's name of a carrier's encoding name, or ``None`` if unknown."""
    return ENCODINGS.get(str(name).lower()) if isinstance(name, str) else None


class Carrier:
    """One carrier's media-stream dialect (sans-I/O). Subclass it for another carrier.

    A subclass sets :attr:`name` and implements :meth:`parse_start` and the three builders;
    the common frame shapes (``{"event": ..., "media": {"payload": ...}}``) are handled here.

    Args:
        max_media_bytes: the largest decoded ``media`` payload accepted (larger ones raise
            :class:`CarrierFrameError`; carriers send 20 ms, 160 bytes at 8 kHz).
    """

    name: ClassVar[str] = "carrier"

    def __init__(self, *, max_media_bytes: int = 16_000) -> None:
        self.max_media_bytes = max_media_bytes
        self.info: CallInfo | None = None

    # ----------------------------------------------------------------------------- inbound

    def parse(self, text: str | bytes) -> CarrierEvent:
        """Turn one text frame into an event.

        Raises:
            CarrierFrameError: not a JSON object with an ``event``, or an unusable payload.
        """
        try:
            frame = _decoder.decode(text)
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            raise CarrierFrameError(f"not JSON: {exc}") from None
        if not isinstance(frame, dict) or not isinstance(frame.get("event"), str):
            raise CarrierFrameError("not a JSON object with a string 'event'")
        event = frame["event"]
        if event == "media":
            media = frame.get("media")
            if not isinstance(media, dict):
                raise CarrierFrameError("media frame without a 'media' object")
            track = media.get("track")
            return Media(
                self._payload(media.get("payload")), track if isinstance(track, str) else "inbound"
            )
        if event == "start":
            info = self.parse_start(frame)
            self.info = info
            return Start(info)
        if event == "mark":
            mark = frame.get("mark")
            name = mark.get("name") if isinstance(mark, dict) else None
            if not isinstance(name, str):
                raise CarrierFrameError("mark frame without 'mark.name'")
            return PlaybackMark(name)
        if event == "dtmf":
            dtmf = frame.get("dtmf")
            digit = dtmf.get("digit") if isinstance(dtmf, dict) else None
            if not isinstance(digit, str):
                raise CarrierFrameError("dtmf frame without 'dtmf.digit'")
            return Dtmf(digit)
        if event == "stop":
            return Stop()
        return Other(event)

    def _payload(self, value: Any) -> bytes:
        if not isinstance(value, str):
            raise CarrierFrameError("media frame without a base64 'payload' string")
        if len(value) > self.max_media_bytes * 4 // 3 + 4:
            raise CarrierFrameError(
                f"media payload of {len(value)} base64 characters; the limit is "
                f"{self.max_media_bytes} bytes"
            )
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise CarrierFrameError(f"media payload is not base64 ({exc})") from None

    def parse_start(self, frame: dict[str, Any]) -> CallInfo:
        """Read the call's metadata from the start frame.

        Raises:
            CarrierFrameError: the frame lacks the ids the carrier documents.
        """
        raise NotImplementedError

    # ----------------------------------------------------------------------------- outbound

    def media(self, payload: bytes) -> str:
        """A frame that plays ``payload`` (in the line's format) to the caller."""
        raise NotImplementedError

    def clear(self) -> str:
        """A frame that drops the audio the carrier has buffered and not played yet."""
        raise NotImplementedError

    def mark(self, name: str) -> str:
        """A frame the carrier echoes back once the audio sent before it has played."""
        raise NotImplementedError

    # ----------------------------------------------------------------------------- helpers

    @staticmethod
    def _json(frame: dict[str, Any]) -> str:
        return _encoder.encode(frame).decode()

    @staticmethod
    def _b64(payload: bytes) -> str:
        return base64.b64encode(payload).decode("ascii")

    @staticmethod
    def _str(value: Any, what: str) -> str:
        if not isinstance(value, str) or not value:
            raise CarrierFrameError(f"start frame without {what}")
        return value
