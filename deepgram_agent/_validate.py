"""Validation of client messages, shared by the SDK and the emulator.

Local checks advise; the server decides (docs/protocol.md 11 and 12 #22-25). The real server parses
client JSON strictly (docs/protocol.md 2 and 9.4): one unknown, misplaced or wrongly typed key rejects
the whole message, and its ``Error`` names one JSON path. This module knows the same schema, as
of this release, and applies three kinds of rule:

* **Schema** (an unknown or misplaced key, a wrong JSON type, an unknown provider ``type``, an
  unknown audio encoding): a :class:`~deepgram_agent.exceptions.SettingsError` naming the JSON
  path, what this SDK accepts there, the closest match for a typo (``promt`` -> ``prompt``,
  ``pcm16`` -> ``linear16``) and how to send it anyway if Deepgram added it after this release
  (``validate=False`` for ``Settings``, ``send_raw`` for the other messages).
* **Open enums** (values the server may extend: ``InjectAgentMessage.behavior``, a history
  ``role``, reasoning modes, output containers, provider versions, ...): for the client an
  unknown value is a :class:`~deepgram_agent.options.DeepgramAgentWarning` and is sent as given.
* **Hints** (model and voice names, which change faster than any SDK): free strings; only a near
  miss of a known name (``nova3``, ``claude-haiku-4.5``) warns.

The emulator runs the very same checks with ``as_server=True``: there an unknown enum value is
an error, as today's server answers it, and hints are silent. It answers with the server's
recorded error text (:func:`server_error_description`).

Documented aliases are rewritten before anything is checked (:func:`normalize_settings`): a Flux
(``version: "v2"``) listen provider's singular ``language_hint`` is sent as ``language_hints``.

Keys are checked in alphabetical order, which reproduces every recorded server answer
(e.g. a function with top-level ``url`` and ``method`` is reported at ``...method``).
"""

from __future__ import annotations

import copy
import difflib
import re
import warnings
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgspec
import msgspec.inspect as mi
import msgspec.structs

from ._codec import whole_floats_to_int
from .exceptions import SettingsError
from .messages import (
    CLIENT_MESSAGE_TYPES,
    AgentSettings,
    ClientMessage,
    HistoryConversationItem,
    HistoryFunctionCallsItem,
    InjectAgentMessage,
    ListenProvider,
    Settings,
    SpeakProvider,
    ThinkProvider,
)

__all__ = [
    "INPUT_ENCODINGS",
    "OUTPUT_CONTAINERS",
    "OUTPUT_ENCODINGS",
    "all_settings_problems",
    "check_client_message",
    "check_settings",
    "closest",
    "normalize_client_message",
    "normalize_settings",
    "server_error_description",
    "settings_warnings",
    "sorted_keys",
]

T = TypeVar("T")

#: The tail of every error about something this SDK does not know (a key, provider or value).
SETTINGS_ESCAPE = (
    "if Deepgram added it after this SDK was released, pass validate=False to connect() to "
    "send the Settings unchecked"
)
#: The same for messages other than ``Settings``.
MESSAGE_ESCAPE = (
    "if Deepgram added it after this SDK was released, send the message unchecked with "
    "conn.send_raw(...)"
)

#: ``audio.input.encoding`` values (docs/protocol.md 4.1).
INPUT_ENCODINGS: tuple[str, ...] = (
    "linear16",
    "linear32",
    "mulaw",
    "alaw",
    "flac",
    "amr-nb",
    "amr-wb",
    "opus",
    "ogg-opus",
    "speex",
    "g729",
)
#: ``audio.output.encoding`` values (docs/protocol.md 4.2). Input encodings outside this list are
#: accepted for output with a warning (the docs list output encodings loosely).
OUTPUT_ENCODINGS: tuple[str, ...] = ("linear16", "mulaw", "alaw", "mp3", "opus", "flac", "aac")
#: ``audio.output.container`` values (docs/protocol.md 4.2; an open enum).
OUTPUT_CONTAINERS: tuple[str, ...] = ("none", "wav", "ogg")

