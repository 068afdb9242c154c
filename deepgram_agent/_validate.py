"""Strict validation of client messages, shared by the SDK and the emulator.

The real server parses client JSON strictly (protocol.md 2 and 9.4): one unknown, misplaced or
wrongly typed key rejects the whole message, and the ``Error`` names one JSON path. This module
reproduces that: the client runs it before sending (so a mistake is a local
:class:`~deepgram_agent.exceptions.SettingsError` naming the path), and the emulator runs the
very same checks on what it receives, answering with the server's recorded error text.

Keys are checked in alphabetical order, which reproduces every recorded server answer
(e.g. a function with top-level ``url`` and ``method`` is reported at ``...method``).
"""

from __future__ import annotations

import copy
import re
from typing import Any, TypeVar

import msgspec
import msgspec.inspect as mi

from ._codec import whole_floats_to_int
from .exceptions import SettingsError
from .messages import (
    CLIENT_MESSAGE_TYPES,
    AgentSettings,
    ClientMessage,
    HistoryConversationItem,
    HistoryFunctionCallsItem,
    ListenProvider,
    Settings,
    SpeakProvider,
    ThinkProvider,
)

__all__ = [
    "all_settings_problems",
    "check_settings",
    "check_client_message",
    "server_error_description",
    "sorted_keys",
]

T = TypeVar("T")

# Keys each provider type accepts (besides ``type``), and which of them are required.
THINK_PROVIDER_KEYS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "open_ai": (
        frozenset({"model", "version", "temperature", "reasoning_mode"}),
        frozenset({"model"}),
    ),
    "anthropic": (frozenset({"model", "version", "temperature"}), frozenset({"model"})),
    "google": (frozenset({"model", "version", "temperature"}), frozenset()),
    "groq": (frozenset({"model", "version", "temperature", "reasoning_mode"}), frozenset()),
    "aws_bedrock": (frozenset({"model", "temperature", "credentials"}), frozenset({"model"})),
    "nvidia": (frozenset({"model", "temperature"}), frozenset()),
    "deepgram": (
        frozenset({"model", "temperature", "reasoning_mode", "voice_prompt_opt_out"}),
        frozenset({"model"}),
    ),
}

SPEAK_PROVIDER_KEYS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "deepgram": (frozenset({"model", "version", "speed", "expressivity"}), frozenset({"model"})),
    "eleven_labs": (
        frozenset({"model_id", "version", "language", "language_code"}),
        frozenset({"model_id"}),
    ),
    "cartesia": (
        frozenset({"model_id", "voice", "version", "language", "volume"}),
        frozenset({"model_id", "voice"}),
    ),
    "open_ai": (frozenset({"model", "voice", "version"}), frozenset({"model", "voice"})),
    "aws_polly": (
        frozenset({"voice", "language", "language_code", "engine", "credentials"}),
        frozenset({"voice", "language", "engine", "credentials"}),
    ),
}

LISTEN_V1_KEYS = frozenset({"type", "version", "model", "language", "keyterms", "smart_format"})
LISTEN_V2_KEYS = frozenset(
    {
        "type",
        "version",
        "model",
        "language_hints",
        "eot_threshold",
        "eager_eot_threshold",
        "eot_timeout_ms",
        "keyterms",
    }
)
THINK_LIVE_ONLY_FUNCTION_KEYS = (
    "agent_filler_interval_ms",
    "agent_filler_max_count",
    "initial_agent_filler",
)

_HINTS: dict[str, str] = {
    "agent.listen.model": (
        "the flat listen shape is not accepted by the server; use "
        "agent.listen.provider {type: 'deepgram', model: ...} (Listen(model=...) does this)"
    ),
    "agent.think.model": "put the model inside agent.think.provider (Think(model=...) does this)",
    "agent.speak.model": "put the model inside agent.speak.provider (Speak(model=...) does this)",
    "agent.tags": "'tags' belongs at the top level of Settings, not inside 'agent'",
    "agent.mip_opt_out": "'mip_opt_out' belongs at the top level of Settings, not inside 'agent'",
    "greeting": "'greeting' belongs inside 'agent' (agent.greeting)",
    "context": "'context' belongs inside 'agent' (agent.context)",
}

