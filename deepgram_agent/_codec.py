"""The one place frames are turned into messages and back.

``decode_server`` never raises: whatever the server sends becomes either a typed message or an
:class:`~deepgram_agent.messages.Unhandled` carrying the raw bytes and the reason.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
import msgspec.inspect as mi

from .messages import (
    SERVER_MESSAGE_TYPES,
    ClientMessage,
    ServerMessage,
    ServerMessageUnion,
    Unhandled,
    WireDetails,
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
        if kind:
            lenient = _decode_leniently(bytes(data), SERVER_MESSAGE_TYPES[kind])
            if lenient is not None:
                return lenient
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
    """Encode a server message the way the real server writes it (used by the emulator):
    every field, ``null`` ones left out."""
    return _encoder.encode(_strip_none(message.to_dict()))


def _strip_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_strip_none(v) for v in value]
    return value


# ---------------------------------------------------------------------- lenient decoding

_FieldMap = dict[str, tuple[str, mi.Type]]
_fields_cache: dict[type, _FieldMap] = {}
_AT = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_HIDDEN_KEYS = frozenset({"__deepgram_agent_wire__", "__received__", "__applied__"})


def _fields(cls: type) -> _FieldMap:
    """``{wire name: (attribute name, type)}`` of a struct (cached)."""
    found = _fields_cache.get(cls)
    if found is None:
        info = mi.type_info(cls)
        assert isinstance(info, mi.StructType)
        found = _fields_cache[cls] = {
            f.encode_name: (f.name, f.type)
            for f in info.fields
            if f.encode_name not in _HIDDEN_KEYS
        }
    return found


def _choices(t: mi.Type) -> tuple[mi.Type, ...]:
    return t.types if isinstance(t, mi.UnionType) else (t,)


def _fit(value: Any, t: mi.Type, path: str, repairs: list[str]) -> Any:
    """``value`` reshaped to fit type ``t`` where that is safe (see _decode_leniently)."""
    choices = _choices(t)
    for c in choices:
        if isinstance(c, mi.StructType) and isinstance(value, dict):
            return _fit_struct(value, c.cls, path, repairs, None)
        if isinstance(c, mi.ListType) and isinstance(value, list):
            return [_fit(v, c.item_type, f"{path}[{i}]", repairs) for i, v in enumerate(value)]
    wants_text = any(isinstance(c, mi.StrType) for c in choices)
    if (
        wants_text
        and isinstance(value, int | float)
        and not any(isinstance(c, mi.IntType | mi.FloatType | mi.BoolType) for c in choices)
    ):
        repairs.append(f"{path}: sent as a number; kept as text")
        return str(value)
    if isinstance(value, dict | list) and wants_text:
        if not any(isinstance(c, mi.DictType | mi.ListType | mi.AnyType) for c in choices):
            repairs.append(
                f"{path}: sent as a JSON {'object' if isinstance(value, dict) else 'array'}; "
                "kept as JSON text"
            )
            return msgspec.json.encode(value).decode()
    return value


def _fit_struct(
    data: dict[str, Any], cls: type, path: str, repairs: list[str], extra: dict[str, Any] | None
) -> dict[str, Any]:
    fields = _fields(cls)
    tag_field = cls.__struct_config__.tag_field  # type: ignore[attr-defined]
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key == tag_field:
            out[key] = value
            continue
        known = fields.get(key)
        if known is None:
            if extra is not None:
                extra[key] = value
            else:
                repairs.append(f"{path}.{key}: not modelled by this SDK; left out")
            continue
        _name, ftype = known
        if value is None and not any(isinstance(c, mi.NoneType) for c in _choices(ftype)):
            repairs.append(f"{path}.{key}: null; the default was used")
            continue
        out[key] = _fit(value, ftype, f"{path}.{key}", repairs)
    return out


def _drop(data: Any, path: str) -> bool:
    tokens = re.findall(r"\.([^.\[\]]+)|\[(\d+)\]", path)
    node = data
    for name, index in tokens[:-1]:
        try:
            node = node[name] if name else node[int(index)]
        except (KeyError, IndexError, TypeError, ValueError):
            return False
    if not tokens:
        return False
    name, index = tokens[-1]
    if name and isinstance(node, dict) and name in node:
        del node[name]
        return True
    return False


def _decode_leniently(data: bytes, cls: type[ServerMessage]) -> ServerMessage | None:
    """A known message that did not fit its type exactly, made to fit where that is safe.

    Keys this SDK does not model are kept aside (``msg.extra`` for top-level ones; all of
    them in ``msg.raw``); a ``null`` gives the field's default; an object or array where text
    is expected (e.g. ``arguments`` sent as an object) is kept as JSON text; a field that still
    does not fit gets its default. Every change is listed in ``msg.wire_.repairs``. ``None``
    when the frame is not a JSON object of this type at all.
    """
    try:
        plain = msgspec.json.decode(data)
    except Exception:
        return None
    if not isinstance(plain, dict):
        return None
    repairs: list[str] = []
    extra: dict[str, Any] = {}
    try:
        fitted = _fit_struct(plain, cls, "$", repairs, extra)
    except RecursionError:
        # JSON just shallow enough to decode can be too deep to re-encode as text (a value
        # kept as JSON text): decode_server calls this from an except clause, so it must not
        # raise.
        return None
    for _ in range(16):
        try:
            msg = msgspec.convert(fitted, cls, strict=False)
        except msgspec.ValidationError as exc:
            found = _AT.search(str(exc))
            if found is None or not _drop(fitted, found.group("path")):
                return None
            repairs.append(f"${found.group('path')}: {_AT.sub('', str(exc))}; the default was used")
            continue
        except RecursionError:
            return None
        msg.wire_ = WireDetails(raw=data, extra=extra, repairs=tuple(repairs))
        return msg
    return None
