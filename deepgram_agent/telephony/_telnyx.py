"""Telnyx media streaming over WebSocket (bidirectional RTP mode).

Inbound frames (Telnyx's "Stream call media over WebSocket" reference): ``connected``,
``start`` (top-level ``stream_id``; ``start.{call_control_id, client_state,
media_format{encoding, sample_rate, channels}}``, encodings ``PCMU``/``PCMA``), ``media``
(``media.payload``, base64 RTP payload), ``mark``, ``dtmf`` (``dtmf.digit``), ``error``,
``stop``. Outbound: ``media`` (``media.payload``), ``mark`` and ``clear``, without an id.
"""

from __future__ import annotations

from typing import Any, ClassVar

from ..messages import AudioFormat
from ._carrier import CallInfo, Carrier, CarrierFrameError, agent_encoding

__all__ = ["TelnyxCarrier"]


class TelnyxCarrier(Carrier):
    """Telnyx's media streaming dialect (same shape as Twilio's, other field names)."""

    name: ClassVar[str] = "telnyx"

    def parse_start(self, frame: dict[str, Any]) -> CallInfo:
        start = frame.get("start")
        if not isinstance(start, dict):
            raise CarrierFrameError("start frame without a 'start' object")
        raw_fmt = start.get("media_format")
        fmt: dict[str, Any] = raw_fmt if isinstance(raw_fmt, dict) else {}
        encoding = agent_encoding(fmt.get("encoding", "PCMU"))
        rate = fmt.get("sample_rate", 8000)
        if encoding is None or not isinstance(rate, int) or rate <= 0:
            raise CarrierFrameError(
                f"unsupported media format {fmt!r}; use stream_bidirectional_codec PCMU or PCMA"
            )
        state = start.get("client_state")
        return CallInfo(
            carrier=self.name,
            call_id=self._str(start.get("call_control_id"), "start.call_control_id"),
            stream_id=self._str(frame.get("stream_id"), "stream_id"),
            account_id=start.get("user_id") if isinstance(start.get("user_id"), str) else None,
            custom_parameters={"client_state": state} if isinstance(state, str) else {},
            media_format=AudioFormat(encoding, rate),
            raw=frame,
        )

    def media(self, payload: bytes) -> str:
        return self._json({"event": "media", "media": {"payload": self._b64(payload)}})

    def clear(self) -> str:
        return self._json({"event": "clear"})

    def mark(self, name: str) -> str:
        return self._json({"event": "mark", "mark": {"name": name}})
