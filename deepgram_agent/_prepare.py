"""The public boundary: settings and messages in any accepted form become wire data, once.

``connect()``, the classic clients and the connection's ``send()`` call these; nothing below
them (the protocol, the socket) sees anything but typed messages and frames.

Accepted forms:

* Settings: the classic :class:`~deepgram_agent.SettingsOptions`, a
  :class:`~deepgram_agent.messages.Settings` struct, a wire ``dict``, or its JSON text.
* Messages: an option object (``UpdatePromptOptions``, ``FunctionCallResponse``, ...), a
  ``messages`` struct, a wire ``dict`` or its JSON text.

Local validation (:mod:`deepgram_agent._validate`) advises; ``validate=False`` sends the
Settings exactly as given (only ``type`` is added when missing) and leaves the verdict to the
server, whose ``Error`` still surfaces as :class:`~deepgram_agent.SettingsRejected`.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any, NamedTuple

import msgspec

from . import messages as m
from ._codec import encode, whole_floats_to_int
from ._validate import check_client_message, check_settings
from .exceptions import SettingsError

__all__ = [
    "PreparedSettings",
    "plain_data",
    "prepare_message",
    "prepare_settings",
    "prepare_update",
    "typed_view",
]


class PreparedSettings(NamedTuple):
    """Settings ready for the wire.

    Attributes:
        wire: the exact JSON object to send (``type`` included).
        typed: a typed view of it (keys this SDK does not model are left out of the view,
            never out of ``wire``).
        validated: whether the local rules ran.
    """

    wire: dict[str, Any]
    typed: m.Settings
    validated: bool

    @property
    def frame(self) -> bytes:
        """The ``Settings`` text frame."""
        return encode(self.wire)


def _normalize(wire: dict[str, Any]) -> dict[str, Any]:
    from . import _validate

    normalize = getattr(_validate, "normalize_settings", None)
    return normalize(wire) if normalize is not None else wire


def _parse_json(text: str | bytes | bytearray) -> Any:
    try:
        return msgspec.json.decode(text)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise SettingsError("", f"not valid JSON: {exc}") from None


def plain_data(value: Any) -> Any:
    """Nested data as plain JSON-ready values (structs and option objects converted)."""
    if isinstance(value, Mapping):
        return {str(k): plain_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain_data(v) for v in value]
    if isinstance(value, msgspec.Struct):
        return msgspec.to_builtins(value)
    if hasattr(value, "_build") and hasattr(value, "to_dict"):  # a classic option object
        from .options import _plain as options_plain

        return options_plain(value, "")
    return value


def prepare_settings(obj: Any, *, validate: bool = True) -> PreparedSettings:
    """Turn settings in any accepted form into what goes on the wire.

    Args:
        obj: ``SettingsOptions``, ``messages.Settings``, a dict, or JSON text.
        validate: run the local rules (a :class:`SettingsError` names the JSON path of the
            first problem). ``False`` sends the data exactly as given.

    Raises:
        SettingsError: invalid content (with ``validate``), or JSON that is not an object.
        TypeError: ``obj`` is none of the accepted forms.
    """
    if hasattr(obj, "to_dict") and hasattr(obj, "_build") and not isinstance(obj, Mapping):
        # A classic SettingsOptions validates its modelled part itself and merges extra= as
        # given; it is not checked again here.
        wire = obj.to_dict()
        if wire.get("type", "Settings") != "Settings":
            raise TypeError(f"expected settings, got a {type(obj).__name__}")
        return PreparedSettings(wire, typed_view(wire), validated=True)
    if isinstance(obj, m.Settings):
        data: Any = msgspec.to_builtins(obj)
    elif isinstance(obj, str | bytes | bytearray):
        data = _parse_json(obj)
    elif isinstance(obj, Mapping):
        data = plain_data(obj)
    else:
        raise TypeError(
            "settings must be a SettingsOptions, a deepgram_agent.messages.Settings, a dict or "
            f"a JSON string, not {type(obj).__name__}"
        )
    if not isinstance(data, dict):
        raise SettingsError("", f"Settings must be a JSON object, not {type(data).__name__}")
    if not validate:
        wire = {"type": "Settings", **data} if "type" not in data else dict(data)
        return PreparedSettings(wire, typed_view(wire), validated=False)
    data = _normalize(whole_floats_to_int(data))
    wire = {"type": data.get("type", "Settings"), **{k: v for k, v in data.items() if k != "type"}}
    return PreparedSettings(wire, check_settings(wire), validated=True)


def prepare_message(obj: Any) -> m.ClientMessage:
    """Turn one client message in any accepted form into its validated typed struct.

    Raises:
        SettingsError: invalid content (names the JSON path).
        TypeError: ``obj`` is none of the accepted forms.
    """
    if isinstance(obj, m.ClientMessage):
        return check_client_message(obj)
    to_message = getattr(obj, "to_message", None)
    if to_message is not None and not isinstance(obj, Mapping):  # a classic option object
        message = to_message()
        if not isinstance(message, m.ClientMessage):
            raise TypeError(f"{type(obj).__name__}.to_message() did not return a message")
        return message
    if isinstance(obj, str | bytes | bytearray):
        return check_client_message(_parse_json(obj))
    if isinstance(obj, Mapping):
        return check_client_message(whole_floats_to_int(plain_data(obj)))
    raise TypeError(
        "a client message must be an option object (UpdatePromptOptions, FunctionCallResponse, "
        "...), a deepgram_agent.messages client struct, a dict or a JSON string, not "
        f"{type(obj).__name__}"
    )


def prepare_update(kind: str, key: str, value: Any) -> m.ClientMessage:
    """An ``Update*`` message (``UpdateSpeak``, ``UpdateThink``, ``UpdateListen``) for a value
    given as a classic option (``Speak``, ...), a ``messages`` struct, a list or a dict."""
    if getattr(value, "_TYPE", None) == kind:  # already an Update*Options object
        return prepare_message(value)
    if hasattr(value, "_build") and not isinstance(value, Mapping):  # Speak(), Think(), ...
        from . import options

        wrappers: dict[str, Any] = {
            "UpdateSpeak": options.UpdateSpeakOptions,
            "UpdateThink": options.UpdateThinkOptions,
            "UpdateListen": options.UpdateListenOptions,
        }
        return prepare_message(wrappers[kind](**{key: value}))
    return prepare_message({"type": kind, key: value})


_PATH_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _prune(data: Any, path: str) -> bool:
    """Delete the value at ``path`` (``a.b[0].c``) from nested data; True if deleted."""
    tokens: list[str | int] = [
        t.group(1) if t.group(1) is not None else int(t.group(2))
        for t in _PATH_TOKEN.finditer(path)
    ]
    node = data
    for tok in tokens[:-1]:
        try:
            node = node[tok]
        except (KeyError, IndexError, TypeError):
            return False
    last = tokens[-1] if tokens else None
    if isinstance(node, dict) and isinstance(last, str) and last in node:
        del node[last]
        return True
    if isinstance(node, list) and isinstance(last, int) and last < len(node):
        del node[last]
        return True
    return False


_AT = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<key>[^`]+)`")
_MISSING = re.compile(r"^Object missing required field `(?P<key>[^`]+)`")


def typed_view(wire: Mapping[str, Any], fallback: m.Settings | None = None) -> m.Settings:
    """A typed view of Settings that may carry keys or values this SDK does not know.

    Structural only (no local rule runs, nothing is warned about): whatever does not fit the
    SDK's types is left out of the view, never out of the frame sent. A value of the wrong
    type gives ``fallback`` when one is given; what cannot be typed at all gives the server's
    defaults (linear16 audio both ways).
    """
    data: dict[str, Any] = whole_floats_to_int(copy.deepcopy(dict(wire)))
    data["type"] = "Settings"
    data.setdefault("audio", {})
    data.setdefault("agent", {})
    for _ in range(64):
        try:
            return msgspec.convert(data, m.Settings)
        except msgspec.ValidationError as exc:
            text = str(exc)
            at = _AT.search(text)
            path = at.group("path").lstrip(".") if at else ""
            unknown = _UNKNOWN.match(text)
            missing = _MISSING.match(text)
            if unknown:
                path = f"{path}.{unknown.group('key')}" if path else unknown.group("key")
            elif fallback is not None:
                return fallback
            elif missing and not path:
                break
            if not path or not _prune(data, path):
                break
    audio: Any = wire.get("audio")
    try:
        config = msgspec.convert(audio if isinstance(audio, dict) else {}, m.AudioConfig)
    except msgspec.ValidationError:
        config = m.AudioConfig()
    agent = wire.get("agent")
    return m.Settings(audio=config, agent=agent if isinstance(agent, str) else m.AgentSettings())