# Names people use for the encodings above; closest() maps them (pcm16 -> linear16).
_ALIASES: dict[str, str] = {
    "pcm16": "linear16",
    "pcm_16": "linear16",
    "pcm": "linear16",
    "pcm_s16le": "linear16",
    "s16le": "linear16",
    "s16": "linear16",
    "int16": "linear16",
    "l16": "linear16",
    "lpcm": "linear16",
    "linear": "linear16",
    "pcm32": "linear32",
    "pcm_f32le": "linear32",
    "f32le": "linear32",
    "f32": "linear32",
    "float32": "linear32",
    "ulaw": "mulaw",
    "u-law": "mulaw",
    "mu-law": "mulaw",
    "mu_law": "mulaw",
    "pcmu": "mulaw",
    "g711u": "mulaw",
    "g711_ulaw": "mulaw",
    "g711-ulaw": "mulaw",
    "a-law": "alaw",
    "a_law": "alaw",
    "pcma": "alaw",
    "g711a": "alaw",
    "g711_alaw": "alaw",
    "g711-alaw": "alaw",
    "ogg": "ogg-opus",
    "oggopus": "ogg-opus",
    "ogg_opus": "ogg-opus",
    "amr": "amr-nb",
    "amrnb": "amr-nb",
    "amr_nb": "amr-nb",
    "amrwb": "amr-wb",
    "amr_wb": "amr-wb",
    "mpeg": "mp3",
    "m4a": "aac",
}

# Keys each provider type accepts (besides ``type``), and which of them are required.
THINK_PROVIDER_KEYS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "open_ai": (
        frozenset({"model", "version", "temperature", "reasoning_mode"}),
        frozenset({"model"}),
    ),
    "anthropic": (frozenset({"model", "version", "temperature"}), frozenset({"model"})),
    # docs/protocol.md 12 #23: the model goes in a custom endpoint's URL, so it is never required.
    "google": (frozenset({"model", "version", "temperature"}), frozenset()),
    "groq": (frozenset({"model", "version", "temperature", "reasoning_mode"}), frozenset()),
    "aws_bedrock": (frozenset({"model", "temperature", "credentials"}), frozenset({"model"})),
    "nvidia": (frozenset({"model", "temperature"}), frozenset()),
    "deepgram": (
        frozenset({"model", "temperature", "reasoning_mode", "voice_prompt_opt_out"}),
        frozenset(),
    ),
}

SPEAK_PROVIDER_KEYS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "deepgram": (frozenset({"model", "version", "speed", "expressivity"}), frozenset({"model"})),
    "eleven_labs": (
        frozenset({"model_id", "version", "language", "language_code"}),
        frozenset({"model_id"}),
    ),
    # docs/protocol.md 12 #22: `speed` is documented for Cartesia in agent sessions.
    "cartesia": (
        frozenset({"model_id", "voice", "version", "language", "volume", "speed"}),
        frozenset({"model_id", "voice"}),
    ),
    # docs/protocol.md 12 #22: `language` is documented for OpenAI TTS ("multi" works).
    "open_ai": (
        frozenset({"model", "voice", "version", "language"}),
        frozenset({"model", "voice"}),
    ),
    # `language` is required; its deprecated alias `language_code` satisfies it too.
    "aws_polly": (
        frozenset({"voice", "language", "language_code", "engine", "credentials"}),
        frozenset({"voice", "engine", "credentials"}),
    ),
}