_AT = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<key>[^`]+)`")
_MISSING = re.compile(r"^Object missing required field `(?P<key>[^`]+)`")


def sorted_keys(value: Any) -> Any:
    """Return ``value`` with every object's keys in alphabetical order (recursively)."""
    if isinstance(value, dict):
        return {k: sorted_keys(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [sorted_keys(v) for v in value]
    return value


def _join(base: str, key: str) -> str:
    if not base:
        return key
    if key.startswith("["):
        return base + key
    return f"{base}.{key}"


def _error_from_msgspec(exc: msgspec.ValidationError, prefix: str = "") -> SettingsError:
    text = str(exc)
    path = ""
    m = _AT.search(text)
    if m:
        path = m.group("path").lstrip(".")
        text = text[: m.start()]
    path = _join(prefix, path) if path else prefix
    if um := _UNKNOWN.match(text):
        full = _join(path, um.group("key"))
        problem = f"unknown field '{um.group('key')}'"
    elif mm := _MISSING.match(text):
        full = _join(path, mm.group("key"))
        problem = f"required field '{mm.group('key')}' is missing"
    else:
        full = path
        problem = text[0].lower() + text[1:] if text else "invalid value"
    hint = _HINTS.get(full)
    if hint:
        problem += f"; {hint}"
    elif re.fullmatch(r"agent\.think(\[\d+\])?\.functions\[\d+\]\.(url|method|headers)", full):
        problem += "; put url, method and headers inside the function's 'endpoint' object"
    return SettingsError(full, problem)


def _convert(data: Any, typ: type[T], path: str) -> T:
    try:
        return msgspec.convert(data, typ)
    except msgspec.ValidationError as exc:
        raise _error_from_msgspec(exc, path) from None


def _check_provider(
    provider: dict[str, Any],
    table: dict[str, tuple[frozenset[str], frozenset[str]]],
    path: str,
    what: str,
) -> None:
    kind = provider.get("type")
    if kind not in table:
        known = ", ".join(sorted(table))
        raise SettingsError(
            f"{path}.type", f"unknown {what} provider type {kind!r}; expected one of {known}"
        )
    allowed, required = table[kind]
    for key in sorted(provider):
        if key != "type" and key not in allowed:
            raise SettingsError(
                f"{path}.{key}",
                f"unknown field '{key}' for the {kind!r} {what} provider "
                f"(accepted: {', '.join(sorted(allowed))})",
            )
    for key in sorted(required):
        if key not in provider:
            raise SettingsError(
                f"{path}.{key}",
                f"required field '{key}' is missing for the {kind!r} {what} provider",
            )
    if what == "speak":
        voice = provider.get("voice")
        if kind == "cartesia" and not isinstance(voice, dict):
            raise SettingsError(f"{path}.voice", "cartesia needs voice {mode, id}")
        if kind in ("open_ai", "aws_polly") and voice is not None and not isinstance(voice, str):
            raise SettingsError(f"{path}.voice", f"{kind} takes the voice name as a string")


def _check_listen_provider(provider: dict[str, Any], path: str) -> None:
    if provider.get("type", "deepgram") != "deepgram":
        raise SettingsError(f"{path}.type", "the only listen provider type is 'deepgram'")
    version = provider.get("version", "v1")
    if version == "v1":
        keys = LISTEN_V1_KEYS
    elif version == "v2":
        keys = LISTEN_V2_KEYS
        if "model" not in provider:
            raise SettingsError(f"{path}.model", "a v2 (Flux) listen provider needs a model")
    else:
        raise SettingsError(f"{path}.version", f"unknown listen provider version {version!r}")
    for key in sorted(provider):
        if key not in keys:
            raise SettingsError(
                f"{path}.{key}",
                f"unknown field '{key}' for a {version} listen provider "
                f"(accepted: {', '.join(sorted(keys - {'type', 'version'}))})",
            )


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _check_think(think: Any, path: str, *, think_live: bool) -> None:
    entries = _as_list(think)
    for i, entry in enumerate(entries):
        p = f"{path}[{i}]" if isinstance(think, list) else path
        if not isinstance(entry, dict):
            continue
        provider = entry.get("provider")
        if isinstance(provider, dict):
            _check_provider(provider, THINK_PROVIDER_KEYS, f"{p}.provider", "think")
            if provider.get("type") in ("groq", "aws_bedrock") and "endpoint" not in entry:
                raise SettingsError(
                    f"{p}.endpoint",
                    f"the {provider['type']!r} think provider needs an endpoint {{url}}",
                    code="INVALID_SETTINGS",
                )
        for j, fn in enumerate(entry.get("functions") or []):
            if not isinstance(fn, dict):
                continue
            if not think_live:
                for key in THINK_LIVE_ONLY_FUNCTION_KEYS:
                    if key in fn:
                        raise SettingsError(
                            f"{p}.functions[{j}].{key}",
                            f"'{key}' requires agent.think_live",
                            code="INVALID_SETTINGS",
                        )
            interval = fn.get("agent_filler_interval_ms")
            if interval is not None and (fn.get("agent_filler_max_count") or 0) > 0:
                if not 1000 <= interval <= 60000:
                    raise SettingsError(
                        f"{p}.functions[{j}].agent_filler_interval_ms",
                        "must be between 1000 and 60000",
                        code="INVALID_SETTINGS",
                    )


def _check_speak(speak: Any, path: str) -> None:
    for i, entry in enumerate(_as_list(speak)):
        p = f"{path}[{i}]" if isinstance(speak, list) else path
        if isinstance(entry, dict) and isinstance(entry.get("provider"), dict):
            _check_provider(entry["provider"], SPEAK_PROVIDER_KEYS, f"{p}.provider", "speak")


def _check_context(context: Any, path: str) -> None:
    if not isinstance(context, dict):
        return
    for i, item in enumerate(context.get("messages") or []):
        p = f"{path}.messages[{i}]"
        if not isinstance(item, dict):
            raise SettingsError(p, "each context message must be a History object")
        if "function_calls" in item:
            _convert(item, HistoryFunctionCallsItem, p)
        else:
            _convert(item, HistoryConversationItem, p)
            if item.get("role") not in ("user", "assistant"):
                raise SettingsError(f"{p}.role", "role must be 'user' or 'assistant'")


def check_agent(agent: Any, path: str = "agent") -> None:
    """Run the checks msgspec cannot express on an inline ``agent`` object (plain data)."""
    if not isinstance(agent, dict):
        return
    listen = agent.get("listen")
    if isinstance(listen, dict) and isinstance(listen.get("provider"), dict):
        _check_listen_provider(listen["provider"], f"{path}.listen.provider")
    if "think" in agent:
        _check_think(agent["think"], f"{path}.think", think_live="think_live" in agent)
    if "speak" in agent:
        _check_speak(agent["speak"], f"{path}.speak")
    if "context" in agent:
        _check_context(agent["context"], f"{path}.context")


def _plain(data: Any) -> Any:
    if isinstance(data, msgspec.Struct):
        return msgspec.to_builtins(data)
    return data


def check_settings(data: Any) -> Settings:
    """Validate a ``Settings`` message the way the server does.

    Args:
        data: plain JSON data (a dict), or a :class:`Settings` struct.

    Returns:
        The validated, typed ``Settings`` (whole-number floats already made ints).

    Raises:
        SettingsError: the first offending field, with its JSON path.
    """
    plain = sorted_keys(whole_floats_to_int(_plain(data)))
    if not isinstance(plain, dict):
        raise SettingsError("", f"Settings must be a JSON object, not {type(plain).__name__}")
    plain.setdefault("type", "Settings")
    if plain.get("type") != "Settings":
        raise SettingsError("type", f"expected 'Settings', got {plain.get('type')!r}")
    settings = _convert(plain, Settings, "")
    check_agent(plain.get("agent"))
    return settings


_TOKEN = re.compile(r"\[(\d+)\]|([^.\[\]]+)")
_NO_PLACEHOLDER = object()


def _path_tokens(path: str) -> list[str | int]:
    return [int(m.group(1)) if m.group(1) else m.group(2) for m in _TOKEN.finditer(path)]


def _choices(t: mi.Type) -> tuple[mi.Type, ...]:
    return t.types if isinstance(t, mi.UnionType) else (t,)


def _type_at(tokens: list[str | int]) -> mi.Type | None:
    """The declared type of the field at ``tokens`` in ``Settings`` (None: not found)."""
    t: mi.Type = mi.type_info(Settings)
    for token in tokens:
        found: mi.Type | None = None
        for choice in _choices(t):
            if isinstance(token, int) and isinstance(choice, mi.ListType):
                found = choice.item_type
            elif isinstance(token, str) and isinstance(choice, mi.StructType):
                found = next((f.type for f in choice.fields if f.encode_name == token), None)
            elif isinstance(token, str) and isinstance(choice, mi.DictType):
                found = choice.value_type
            if found is not None:
                break
        if found is None:
            return None
        t = found
    return t


def _placeholder(t: mi.Type | None) -> Any:
    """A harmless value of type ``t`` (``_NO_PLACEHOLDER`` when none is known)."""
    if t is None:
        return _NO_PLACEHOLDER
    first = _choices(t)[0]
    if isinstance(first, mi.StrType | mi.AnyType):
        return "x" * (first.min_length or 0) if isinstance(first, mi.StrType) else ""
    if isinstance(first, mi.BoolType):
        return False
    if isinstance(first, mi.IntType | mi.FloatType):
        low = first.ge if first.ge is not None else (first.gt + 1 if first.gt is not None else 0)
        return int(low) if isinstance(first, mi.IntType) else float(low)
    if isinstance(first, mi.LiteralType):
        return first.values[0]
    if isinstance(first, mi.ListType):
        return []
    if isinstance(first, mi.StructType | mi.DictType):
        return {}
    return _NO_PLACEHOLDER


def _parent(data: Any, tokens: list[str | int]) -> Any:
    """The container holding the last token's value (None when the path does not exist)."""
    node = data
    for token in tokens[:-1]:
        if isinstance(token, int) and isinstance(node, list) and 0 <= token < len(node):
            node = node[token]
        elif isinstance(token, str) and isinstance(node, dict) and token in node:
            node = node[token]
        else:
            return None
    return node


def _under(path: str, roots: set[str]) -> bool:
    return any(path == r or path.startswith((r + ".", r + "[")) for r in roots)


def all_settings_problems(data: Any, limit: int = 20) -> list[SettingsError]:
    """Find several independent problems in a Settings message, not just the first.

    The server (and :func:`check_settings`) stops at the first error. This repeats the check on
    a copy of the data: an unknown, misplaced or wrongly typed value is removed (a list item is
    replaced by a placeholder, so later indexes stay right), a missing required field gets a
    harmless placeholder of its type, and the check runs again. It stops when the data is
    valid, after ``limit`` problems, or when a fix cannot be made or makes no progress.

    Args:
        data: plain JSON data (a dict), or a :class:`Settings` struct.
        limit: the most problems to report.

    Returns:
        The problems, first one first (the one the server would report); empty when valid.
    """
    work = copy.deepcopy(_plain(data))
    problems: list[SettingsError] = []
    touched: set[str] = set()  # paths already reported or fixed: seeing one again is no progress
    removed: set[str] = set()  # a missing-field error there is caused by our own fix
    filled: set[str] = set()  # placeholders we inserted
    while len(problems) < limit:
        try:
            check_settings(work)
        except SettingsError as exc:
            err = exc
        else:
            break
        path = err.path
        if not path or path in touched:
            if path not in removed and path not in filled:
                problems.append(err)
            break
        inside_fix = _under(path, filled)
        tokens = _path_tokens(path)
        parent = _parent(work, tokens)
        last = tokens[-1]
        touched.add(path)
        if isinstance(last, str) and isinstance(parent, dict) and last in parent:
            if inside_fix:
                break  # our placeholder is not good enough here: stop rather than guess
            problems.append(err)
            del parent[last]
            removed.add(path)
        elif isinstance(last, int) and isinstance(parent, list) and 0 <= last < len(parent):
            if inside_fix:
                break
            problems.append(err)
            value = _placeholder(_type_at(tokens))
            if value is _NO_PLACEHOLDER:
                break
            parent[last] = value
            filled.add(path)
        elif isinstance(last, str) and isinstance(parent, dict):  # a missing field
            if path not in removed and not inside_fix:
                problems.append(err)
            value = _placeholder(_type_at(tokens))
            if value is _NO_PLACEHOLDER:
                break
            parent[last] = value
            filled.add(path)
        else:
            if not inside_fix:
                problems.append(err)
            break
    return problems


def check_client_message(data: Any) -> ClientMessage:
    """Validate any client message given as plain data (or a struct).

    Raises:
        SettingsError: an unknown ``type`` or the first offending field.
    """
    plain = sorted_keys(whole_floats_to_int(_plain(data)))
    if not isinstance(plain, dict):
        raise SettingsError("", f"a message must be a JSON object, not {type(plain).__name__}")
    kind = plain.get("type")
    if kind == "Settings":
        return check_settings(plain)
    cls = CLIENT_MESSAGE_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise SettingsError("type", f"unknown client message type {kind!r}")
    msg = _convert(plain, cls, "")
    if kind == "UpdateThink":
        _check_think(plain["think"], "think", think_live=True)
    elif kind == "UpdateSpeak":
        _check_speak(plain["speak"], "speak")
    elif kind == "UpdateListen" and isinstance(plain["listen"].get("provider"), dict):
        _check_listen_provider(plain["listen"]["provider"], "listen.provider")
    elif (
        kind == "InjectAgentMessage"
        and "message" not in plain
        and plain.get("is_dynamic") is not True
    ):
        # protocol.md 5.8/5.9: the static form needs message; only is_dynamic=true omits it.
        raise SettingsError(
            "message",
            "InjectAgentMessage needs message (the text to speak), unless is_dynamic is true",
        )
    return msg


def server_error_description(err: SettingsError) -> str:
    """The ``Error.description`` the real server sends for this validation failure."""
    if err.code == "UNPARSABLE_CLIENT_MESSAGE" and err.path:
        return f"Error parsing client message. Check the {err.path} field against the API spec."
    if err.code == "UNPARSABLE_CLIENT_MESSAGE":
        return "Text message received from client did not match any of the formats we expect."
    return f"Invalid settings: {err.path}: {err.problem}"


# Re-exported for the options layer: these names are the typed roots it builds.
__all__ += ["AgentSettings", "ListenProvider", "SpeakProvider", "ThinkProvider", "check_agent"]
