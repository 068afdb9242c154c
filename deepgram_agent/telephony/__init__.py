"""Phone calls to Deepgram's Voice Agent API: a Twilio Media Streams bridge (and Telnyx).

::

    from aiohttp import web
    from deepgram_agent import DeepgramClient
    from deepgram_agent.presets import telephony_settings
    from deepgram_agent.telephony import TwilioBridge, twiml_connect_stream

    bridge = TwilioBridge(DeepgramClient(), telephony_settings(my_settings))
    app = web.Application()
    app.router.add_get("/twilio", bridge.aiohttp_handler)

Layers: a :class:`Carrier` turns one carrier's frames into events and builds its frames
(sans-I/O; :class:`TwilioCarrier`, :class:`TelnyxCarrier`); :class:`PhoneBridge` runs one agent
session per call with our core and the shared barge-in gate; adapters serve it on aiohttp
(:meth:`PhoneBridge.aiohttp_handler`), on any ASGI server (:meth:`PhoneBridge.asgi`) or on any
WebSocket (:meth:`PhoneBridge.run` with a ``(receive_text, send_text)`` pair).
"""

from __future__ import annotations

from typing import Any

from ._adapters import AsgiBridge as AsgiBridge
from ._bridge import CallStatistics as CallStatistics
from ._bridge import PhoneBridge as PhoneBridge
from ._bridge import PhoneCall as PhoneCall
from ._bridge import Playback as Playback
from ._carrier import CallInfo as CallInfo
from ._carrier import Carrier as Carrier
from ._carrier import CarrierFrameError as CarrierFrameError
from ._telnyx import TelnyxCarrier as TelnyxCarrier
from ._twilio import TwilioCarrier as TwilioCarrier
from ._twilio import twilio_signature as twilio_signature
from ._twilio import twiml_connect_stream as twiml_connect_stream
from ._twilio import valid_twilio_signature as valid_twilio_signature

__all__ = (
    "AsgiBridge",
    "CallInfo",
    "CallStatistics",
    "Carrier",
    "CarrierFrameError",
    "PhoneBridge",
    "PhoneCall",
    "Playback",
    "TelnyxBridge",
    "TelnyxCarrier",
    "TwilioBridge",
    "TwilioCarrier",
    "twilio_signature",
    "twiml_connect_stream",
    "valid_twilio_signature",
)


class TwilioBridge(PhoneBridge):
    """A :class:`PhoneBridge` for Twilio Media Streams (``<Connect><Stream>``)."""

    def __init__(self, client: Any, settings: Any = None, **options: Any) -> None:
        options.setdefault("carrier", TwilioCarrier)
        super().__init__(client, settings, **options)


class TelnyxBridge(PhoneBridge):
    """A :class:`PhoneBridge` for Telnyx media streaming (bidirectional, RTP mode)."""

    def __init__(self, client: Any, settings: Any = None, **options: Any) -> None:
        options.setdefault("carrier", TelnyxCarrier)
        super().__init__(client, settings, **options)