#: Provider types a Deepgram page once listed that the current API does not: said in the error.
RETIRED_PROVIDERS: dict[tuple[str, str], str] = {
    ("think", "x_ai"): (
        "an older Deepgram docs page listed 'x_ai', but the current API reference does not"
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
LISTEN_VERSIONS = ("v1", "v2")
THINK_LIVE_ONLY_FUNCTION_KEYS = (
    "agent_filler_interval_ms",
    "agent_filler_max_count",
    "initial_agent_filler",
)

#: ``InjectAgentMessage.behavior`` values (docs/protocol.md 5.8; an open enum).
INJECT_BEHAVIORS = ("default", "queue", "interrupt")
#: ``role`` of a conversation history item (docs/protocol.md 5.1.6; an open enum).
HISTORY_ROLES = ("user", "assistant")

_REASONING_MODES = ("none", "minimal", "low", "medium", "high")
_CREDENTIAL_TYPES = ("sts", "iam")

# Open enums inside providers: (what, provider type, key) -> known values.
_PROVIDER_ENUMS: dict[tuple[str, str, str], tuple[str, ...]] = {
    ("think", "open_ai", "reasoning_mode"): _REASONING_MODES,
    ("think", "groq", "reasoning_mode"): _REASONING_MODES,
    ("think", "deepgram", "reasoning_mode"): _REASONING_MODES,
    ("think", "open_ai", "version"): ("v1",),
    ("think", "anthropic", "version"): ("v1",),
    ("think", "groq", "version"): ("v1",),
    ("think", "google", "version"): ("ai-studio-v1beta", "gemini-enterprise-agent-v1", "v1beta"),
    ("speak", "deepgram", "version"): ("v1", "v2"),
    ("speak", "eleven_labs", "version"): ("v1",),
    ("speak", "open_ai", "version"): ("v1",),
    ("speak", "aws_polly", "engine"): ("generative", "long-form", "standard", "neural"),
}

# Known names that are only hints (near misses warn): (what, provider type, key) -> names.
_PROVIDER_HINTS: dict[tuple[str, str, str], tuple[str, ...]] = {
    ("listen", "deepgram", "model"): (
        "nova-3",
        "nova-2",
        "nova",
        "enhanced",
        "base",
        "flux-general-en",
        "flux-general-multi",
    ),
    ("think", "open_ai", "model"): (
        "gpt-5",
        "gpt-5-mini",
        "gpt-5-nano",
        "gpt-4.1",
        "gpt-4.1-mini",
        "gpt-4.1-nano",
        "gpt-4o",
        "gpt-4o-mini",
    ),
    ("think", "anthropic", "model"): (
        "claude-3-5-haiku-latest",
        "claude-sonnet-4-20250514",
        "claude-haiku-4-5",
        "claude-sonnet-4-5",
        "claude-sonnet-4-6",
        "claude-sonnet-5",
    ),
    ("think", "google", "model"): ("gemini-2.0-flash", "gemini-2.0-flash-lite", "gemini-2.5-flash"),
    ("think", "groq", "model"): ("openai/gpt-oss-20b",),
    ("think", "deepgram", "model"): ("think-fast", "phonellm-mini-alpha-2-fp8"),
    ("speak", "open_ai", "model"): ("tts-1", "tts-1-hd"),
    ("speak", "open_ai", "voice"): ("alloy", "echo", "fable", "onyx", "nova", "shimmer"),
    ("speak", "eleven_labs", "model_id"): (
        "eleven_turbo_v2_5",
        "eleven_monolingual_v1",
        "eleven_multilingual_v2",
    ),
    ("speak", "cartesia", "model_id"): ("sonic-2", "sonic-multilingual"),
}

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
_FUNCTION_ENDPOINT_KEYS = re.compile(
    r"agent\.think(\[\d+\])?\.functions\[\d+\]\.(url|method|headers)"
)


# ----------------------------------------------------------------------------------------------
# Small public helpers
# ----------------------------------------------------------------------------------------------


def closest(name: object, known: Iterable[str]) -> str | None:
    """The known name a user most probably meant, or ``None``.

    Tries, in order: ``name`` itself, a case-insensitive match, a well-known alias of an audio
    encoding (``pcm16`` -> ``linear16``, ``ulaw`` -> ``mulaw``), and :mod:`difflib`'s closest
    match (``promt`` -> ``prompt``). Only names in ``known`` are ever returned.

    Args:
        name: what the user wrote (anything that is not a string gives ``None``).
        known: the accepted names.
    """
    if not isinstance(name, str) or not name:
        return None
    names = [k for k in known if isinstance(k, str)]
    if name in names:
        return name
    folded = {k.casefold(): k for k in names}
    key = name.casefold().strip()
    if key in folded:
        return folded[key]
    alias = _ALIASES.get(key)
    if alias is not None and alias in names:
        return alias
    match = difflib.get_close_matches(key, list(folded), n=1, cutoff=0.6)
    return folded[match[0]] if match else None


def _near_miss(value: str, known: Collection[str]) -> str | None:
    """A known name ``value`` is probably a typo of (not a longer or shorter variant of it)."""
    if value in known:
        return None
    folded = {k.casefold(): k for k in known}
    if value.casefold() in folded:
        return folded[value.casefold()]
    match = difflib.get_close_matches(value.casefold(), list(folded), n=1, cutoff=0.8)
    if not match:
        return None
    candidate = match[0]
    if candidate.startswith(value.casefold()) or value.casefold().startswith(candidate):
        return None  # gpt-4 vs gpt-4o, nova-3-medical vs nova-3: variants, not typos
    return folded[candidate]


def _listing(values: Iterable[str]) -> str:
    return ", ".join(sorted(values))


def _unknown_problem(
    what: str,
    value: object,
    known: Iterable[str],
    escape: str,
    *,
    note: str | None = None,
) -> str:
    """``unknown <what> 'x' (did you mean 'y'?); accepted: ...; <escape>``."""
    known = list(known)
    text = f"unknown {what} {value!r}"
    suggestion = closest(value, known)
    if suggestion is not None and suggestion != value:
        text += f" (did you mean {suggestion!r}?)"
    text += f"; accepted: {_listing(known)}"
    if note:
        text += f"; {note}"
    return f"{text}; {escape}"


def _unknown_key_problem(key: str, accepted: Iterable[str], escape: str, where: str = "") -> str:
    accepted = sorted(set(accepted))
    text = f"unknown field '{key}'{where}"
    suggestion = closest(key, accepted)
    if suggestion is not None and suggestion != key:
        text += f" (did you mean '{suggestion}'?)"
    if accepted:
        text += f"; accepted here: {', '.join(accepted)}"
    return f"{text}; {escape}"


# ----------------------------------------------------------------------------------------------
# Normalisation (documented aliases)
# ----------------------------------------------------------------------------------------------


def _normalize_listen_provider(provider: Any) -> Any:
    """Rewrite a Flux provider's ``language_hint`` as ``language_hints`` (docs/protocol.md 12 #22)."""
    if not isinstance(provider, dict) or "language_hint" not in provider:
        return provider
    if provider.get("version") != "v2":
        return provider  # the alias is Flux's; elsewhere it stays an unknown key
    out = {k: v for k, v in provider.items() if k != "language_hint"}
    hint = provider["language_hint"]
    extra = hint if isinstance(hint, list) else [hint]
    hints = out.get("language_hints")
    if isinstance(hints, list):
        out["language_hints"] = hints + [h for h in extra if h not in hints]
    elif hints is None:
        out["language_hints"] = list(extra)
    else:  # a wrong type already: leave it for the type check to report
        out["language_hint"] = hint
    return out


def _normalize_listen(listen: Any) -> Any:
    if not isinstance(listen, dict) or "provider" not in listen:
        return listen
    provider = _normalize_listen_provider(listen["provider"])
    if provider is listen["provider"]:
        return listen
    return {**listen, "provider": provider}


def normalize_settings(data: dict[str, Any]) -> dict[str, Any]:
    """Rewrite the documented aliases of a ``Settings`` message into the form the server takes.

    Today one alias is known: on a Flux (``version: "v2"``) listen provider the docs write the
    singular ``language_hint`` (a code or a list); the official SDK accepts it and sends
    ``language_hints`` (docs/protocol.md 5.1.1 and 12 #22). Both given: the lists are merged.

    Args:
        data: the Settings as plain JSON data. It is not modified.

    Returns:
        A new dict (sharing the parts it did not change); anything that is not a dict is
        returned as given, for the validator to report.
    """
    if not isinstance(data, dict):
        return data
    out = dict(data)
    agent = out.get("agent")
    if isinstance(agent, dict) and "listen" in agent:
        listen = _normalize_listen(agent["listen"])
        if listen is not agent["listen"]:
            out["agent"] = {**agent, "listen": listen}
    return out


def normalize_client_message(data: dict[str, Any]) -> dict[str, Any]:
    """:func:`normalize_settings` for any client message (``UpdateListen`` takes the alias too).

    Args:
        data: one client message as plain JSON data. It is not modified.

    Returns:
        A new dict; anything that is not a dict is returned as given.
    """
    if not isinstance(data, dict):
        return data
    kind = data.get("type")
    if kind == "Settings":
        return normalize_settings(data)
    if kind == "UpdateListen" and "listen" in data:
        listen = _normalize_listen(data["listen"])
        if listen is not data["listen"]:
            return {**data, "listen": listen}
    return dict(data)


def sorted_keys(value: Any) -> Any:
    """Return ``value`` with every object's keys in alphabetical order (recursively)."""
    if isinstance(value, dict):
        return {k: sorted_keys(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [sorted_keys(v) for v in value]
    return value


# ----------------------------------------------------------------------------------------------
# The checking context: who is asking (client advice or emulated server) and what it noticed
# ----------------------------------------------------------------------------------------------


@dataclass
class _Ctx:
    """One validation run.

    Attributes:
        server: the emulator asks: unknown enum values are errors, hints are silent.
        escape: how to send the message anyway (validate=False or send_raw).
        advice: warnings collected for the client (emitted only when the check passes).
    """

    server: bool = False
    escape: str = SETTINGS_ESCAPE
    advice: list[str] = field(default_factory=list)

    def enum(self, value: object, known: Collection[str], path: str, what: str) -> None:
        """An open enum: unknown values warn (client) or are rejected (emulated server)."""
        if not isinstance(value, str) or value in known:
            return
        if self.server:
            raise SettingsError(path, _unknown_problem(what, value, known, self.escape))
        suggestion = closest(value, known)
        hint = f" (did you mean {suggestion!r}?)" if suggestion and suggestion != value else ""
        self.advice.append(
            f"{path}: this SDK does not know the {what} {value!r}{hint}; known: "
            f"{_listing(known)}. It is sent as given and the server decides."
        )

    def hint(self, value: object, known: Collection[str], path: str, what: str) -> None:
        """A free name with known examples: only a near miss warns, and only the client."""
        if self.server or not isinstance(value, str):
            return
        suggestion = _near_miss(value, known)
        if suggestion is not None:
            self.advice.append(
                f"{path}: this SDK does not know the {what} {value!r} (did you mean "
                f"{suggestion!r}?); it is sent as given and the server decides."
            )

    def emit(self) -> None:
        """Issue the collected advice as warnings (each text once per run)."""
        if self.server or not self.advice:
            return
        from .options import DeepgramAgentWarning

        for text in dict.fromkeys(self.advice):
            warnings.warn(text, DeepgramAgentWarning, stacklevel=4)


# ----------------------------------------------------------------------------------------------
# msgspec errors -> SettingsError
# ----------------------------------------------------------------------------------------------


def _join(base: str, key: str) -> str:
    if not base:
        return key
    if key.startswith("["):
        return base + key
    return f"{base}.{key}"


def _value_at(data: Any, tokens: list[str | int]) -> Any:
    node = data
    for token in tokens:
        if isinstance(token, int) and isinstance(node, list) and 0 <= token < len(node):
            node = node[token]
        elif isinstance(token, str) and isinstance(node, dict) and token in node:
            node = node[token]
        else:
            return None
    return node


def _accepted_fields(root: Any, rel_path: str, data: Any) -> tuple[list[str], str]:
    """The keys the object at ``rel_path`` (inside ``root``) accepts, and a "for the ..." note.

    Provider structs hold the keys of every provider type; the type (and for listen, the
    version) of the object in ``data`` narrows them to what that provider takes.
    """
    tokens = _path_tokens(rel_path)
    t = _type_at(tokens, root)
    if t is None:
        return [], ""
    struct = next((c for c in _choices(t) if isinstance(c, mi.StructType)), None)
    if struct is None:
        return [], ""
    obj = _value_at(data, tokens)
    kind = obj.get("type") if isinstance(obj, dict) else None
    if struct.cls is ListenProvider and isinstance(obj, dict):
        version = obj.get("version", "v1")
        keys = {"v1": LISTEN_V1_KEYS, "v2": LISTEN_V2_KEYS}.get(version)
        if keys is not None:
            return sorted(keys - {"type", "version"}), f" for a {version} listen provider"
    for cls, table, what in (
        (ThinkProvider, THINK_PROVIDER_KEYS, "think"),
        (SpeakProvider, SPEAK_PROVIDER_KEYS, "speak"),
    ):
        if struct.cls is cls and isinstance(kind, str) and kind in table:
            return sorted(table[kind][0]), f" for the {kind!r} {what} provider"
    return [f.encode_name for f in struct.fields], ""


def _error_from_msgspec(
    exc: msgspec.ValidationError, prefix: str, root: Any, data: Any, ctx: _Ctx
) -> SettingsError:
    text = str(exc)
    rel = ""
    m = _AT.search(text)
    if m:
        rel = m.group("path").lstrip(".")
        text = text[: m.start()]
    path = _join(prefix, rel) if rel else prefix
    if um := _UNKNOWN.match(text):
        key = um.group("key")
        full = _join(path, key)
        hint = _HINTS.get(full)
        if hint:
            problem = f"unknown field '{key}'; {hint}"
        elif _FUNCTION_ENDPOINT_KEYS.fullmatch(full):
            problem = (
                f"unknown field '{key}'; put url, method and headers inside the function's "
                "'endpoint' object"
            )
        else:
            accepted, where = _accepted_fields(root, rel, data)
            problem = _unknown_key_problem(key, accepted, ctx.escape, where)
    elif mm := _MISSING.match(text):
        full = _join(path, mm.group("key"))
        problem = f"required field '{mm.group('key')}' is missing"
    else:
        full = path
        problem = text[0].lower() + text[1:] if text else "invalid value"
    return SettingsError(full, problem)


def _convert(data: Any, typ: type[T], path: str, ctx: _Ctx) -> T:
    try:
        return msgspec.convert(data, typ)
    except msgspec.ValidationError as exc:
        raise _error_from_msgspec(exc, path, typ, data, ctx) from None


# ----------------------------------------------------------------------------------------------
# The rules msgspec cannot express
# ----------------------------------------------------------------------------------------------


def _check_credentials(provider: dict[str, Any], path: str, ctx: _Ctx) -> None:
    creds = provider.get("credentials")
    if isinstance(creds, dict):
        ctx.enum(
            creds.get("type"), _CREDENTIAL_TYPES, f"{path}.credentials.type", "credential type"
        )


def _check_provider(
    provider: dict[str, Any],
    table: dict[str, tuple[frozenset[str], frozenset[str]]],
    path: str,
    what: str,
    ctx: _Ctx,
) -> None:
    kind = provider.get("type")
    if kind not in table:
        note = RETIRED_PROVIDERS.get((what, kind)) if isinstance(kind, str) else None
        raise SettingsError(
            f"{path}.type",
            _unknown_problem(f"{what} provider type", kind, table, ctx.escape, note=note),
        )
    assert isinstance(kind, str)
    allowed, required = table[kind]
    for key in sorted(provider):
        if key != "type" and key not in allowed:
            raise SettingsError(
                f"{path}.{key}",
                _unknown_key_problem(
                    key, allowed, ctx.escape, f" for the {kind!r} {what} provider"
                ),
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
        if kind == "aws_polly" and "language" not in provider and "language_code" not in provider:
            raise SettingsError(
                f"{path}.language",
                "required field 'language' is missing for the 'aws_polly' speak provider "
                "(e.g. 'en-US')",
            )
    for key in sorted(provider):  # alphabetical, as the server reports
        if key == "credentials":
            _check_credentials(provider, path, ctx)
        known = _PROVIDER_ENUMS.get((what, kind, key))
        if known is not None:
            ctx.enum(provider[key], known, f"{path}.{key}", f"{kind} {key.replace('_', ' ')}")
        names = _PROVIDER_HINTS.get((what, kind, key))
        if names is not None:
            ctx.hint(provider[key], names, f"{path}.{key}", f"{kind} {what} {key}")


def _check_listen_provider(provider: dict[str, Any], path: str, ctx: _Ctx) -> None:
    kind = provider.get("type", "deepgram")
    if kind != "deepgram":
        raise SettingsError(
            f"{path}.type", _unknown_problem("listen provider type", kind, ["deepgram"], ctx.escape)
        )
    version = provider.get("version", "v1")
    if version == "v1":
        keys = LISTEN_V1_KEYS
    elif version == "v2":
        keys = LISTEN_V2_KEYS
        if "model" not in provider:
            raise SettingsError(f"{path}.model", "a v2 (Flux) listen provider needs a model")
    else:
        # An open enum: the keys of a version this SDK does not know are not checked per
        # version (each must still be a listen key this SDK knows of some version).
        ctx.enum(version, LISTEN_VERSIONS, f"{path}.version", "listen provider version")
        return
    for key in sorted(provider):
        if key not in keys:
            where = f" for a {version} listen provider"
            if version == "v1" and "version" not in provider and key in LISTEN_V2_KEYS:
                where += " (Flux keys need version: 'v2')"
            raise SettingsError(
                f"{path}.{key}",
                _unknown_key_problem(key, keys - {"type", "version"}, ctx.escape, where),
            )
    known_models = _PROVIDER_HINTS[("listen", "deepgram", "model")]
    ctx.hint(provider.get("model"), known_models, f"{path}.model", "listen model")


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _check_think(think: Any, path: str, ctx: _Ctx, *, think_live: bool) -> None:
    entries = _as_list(think)
    for i, entry in enumerate(entries):
        p = f"{path}[{i}]" if isinstance(think, list) else path
        if not isinstance(entry, dict):
            continue
        provider = entry.get("provider")
        if isinstance(provider, dict):
            _check_provider(provider, THINK_PROVIDER_KEYS, f"{p}.provider", "think", ctx)
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


def _check_speak(speak: Any, path: str, ctx: _Ctx) -> None:
    for i, entry in enumerate(_as_list(speak)):
        p = f"{path}[{i}]" if isinstance(speak, list) else path
        if isinstance(entry, dict) and isinstance(entry.get("provider"), dict):
            _check_provider(entry["provider"], SPEAK_PROVIDER_KEYS, f"{p}.provider", "speak", ctx)


def _check_context(context: Any, path: str, ctx: _Ctx) -> None:
    if not isinstance(context, dict):
        return
    for i, item in enumerate(context.get("messages") or []):
        p = f"{path}.messages[{i}]"
        if not isinstance(item, dict):
            raise SettingsError(p, "each context message must be a History object")
        if "function_calls" in item:
            _convert(item, HistoryFunctionCallsItem, p, ctx)
        else:
            _convert(item, HistoryConversationItem, p, ctx)
            ctx.enum(item.get("role"), HISTORY_ROLES, f"{p}.role", "history role")


def _check_audio(audio: Any, ctx: _Ctx) -> None:
    """Encodings (docs/protocol.md 4.1 and 4.2) and sample rates; the types are already checked."""
    if not isinstance(audio, dict):
        return
    inp = audio.get("input")
    if isinstance(inp, dict):
        enc = inp.get("encoding")
        if isinstance(enc, str) and enc not in INPUT_ENCODINGS:
            raise SettingsError(
                "audio.input.encoding",
                _unknown_problem("input encoding", enc, INPUT_ENCODINGS, ctx.escape),
            )
    out = audio.get("output")
    if isinstance(out, dict):
        enc = out.get("encoding")
        if isinstance(enc, str) and enc not in OUTPUT_ENCODINGS:
            if enc not in INPUT_ENCODINGS:
                raise SettingsError(
                    "audio.output.encoding",
                    _unknown_problem("output encoding", enc, OUTPUT_ENCODINGS, ctx.escape),
                )
            if not ctx.server:  # a known encoding the docs do not list for output
                ctx.advice.append(
                    f"audio.output.encoding: {enc!r} is an input encoding the docs do not list "
                    f"for agent output ({_listing(OUTPUT_ENCODINGS)}); it is sent as given and "
                    "the server decides."
                )
        ctx.enum(out.get("container"), OUTPUT_CONTAINERS, "audio.output.container", "container")
    for side in ("input", "output"):
        block = audio.get(side)
        rate = block.get("sample_rate") if isinstance(block, dict) else None
        if isinstance(rate, int) and rate <= 0:
            raise SettingsError(
                f"audio.{side}.sample_rate",
                f"the sample rate must be a positive number of Hz, not {rate}",
                code="INVALID_SETTINGS",
            )


def _check_agent(agent: Any, path: str, ctx: _Ctx) -> None:
    if not isinstance(agent, dict):
        return
    listen = agent.get("listen")
    if isinstance(listen, dict) and isinstance(listen.get("provider"), dict):
        _check_listen_provider(listen["provider"], f"{path}.listen.provider", ctx)
    if "think" in agent:
        _check_think(agent["think"], f"{path}.think", ctx, think_live="think_live" in agent)
    if "speak" in agent:
        _check_speak(agent["speak"], f"{path}.speak", ctx)
    if "context" in agent:
        _check_context(agent["context"], f"{path}.context", ctx)


def check_agent(agent: Any, path: str = "agent", *, as_server: bool = False) -> None:
    """Run the checks msgspec cannot express on an inline ``agent`` object (plain data).

    Args:
        agent: the ``agent`` object (anything else is ignored).
        path: its JSON path, for error messages.
        as_server: check as the emulated server does (see the module docstring).
    """
    ctx = _Ctx(server=as_server)
    _check_agent(normalize_settings({"agent": agent})["agent"], path, ctx)
    ctx.emit()


def _plain(data: Any) -> Any:
    if isinstance(data, msgspec.Struct):
        return msgspec.to_builtins(data)
    return data


def _check_settings(data: Any, ctx: _Ctx) -> Settings:
    plain = _plain(data)
    if not isinstance(plain, dict):
        raise SettingsError("", f"Settings must be a JSON object, not {type(plain).__name__}")
    plain = sorted_keys(whole_floats_to_int(normalize_settings(plain)))
    plain.setdefault("type", "Settings")
    if plain.get("type") != "Settings":
        raise SettingsError("type", f"expected 'Settings', got {plain.get('type')!r}")
    settings = _convert(plain, Settings, "", ctx)
    _check_agent(plain.get("agent"), "agent", ctx)
    _check_audio(plain.get("audio"), ctx)
    return settings


def check_settings(data: Any, *, as_server: bool = False) -> Settings:
    """Validate a ``Settings`` message the way the server does.

    Documented aliases are accepted (:func:`normalize_settings`); the returned struct holds the
    normalised form, which is what should be sent.

    Args:
        data: plain JSON data (a dict), or a :class:`Settings` struct.
        as_server: check as the emulated server: an unknown value of an open enum is an error
            instead of a :class:`~deepgram_agent.options.DeepgramAgentWarning`.

    Returns:
        The validated, typed ``Settings`` (whole-number floats already made ints).

    Raises:
        SettingsError: the first offending field, with its JSON path, what is accepted there,
            the closest match, and how to send it unchecked (``validate=False``).
    """
    ctx = _Ctx(server=as_server)
    settings = _check_settings(data, ctx)
    ctx.emit()
    return settings


def settings_warnings(data: Any) -> list[str]:
    """The advice :func:`check_settings` would give as warnings, as text (for tools like the CLI).

    Returns:
        The warning texts (empty when there are none, or when the Settings are invalid).
    """
    ctx = _Ctx()
    try:
        _check_settings(data, ctx)
    except SettingsError:
        return []
    return list(dict.fromkeys(ctx.advice))


# ----------------------------------------------------------------------------------------------
# Several problems at once (deepgram-agent validate)
# ----------------------------------------------------------------------------------------------

_TOKEN = re.compile(r"\[(\d+)\]|([^.\[\]]+)")
_NO_PLACEHOLDER = object()


def _path_tokens(path: str) -> list[str | int]:
    return [int(m.group(1)) if m.group(1) else m.group(2) for m in _TOKEN.finditer(path)]


def _choices(t: mi.Type) -> tuple[mi.Type, ...]:
    return t.types if isinstance(t, mi.UnionType) else (t,)


def _type_at(tokens: list[str | int], root: Any = Settings) -> mi.Type | None:
    """The declared type of the field at ``tokens`` in ``root`` (None: not found)."""
    t: mi.Type = mi.type_info(root)
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
    Warnings (open enums, near-miss names) are not problems: see :func:`settings_warnings`.

    Args:
        data: plain JSON data (a dict), or a :class:`Settings` struct.
        limit: the most problems to report.

    Returns:
        The problems, first one first (the one the server would report); empty when valid.
    """
    work = normalize_settings(copy.deepcopy(_plain(data)))
    problems: list[SettingsError] = []
    touched: set[str] = set()  # paths already reported or fixed: seeing one again is no progress
    removed: set[str] = set()  # a missing-field error there is caused by our own fix
    filled: set[str] = set()  # placeholders we inserted
    while len(problems) < limit:
        try:
            _check_settings(work, _Ctx())
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


# ----------------------------------------------------------------------------------------------
# Any client message
# ----------------------------------------------------------------------------------------------


def check_client_message(data: Any, *, as_server: bool = False) -> ClientMessage:
    """Validate any client message given as plain data (or a struct).

    An unknown ``InjectAgentMessage.behavior`` is kept and sent, with a warning (an open enum).

    Args:
        data: plain JSON data (a dict), or a client message struct.
        as_server: check as the emulated server (unknown enum values are errors).

    Raises:
        SettingsError: an unknown ``type`` or the first offending field.
    """
    plain = _plain(data)
    if not isinstance(plain, dict):
        raise SettingsError("", f"a message must be a JSON object, not {type(plain).__name__}")
    kind = plain.get("type")
    if kind == "Settings":
        return check_settings(plain, as_server=as_server)
    ctx = _Ctx(server=as_server, escape=MESSAGE_ESCAPE)
    cls = CLIENT_MESSAGE_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise SettingsError(
            "type", _unknown_problem("client message type", kind, CLIENT_MESSAGE_TYPES, ctx.escape)
        )
    plain = sorted_keys(whole_floats_to_int(normalize_client_message(plain)))
    behavior: str | None = None
    if kind == "InjectAgentMessage":
        value = plain.get("behavior")
        if isinstance(value, str) and value not in INJECT_BEHAVIORS:
            ctx.enum(value, INJECT_BEHAVIORS, "behavior", "InjectAgentMessage behavior")
            behavior = value
            plain = {k: v for k, v in plain.items() if k != "behavior"}
    msg = _convert(plain, cls, "", ctx)
    if behavior is not None:
        assert isinstance(msg, InjectAgentMessage)
        # The field is typed with the known values; the wire takes any string (open enum).
        msg = msgspec.structs.replace(msg, behavior=behavior)
    if kind == "UpdateThink":
        _check_think(plain["think"], "think", ctx, think_live=True)
    elif kind == "UpdateSpeak":
        _check_speak(plain["speak"], "speak", ctx)
    elif kind == "UpdateListen" and isinstance(plain["listen"].get("provider"), dict):
        _check_listen_provider(plain["listen"]["provider"], "listen.provider", ctx)
    elif (
        kind == "InjectAgentMessage"
        and "message" not in plain
        and plain.get("is_dynamic") is not True
    ):
        # docs/protocol.md 5.8/5.9: the static form needs message; only is_dynamic=true omits it.
        raise SettingsError(
            "message",
            "InjectAgentMessage needs message (the text to speak), unless is_dynamic is true",
        )
    ctx.emit()
    return msg


def server_error_description(err: SettingsError) -> str:
    """The ``Error.description`` the real server sends for this validation failure.

    Schema errors get the server's recorded text, which names only the path (docs/protocol.md 9.4);
    the SDK's own advice (closest match, ``validate=False``) never appears in it.
    """
    if err.code == "UNPARSABLE_CLIENT_MESSAGE" and err.path:
        return f"Error parsing client message. Check the {err.path} field against the API spec."
    if err.code == "UNPARSABLE_CLIENT_MESSAGE":
        return "Text message received from client did not match any of the formats we expect."
    problem = err.problem
    for escape in (SETTINGS_ESCAPE, MESSAGE_ESCAPE):
        problem = problem.replace(f"; {escape}", "")
    return f"Invalid settings: {err.path}: {problem}"


# Re-exported for the options layer: these names are the typed roots it builds.
__all__ += ["AgentSettings", "ListenProvider", "SpeakProvider", "ThinkProvider", "check_agent"]
