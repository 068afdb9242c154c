"""The seed API's option classes, mapped onto the Voice Agent v1 wire.

Users of the older Deepgram SDK build settings like this::

    SettingsOptions(
        agent=Agent(
            listen=Listen(model="nova-2", sample_rate=16000),
            think=Think(provider=Provider(type="open_ai"), model="gpt-4", instructions="..."),
            speak=Speak(model="aura-asteria-en"),
        )
    )

Those flat shapes are *not* what the server accepts (protocol.md 5.15 and 9.4). This module
maps them onto the nested wire shapes, and also accepts the wire's own names, so both spellings
below produce the same JSON::

    Listen(model="nova-3", sample_rate=16000)
    Listen(provider=Provider(type="deepgram", version="v1", model="nova-3"))  # + audio.input

Mapping (seed name -> wire location):

* ``Listen(model, language, smart_format, keyterms, version, Flux keys)`` ->
  ``agent.listen.provider``; ``Listen(encoding, sample_rate)`` -> ``audio.input``.
* ``Speak(model, voice, speed, ...)`` -> ``agent.speak.provider``;
  ``Speak(encoding, sample_rate, container, bitrate)`` -> ``audio.output``.
* ``Think(provider, model, temperature)`` -> ``agent.think.provider``;
  ``Think(instructions=...)`` (or ``prompt=``) -> ``agent.think.prompt``.
* ``Function(url, method, headers)`` -> ``functions[i].endpoint`` (the server rejects them at the
  function's top level).
* ``SettingsOptions(listen=, think=, speak=, greeting=, context=)`` -> ``agent.*``.

Defaults that go on the wire (the seed's defaults are what its users expect):

* ``audio`` is always sent: ``audio.input`` comes from ``Audio(input=...)``, else from the Listen,
  else ``linear16``/16000; ``audio.output`` from ``Audio(output=...)``, else from the Speak, else
  ``linear16``/24000/``container: none``.
* A seed-style ``Listen`` (no ``provider=``) sends ``type: deepgram``, ``version`` (``v2`` when the
  model starts with ``flux``, else ``v1``), ``model`` (default ``nova-2``) and, for v1,
  ``language`` (default ``en-US``) and ``smart_format`` (default true).
* A ``Speak`` with a ``deepgram`` provider and no model sends ``aura-asteria-en``.
* A ``Think`` with an ``open_ai`` provider (the default type) and no model sends ``gpt-4``; an
  empty ``instructions``/``prompt`` is left out.
* A function ``endpoint`` without ``method`` sends ``POST``.
* ``experimental``, ``mip_opt_out``, ``tags``, ``flags`` and the deprecated ``agent.language``
  are sent only when you set them (the server's defaults apply otherwise). An omitted
  listen/think/speak is omitted (the server's managed defaults apply).
* Wire-style input (``provider=...``, a plain dict) is sent as given, never padded with seed
  defaults (except the required keys above).

Seed fields with no place on the v1 wire (``Listen.channels``, ``interim_results``,
``vad_events``, ``endpointing``) are accepted and not sent; setting one emits a single
:class:`DeepgramAgentWarning` naming them. The audio fields of a ``Speak``/``Listen`` passed to
``UpdateSpeakOptions``/``UpdateListenOptions`` are not sent either: the audio format is fixed
for the session.

Everything is validated before it is sent (:mod:`deepgram_agent._validate`): a mistake raises
:class:`~deepgram_agent.exceptions.SettingsError` naming the server's JSON path
(``agent.think.functions[0].method``). Two sources that contradict each other (a Listen sample
rate and a different ``Audio(input=...)``; ``SettingsOptions(listen=...)`` and
``Agent(listen=...)``) raise ``SettingsError`` too. ``None`` always means "not set": no ``null``
is ever sent, and whole-number floats are sent as integers.

Escape hatch: ``SettingsOptions(..., extra={"agent": {"new_key": 1}})`` is deep-merged into the
JSON *after* the modelled part was validated, so keys this SDK does not know yet reach the
server. Dicts merge recursively; any other value (lists included) replaces; ``None`` removes the
key. Nothing else ever produces a key outside the schema.
"""

from __future__ import annotations

import copy
import json
import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar, Generic, TypeVar, overload

import msgspec

from . import messages
from ._codec import whole_floats_to_int
from ._validate import check_client_message, check_settings, normalize_settings
from .exceptions import SettingsError

__all__ = [
    "DeepgramAgentWarning",
    "SettingsOptions",
    "Agent",
    "Listen",
    "Speak",
    "Think",
    "Provider",
    "Function",
    "Parameters",
    "Properties",
    "Item",
    "Header",
    "Endpoint",
    "Audio",
    "Input",
    "Output",
    "Context",
    "Flags",
    "UpdatePromptOptions",
    "UpdateSpeakOptions",
    "UpdateThinkOptions",
    "UpdateListenOptions",
    "InjectAgentMessageOptions",
    "InjectUserMessageOptions",
    "FunctionCallResponse",
    "AgentKeepAlive",
    "coerce_settings",
    "coerce_client_message",
    "output_format",
    "input_format",
]

_T = TypeVar("_T")
_O = TypeVar("_O", bound="_Options")
_M = TypeVar("_M", bound="_MessageOptions")

DEFAULT_INPUT: dict[str, Any] = {"encoding": "linear16", "sample_rate": 16000}
DEFAULT_OUTPUT: dict[str, Any] = {"encoding": "linear16", "sample_rate": 24000, "container": "none"}

_SECRET_KEYS = frozenset(
    {
        "headers",
        "credentials",
        "authorization",
        "api_key",
        "access_key_id",
        "secret_access_key",
        "session_token",
        "token",
    }
)


class DeepgramAgentWarning(UserWarning):
    """An option was accepted but has no effect on the wire."""


# ----------------------------------------------------------------------------------------------
# Plumbing
# ----------------------------------------------------------------------------------------------


def _redact(value: Any, key: str = "") -> Any:
    """A copy of ``value`` safe to show in a repr (header values and credentials masked)."""
    if key in _SECRET_KEYS and value is not None:
        if isinstance(value, Mapping):
            return {k: "***" for k in value}
        if isinstance(value, list | tuple):
            return [h if isinstance(h, Header) else "***" for h in value]
        return "***"
    if isinstance(value, Mapping) and not isinstance(value, _Options | Provider):
        return {k: _redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v) for v in value]
    return value


class _Field(Generic[_T]):
    """A keyword option with a documented default that remembers whether it was set.

    Assigning ``None`` resets the option to "not set" (its default applies).
    """

    def __init__(self, default: _T) -> None:
        self.default = default
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> _Field[_T]: ...

    @overload
    def __get__(self, obj: _Options, owner: type | None = None) -> _T: ...

    def __get__(self, obj: _Options | None, owner: type | None = None) -> _T | _Field[_T]:
        if obj is None:
            return self
        value: _T = obj._given.get(self.name, self.default)
        return value

    def __set__(self, obj: _Options, value: _T | None) -> None:
        if value is None:
            obj._given.pop(self.name, None)
        else:
            obj._given[self.name] = value


class _Options:
    """Base of every option class: explicit-set tracking, repr, equality, JSON helpers."""

    _given: dict[str, Any]
    _PATH: ClassVar[str] = ""

    def __init__(self) -> None:
        object.__setattr__(self, "_given", {})

    def is_set(self, name: str) -> bool:
        """Whether option ``name`` was given explicitly (rather than left at its default)."""
        return name in self._given

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={_redact(v, k)!r}" for k, v in self._given.items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, _Options)
        return self._given == other._given

    def _build(self, path: str) -> dict[str, Any]:  # pragma: no cover - overridden
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        """The wire JSON of this object (a fragment for building blocks), ready to encode."""
        out: dict[str, Any] = whole_floats_to_int(self._build(self._PATH))
        return out

    def to_json(self) -> str:
        """:meth:`to_dict` as compact JSON text."""
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_dict(cls: type[_O], data: Mapping[str, Any]) -> _O:
        """Build the object from its wire JSON (see each class)."""
        if not isinstance(data, Mapping):
            raise TypeError(f"{cls.__name__}.from_dict() takes a dict, not {type(data).__name__}")
        return cls._from_wire(dict(data))

    @classmethod
    def from_json(cls: type[_O], text: str | bytes) -> _O:
        """Build the object from JSON text produced by :meth:`to_json` (or the server's shape)."""
        return cls.from_dict(_parse_json(text, cls._PATH))

    @classmethod
    def _from_wire(cls: type[_O], data: dict[str, Any]) -> _O:
        return cls(**data)


