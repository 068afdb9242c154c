"""Twilio Media Streams (bidirectional, ``<Connect><Stream>``): the frames and the webhook helpers.

Inbound frames (Twilio's documentation, "Media Streams - WebSocket Messages"): ``connected``,
``start`` (``streamSid`` and ``start.{accountSid, callSid, tracks, customParameters,
mediaFormat{encoding, sampleRate, channels}}``), ``media`` (``media.payload``: base64 mu-law at
8 kHz), ``mark`` (``mark.name``, echoed once the audio before it played, or dropped by a
``clear``), ``dtmf`` (``dtmf.digit``), ``stop``. Outbound: ``media``, ``mark`` and ``clear``,
each carrying the ``streamSid``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any, ClassVar
from xml.sax.saxutils import quoteattr

from ..messages import AudioFormat
from ._carrier import CallInfo, Carrier, CarrierFrameError, agent_encoding

__all__ = ["TwilioCarrier", "twilio_signature", "twiml_connect_stream", "valid_twilio_signature"]


class TwilioCarrier(Carrier):
    """Twilio's Media Streams dialect."""

    name: ClassVar[str] = "twilio"

    def parse_start(self, frame: dict[str, Any]) -> CallInfo:
        start = frame.get("start")
        if not isinstance(start, dict):
            raise CarrierFrameError("start frame without a 'start' object")
        stream_sid = start.get("streamSid", frame.get("streamSid"))
        raw_fmt = start.get("mediaFormat")
        fmt: dict[str, Any] = raw_fmt if isinstance(raw_fmt, dict) else {}
        encoding = agent_encoding(fmt.get("encoding", "audio/x-mulaw"))
        rate = fmt.get("sampleRate", 8000)
        if encoding is None or not isinstance(rate, int) or rate <= 0:
            raise CarrierFrameError(
                f"unsupported media format {fmt!r}; Twilio streams audio/x-mulaw at 8000 Hz"
            )
        params = start.get("customParameters")
        tracks = start.get("tracks")
        return CallInfo(
            carrier=self.name,
            call_id=self._str(start.get("callSid"), "start.callSid"),
            stream_id=self._str(stream_sid, "streamSid"),
            account_id=start.get("accountSid")
            if isinstance(start.get("accountSid"), str)
            else None,
            custom_parameters={str(k): str(v) for k, v in params.items()}
            if isinstance(params, dict)
            else {},
            media_format=AudioFormat(encoding, rate),
            tracks=tuple(str(t) for t in tracks) if isinstance(tracks, list) else ("inbound",),
            raw=frame,
        )

    def _sid(self) -> str:
        if self.info is None:
            raise RuntimeError("no start frame yet: Twilio frames need the streamSid")
        return self.info.stream_id

    def media(self, payload: bytes) -> str:
        return self._json(
            {"event": "media", "streamSid": self._sid(), "media": {"payload": self._b64(payload)}}
        )

    def clear(self) -> str:
        return self._json({"event": "clear", "streamSid": self._sid()})

    def mark(self, name: str) -> str:
        return self._json({"event": "mark", "streamSid": self._sid(), "mark": {"name": name}})


def twiml_connect_stream(url: str, parameters: Mapping[str, str] | None = None) -> str:
    """The TwiML that connects a call to a bidirectional Media Stream at ``url``.

    Args:
        url: the stream's WebSocket URL (``wss://host/twilio``; ``ws://`` only for local tests).
        parameters: custom parameters (``<Parameter name=... value=...>``), delivered in the
            ``start`` frame's ``customParameters``.
    """
    params = "".join(
        f"<Parameter name={quoteattr(str(k))} value={quoteattr(str(v))}/>"
        for k, v in (parameters or {}).items()
    )
    stream = (
        f"<Stream url={quoteattr(url)}>{params}</Stream>"
        if params
        else (f"<Stream url={quoteattr(url)}/>")
    )
    return f'<?xml version="1.0" encoding="UTF-8"?><Response><Connect>{stream}</Connect></Response>'


def twilio_signature(auth_token: str, url: str, params: Mapping[str, str] | None = None) -> str:
    """The ``X-Twilio-Signature`` Twilio computes for a request: base64 of HMAC-SHA1, keyed by
    the account's auth token, over the full URL followed by every POST parameter's name and
    value, sorted by name."""
    data = url + "".join(f"{k}{v}" for k, v in sorted((params or {}).items()))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def valid_twilio_signature(
    auth_token: str, url: str, params: Mapping[str, str] | None, signature: str | None
) -> bool:
    """Whether ``signature`` (the ``X-Twilio-Signature`` header) is Twilio's for this request.

    Compared in constant time. ``url`` must be exactly the URL Twilio requested (scheme, host,
    port, path and query), as configured in the Twilio console.
    """
    if not signature or not auth_token:
        return False
    return hmac.compare_digest(twilio_signature(auth_token, url, params), signature)
