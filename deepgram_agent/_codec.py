"""The one place frames are turned into messages and back.

``decode_server`` never raises: whatever the server sends becomes either a typed message or an
:class:`~deepgram_agent.messages.Unhandled` carrying the raw bytes and the reason.
"""

from __future__ import annotations

from typing import Any

import msgspec

from .messages import (
    SERVER_MESSAGE_TYPES,
    ClientMessage,
    ServerMessage,
    ServerMessageUnion,
    Unhandled,
)

__all__ = [
    "fast_decoder",
    "decode_server",
    "encode",
    "encode_server",
    "whole_floats_to_int",
    "message_type_of",
]


class _TypeOnly(msgspec.Struct):
    type: str


#: The one decoder of server frames (the hot path calls its ``decode`` directly and falls back
#: to :func:`decode_server` on any exception).
fast_decoder: msgspec.json.Decoder[ServerMessageUnion] = msgspec.json.Decoder(ServerMessageUnion)
_type_decoder = msgspec.json.Decoder(_TypeOnly)
_encoder = msgspec.json.Encoder()

_decode = fast_decoder.decode


def message_type_of(data: bytes | str) -> str:
    """The ``type`` of a JSON frame, or ``""`` when it has none (or is not JSON)."""
    try:
        return _type_decoder.decode(data).type
    except Exception:  # not JSON, no type, invalid UTF-8, nested too deep, ...
        return ""


def decode_server(data: bytes) -> ServerMessage | Unhandled:
    """Decode one server text frame. Never raises.

    Args:
        data: the frame's bytes (aiohttp with ``decode_text=False``).

    Returns:
        The typed message, or :class:`Unhandled` for an unknown ``type`` (``reason`` is
        ``None``) or a malformed frame (``reason`` says what is wrong).
    """
    try:
        return _decode(data)
    except msgspec.ValidationError as exc:
        kind = message_type_of(data)
        if kind and kind not in SERVER_MESSAGE_TYPES:
            return Unhandled(message_type=kind, raw=bytes(data))
        return Unhandled(
            message_type=kind, raw=bytes(data), reason=f"invalid {kind or 'message'}: {exc}"
        )
    except msgspec.DecodeError as exc:
        if not data:
            return Unhandled(message_type="", raw=b"", reason="empty text frame")
        return Unhandled(message_type="", raw=bytes(data), reason=f"not valid JSON: {exc}")
    except RecursionError:
        return Unhandled(
            message_type="", raw=bytes(data), reason="JSON nested too deeply to decode"
        )
    except UnicodeDecodeError as exc:
        return Unhandled(
            message_type=message_type_of(data),
            raw=bytes(data),
            reason=f"invalid UTF-8 in a JSON string: {exc}",
        )
    except Exception as exc:  # decoding must never end a session, whatever the bytes
        return Unhandled(
            message_type="", raw=bytes(data), reason=f"undecodable: {type(exc).__name__}: {exc}"
        )


def whole_floats_to_int(value: Any) -> Any:
    """Return ``value`` with every whole-number float turned into an int (``1.0`` -> ``1``).

    The wire schema types sample rates, counts and timeouts as integers; a float that holds a
    whole number is sent as an integer so the strict server parser accepts it.
    """
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        return value
    if isinstance(value, dict):
        return {k: whole_floats_to_int(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [whole_floats_to_int(v) for v in value]
    return value


def encode(message: ClientMessage | ServerMessage | dict[str, Any]) -> bytes:
    """Encode a message (or a plain dict) as compact JSON bytes."""
    return _encoder.encode(message)


def encode_server(message: ServerMessage) -> bytes:
    """Encode a server message (used by the emulator)."""
    return _encoder.encode(message)
