"""Sans-I/O pieces of the emulated server: parsing client frames, credentials, wire encoding.

Nothing here touches a socket or a clock, so it is reusable and testable on its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from .._codec import encode_server
from .._validate import check_client_message, server_error_description
from ..exceptions import SettingsError
from ..messages import CLIENT_MESSAGE_TYPES, ClientMessage, ServerMessage

__all__ = [
    "NOT_UNDERSTOOD",
    "Reject",
    "Unchecked",
    "parse_client_text",
    "parse_credential",
    "wire",
]

#: The server's recorded description for malformed JSON or an unknown message type.
NOT_UNDERSTOOD = "Text message received from client did not match any of the formats we expect."


@dataclass(frozen=True)
class Reject:
    """A client text frame the server refuses: answer ``Error{code, description}``, then close.

    Attributes:
        code: the ``Error.code``.
        description: the ``Error.description`` (the server's recorded text).
        detail: what exactly is wrong, in the SDK's words (for the emulator's log only).
    """

    code: str
    description: str
    detail: str = ""


@dataclass(frozen=True)
class Unchecked:
    """A client message accepted without validation (``AgentEmulator(strict=False)``).

    ``Settings`` is applied from its plain data as far as it makes sense; any other message
    that does not validate is recorded and ignored.

    Attributes:
        type: the message's ``type``.
        detail: why it did not validate (``""`` when it was not checked at all).
    """

    type: str
    detail: str = ""


def parse_client_text(
    data: bytes | str, *, strict: bool = True
) -> tuple[dict[str, Any] | None, ClientMessage | Reject | Unchecked]:
    """Parse and validate one client text frame, as the real server does.

    Args:
        data: the frame's payload.
        strict: validate like the server. ``False`` accepts any JSON object whose ``type`` is
            ``"Settings"`` unchecked, and answers other messages that do not validate (unknown
            types included) with :class:`Unchecked` instead of an error. A frame that is not a
            JSON object is refused either way.

    Returns:
        ``(plain, result)``: ``plain`` is the decoded JSON object (``None`` when the frame is
        not a JSON object); ``result`` is the typed message, a :class:`Reject` carrying the
        server's error code and recorded description (docs/protocol.md 9.4), or :class:`Unchecked`.
    """
    try:
        plain = msgspec.json.decode(data)
    except msgspec.DecodeError:
        return None, Reject("UNPARSABLE_CLIENT_MESSAGE", NOT_UNDERSTOOD, "not JSON")
    if not isinstance(plain, dict):
        return None, Reject("UNPARSABLE_CLIENT_MESSAGE", NOT_UNDERSTOOD, "not a JSON object")
    kind = plain.get("type")
    if not strict and kind == "Settings":
        return plain, Unchecked("Settings")
    if not isinstance(kind, str) or kind not in CLIENT_MESSAGE_TYPES:
        if not strict:
            return plain, Unchecked(str(kind), f"unknown message type {kind!r}")
        return plain, Reject(
            "UNPARSABLE_CLIENT_MESSAGE", NOT_UNDERSTOOD, f"unknown message type {kind!r}"
        )
    try:
        return plain, check_client_message(plain, as_server=True)
    except SettingsError as err:
        detail = f"{err.path or '$'}: {err.problem}"
        if not strict:
            return plain, Unchecked(kind, detail)
        return plain, Reject(err.code, server_error_description(err), detail)


def parse_credential(headers: Mapping[str, str]) -> tuple[str, str, str | None] | None:
    """Find the credential of a WebSocket upgrade request (docs/protocol.md 1.2).

    Accepts ``Authorization: Token <key>`` / ``Bearer <jwt>`` (scheme case-insensitive) or
    ``Sec-WebSocket-Protocol: token, <key>`` / ``bearer, <jwt>``.

    Returns:
        ``(scheme, secret, subprotocol_to_echo)`` with ``scheme`` lower-cased, or ``None``
        when no usable credential was offered.
    """
    auth = headers.get("Authorization", "").strip()
    if auth:
        scheme, _, secret = auth.partition(" ")
        if scheme.lower() in ("token", "bearer") and secret.strip():
            return scheme.lower(), secret.strip(), None
    offered = [p.strip() for p in headers.get("Sec-WebSocket-Protocol", "").split(",")]
    offered = [p for p in offered if p]
    if len(offered) >= 2 and offered[0].lower() in ("token", "bearer"):
        return offered[0].lower(), offered[1], offered[0]
    return None


def _strip_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_strip_none(v) for v in value]
    return value


def wire(message: ServerMessage) -> bytes:
    """Encode a server message the way the real server writes it: no ``null`` fields.

    The server structs default optional fields to ``None``, which ``encode_server`` writes as
    ``null``; the real server omits such keys, so they are dropped here.
    """
    data = encode_server(message)
    if b"null" not in data:
        return data
    return msgspec.json.encode(_strip_none(msgspec.to_builtins(message)))