def _parse_json(text: str | bytes | bytearray, path: str = "") -> dict[str, Any]:
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SettingsError(path, f"not valid JSON ({exc}); pass a JSON object") from None
    if not isinstance(data, dict):
        raise SettingsError(path, f"expected a JSON object, got {type(data).__name__}")
    return data


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _plain(value: Any, path: str) -> Any:
    """Turn option objects, mappings, structs and sequences into plain JSON data.

    ``None`` values inside mappings are dropped: ``None`` means "not set" and is never sent.
    """
    if isinstance(value, _Options):
        return value._build(path)
    if isinstance(value, msgspec.Struct):
        return msgspec.to_builtins(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v, _join(path, str(k))) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_plain(v, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


def _merge_flat(
    base: dict[str, Any], flat: Mapping[str, Any], path: str, owner: str
) -> dict[str, Any]:
    """Put explicitly given flat options into ``base``; a different existing value is an error."""
    for key, value in flat.items():
        if value is None:
            continue
        if key in base and base[key] != value:
            raise SettingsError(
                _join(path, key),
                f"{owner}({key}={value!r}) contradicts {key}={base[key]!r} given inside "
                "provider=...; set it in one place",
            )
        base[key] = value
    return base


def _seq(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


# ----------------------------------------------------------------------------------------------
# Provider, Endpoint, Header (wire-style building blocks: emit what you give them)
# ----------------------------------------------------------------------------------------------


class Provider(Mapping[str, Any]):
    """A provider object (``agent.listen/think/speak.provider``), tagged by ``type``.

    Keys vary by provider type (protocol.md 5.1), so any keyword is accepted and sent as given;
    the keys each type accepts are checked before sending. ``type`` may be left out: it then
    defaults to where the provider is used (``open_ai`` for Think, ``deepgram`` for Listen and
    Speak). Reads work as attributes or items (``p.model``, ``p["model"]``); an unset key reads
    as ``None``.

    Example:
        ``Provider(type="anthropic", model="claude-haiku-4-5", temperature=0.3)``
    """

    _fields: dict[str, Any]

    def __init__(self, *, type: str | None = None, **fields: Any) -> None:
        data: dict[str, Any] = {}
        if type is not None:
            data["type"] = type
        data.update({k: v for k, v in fields.items() if v is not None})
        object.__setattr__(self, "_fields", data)

    def __getitem__(self, key: str) -> Any:
        return self._fields[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return self._fields.get(name)

    def __setattr__(self, name: str, value: Any) -> None:
        if value is None:
            self._fields.pop(name, None)
        else:
            self._fields[name] = value

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={_redact(v, k)!r}" for k, v in self._fields.items())
        return f"Provider({args})"

    def to_dict(self) -> dict[str, Any]:
        """The provider as plain JSON data (not validated on its own)."""
        out: dict[str, Any] = whole_floats_to_int(_plain(self._fields, "provider"))
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Provider:
        """A Provider holding exactly the keys of ``data``."""
        return cls(**dict(data))


class Header(_Options):
    """One HTTP header of the legacy list form; sent inside ``headers`` as ``{name: value}``.

    ``key`` is accepted as an older spelling of ``name``. The value is hidden in the repr.
    """

    name: _Field[str | None] = _Field(None)
    value: _Field[str | None] = _Field(None)

    def __init__(
        self, *, name: str | None = None, value: str | None = None, key: str | None = None
    ) -> None:
        super().__init__()
        self.name = name if name is not None else key
        self.value = value

    def __repr__(self) -> str:
        return f"Header(name={self.name!r}, value='***')"

    def _build(self, path: str) -> dict[str, Any]:
        if not self.name or self.value is None:
            raise SettingsError(path, "a Header needs both name= and value=")
        return {self.name: self.value}


def _headers(value: Any, path: str) -> dict[str, Any]:
    if isinstance(value, Mapping):
        out: dict[str, Any] = _plain(value, path)
        return out
    if isinstance(value, list | tuple):
        merged: dict[str, Any] = {}
        for i, item in enumerate(value):
            if isinstance(item, Header):
                merged.update(item._build(f"{path}[{i}]"))
            elif (
                isinstance(item, Mapping)
                and {"value"} <= set(item)
                and ("name" in item or "key" in item)
            ):
                merged[str(item.get("name", item.get("key")))] = item["value"]
            else:
                raise SettingsError(f"{path}[{i}]", "each header must be a Header(name, value)")
        return merged
    raise SettingsError(path, "headers must be a dict {name: value} or a list of Header")


class Endpoint(_Options):
    """An HTTP endpoint: ``{url, method?, headers?}``.

    Used for a server-side function (``functions[i].endpoint``; ``method`` defaults to POST
    there) and for a bring-your-own LLM or TTS (``think.endpoint``/``speak.endpoint``, which take
    no ``method``). ``headers`` is a ``{name: value}`` dict or a list of :class:`Header`; header
    values never appear in the repr.
    """

    _PATH = "endpoint"
    url: _Field[str | None] = _Field(None)
    method: _Field[str | None] = _Field(None)
    headers: _Field[Mapping[str, str] | Sequence[Header] | None] = _Field(None)

    def __init__(
        self,
        *,
        url: str | None = None,
        method: str | None = None,
        headers: Mapping[str, str] | Sequence[Header] | None = None,
    ) -> None:
        super().__init__()
        self.url = url
        self.method = method
        self.headers = headers

    def _build(self, path: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.url is not None:
            out["url"] = self.url
        if self.method is not None:
            out["method"] = self.method
        if self.headers is not None:
            out["headers"] = _headers(self.headers, _join(path, "headers"))
        return out


def _endpoint_dict(value: Any, path: str, *, kind: str) -> dict[str, Any]:
    out = _plain(value, path)
    if not isinstance(out, dict):
        raise SettingsError(path, "endpoint must be an Endpoint(url=..., headers=...) or a dict")
    if isinstance(out.get("headers"), list):
        out["headers"] = _headers(out["headers"], _join(path, "headers"))
    if kind != "function" and "method" in out:
        raise SettingsError(
            _join(path, "method"),
            f"a {kind} endpoint takes only url and headers (no method); remove method",
        )
    return out


# ----------------------------------------------------------------------------------------------
# Audio
# ----------------------------------------------------------------------------------------------


def _telephony_rate(obj: Any) -> Any:
    """The sample rate to send: the one given, else 8000 for G.711 (mulaw/alaw, the telephony
    formats, protocol.md 4), else the class default."""
    if not obj.is_set("sample_rate") and obj.encoding in ("mulaw", "alaw"):
        return 8000
    return obj.sample_rate


class Input(_Options):
    """``audio.input``: the format of the user audio you send (both keys are always sent)."""

    _PATH = "audio.input"
    encoding: _Field[str] = _Field("linear16")
    sample_rate: _Field[int | float] = _Field(16000)

    def __init__(
        self, *, encoding: str | None = None, sample_rate: int | float | None = None
    ) -> None:
        super().__init__()
        self.encoding = encoding
        self.sample_rate = sample_rate

    def _build(self, path: str) -> dict[str, Any]:
        return {"encoding": self.encoding, "sample_rate": _telephony_rate(self)}


class Output(_Options):
    """``audio.output``: the format of the agent audio you receive.

    Defaults: ``linear16``, 24000 Hz, ``container: none`` (bare samples); ``bitrate`` only when
    set (compressed encodings).
    """

    _PATH = "audio.output"
    encoding: _Field[str] = _Field("linear16")
    sample_rate: _Field[int | float] = _Field(24000)
    container: _Field[str] = _Field("none")
    bitrate: _Field[int | float | None] = _Field(None)

    def __init__(
        self,
        *,
        encoding: str | None = None,
        sample_rate: int | float | None = None,
        container: str | None = None,
        bitrate: int | float | None = None,
    ) -> None:
        super().__init__()
        self.encoding = encoding
        self.sample_rate = sample_rate
        self.container = container
        self.bitrate = bitrate

    def _build(self, path: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "encoding": self.encoding,
            "sample_rate": _telephony_rate(self),
            "container": self.container,
        }
        if self.bitrate is not None:
            out["bitrate"] = self.bitrate
        return out


class Audio(_Options):
    """``audio``: ``Audio(input=Input(...), output=Output(...))``.

    A side left out is derived from the Listen (input) or Speak (output), else the defaults.
    """

    _PATH = "audio"
    input: _Field[Input | Mapping[str, Any] | None] = _Field(None)
    output: _Field[Output | Mapping[str, Any] | None] = _Field(None)

    def __init__(
        self,
        *,
        input: Input | Mapping[str, Any] | None = None,
        output: Output | Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.input = input
        self.output = output

    def _build(self, path: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.input is not None:
            out["input"] = _plain(self.input, _join(path, "input"))
        if self.output is not None:
            out["output"] = _plain(self.output, _join(path, "output"))
        return out

    @classmethod
    def _from_wire(cls, data: dict[str, Any]) -> Audio:
        inp, outp = data.pop("input", None), data.pop("output", None)
        return cls(
            input=Input(**inp) if isinstance(inp, Mapping) else inp,
            output=Output(**outp) if isinstance(outp, Mapping) else outp,
            **data,
        )


# ----------------------------------------------------------------------------------------------
# Listen
# ----------------------------------------------------------------------------------------------

_LISTEN_PROVIDER_KEYS = (
    "version",
    "model",
    "language",
    "smart_format",
    "keyterms",
    "language_hints",
    "eot_threshold",
    "eager_eot_threshold",
    "eot_timeout_ms",
)
_LISTEN_SEED_ONLY = ("channels", "interim_results", "vad_events", "endpointing")


class Listen(_Options):
    """Speech-to-text: ``agent.listen`` plus the input audio format.

    Seed style: ``Listen(model="nova-2", language="en-US", smart_format=True,
    encoding="linear16", sample_rate=16000)``. Wire style: ``Listen(provider=Provider(
    type="deepgram", version="v2", model="flux-general-en", eot_threshold=0.8))``; flat keys
    given next to ``provider=`` are merged into it. ``encoding``/``sample_rate`` go to
    ``audio.input``. ``channels``, ``interim_results``, ``vad_events`` and ``endpointing`` have
    no place on the v1 wire: accepted, not sent, and a :class:`DeepgramAgentWarning` says so.

    Reading ``model``, ``language``, ... gives the value that will be sent (seed defaults
    included), or ``None`` when nothing will be sent.
    """

    _PATH = "agent.listen"
    encoding: _Field[str] = _Field("linear16")
    sample_rate: _Field[int | float] = _Field(16000)
    provider: _Field[Provider | Mapping[str, Any] | None] = _Field(None)
    channels: _Field[int] = _Field(1)
    interim_results: _Field[bool] = _Field(True)
    vad_events: _Field[bool] = _Field(True)
    endpointing: _Field[bool | int] = _Field(True)

    def __init__(
        self,
        *,
        model: str | None = None,
        language: str | None = None,
        smart_format: bool | None = None,
        encoding: str | None = None,
        sample_rate: int | float | None = None,
        keyterms: Sequence[str] | None = None,
        version: str | None = None,
        language_hints: Sequence[str] | None = None,
        eot_threshold: float | None = None,
        eager_eot_threshold: float | None = None,
        eot_timeout_ms: int | None = None,
        provider: Provider | Mapping[str, Any] | None = None,
        channels: int | None = None,
        interim_results: bool | None = None,
        vad_events: bool | None = None,
        endpointing: bool | int | None = None,
    ) -> None:
        super().__init__()
        flat = {
            "model": model,
            "language": language,
            "smart_format": smart_format,
            "keyterms": list(keyterms) if keyterms is not None else None,
            "version": version,
            "language_hints": list(language_hints) if language_hints is not None else None,
            "eot_threshold": eot_threshold,
            "eager_eot_threshold": eager_eot_threshold,
            "eot_timeout_ms": eot_timeout_ms,
        }
        for key, value in flat.items():
            if value is not None:
                self._given[key] = value
        self.provider = provider
        self.encoding = encoding
        self.sample_rate = sample_rate
        self.channels = channels
        self.interim_results = interim_results
        self.vad_events = vad_events
        self.endpointing = endpointing
        ignored = [name for name in _LISTEN_SEED_ONLY if self.is_set(name)]
        if ignored:
            warnings.warn(
                f"Listen({', '.join(ignored)}) has no equivalent in the Voice Agent v1 API and "
                "is not sent (the agent streams mono audio and detects turns itself); "
                "remove the argument to silence this warning",
                DeepgramAgentWarning,
                stacklevel=2,
            )

    def _provider(self, path: str) -> dict[str, Any]:
        flat = {k: self._given[k] for k in _LISTEN_PROVIDER_KEYS if k in self._given}
        if self.provider is None:
            model = flat.get("model", "nova-2")
            version = flat.get("version") or ("v2" if str(model).startswith("flux") else "v1")
            out: dict[str, Any] = {"type": "deepgram", "version": version, "model": model}
            if version == "v1":
                out["language"] = flat.get("language", "en-US")
                out["smart_format"] = flat.get("smart_format", True)
            out.update({k: v for k, v in flat.items() if k not in out})
            return out
        given = _plain(self.provider, path)
        if not isinstance(given, dict):
            raise SettingsError(path, "provider must be a Provider(...) or a dict")
        given = {"type": "deepgram", **given}
        return _merge_flat(given, flat, path, "Listen")

    def _safe_provider(self) -> dict[str, Any]:
        try:
            return self._provider("agent.listen.provider")
        except SettingsError:
            return {}

    @property
    def model(self) -> str | None:
        """The STT model that will be sent (seed default ``nova-2``)."""
        return self._safe_provider().get("model")

    @property
    def language(self) -> str | None:
        """The language that will be sent (seed default ``en-US`` for Nova models)."""
        return self._safe_provider().get("language")

    @property
    def smart_format(self) -> bool | None:
        """Whether smart formatting is requested (seed default true for Nova models)."""
        return self._safe_provider().get("smart_format")

    @property
    def version(self) -> str | None:
        """The listen provider version: ``v1`` (Nova) or ``v2`` (Flux)."""
        return self._safe_provider().get("version")

    @property
    def keyterms(self) -> list[str] | None:
        """Keyterm prompts, if any."""
        return self._safe_provider().get("keyterms")

    def _audio_input(self) -> tuple[dict[str, Any], set[str]]:
        explicit = {k for k in ("encoding", "sample_rate") if self.is_set(k)}
        if "encoding" in explicit and self.encoding in ("mulaw", "alaw"):
            explicit.add("sample_rate")  # G.711 implies 8000 Hz unless a rate was given
        return {"encoding": self.encoding, "sample_rate": _telephony_rate(self)}, explicit

    def _build(self, path: str) -> dict[str, Any]:
        return {"provider": self._provider(_join(path, "provider"))}

    @classmethod
    def _from_wire(cls, data: dict[str, Any]) -> Listen:
        provider = data.pop("provider", None)
        if data:
            key = sorted(data)[0]
            raise SettingsError(
                f"{cls._PATH}.{key}", f"unknown field '{key}'; agent.listen holds only 'provider'"
            )
        return cls(provider=Provider.from_dict(provider) if isinstance(provider, Mapping) else None)


# ----------------------------------------------------------------------------------------------
# Speak
# ----------------------------------------------------------------------------------------------

_SPEAK_PROVIDER_KEYS = (
    "model",
    "model_id",
    "voice",
    "speed",
    "version",
    "language",
    "expressivity",
)
_SPEAK_AUDIO_KEYS = ("encoding", "sample_rate", "container", "bitrate")


class Speak(_Options):
    """Text-to-speech: ``agent.speak`` (or ``UpdateSpeak.speak``) plus the output audio format.

    Seed style: ``Speak(model="aura-asteria-en", encoding="linear16", sample_rate=24000,
    container="none")``. Wire style: ``Speak(provider=Provider(type="eleven_labs",
    model_id="eleven_turbo_v2_5"), endpoint=Endpoint(url=..., headers=...))``. Flat provider
    keys (``model``, ``voice``, ``speed``, ...) are merged into the provider (default type
    ``deepgram``, default model ``aura-asteria-en`` for it). ``encoding``, ``sample_rate``,
    ``container`` and ``bitrate`` go to ``audio.output``. A list of Speak is a fallback chain.
    """

    _PATH = "agent.speak"
    encoding: _Field[str] = _Field("linear16")
    sample_rate: _Field[int | float] = _Field(24000)
    container: _Field[str] = _Field("none")
    bitrate: _Field[int | float | None] = _Field(None)
    provider: _Field[Provider | Mapping[str, Any] | None] = _Field(None)
    endpoint: _Field[Endpoint | Mapping[str, Any] | None] = _Field(None)

    def __init__(
        self,
        *,
        model: str | None = None,
        encoding: str | None = None,
        sample_rate: int | float | None = None,
        container: str | None = None,
        bitrate: int | float | None = None,
        provider: Provider | Mapping[str, Any] | None = None,
        endpoint: Endpoint | Mapping[str, Any] | None = None,
        model_id: str | None = None,
        voice: str | Mapping[str, str] | None = None,
        speed: float | None = None,
        version: str | None = None,
        language: str | None = None,
        expressivity: int | None = None,
    ) -> None:
        super().__init__()
        flat = {
            "model": model,
            "model_id": model_id,
            "voice": voice,
            "speed": speed,
            "version": version,
            "language": language,
            "expressivity": expressivity,
        }
        for key, value in flat.items():
            if value is not None:
                self._given[key] = value
        self.provider = provider
        self.endpoint = endpoint
        self.encoding = encoding
        self.sample_rate = sample_rate
        self.container = container
        self.bitrate = bitrate

    def _provider(self, path: str) -> dict[str, Any]:
        flat = {k: _plain(self._given[k], path) for k in _SPEAK_PROVIDER_KEYS if k in self._given}
        given = _plain(self.provider, path) if self.provider is not None else {}
        if not isinstance(given, dict):
            raise SettingsError(path, "provider must be a Provider(...) or a dict")
        out = _merge_flat({"type": "deepgram", **given}, flat, path, "Speak")
        if out["type"] == "deepgram" and "model" not in out:
            out["model"] = "aura-asteria-en"
        return out

    @property
    def model(self) -> str | None:
        """The TTS model that will be sent (seed default ``aura-asteria-en`` for Deepgram)."""
        try:
            return self._provider("agent.speak.provider").get("model")
        except SettingsError:
            return None

    def _audio_output(self) -> tuple[dict[str, Any], set[str]]:
        explicit = {k for k in _SPEAK_AUDIO_KEYS if self.is_set(k)}
        if "encoding" in explicit and self.encoding in ("mulaw", "alaw"):
            explicit.add("sample_rate")  # G.711 implies 8000 Hz unless a rate was given
        out: dict[str, Any] = {
            "encoding": self.encoding,
            "sample_rate": _telephony_rate(self),
            "container": self.container,
        }
        if self.bitrate is not None:
            out["bitrate"] = self.bitrate
        return out, explicit

    def _build(self, path: str) -> dict[str, Any]:
        out: dict[str, Any] = {"provider": self._provider(_join(path, "provider"))}
        if self.endpoint is not None:
            out["endpoint"] = _endpoint_dict(self.endpoint, _join(path, "endpoint"), kind="speak")
        return out

    @classmethod
    def _from_wire(cls, data: dict[str, Any]) -> Speak:
        provider, endpoint = data.pop("provider", None), data.pop("endpoint", None)
        if data:
            key = sorted(data)[0]
            raise SettingsError(
                f"{cls._PATH}.{key}",
                f"unknown field '{key}'; agent.speak holds only 'provider' and 'endpoint'",
            )
        return cls(
            provider=Provider.from_dict(provider) if isinstance(provider, Mapping) else provider,
            endpoint=Endpoint(**endpoint) if isinstance(endpoint, Mapping) else endpoint,
        )


# ----------------------------------------------------------------------------------------------
# Think, functions
# ----------------------------------------------------------------------------------------------


class Item(_Options):
    """One JSON-Schema node (a property's schema, or an array's ``items``).

    ``Item(type="string", description="City name")``; any other JSON-Schema keyword may be
    passed (``enum=[...]``, ``items=Item(...)``, ``properties={...}``, ``minimum=0``).
    """

    def __init__(
        self, *, type: str | None = None, description: str | None = None, **schema: Any
    ) -> None:
        super().__init__()
        if type is not None:
            self._given["type"] = type
        if description is not None:
            self._given["description"] = description
        self._given.update({k: v for k, v in schema.items() if v is not None})

    def _build(self, path: str) -> dict[str, Any]:
        out: dict[str, Any] = _plain(self._given, path)
        return out

    @property
    def type(self) -> str | None:
        """The schema's ``type``."""
        value: str | None = self._given.get("type")
        return value

    @property
    def description(self) -> str | None:
        """The schema's ``description``."""
        value: str | None = self._given.get("description")
        return value


class Properties(Mapping[str, Any]):
    """A function's ``parameters.properties``: a map of parameter name -> JSON-Schema.

    ``Properties(location=Item(type="string"))`` or ``Properties({"location": {...}})``.
    A plain dict works everywhere a Properties does.
    """

    def __init__(self, schemas: Mapping[str, Any] | None = None, /, **named: Any) -> None:
        self._schemas: dict[str, Any] = dict(schemas or {})
        self._schemas.update(named)

    def __getitem__(self, key: str) -> Any:
        return self._schemas[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._schemas)

    def __len__(self) -> int:
        return len(self._schemas)

    def __repr__(self) -> str:
        return f"Properties({self._schemas!r})"

    def to_dict(self) -> dict[str, Any]:
        """The properties as plain JSON-Schema data."""
        return _properties(self, "properties")


def _properties(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise SettingsError(
            path, "properties must be a dict of name -> JSON-Schema (or Properties)"
        )
    out: dict[str, Any] = {}
    for name, schema in value.items():
        if not isinstance(schema, Mapping | Item | Properties):
            raise SettingsError(
                _join(path, str(name)),
                "each property must be a JSON-Schema object such as {'type': 'string'} "
                f"or Item(type='string'), not {type(schema).__name__}",
            )
        out[str(name)] = _plain(schema, _join(path, str(name)))
    return out


class Parameters(_Options):
    """A function's ``parameters``: a JSON-Schema object.

    ``Parameters(properties={"city": {"type": "string"}}, required=["city"])``; ``type``
    defaults to ``object`` and ``properties`` to ``{}``. Extra JSON-Schema keywords
    (``additionalProperties=False``) are passed through.
    """

    type: _Field[str] = _Field("object")
    properties: _Field[Properties | Mapping[str, Any] | None] = _Field(None)
    required: _Field[Sequence[str] | None] = _Field(None)

    def __init__(
        self,
        *,
        type: str | None = None,
        properties: Properties | Mapping[str, Any] | None = None,
        required: Sequence[str] | None = None,
        **schema: Any,
    ) -> None:
        super().__init__()
        self.type = type
        self.properties = properties
        self.required = list(required) if required is not None else None
        self._given.update({k: v for k, v in schema.items() if v is not None})

    def _build(self, path: str) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        out["properties"] = _properties(self.properties or {}, _join(path, "properties"))
        if self.required is not None:
            out["required"] = list(self.required)
        for key, value in self._given.items():
            if key not in ("type", "properties", "required"):
                out[key] = _plain(value, _join(path, key))
        return out


class Function(_Options):
    """A function the LLM may call (``agent.think.functions[i]``).

    Without an endpoint the function is client-side (you answer the ``FunctionCallRequest``).
    With ``endpoint=Endpoint(url=..., method=..., headers=...)`` the server calls it; the seed's
    ``Function(url=..., method=..., headers=...)`` is mapped into ``endpoint`` (the server rejects
    those keys at the function's top level).
    """

    _PATH = "agent.think.functions[0]"
    name: _Field[str | None] = _Field(None)
    description: _Field[str | None] = _Field(None)
    parameters: _Field[Parameters | Mapping[str, Any] | None] = _Field(None)
    endpoint: _Field[Endpoint | Mapping[str, Any] | None] = _Field(None)
    url: _Field[str | None] = _Field(None)
    method: _Field[str | None] = _Field(None)
    headers: _Field[Mapping[str, str] | Sequence[Header] | None] = _Field(None)
    defer_until_eot: _Field[bool | None] = _Field(None)
    initial_agent_filler: _Field[bool | None] = _Field(None)
    agent_filler_max_count: _Field[int | None] = _Field(None)
    agent_filler_interval_ms: _Field[int | None] = _Field(None)

    def __init__(
        self,
        *,
        name: str | None = None,
        description: str | None = None,
        parameters: Parameters | Mapping[str, Any] | None = None,
        endpoint: Endpoint | Mapping[str, Any] | None = None,
        url: str | None = None,
        method: str | None = None,
        headers: Mapping[str, str] | Sequence[Header] | None = None,
        defer_until_eot: bool | None = None,
        initial_agent_filler: bool | None = None,
        agent_filler_max_count: int | None = None,
        agent_filler_interval_ms: int | None = None,
    ) -> None:
        super().__init__()
        self.name = name
        self.description = description
        self.parameters = parameters
        self.endpoint = endpoint
        self.url = url
        self.method = method
        self.headers = headers
        self.defer_until_eot = defer_until_eot
        self.initial_agent_filler = initial_agent_filler
        self.agent_filler_max_count = agent_filler_max_count
        self.agent_filler_interval_ms = agent_filler_interval_ms

    def _build(self, path: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.name is not None:
            out["name"] = self.name
        if self.description is not None:
            out["description"] = self.description
        if self.parameters is not None:
            params = _plain(self.parameters, _join(path, "parameters"))
            if isinstance(params, dict) and "properties" in params:
                params["properties"] = _properties(
                    params["properties"], _join(path, "parameters.properties")
                )
            out["parameters"] = params
        ep_path = _join(path, "endpoint")
        endpoint = (
            _endpoint_dict(self.endpoint, ep_path, kind="function")
            if self.endpoint is not None
            else {}
        )
        flat: dict[str, Any] = {"url": self.url, "method": self.method}
        if self.headers is not None:
            flat["headers"] = _headers(self.headers, _join(ep_path, "headers"))
        for key, value in flat.items():
            if value is None:
                continue
            if key in endpoint and endpoint[key] != value:
                raise SettingsError(
                    _join(ep_path, key),
                    f"Function({key}=...) contradicts endpoint.{key}; give the endpoint once "
                    "(endpoint=Endpoint(url=..., method=..., headers=...))",
                )
            endpoint[key] = value
        if endpoint or self.endpoint is not None:
            if "url" not in endpoint:
                raise SettingsError(
                    _join(ep_path, "url"),
                    "a server-side function endpoint needs a url; leave method/headers out "
                    "for a client-side function",
                )
            endpoint.setdefault("method", "POST")
            out["endpoint"] = endpoint
        for key in (
            "defer_until_eot",
            "initial_agent_filler",
            "agent_filler_max_count",
            "agent_filler_interval_ms",
        ):
            if self.is_set(key):
                out[key] = self._given[key]
        return out

    @classmethod
    def _from_wire(cls, data: dict[str, Any]) -> Function:
        endpoint = data.pop("endpoint", None)
        if isinstance(endpoint, Mapping):
            endpoint = Endpoint(**endpoint)
        return cls(endpoint=endpoint, **data)


class Think(_Options):
    """The LLM: ``agent.think`` (or ``UpdateThink.think``).

    Seed style: ``Think(provider=Provider(type="open_ai"), model="gpt-4", instructions="...",
    functions=[Function(...)])``. ``model``, ``temperature`` and ``reasoning_mode`` go into the
    provider (type defaults to ``open_ai``, whose model defaults to ``gpt-4``); ``instructions``
    (or the wire's ``prompt``) becomes ``prompt``. ``endpoint`` is a bring-your-own LLM
    (url + headers). A list of Think is a fallback chain.
    """

    _PATH = "agent.think"
    provider: _Field[Provider | Mapping[str, Any] | None] = _Field(None)
    instructions: _Field[str] = _Field("")
    functions: _Field[Sequence[Function | Mapping[str, Any]] | None] = _Field(None)
    endpoint: _Field[Endpoint | Mapping[str, Any] | None] = _Field(None)
    context_length: _Field[int | float | str | None] = _Field(None)

    def __init__(
        self,
        *,
        provider: Provider | Mapping[str, Any] | None = None,
        model: str | None = None,
        instructions: str | None = None,
        prompt: str | None = None,
        functions: Sequence[Function | Mapping[str, Any]] | None = None,
        endpoint: Endpoint | Mapping[str, Any] | None = None,
        temperature: float | None = None,
        reasoning_mode: str | None = None,
        context_length: int | float | str | None = None,
    ) -> None:
        super().__init__()
        self.provider = provider
        for key, value in (
            ("model", model),
            ("temperature", temperature),
            ("reasoning_mode", reasoning_mode),
        ):
            if value is not None:
                self._given[key] = value
        self.instructions = instructions
        if prompt is not None:
            self._given["prompt"] = prompt
        self.functions = list(functions) if functions is not None else None
        self.endpoint = endpoint
        self.context_length = context_length

    @property
    def prompt(self) -> str:
        """The system prompt that will be sent (``instructions`` or ``prompt``)."""
        value: str = self._given.get("prompt", self.instructions)
        return value

    @property
    def model(self) -> str | None:
        """The LLM model that will be sent (``gpt-4`` for the default ``open_ai`` provider)."""
        try:
            return self._provider("agent.think.provider").get("model")
        except SettingsError:
            return None

    def _provider(self, path: str) -> dict[str, Any]:
        given = _plain(self.provider, path) if self.provider is not None else {}
        if not isinstance(given, dict):
            raise SettingsError(path, "provider must be a Provider(type=...) or a dict")
        flat: dict[str, Any] = {
            k: self._given[k]
            for k in ("model", "temperature", "reasoning_mode")
            if k in self._given
        }
        out = _merge_flat({"type": "open_ai", **given}, flat, path, "Think")
        if out["type"] == "open_ai" and "model" not in out:
            out["model"] = "gpt-4"
        return out

    def _build(self, path: str) -> dict[str, Any]:
        out: dict[str, Any] = {"provider": self._provider(_join(path, "provider"))}
        if self.endpoint is not None:
            out["endpoint"] = _endpoint_dict(self.endpoint, _join(path, "endpoint"), kind="think")
        if "prompt" in self._given and self.is_set("instructions"):
            if self._given["prompt"] != self.instructions:
                raise SettingsError(
                    _join(path, "prompt"),
                    "Think(instructions=...) and Think(prompt=...) differ; they are the same "
                    "field, pass one",
                )
        if self.prompt:
            out["prompt"] = self.prompt
        if self.functions is not None:
            fpath = _join(path, "functions")
            out["functions"] = [_plain(f, f"{fpath}[{i}]") for i, f in enumerate(self.functions)]
        if self.context_length is not None:
            out["context_length"] = self.context_length
        return out

    @classmethod
    def _from_wire(cls, data: dict[str, Any]) -> Think:
        provider = data.pop("provider", None)
        endpoint = data.pop("endpoint", None)
        functions = data.pop("functions", None)
        return cls(
            provider=Provider.from_dict(provider) if isinstance(provider, Mapping) else provider,
            endpoint=Endpoint(**endpoint) if isinstance(endpoint, Mapping) else endpoint,
            functions=[Function.from_dict(f) if isinstance(f, Mapping) else f for f in functions]
            if isinstance(functions, list)
            else functions,
            **data,
        )


# ----------------------------------------------------------------------------------------------
# Context, Flags, Agent
# ----------------------------------------------------------------------------------------------


def _history_item(item: Any, path: str) -> Any:
    """A context message from a dict, a History struct or a server ``History`` event."""
    if isinstance(item, messages.History):
        if item.function_calls is not None:
            calls = []
            for call in item.function_calls:
                entry: dict[str, Any] = {
                    "id": call.id,
                    "name": call.name,
                    "client_side": call.client_side,
                    "arguments": call.arguments,
                    "response": call.response,
                }
                if call.thought_signature is not None:
                    entry["thought_signature"] = call.thought_signature
                calls.append(entry)
            return {"type": "History", "function_calls": calls}
        return {"type": "History", "role": item.role or "", "content": item.content or ""}
    out = _plain(item, path)
    if isinstance(out, dict):
        out = {"type": "History", **out}
    return out


class Context(_Options):
    """``agent.context``: prior conversation to preload, e.g. to resume a session.

    ``messages`` takes wire dicts (``{"type": "History", "role": "user", "content": ...}``),
    ``messages.HistoryConversationItem``/``HistoryFunctionCallsItem`` structs, or the
    ``History`` events the server sent during an earlier session (replayed as they are).
    """

    _PATH = "agent.context"
    messages: _Field[Sequence[Any]] = _Field(())

    def __init__(self, *, messages: Sequence[Any] | None = None) -> None:
        super().__init__()
        self.messages = list(messages) if messages is not None else None

    def _build(self, path: str) -> dict[str, Any]:
        mpath = _join(path, "messages")
        return {
            "messages": [_history_item(m, f"{mpath}[{i}]") for i, m in enumerate(self.messages)]
        }


class Flags(_Options):
    """``flags``: ``Flags(history=False)`` turns off ``History`` events."""

    _PATH = "flags"
    history: _Field[bool | None] = _Field(None)

    def __init__(self, *, history: bool | None = None) -> None:
        super().__init__()
        self.history = history

    def _build(self, path: str) -> dict[str, Any]:
        return {} if self.history is None else {"history": self.history}


_ThinkArg = Think | Mapping[str, Any] | Sequence[Think | Mapping[str, Any]]
_SpeakArg = Speak | Mapping[str, Any] | Sequence[Speak | Mapping[str, Any]]


def _one_or_chain(value: Any, path: str) -> Any:
    if isinstance(value, list | tuple):
        return [_plain(v, f"{path}[{i}]") for i, v in enumerate(value)]
    return _plain(value, path)


class Agent(_Options):
    """The inline ``agent`` object: ``listen``, ``think``, ``speak``, ``greeting``, ``context``.

    ``think`` and ``speak`` take one entry or a list (a fallback chain). ``think_live`` (early
    access) takes the wire dict. ``language`` is deprecated by Deepgram (use the providers'
    language) and sent only when given.
    """

    _PATH = "agent"
    listen: _Field[Listen | Mapping[str, Any] | None] = _Field(None)
    think: _Field[_ThinkArg | None] = _Field(None)
    speak: _Field[_SpeakArg | None] = _Field(None)
    greeting: _Field[str | None] = _Field(None)
    context: _Field[Context | Mapping[str, Any] | None] = _Field(None)
    think_live: _Field[Mapping[str, Any] | None] = _Field(None)
    language: _Field[str | None] = _Field(None)

    def __init__(
        self,
        *,
        listen: Listen | Mapping[str, Any] | None = None,
        think: _ThinkArg | None = None,
        speak: _SpeakArg | None = None,
        greeting: str | None = None,
        context: Context | Mapping[str, Any] | None = None,
        think_live: Mapping[str, Any] | None = None,
        language: str | None = None,
    ) -> None:
        super().__init__()
        self.listen = listen
        self.think = list(think) if isinstance(think, list | tuple) else think
        self.speak = list(speak) if isinstance(speak, list | tuple) else speak
        self.greeting = greeting
        self.context = context
        self.think_live = think_live
        self.language = language

    def _build(self, path: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.listen is not None:
            out["listen"] = _plain(self.listen, _join(path, "listen"))
        if self.think is not None:
            out["think"] = _one_or_chain(self.think, _join(path, "think"))
        if self.speak is not None:
            out["speak"] = _one_or_chain(self.speak, _join(path, "speak"))
        if self.greeting is not None:
            out["greeting"] = self.greeting
        if self.context is not None:
            out["context"] = _plain(self.context, _join(path, "context"))
        if self.think_live is not None:
            out["think_live"] = _plain(self.think_live, _join(path, "think_live"))
        if self.language is not None:
            out["language"] = self.language
        return out

    @classmethod
    def _from_wire(cls, data: dict[str, Any]) -> Agent:
        def many(value: Any, kind: type[Think] | type[Speak]) -> Any:
            if isinstance(value, list):
                return [kind.from_dict(v) if isinstance(v, Mapping) else v for v in value]
            return kind.from_dict(value) if isinstance(value, Mapping) else value

        listen = data.pop("listen", None)
        context = data.pop("context", None)
        return cls(
            listen=Listen.from_dict(listen) if isinstance(listen, Mapping) else listen,
            think=many(data.pop("think", None), Think),
            speak=many(data.pop("speak", None), Speak),
            context=Context(**context) if isinstance(context, Mapping) else context,
            **data,
        )


# ----------------------------------------------------------------------------------------------
# SettingsOptions
# ----------------------------------------------------------------------------------------------


def _deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = _plain(value, key)
    return out


_PATH_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _prune(data: Any, path: str) -> bool:
    """Delete the value at ``path`` (``a.b[0].c``) from nested data; True if deleted."""
    tokens: list[str | int] = [
        m.group(1) if m.group(1) is not None else int(m.group(2))
        for m in _PATH_TOKEN.finditer(path)
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
    return False


def _typed_view(sent: dict[str, Any], fallback: messages.Settings) -> messages.Settings:
    """The typed Settings for JSON that carries ``extra`` keys: unknown keys are dropped."""
    data = copy.deepcopy(sent)
    for _ in range(64):
        try:
            return check_settings(data)
        except SettingsError as err:
            if not err.problem.startswith("unknown field") or not _prune(data, err.path):
                raise SettingsError(
                    err.path, f"{err.problem} (after merging extra=...)", code=err.code
                ) from None
    return fallback  # pragma: no cover - more than 64 unknown keys


class SettingsOptions(_Options):
    """The ``Settings`` message: everything the agent needs, sent once at the start.

    Args:
        agent: an :class:`Agent`, a wire dict, or the id (str) of a stored agent configuration.
        listen, think, speak: the seed's top-level shortcuts, mapped into ``agent.*`` (giving one
            here and in ``agent`` too is an error).
        audio: ``Audio(input=..., output=...)``; sides not given are derived (see the module).
        tags: labels for usage filtering. experimental, mip_opt_out: sent only when given.
        flags: ``Flags(history=...)`` (or a dict, or a bool for ``history``).
        greeting, context: shortcuts for ``agent.greeting`` / ``agent.context``.
        extra: the escape hatch, deep-merged into the JSON after validation (module docs).
    """

    _PATH = ""
    agent: _Field[Agent | Mapping[str, Any] | str | None] = _Field(None)
    listen: _Field[Listen | Mapping[str, Any] | None] = _Field(None)
    think: _Field[_ThinkArg | None] = _Field(None)
    speak: _Field[_SpeakArg | None] = _Field(None)
    audio: _Field[Audio | Mapping[str, Any] | None] = _Field(None)
    tags: _Field[Sequence[str] | None] = _Field(None)
    experimental: _Field[bool | None] = _Field(None)
    flags: _Field[Flags | Mapping[str, Any] | bool | None] = _Field(None)
    mip_opt_out: _Field[bool | None] = _Field(None)
    greeting: _Field[str | None] = _Field(None)
    context: _Field[Context | Mapping[str, Any] | None] = _Field(None)
    extra: _Field[Mapping[str, Any] | None] = _Field(None)

    def __init__(
        self,
        *,
        agent: Agent | Mapping[str, Any] | str | None = None,
        listen: Listen | Mapping[str, Any] | None = None,
        think: _ThinkArg | None = None,
        speak: _SpeakArg | None = None,
        audio: Audio | Mapping[str, Any] | None = None,
        tags: Sequence[str] | None = None,
        experimental: bool | None = None,
        flags: Flags | Mapping[str, Any] | bool | None = None,
        mip_opt_out: bool | None = None,
        greeting: str | None = None,
        context: Context | Mapping[str, Any] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.agent = agent
        self.listen = listen
        self.think = list(think) if isinstance(think, list | tuple) else think
        self.speak = list(speak) if isinstance(speak, list | tuple) else speak
        self.audio = audio
        self.tags = list(tags) if tags is not None else None
        self.experimental = experimental
        self.flags = flags
        self.mip_opt_out = mip_opt_out
        self.greeting = greeting
        self.context = context
        self.extra = extra

    # -- building -------------------------------------------------------------------------------

    def _agent_parts(self) -> tuple[Any, dict[str, Any]]:
        """(agent as given, the top-level shortcuts that belong inside it)."""
        shortcuts: dict[str, Any] = {
            k: self._given[k]
            for k in ("listen", "think", "speak", "greeting", "context")
            if k in self._given
        }
        return self.agent, shortcuts

    def _effective(self, key: str) -> Any:
        """The Listen/Think/Speak that will be sent, wherever it was given."""
        if key in self._given:
            return self._given[key]
        agent = self.agent
        if isinstance(agent, Agent):
            return agent._given.get(key)
        if isinstance(agent, Mapping):  # agent={"listen": Listen(...), ...} counts too
            return agent.get(key)
        return None

    def _audio(self) -> dict[str, Any]:
        given = _plain(self.audio, "audio") if self.audio is not None else {}
        if not isinstance(given, dict):
            raise SettingsError("audio", "audio must be an Audio(input=..., output=...) or a dict")
        out = dict(given)
        listen = self._effective("listen")
        if isinstance(listen, Listen):
            values, explicit = listen._audio_input()
            if "input" in out:
                for key in sorted(explicit):
                    if out["input"].get(key) != values[key]:
                        raise SettingsError(
                            f"audio.input.{key}",
                            f"Listen({key}={values[key]!r}) contradicts "
                            f"audio.input.{key}={out['input'].get(key)!r}; set the input "
                            "format in one place",
                        )
            else:
                out["input"] = values
        out.setdefault("input", dict(DEFAULT_INPUT))

        speak = self._effective("speak")
        speaks = [s for s in _seq(speak) if isinstance(s, Speak)] if speak is not None else []
        if "output" in out:
            for s in speaks:
                values, explicit = s._audio_output()
                for key in sorted(explicit):
                    if out["output"].get(key) != values[key]:
                        raise SettingsError(
                            f"audio.output.{key}",
                            f"Speak({key}={values[key]!r}) contradicts "
                            f"audio.output.{key}={out['output'].get(key)!r}; set the output "
                            "format in one place",
                        )
        else:
            merged = dict(DEFAULT_OUTPUT)
            decided: set[str] = set()
            for s in speaks:
                values, explicit = s._audio_output()
                for key in sorted(explicit):
                    if key in decided and merged.get(key) != values[key]:
                        raise SettingsError(
                            f"audio.output.{key}",
                            "the Speak fallback entries ask for different output formats "
                            f"({key}={merged.get(key)!r} and {values[key]!r}); the output format "
                            "is one for the whole session: give audio=Audio(output=...) once instead",
                        )
                    merged[key] = values[key]
                    decided.add(key)
            out["output"] = merged
        return out

    def _build(self, path: str) -> dict[str, Any]:
        agent, shortcuts = self._agent_parts()
        out: dict[str, Any] = {"type": "Settings"}
        if self.tags is not None:
            out["tags"] = list(self.tags)
        if self.experimental is not None:
            out["experimental"] = self.experimental
        if self.mip_opt_out is not None:
            out["mip_opt_out"] = self.mip_opt_out
        if self.flags is not None:
            flags = {"history": self.flags} if isinstance(self.flags, bool) else self.flags
            out["flags"] = _plain(flags, "flags")
        out["audio"] = self._audio()
        if isinstance(agent, str):
            if shortcuts:
                raise SettingsError(
                    "agent",
                    "agent is the id of a stored agent configuration, so "
                    f"{', '.join(sorted(shortcuts))} cannot be added to it; put them in the "
                    "stored configuration or pass an Agent(...) instead",
                )
            out["agent"] = agent
            return out
        agent_dict = _plain(agent, "agent") if agent is not None else {}
        if not isinstance(agent_dict, dict):
            raise SettingsError("agent", "agent must be an Agent(...), a dict or a stored agent id")
        for key, value in shortcuts.items():
            if key in agent_dict:
                raise SettingsError(
                    f"agent.{key}",
                    f"{key} is given twice: SettingsOptions({key}=...) and inside agent; "
                    "pass it once",
                )
            if key in ("think", "speak"):
                agent_dict[key] = _one_or_chain(value, f"agent.{key}")
            elif key == "greeting":
                agent_dict[key] = value
            else:
                agent_dict[key] = _plain(value, f"agent.{key}")
        out["agent"] = agent_dict
        return out

    def _compile(self) -> tuple[messages.Settings, dict[str, Any]]:
        modelled: dict[str, Any] = whole_floats_to_int(self._build(""))
        typed = check_settings(modelled)
        if not self.extra:
            return typed, modelled
        if not isinstance(self.extra, Mapping):
            raise SettingsError("", "extra must be a dict to merge into the Settings JSON")
        sent: dict[str, Any] = whole_floats_to_int(_deep_merge(modelled, self.extra))
        return _typed_view(sent, typed), sent

    def to_dict(self) -> dict[str, Any]:
        """The validated ``Settings`` JSON (``extra`` merged), ready to send."""
        return self._compile()[1]

    def to_message(self) -> messages.Settings:
        """The validated typed ``Settings`` (keys only ``extra`` adds are not in it)."""
        return self._compile()[0]

    @classmethod
    def _from_wire(cls, data: dict[str, Any]) -> SettingsOptions:
        data = dict(data)
        kind = data.pop("type", "Settings")
        if kind != "Settings":
            raise SettingsError("type", f"expected 'Settings', got {kind!r}")
        check_settings(data)
        agent = data.pop("agent", None)
        audio = data.pop("audio", None)
        flags = data.pop("flags", None)
        return cls(
            agent=Agent.from_dict(agent) if isinstance(agent, Mapping) else agent,
            audio=Audio.from_dict(audio) if isinstance(audio, Mapping) else audio,
            flags=Flags(**flags) if isinstance(flags, Mapping) else flags,
            **data,
        )


# ----------------------------------------------------------------------------------------------
# The other client messages
# ----------------------------------------------------------------------------------------------


class _MessageOptions(_Options):
    """Base of the option classes that are whole client messages."""

    _TYPE: ClassVar[str] = ""

    def _body(self) -> dict[str, Any]:  # pragma: no cover - overridden
        raise NotImplementedError

    def _build(self, path: str) -> dict[str, Any]:
        return {"type": self._TYPE, **self._body()}

    def to_message(self) -> messages.ClientMessage:
        """The validated typed message."""
        return check_client_message(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        """The validated wire JSON of the message."""
        data: dict[str, Any] = whole_floats_to_int(self._build(""))
        check_client_message(data)
        return data

    @classmethod
    def _checked_body(cls, data: dict[str, Any]) -> dict[str, Any]:
        body = dict(data)
        kind = body.pop("type", cls._TYPE)
        if kind != cls._TYPE:
            raise SettingsError("type", f"expected {cls._TYPE!r}, got {kind!r}")
        check_client_message({"type": kind, **body})
        return body

    @classmethod
    def _from_wire(cls: type[_M], data: dict[str, Any]) -> _M:
        return cls(**cls._checked_body(data))


class UpdatePromptOptions(_MessageOptions):
    """``UpdatePrompt``: change the system prompt (``UpdatePromptOptions(prompt=...)``)."""

    _TYPE = "UpdatePrompt"
    prompt: _Field[str | None] = _Field(None)

    def __init__(self, *, prompt: str | None = None) -> None:
        super().__init__()
        self.prompt = prompt

    def _body(self) -> dict[str, Any]:
        if self.prompt is None:
            raise SettingsError("prompt", "UpdatePromptOptions needs prompt=...")
        return {"prompt": self.prompt}


class UpdateSpeakOptions(_MessageOptions):
    """``UpdateSpeak``: replace the TTS configuration.

    ``UpdateSpeakOptions(speak=Speak(model="aura-2-luna-en"))``; a list is a fallback chain.
    The Speak's audio fields are not sent: the output format is fixed for the session.
    """

    _TYPE = "UpdateSpeak"
    speak: _Field[_SpeakArg | None] = _Field(None)

    def __init__(self, *, speak: _SpeakArg | None = None) -> None:
        super().__init__()
        self.speak = list(speak) if isinstance(speak, list | tuple) else speak

    def _body(self) -> dict[str, Any]:
        if self.speak is None:
            raise SettingsError("speak", "UpdateSpeakOptions needs speak=Speak(...)")
        return {"speak": _one_or_chain(self.speak, "speak")}

    @classmethod
    def _from_wire(cls, data: dict[str, Any]) -> UpdateSpeakOptions:
        data = cls._checked_body(data)
        speak = data["speak"]
        if isinstance(speak, list):
            return cls(speak=[Speak.from_dict(s) for s in speak])
        return cls(speak=Speak.from_dict(speak))


class UpdateThinkOptions(_MessageOptions):
    """``UpdateThink``: replace the whole think block (``think=Think(...)`` or a list)."""

    _TYPE = "UpdateThink"
    think: _Field[_ThinkArg | None] = _Field(None)

    def __init__(self, *, think: _ThinkArg | None = None) -> None:
        super().__init__()
        self.think = list(think) if isinstance(think, list | tuple) else think

    def _body(self) -> dict[str, Any]:
        if self.think is None:
            raise SettingsError("think", "UpdateThinkOptions needs think=Think(...)")
        return {"think": _one_or_chain(self.think, "think")}

    @classmethod
    def _from_wire(cls, data: dict[str, Any]) -> UpdateThinkOptions:
        data = cls._checked_body(data)
        think = data["think"]
        if isinstance(think, list):
            return cls(think=[Think.from_dict(t) for t in think])
        return cls(think=Think.from_dict(think))


class UpdateListenOptions(_MessageOptions):
    """``UpdateListen``: change STT tunables mid-session (``listen=Listen(...)``).

    The Listen's audio fields are not sent: the input format is fixed for the session.
    """

    _TYPE = "UpdateListen"
    listen: _Field[Listen | Mapping[str, Any] | None] = _Field(None)

    def __init__(self, *, listen: Listen | Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.listen = listen

    def _body(self) -> dict[str, Any]:
        if self.listen is None:
            raise SettingsError("listen", "UpdateListenOptions needs listen=Listen(...)")
        return {"listen": _plain(self.listen, "listen")}

    @classmethod
    def _from_wire(cls, data: dict[str, Any]) -> UpdateListenOptions:
        data = cls._checked_body(data)
        return cls(listen=Listen.from_dict(data["listen"]))


def _one_of(
    path: str, owner: str, first: tuple[str, str | None], second: tuple[str, str | None]
) -> str | None:
    (name_a, a), (name_b, b) = first, second
    if a is not None and b is not None and a != b:
        raise SettingsError(
            path,
            f"{owner}({name_a}=...) and {owner}({name_b}=...) differ; they are the same field, pass one",
        )
    return a if a is not None else b


class InjectAgentMessageOptions(_MessageOptions):
    """``InjectAgentMessage``: the agent says ``message`` verbatim.

    ``InjectAgentMessageOptions(text=...)`` (seed) or ``(message=...)`` (wire), with an optional
    ``behavior`` (``default``, ``queue`` or ``interrupt``). ``is_dynamic=True`` without a message
    is the Think Live dynamic form.
    """

    _TYPE = "InjectAgentMessage"
    message: _Field[str | None] = _Field(None)
    behavior: _Field[str | None] = _Field(None)
    is_dynamic: _Field[bool | None] = _Field(None)

    def __init__(
        self,
        *,
        text: str | None = None,
        message: str | None = None,
        behavior: str | None = None,
        is_dynamic: bool | None = None,
    ) -> None:
        super().__init__()
        self.message = _one_of(
            "message", "InjectAgentMessageOptions", ("text", text), ("message", message)
        )
        self.behavior = behavior
        self.is_dynamic = is_dynamic

    @property
    def text(self) -> str | None:
        """The seed's name for ``message``."""
        return self.message

    def _body(self) -> dict[str, Any]:
        if self.message is None and not self.is_dynamic:
            raise SettingsError(
                "message", "InjectAgentMessageOptions needs text=... (or message=...)"
            )
        out: dict[str, Any] = {}
        if self.message is not None:
            out["message"] = self.message
        if self.behavior is not None:
            out["behavior"] = self.behavior
        if self.is_dynamic is not None:
            out["is_dynamic"] = self.is_dynamic
        return out


class InjectUserMessageOptions(_MessageOptions):
    """``InjectUserMessage``: act as if the user said ``content``.

    ``InjectUserMessageOptions(text=...)`` (seed) or ``(content=...)`` (wire).
    """

    _TYPE = "InjectUserMessage"
    content: _Field[str | None] = _Field(None)

    def __init__(self, *, text: str | None = None, content: str | None = None) -> None:
        super().__init__()
        self.content = _one_of(
            "content", "InjectUserMessageOptions", ("text", text), ("content", content)
        )

    @property
    def text(self) -> str | None:
        """The seed's name for ``content``."""
        return self.content

    def _body(self) -> dict[str, Any]:
        if self.content is None:
            raise SettingsError(
                "content", "InjectUserMessageOptions needs text=... (or content=...)"
            )
        return {"content": self.content}


class FunctionCallResponse(_MessageOptions):
    """``FunctionCallResponse``: the result of a client-side function call.

    Seed style ``FunctionCallResponse(name=..., result=json.dumps(...))`` or wire style
    ``(id=..., name=..., content=...)``. A result that is not a string is JSON-encoded.
    ``id`` may be left out: the connection fills it from the pending ``FunctionCallRequest``
    (see :meth:`to_message`).
    """

    _TYPE = "FunctionCallResponse"
    id: _Field[str | None] = _Field(None)
    name: _Field[str | None] = _Field(None)
    content: _Field[str | None] = _Field(None)

    def __init__(
        self,
        *,
        name: str | None = None,
        result: Any = None,
        id: str | None = None,
        content: Any = None,
    ) -> None:
        super().__init__()
        self.id = id
        self.name = name

        def text(value: Any) -> str | None:
            if value is None or isinstance(value, str):
                return value
            return json.dumps(value, separators=(",", ":"), ensure_ascii=False)

        self.content = _one_of(
            "content", "FunctionCallResponse", ("result", text(result)), ("content", text(content))
        )

    @property
    def result(self) -> str | None:
        """The seed's name for ``content``."""
        return self.content

    def _body(self) -> dict[str, Any]:
        if self.name is None:
            raise SettingsError("name", "FunctionCallResponse needs name= (the function's name)")
        if self.content is None:
            raise SettingsError("content", "FunctionCallResponse needs result=... (or content=...)")
        out: dict[str, Any] = {}
        if self.id is not None:
            out["id"] = self.id
        out["name"] = self.name
        out["content"] = self.content
        return out

    def to_message(self, id: str | None = None) -> messages.FunctionCallResponse:
        """The typed message.

        Args:
            id: the call id to use when this response has none (the core passes the pending
                request's id); an id given to the constructor wins. With neither, ``id`` is
                ``UNSET`` (left out of the JSON).
        """
        data = self.to_dict()
        if "id" not in data and id is not None:
            data["id"] = id
        msg = check_client_message(data)
        assert isinstance(msg, messages.FunctionCallResponse)
        return msg


class AgentKeepAlive(_MessageOptions):
    """``KeepAlive``: keeps an idle session open. ``type`` is accepted for seed compatibility."""

    _TYPE = "KeepAlive"

    def __init__(self, *, type: str | None = None) -> None:
        super().__init__()
        if type is not None and type != "KeepAlive":
            raise SettingsError("type", f"AgentKeepAlive is always 'KeepAlive', not {type!r}")

    @property
    def type(self) -> str:
        """Always ``"KeepAlive"``."""
        return "KeepAlive"

    def _body(self) -> dict[str, Any]:
        return {}


# ----------------------------------------------------------------------------------------------
# Entry points for the connection core
# ----------------------------------------------------------------------------------------------


def _settings_from_data(data: Any) -> tuple[messages.Settings, dict[str, Any]]:
    plain = _plain(data, "")
    if not isinstance(plain, dict):
        raise SettingsError("", f"Settings must be a JSON object, not {type(plain).__name__}")
    plain = whole_floats_to_int(plain)
    kind = plain.pop("type", "Settings")
    sent: dict[str, Any] = normalize_settings({"type": kind, **plain})
    return check_settings(sent), sent


def coerce_settings(
    obj: SettingsOptions | messages.Settings | Mapping[str, Any] | str | bytes,
) -> tuple[messages.Settings, dict[str, Any]]:
    """Validate settings given in any accepted form.

    Args:
        obj: a :class:`SettingsOptions`, a ``messages.Settings``, a wire dict, or its JSON text.

    Returns:
        ``(typed, data)``: the validated ``messages.Settings`` and the exact JSON-ready dict to
        send (``extra`` merged, whole floats made ints, no ``null``).

    Raises:
        SettingsError: the content is invalid (the error names the JSON path).
        TypeError: ``obj`` is none of the accepted types.
    """
    if isinstance(obj, SettingsOptions):
        return obj._compile()
    if isinstance(obj, messages.Settings):
        return _settings_from_data(msgspec.to_builtins(obj))
    if isinstance(obj, str | bytes | bytearray):
        return _settings_from_data(_parse_json(obj))
    if isinstance(obj, Mapping):
        return _settings_from_data(obj)
    raise TypeError(
        "settings must be a SettingsOptions, a deepgram_agent.messages.Settings, a dict or a "
        f"JSON string, not {type(obj).__name__}"
    )


def coerce_client_message(obj: Any) -> messages.ClientMessage:
    """Validate one client message given in any accepted form.

    Args:
        obj: an option object (``UpdatePromptOptions``, ``FunctionCallResponse``, ...,
            ``SettingsOptions``), a ``messages.*`` client struct, a wire dict or its JSON text.
            A :class:`FunctionCallResponse` without an id gives a message whose ``id`` is
            ``UNSET``. For settings prefer :func:`coerce_settings`, which also returns the dict
            with ``extra`` merged.

    Raises:
        SettingsError: the content is invalid (the error names the JSON path).
        TypeError: ``obj`` is none of the accepted types.
    """
    if isinstance(obj, SettingsOptions):
        return obj._compile()[0]
    if isinstance(obj, _MessageOptions):
        return obj.to_message()
    if isinstance(obj, messages.ClientMessage):
        return check_client_message(obj)
    if isinstance(obj, str | bytes | bytearray):
        return check_client_message(_parse_json(obj))
    if isinstance(obj, Mapping):
        return check_client_message(whole_floats_to_int(_plain(obj, "")))
    raise TypeError(
        "a client message must be an option object (UpdatePromptOptions, FunctionCallResponse, "
        "...), a deepgram_agent.messages client struct, a dict or a JSON string, not "
        f"{type(obj).__name__}"
    )


def output_format(settings: messages.Settings) -> tuple[str, int]:
    """``(encoding, sample_rate)`` of the agent audio the server will send.

    Defaults (``audio.output`` or its keys omitted): ``linear16``, 24000 Hz.
    """
    return settings.output_format


def input_format(settings: messages.Settings) -> tuple[str, int]:
    """``(encoding, sample_rate)`` the server expects for user audio.

    Defaults (``audio.input`` omitted): ``linear16``, 24000 Hz (protocol.md 4.1).
    """
    return settings.input_format
