"""The classic option classes (the seed's, and the ``deepgram`` v4 SDK's), mapped onto the wire.

Two older APIs build settings with these classes, and both keep working unchanged.

The seed's keyword style::

    SettingsOptions(
        agent=Agent(
            listen=Listen(model="nova-2", sample_rate=16000),
            think=Think(provider=Provider(type="open_ai"), model="gpt-4", instructions="..."),
            speak=Speak(model="aura-asteria-en"),
        )
    )

and the v4 SDK's attribute style, on pre-filled trees::

    options = SettingsOptions()
    options.audio.input.sample_rate = 24000
    options.agent.listen.provider.model = "nova-3"
    options.agent.think.provider.type = "open_ai"
    options.agent.think.prompt = "You are a friendly assistant."
    options.agent.greeting = "Hello!"

Those shapes are *not* all what the server accepts (docs/protocol.md 5.15, 9.4 and 10). This module
maps them onto the nested wire shapes, and also accepts the wire's own names, so both spellings
below produce the same JSON::

    Listen(model="nova-3", sample_rate=16000)
    Listen(provider=Provider(type="deepgram", version="v1", model="nova-3"))  # + audio.input

Default trees (v4 style). Every object that holds another one gives you a default object when
you read an option you never set: ``SettingsOptions().agent.think.provider`` is a
``Provider``, ``SettingsOptions().audio.output`` an ``Output``, ``Speak().provider`` a
``Provider``, ``UpdateSpeakOptions().speak`` a ``Speak``. **Reading a default never sends it**:
a default object becomes part of the message the first time you set something inside it (and
then so do the objects above it). So ``SettingsOptions()`` still sends no ``listen``, ``think``
or ``speak`` (the server's managed defaults apply), and ``options.agent.think.prompt = "..."``
adds a ``think`` block, completed with the defaults the server needs (below).

The rule for defaults on the wire: **a default you never touched is sent only where the server
needs a value, and then with one it takes.**

* ``audio`` is required: ``audio.input`` comes from ``Audio(input=...)`` (or
  ``options.audio.input.*``), else from the Listen, else ``linear16``/16000;
  ``audio.output`` likewise from ``Audio(output=...)``, else from the Speak, else
  ``linear16``/24000/``container: none``. Both sides are always sent: the SDK needs to know the
  formats it streams and plays. G.711 encodings (``mulaw``/``alaw``) default to 8000 Hz.
* A provider needs a type: ``deepgram`` for Listen and Speak, ``open_ai`` for Think (what
  ``provider.type`` reads before you set it; a standalone ``Provider().type`` reads ``open_ai``,
  as the seed declares, and becomes ``deepgram`` when you hand it to a Listen or Speak).
* A Speak with a ``deepgram`` provider and no model sends ``aura-asteria-en`` (the seed's
  default); a Think with an ``open_ai`` provider and no model sends ``gpt-4o-mini``. The seed
  declares ``gpt-4`` as Think's default model, but the server no longer offers it
  (docs/protocol.md 5.1.2), so the default is a current OpenAI model; ``Think().model`` reads the
  model that will be sent. A model you set is sent as given.
* A seed-style Listen (flat keys, no ``provider``) sends ``type: deepgram``, ``version``
  (``v2`` when the model starts with ``flux``, else ``v1``), ``model`` (default ``nova-2``) and,
  for v1, ``language`` (default ``en-US``) and ``smart_format`` (default true), as the seed
  declares. A Listen with a provider sends the provider as given, plus ``type`` and, for a
  ``flux-*`` model, ``version: v2`` (Flux is the v2 provider; without it the server reads v1).
* A function ``endpoint`` without ``method`` sends ``POST`` (``Endpoint().method`` reads
  ``POST``).
* Never sent unless you set them (the server's own defaults are the same): ``experimental`` and
  ``mip_opt_out`` (both read ``False``), the deprecated ``agent.language`` (reads ``"en"``),
  ``tags``, ``flags``, ``greeting``, ``context``. An untouched listen/think/speak is omitted.

Mapping (classic name -> wire location):

* ``Listen(model, language, smart_format, keyterms, version, Flux keys)`` ->
  ``agent.listen.provider``; ``Listen(encoding, sample_rate)`` -> ``audio.input``.
* ``Speak(model, voice, speed, ...)`` -> ``agent.speak.provider``;
  ``Speak(encoding, sample_rate, container, bitrate)`` -> ``audio.output``.
* ``Think(provider, model, temperature)`` -> ``agent.think.provider``;
  ``Think(instructions=...)`` (or ``prompt=``) -> ``agent.think.prompt``. The flat attributes
  work too: ``options.agent.think.model = "gpt-4o"`` goes into the provider.
* ``Function(url, method, headers)`` -> ``functions[i].endpoint`` (the server rejects them at the
  function's top level, docs/protocol.md 9.4).
* ``Header(key=..., value=...)`` (or ``name=``) in a list -> the wire's ``{name: value}`` object.
* A think or speak ``Endpoint`` with a ``method``: the server's think/speak endpoints have no
  ``method`` key, so it is left out and a :class:`DeepgramAgentWarning` says so (the v4 SDK
  always sent ``method: POST``).
* ``SettingsOptions(listen=, think=, speak=, greeting=, context=)`` (and
  ``options.greeting = ...``) -> ``agent.*``.

Seed fields with no place on the v1 wire (``Listen.channels``, ``interim_results``,
``vad_events``, ``endpointing``) are accepted and not sent; setting one emits a single
:class:`DeepgramAgentWarning` naming them. The audio fields of a ``Speak``/``Listen`` passed to
``UpdateSpeakOptions``/``UpdateListenOptions`` are not sent either: the audio format is fixed
for the session.

Every object serialises like the v4 SDK's: ``to_dict()`` (the wire JSON; a fragment for building
blocks), ``to_json()``, ``str(obj)`` (indented JSON, not validated, so ``print(options)`` shows
what would be sent and ``send(str(AgentKeepAlive()))`` works),
``from_dict()``/``from_json()`` (which build the same object the constructor would, defaults
included), ``obj["key"]`` for an option. Constructors take the v4 SDK's positional order for
the building blocks (``Function(name, description, url, method, headers, parameters,
endpoint)``, ``Header(key, value)``, ``Endpoint(method, url, headers)``, ``Think(provider,
functions, endpoint, prompt, context_length)``, ``Agent(language, listen, think, speak,
greeting)``, ...); everything else is keyword-only. Setting an attribute an option does not have
is an ``AttributeError`` that suggests the closest name (a typo is never silently dropped).

Everything is validated before it is sent (:mod:`deepgram_agent._validate`): a mistake raises
:class:`~deepgram_agent.exceptions.SettingsError` naming the server's JSON path
(``agent.think.functions[0].method``). Two sources that contradict each other (a Listen sample
rate and a different ``Audio(input=...)``; ``SettingsOptions(listen=...)`` and
``Agent(listen=...)``) raise ``SettingsError`` too. ``None`` always means "not set": no ``null``
is ever sent, and whole-number floats are sent as integers. Keys of a ``Provider`` are free-form
and sent as given; the validator checks them against the provider type and names the path.

Escape hatch: ``SettingsOptions(..., extra={"agent": {"new_key": 1}})`` is deep-merged into the
JSON *after* the modelled part was validated, and the merged JSON goes out as given: no local
rule runs on what ``extra`` adds, so keys, provider types and values this SDK does not know yet
reach the server, which decides. Dicts merge recursively; any other value (lists included)
replaces; ``None`` removes the key. Nothing else ever produces a key outside the schema.
"""

from __future__ import annotations

import builtins
import difflib
import inspect
import json
import logging
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, Generic, TypeVar, overload

import msgspec

from . import messages
from ._codec import whole_floats_to_int
from ._validate import (
    check_client_message,
    check_settings,
    normalize_settings,
)
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
    "DEFAULT_THINK_MODEL",
    "coerce_settings",
    "coerce_client_message",
    "output_format",
    "input_format",
]

logger = logging.getLogger("deepgram_agent.options")

_T = TypeVar("_T")
_O = TypeVar("_O", bound="_Options")
_M = TypeVar("_M", bound="_MessageOptions")

DEFAULT_INPUT: dict[str, Any] = {"encoding": "linear16", "sample_rate": 16000}
DEFAULT_OUTPUT: dict[str, Any] = {"encoding": "linear16", "sample_rate": 24000, "container": "none"}

#: The model a Think with an ``open_ai`` provider and no model sends. The seed declares
#: ``gpt-4``, which the server no longer lists (docs/protocol.md 5.1.2); this is a current one.
DEFAULT_THINK_MODEL = "gpt-4o-mini"
#: The model a Speak with a ``deepgram`` provider and no model sends (the seed's default).
DEFAULT_SPEAK_MODEL = "aura-asteria-en"

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
    """An option was accepted but is not sent as given (no place on the wire, or not accepted)."""


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


def _adopt(value: Any, parent: _Options | None, name: str) -> None:
    """Record that ``value`` is ``parent``'s default for option ``name`` (or nobody's)."""
    if isinstance(value, _Options | Provider):
        object.__setattr__(value, "_owner", (parent, name) if parent is not None else None)


def _attach(obj: _Options | Provider) -> None:
    """A default object was changed: make it (and the defaults above it) part of the message."""
    owner: tuple[_Options, str] | None = object.__getattribute__(obj, "_owner")
    while owner is not None:
        object.__setattr__(obj, "_owner", None)
        parent, name = owner
        if parent._lazy.get(name) is not obj:
            return
        del parent._lazy[name]
        parent._given[name] = obj
        obj = parent
        owner = parent._owner


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

    def __set__(self, obj: _Options, value: Any) -> None:
        if value is None:
            obj._given.pop(self.name, None)
        else:
            obj._given[self.name] = value
            _attach(obj)


class _Child(_Field[_T]):
    """An option that holds another option object (``options.agent``, ``agent.listen``, ...).

    Reading it when it was never set returns a default object, kept aside: it joins the message
    only once something inside it is set (see the module docstring). Assigning an object (or a
    dict, or a list for fallback chains) sets the option as given.
    """

    def __init__(self, factory: Callable[[], Any]) -> None:
        super().__init__(None)  # type: ignore[arg-type]
        self.factory = factory

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> _Child[_T]: ...

    @overload
    def __get__(self, obj: _Options, owner: type | None = None) -> _T: ...

    def __get__(self, obj: _Options | None, owner: type | None = None) -> _T | _Child[_T]:
        if obj is None:
            return self
        value = obj._given.get(self.name)
        if value is None:
            value = obj._lazy.get(self.name)
            if value is None:
                value = self.factory()
                _adopt(value, obj, self.name)
                obj._lazy[self.name] = value
        result: _T = value
        return result

    def __set__(self, obj: _Options, value: Any) -> None:
        obj._lazy.pop(self.name, None)
        if isinstance(value, list | tuple):
            value = list(value)
        _adopt(value, None, "")  # an object you assign is yours, no longer a default elsewhere
        super().__set__(obj, value)


class _ProviderChild(_Child["Provider"]):
    """``listen/think/speak.provider``: a :class:`Provider` whose unset ``type`` reads ``kind``."""

    def __init__(self, kind: str) -> None:
        super().__init__(lambda: Provider._with_default_type(kind))
        self.kind = kind

    def __set__(self, obj: _Options, value: Any) -> None:
        if isinstance(value, Mapping) and not isinstance(value, Provider):
            value = Provider(value)
        if isinstance(value, Provider) and "type" not in value:
            object.__setattr__(value, "_default_type", self.kind)
        super().__set__(obj, value)


class _Flat:
    """A classic flat option (``Listen.model``, ``Think.temperature``, ...) that belongs to the
    provider on the wire: stored as given, read as the value that will be sent (see the class).
    """

    def __init__(self) -> None:
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: _Options | None, owner: type | None = None) -> Any:
        if obj is None:
            return self
        return obj._read_flat(self.name)

    def __set__(self, obj: _Options, value: Any) -> None:
        if value is None:
            obj._given.pop(self.name, None)
        else:
            obj._given[self.name] = list(value) if isinstance(value, tuple) else value
            _attach(obj)


#: The settable option names of each option class (computed on first use).
_SETTABLE: dict[type, frozenset[str]] = {}


def _settable_names(cls: type) -> list[str]:
    return sorted(
        n for n in dir(cls) if not n.startswith("_") and hasattr(getattr(cls, n, None), "__set__")
    )


def _settable(cls: type) -> frozenset[str]:
    names = _SETTABLE.get(cls)
    if names is None:
        names = _SETTABLE[cls] = frozenset(_settable_names(cls))
    return names


def _unknown_attribute(cls: type, name: str) -> AttributeError:
    names = _settable_names(cls)
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return AttributeError(
        f"{cls.__name__} has no option {name!r}; {hint}its options are: {', '.join(names)}"
    )


def _dumps(data: Any, indent: int | None, kwargs: dict[str, Any]) -> str:
    kwargs.setdefault("ensure_ascii", False)
    if indent is None:
        kwargs.setdefault("separators", (",", ":"))
    return json.dumps(data, indent=indent, **kwargs)


class _Options:
    """Base of every option class: set-option tracking, default trees, repr, equality, JSON."""

    _given: dict[str, Any]
    _lazy: dict[str, Any]
    _owner: tuple[_Options, str] | None
    _PATH: ClassVar[str] = ""

    def __init__(self) -> None:
        object.__setattr__(self, "_given", {})
        object.__setattr__(self, "_lazy", {})
        object.__setattr__(self, "_owner", None)

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in _settable(type(self)) and not name.startswith("_"):
            raise _unknown_attribute(type(self), name)
        object.__setattr__(self, name, value)

    def is_set(self, name: str) -> bool:
        """Whether option ``name`` was given (rather than left at its default)."""
        return name in self._given

    def _read_flat(self, name: str) -> Any:  # pragma: no cover - overridden where used
        return self._given.get(name)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={_redact(v, k)!r}" for k, v in self._given.items())
        return f"{type(self).__name__}({args})"

    def __str__(self) -> str:
        """The JSON (indented), as the v4 SDK prints and sends it.

        Not validated, so ``print(options)`` shows what would be sent even when a local check
        will refuse it (``to_dict()``/``to_json()`` validate); the repr when the object cannot
        be turned into JSON at all (a required option missing, two that contradict).
        """
        try:
            return _dumps(self._unchecked_dict(), 4, {})
        except SettingsError:
            return repr(self)

    def _unchecked_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = whole_floats_to_int(self._build(self._PATH))
        return out

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, _Options)
        return self._given == other._given

    __hash__ = None  # type: ignore[assignment]

    def __getitem__(self, key: str) -> Any:
        """``obj["model"]`` reads option ``model`` (as the v4 SDK's objects allow)."""
        if isinstance(key, str) and key in _settable(type(self)):
            return getattr(self, key)
        raise KeyError(key)

    def __setitem__(self, key: str, value: Any) -> None:
        if not isinstance(key, str) or key.startswith("_"):
            raise KeyError(key)
        setattr(self, key, value)

    def _build(self, path: str) -> dict[str, Any]:  # pragma: no cover - overridden
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        """The wire JSON of this object (a fragment for building blocks), ready to encode."""
        out: dict[str, Any] = whole_floats_to_int(self._build(self._PATH))
        return out

    def to_json(self, indent: int | None = None, **kwargs: Any) -> str:
        """:meth:`to_dict` as JSON text (compact unless ``indent`` is given).

        Other keyword arguments go to :func:`json.dumps` (e.g. ``sort_keys=True``).
        """
        return _dumps(self.to_dict(), indent, kwargs)

    @classmethod
    def from_dict(cls: type[_O], data: Mapping[str, Any]) -> _O:
        """Build the object from its JSON: the same object the constructor builds from those
        options, defaults included. An unknown key is a ``SettingsError`` naming it."""
        if not isinstance(data, Mapping):
            raise TypeError(f"{cls.__name__}.from_dict() takes a dict, not {type(data).__name__}")
        return cls._from_wire(dict(data))

    @classmethod
    def from_json(cls: type[_O], text: str | bytes) -> _O:
        """Build the object from JSON text produced by :meth:`to_json` (or the server's shape)."""
        return cls.from_dict(_parse_json(text, cls._PATH))

    @classmethod
    def _from_wire(cls: type[_O], data: dict[str, Any]) -> _O:
        return cls(**_known_kwargs(cls, data, cls._PATH))


def _known_kwargs(
    cls: type, data: Mapping[str, Any], path: str, exclude: tuple[str, ...] = ()
) -> dict[str, Any]:
    """``data`` as keyword arguments of ``cls``; a key it does not take is a SettingsError."""
    params = inspect.signature(cls).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return dict(data)  # free-form (JSON-Schema keywords): every key is an option
    accepted = sorted(
        p.name
        for p in params
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in exclude
    )
    for key in data:
        if key not in accepted:
            close = difflib.get_close_matches(str(key), accepted, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise SettingsError(
                _join(path, str(key)),
                f"unknown field '{key}' for {cls.__name__}; {hint}accepted: {', '.join(accepted)}",
            )
    return dict(data)


def _parse_json(text: str | bytes | bytearray, path: str = "") -> dict[str, Any]:
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError, TypeError) as exc:
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


def _one_of(path: str, owner: str, first: tuple[str, Any], second: tuple[str, Any]) -> Any:
    (name_a, a), (name_b, b) = first, second
    if a is not None and b is not None and a != b:
        raise SettingsError(
            path,
            f"{owner}({name_a}=...) and {owner}({name_b}=...) differ; they are the same field, pass one",
        )
    return a if a is not None else b


# ----------------------------------------------------------------------------------------------
# Provider, Endpoint, Header (wire-style building blocks: emit what you give them)
# ----------------------------------------------------------------------------------------------


class Provider(dict[str, Any]):
    """A provider object (``agent.listen/think/speak.provider``), tagged by ``type``.

    A ``dict`` (as in the v4 SDK) whose keys are also attributes: ``p.model``, ``p["model"]``,
    ``p.model = "nova-3"``; an unset key reads as ``None``, and setting ``None`` removes it.
    Keys vary by provider type (docs/protocol.md 5.1), so any key is accepted and sent as given; the
    validator checks them against the type before sending and names the path of a wrong one.
    ``type`` may be left out: it then reads (and is sent as) the default of where the provider
    is used: ``open_ai`` for Think and for a standalone ``Provider()`` (the seed's default),
    ``deepgram`` for Listen and Speak.

    Example:
        ``Provider(type="anthropic", model="claude-haiku-4-5", temperature=0.3)`` or
        ``Provider({"type": "deepgram", "model": "nova-3"})``
    """

    _default_type: str
    _owner: tuple[_Options, str] | None

    def __init__(
        self, data: Mapping[str, Any] | None = None, /, *, type: str | None = None, **fields: Any
    ) -> None:
        super().__init__()
        object.__setattr__(self, "_default_type", "open_ai")
        object.__setattr__(self, "_owner", None)
        items: dict[str, Any] = dict(data) if data is not None else {}
        if type is not None:
            items["type"] = type
        items.update(fields)
        for key, value in items.items():
            if value is not None:
                dict.__setitem__(self, str(key), value)

    @classmethod
    def _with_default_type(cls, kind: str) -> Provider:
        provider = cls()
        object.__setattr__(provider, "_default_type", kind)
        return provider

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name == "type":
            return self.get("type", self._default_type)
        return self.get(name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):
            raise AttributeError(f"a Provider has no attribute {name!r}")
        self[name] = value

    def __delattr__(self, name: str) -> None:
        self.pop(name, None)

    def __setitem__(self, key: str, value: Any) -> None:
        if value is None:
            self.pop(key, None)
            return
        super().__setitem__(key, value)
        _attach(self)

    def update(self, *args: Any, **kwargs: Any) -> None:
        """Set several keys (``None`` removes a key)."""
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def setdefault(self, key: str, default: Any = None) -> Any:
        """``dict.setdefault`` (``None`` is not stored)."""
        if key not in self:
            self[key] = default
        return self.get(key)

    def __ior__(self, other: Any) -> Provider:  # type: ignore[override,misc]
        self.update(other)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={_redact(v, k)!r}" for k, v in self.items())
        return f"Provider({args})"

    def __str__(self) -> str:
        return self.to_json(indent=4)

    def to_dict(self) -> dict[str, Any]:
        """The provider as plain JSON data (the keys set; not validated on its own)."""
        out: dict[str, Any] = whole_floats_to_int(_plain(dict(self), "provider"))
        return out

    def to_json(self, indent: int | None = None, **kwargs: Any) -> str:
        """:meth:`to_dict` as JSON text."""
        return _dumps(self.to_dict(), indent, kwargs)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Provider:
        """A Provider holding exactly the keys of ``data``."""
        if not isinstance(data, Mapping):
            raise TypeError(f"Provider.from_dict() takes a dict, not {type(data).__name__}")
        return cls(data)

    @classmethod
    def from_json(cls, text: str | bytes) -> Provider:
        """A Provider from JSON text."""
        return cls(_parse_json(text, "provider"))


class Header(_Options):
    """One HTTP header of the legacy list form; sent inside ``headers`` as ``{name: value}``.

    ``Header(key, value)`` (the v4 SDK's names and order) or ``Header(name=..., value=...)``
    (the seed's). The value is hidden in the repr.
    """

    name: _Field[str | None] = _Field(None)
    value: _Field[str | None] = _Field(None)

    def __init__(
        self, key: str | None = None, value: str | None = None, *, name: str | None = None
    ) -> None:
        super().__init__()
        self.name = _one_of("name", "Header", ("key", key), ("name", name))
        self.value = value

    @property
    def key(self) -> str | None:
        """The v4 SDK's name for ``name``."""
        return self.name

    @key.setter
    def key(self, value: str | None) -> None:
        self.name = value

    def __repr__(self) -> str:
        return f"Header(name={self.name!r}, value='***')"

    def _build(self, path: str) -> dict[str, Any]:
        if not self.name or self.value is None:
            raise SettingsError(path, "a Header needs both a name (or key) and a value")
        return {self.name: self.value}

    @classmethod
    def _from_wire(cls, data: dict[str, Any]) -> Header:
        if len(data) == 1 and not {"key", "name", "value"} & set(data):
            ((name, value),) = data.items()  # the wire's own {name: value} form
            return cls(name=name, value=value)
        return cls(**_known_kwargs(cls, data, "headers"))


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
                raise SettingsError(
                    f"{path}[{i}]", "each header must be a Header(key, value) or {name: value}"
                )
        return merged
    raise SettingsError(path, "headers must be a dict {name: value} or a list of Header")


class Endpoint(_Options):
    """An HTTP endpoint: ``{url, method?, headers?}``.

    Used for a server-side function (``functions[i].endpoint``; ``method`` reads and is sent as
    ``POST`` unless set) and for a bring-your-own LLM or TTS (``think.endpoint``/
    ``speak.endpoint``, which have no ``method`` on the wire: a method set there is left out with
    a :class:`DeepgramAgentWarning`). ``headers`` is a ``{name: value}`` dict or a list of
    :class:`Header`; header values never appear in the repr. Positional order as in the v4 SDK:
    ``Endpoint(method, url, headers)``.
    """

    _PATH = "endpoint"
    method: _Field[str] = _Field("POST")
    url: _Field[str | None] = _Field(None)
    headers: _Field[Mapping[str, str] | Sequence[Header] | None] = _Field(None)

    def __init__(
        self,
        method: str | None = None,
        url: str | None = None,
        headers: Mapping[str, str] | Sequence[Header] | None = None,
    ) -> None:
        super().__init__()
        self.url = url
        self.method = method
        self.headers = list(headers) if isinstance(headers, tuple) else headers

    def _build(self, path: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.url is not None:
            out["url"] = self.url
        if self.is_set("method"):
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
        method = out.pop("method")
        warnings.warn(
            f"{_join(path, 'method')}={method!r} is not sent: a {kind} endpoint has only url and "
            "headers on the wire (the server rejects a method there); remove method to silence "
            "this warning",
            DeepgramAgentWarning,
            stacklevel=2,
        )
    return out


# ----------------------------------------------------------------------------------------------
# Audio
# ----------------------------------------------------------------------------------------------


def _telephony_rate(obj: Any) -> Any:
    """The sample rate to send: the one given, else 8000 for G.711 (mulaw/alaw, the telephony
    formats, docs/protocol.md 4), else the class default."""
    if not obj.is_set("sample_rate") and obj.encoding in ("mulaw", "alaw"):
        return 8000
    return obj.sample_rate


class Input(_Options):
    """``audio.input``: the format of the user audio you send (both keys are always sent).

    Defaults: ``linear16``, 16000 Hz (8000 Hz for ``mulaw``/``alaw``).
    """

    _PATH = "audio.input"
    encoding: _Field[str] = _Field("linear16")
    sample_rate: _Field[int | float] = _Field(16000)

    def __init__(self, encoding: str | None = None, sample_rate: int | float | None = None) -> None:
        super().__init__()
        self.encoding = encoding
        self.sample_rate = sample_rate

    def _build(self, path: str) -> dict[str, Any]:
        return {"encoding": self.encoding, "sample_rate": _telephony_rate(self)}


class Output(_Options):
    """``audio.output``: the format of the agent audio you receive.

    Defaults: ``linear16``, 24000 Hz (8000 Hz for ``mulaw``/``alaw``), ``container: none``
    (bare samples); ``bitrate`` only when set (compressed encodings). Positional order as in
    the v4 SDK: ``Output(encoding, sample_rate, bitrate, container)`` (whose default rate was
    16000 Hz).
    """

    _PATH = "audio.output"
    encoding: _Field[str] = _Field("linear16")
    sample_rate: _Field[int | float] = _Field(24000)
    bitrate: _Field[int | float | None] = _Field(None)
    container: _Field[str] = _Field("none")

    def __init__(
        self,
        encoding: str | None = None,
        sample_rate: int | float | None = None,
        bitrate: int | float | None = None,
        container: str | None = None,
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

    ``Audio().input`` and ``.output`` read as default :class:`Input`/:class:`Output` objects
    (``options.audio.input.sample_rate = 24000`` works). A side you never set is derived from
    the Listen (input) or the Speak (output), else the defaults.
    """

    _PATH = "audio"
    input: _Child[Input] = _Child(Input)
    output: _Child[Output] = _Child(Output)

    def __init__(
        self,
        input: Input | Mapping[str, Any] | None = None,
        output: Output | Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.input = input
        self.output = output

    def _build(self, path: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for side in ("input", "output"):
            part = self._given.get(side)
            if part is not None:
                out[side] = _plain(part, _join(path, side))
        return out

    @classmethod
    def _from_wire(cls, data: dict[str, Any]) -> Audio:
        inp, outp = data.pop("input", None), data.pop("output", None)
        return cls(
            input=Input.from_dict(inp) if isinstance(inp, Mapping) else inp,
            output=Output.from_dict(outp) if isinstance(outp, Mapping) else outp,
            **_known_kwargs(cls, data, cls._PATH),
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
    encoding="linear16", sample_rate=16000)``. Wire / v4 style: ``Listen(provider=Provider(
    type="deepgram", version="v2", model="flux-general-en", eot_threshold=0.8))``, or
    ``listen.provider.model = "nova-3"`` on the default provider; flat keys given next to a
    provider are merged into it. ``encoding``/``sample_rate`` go to ``audio.input``.
    ``channels``, ``interim_results``, ``vad_events`` and ``endpointing`` have no place on the v1
    wire: accepted, not sent, and a :class:`DeepgramAgentWarning` says so.

    Reading ``model``, ``language``, ... gives the value that will be sent (seed defaults
    included), or ``None`` when nothing will be sent; assigning them works like the keywords.
    """

    _PATH = "agent.listen"
    provider: _ProviderChild = _ProviderChild("deepgram")
    encoding: _Field[str] = _Field("linear16")
    sample_rate: _Field[int | float] = _Field(16000)
    channels: _Field[int] = _Field(1)
    interim_results: _Field[bool] = _Field(True)
    vad_events: _Field[bool] = _Field(True)
    endpointing: _Field[bool | int] = _Field(True)
    #: The STT model that will be sent (seed default ``nova-2``).
    model = _Flat()
    #: The language that will be sent (seed default ``en-US`` for Nova models).
    language = _Flat()
    #: Whether smart formatting is requested (seed default true for Nova models).
    smart_format = _Flat()
    #: Keyterm prompts, if any.
    keyterms = _Flat()
    #: The listen provider version: ``v1`` (Nova) or ``v2`` (Flux).
    version = _Flat()
    #: Flux: BCP-47 language hints (``flux-general-multi``).
    language_hints = _Flat()
    #: Flux: end-of-turn confidence threshold.
    eot_threshold = _Flat()
    #: Flux: eager end-of-turn threshold.
    eager_eot_threshold = _Flat()
    #: Flux: forced end of turn after this much silence (ms).
    eot_timeout_ms = _Flat()

    def __init__(
        self,
        provider: Provider | Mapping[str, Any] | None = None,
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
        channels: int | None = None,
        interim_results: bool | None = None,
        vad_events: bool | None = None,
        endpointing: bool | int | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.language = language
        self.smart_format = smart_format
        self.keyterms = list(keyterms) if keyterms is not None else None
        self.version = version
        self.language_hints = list(language_hints) if language_hints is not None else None
        self.eot_threshold = eot_threshold
        self.eager_eot_threshold = eager_eot_threshold
        self.eot_timeout_ms = eot_timeout_ms
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
        provider = self._given.get("provider")
        if provider is None:
            model = flat.get("model", "nova-2")
            version = flat.get("version") or ("v2" if str(model).startswith("flux") else "v1")
            out: dict[str, Any] = {"type": "deepgram", "version": version, "model": model}
            if version == "v1":
                out["language"] = flat.get("language", "en-US")
                out["smart_format"] = flat.get("smart_format", True)
            out.update({k: v for k, v in flat.items() if k not in out})
            return out
        given = _plain(provider, path)
        if not isinstance(given, dict):
            raise SettingsError(path, "provider must be a Provider(...) or a dict")
        out = _merge_flat({"type": "deepgram", **given}, flat, path, "Listen")
        if "version" not in out and str(out.get("model", "")).startswith("flux"):
            out["version"] = "v2"  # Flux models are the v2 listen provider (docs/protocol.md 5.1.1)
        return out

    def _read_flat(self, name: str) -> Any:
        try:
            return self._provider("agent.listen.provider").get(name)
        except SettingsError:
            return self._given.get(name)

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
    container="none")``. Wire / v4 style: ``Speak(provider=Provider(type="eleven_labs",
    model_id="eleven_turbo_v2_5"), endpoint=Endpoint(url=..., headers=...))``, or
    ``speak.provider.model = ...`` on the default provider. Flat provider keys (``model``,
    ``voice``, ``speed``, ...) are merged into the provider (default type ``deepgram``, default
    model ``aura-asteria-en`` for it). ``encoding``, ``sample_rate``, ``container`` and
    ``bitrate`` go to ``audio.output``. A list of Speak is a fallback chain. Positional order as
    in the v4 SDK: ``Speak(provider, endpoint)``.
    """

    _PATH = "agent.speak"
    provider: _ProviderChild = _ProviderChild("deepgram")
    endpoint: _Field[Endpoint | Mapping[str, Any] | None] = _Field(None)
    encoding: _Field[str] = _Field("linear16")
    sample_rate: _Field[int | float] = _Field(24000)
    container: _Field[str] = _Field("none")
    bitrate: _Field[int | float | None] = _Field(None)
    #: The TTS model that will be sent (seed default ``aura-asteria-en`` for Deepgram).
    model = _Flat()
    #: ``model_id`` (ElevenLabs, Cartesia).
    model_id = _Flat()
    #: The voice (OpenAI: a name; Cartesia: ``{mode, id}``; AWS Polly: a name).
    voice = _Flat()
    #: Speaking rate.
    speed = _Flat()
    #: Provider version (Deepgram ``v1`` Aura / ``v2`` Flux TTS).
    version = _Flat()
    #: Provider language.
    language = _Flat()
    #: Deepgram Flux TTS expressivity.
    expressivity = _Flat()

    def __init__(
        self,
        provider: Provider | Mapping[str, Any] | None = None,
        endpoint: Endpoint | Mapping[str, Any] | None = None,
        *,
        model: str | None = None,
        encoding: str | None = None,
        sample_rate: int | float | None = None,
        container: str | None = None,
        bitrate: int | float | None = None,
        model_id: str | None = None,
        voice: str | Mapping[str, str] | None = None,
        speed: float | None = None,
        version: str | None = None,
        language: str | None = None,
        expressivity: int | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.model_id = model_id
        self.voice = voice
        self.speed = speed
        self.version = version
        self.language = language
        self.expressivity = expressivity
        self.provider = provider
        self.endpoint = endpoint
        self.encoding = encoding
        self.sample_rate = sample_rate
        self.container = container
        self.bitrate = bitrate

    def _provider(self, path: str) -> dict[str, Any]:
        flat = {k: _plain(self._given[k], path) for k in _SPEAK_PROVIDER_KEYS if k in self._given}
        provider = self._given.get("provider")
        given = _plain(provider, path) if provider is not None else {}
        if not isinstance(given, dict):
            raise SettingsError(path, "provider must be a Provider(...) or a dict")
        out = _merge_flat({"type": "deepgram", **given}, flat, path, "Speak")
        if out["type"] == "deepgram" and "model" not in out:
            out["model"] = DEFAULT_SPEAK_MODEL
        return out

    def _read_flat(self, name: str) -> Any:
        try:
            return self._provider("agent.speak.provider").get(name)
        except SettingsError:
            return self._given.get(name)

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
            endpoint=Endpoint.from_dict(endpoint) if isinstance(endpoint, Mapping) else endpoint,
        )


# ----------------------------------------------------------------------------------------------
# Think, functions
# ----------------------------------------------------------------------------------------------


class Item(_Options):
    """One JSON-Schema node (a property's schema, or an array's ``items``).

    ``Item(type="string", description="City name")`` (positional order as in the v4 SDK:
    ``Item(type, description)``); any other JSON-Schema keyword may be passed (``enum=[...]``,
    ``items=Item(...)``, ``properties={...}``, ``minimum=0``) and read or set as an item
    (``item["enum"]``).
    """

    def __init__(
        self, type: str | None = None, description: str | None = None, **schema: Any
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

    @type.setter
    def type(self, value: str | None) -> None:
        self["type"] = value

    @property
    def description(self) -> str | None:
        """The schema's ``description``."""
        value: str | None = self._given.get("description")
        return value

    @description.setter
    def description(self, value: str | None) -> None:
        self["description"] = value

    def __getitem__(self, key: str) -> Any:
        return self._given[key]

    def __setitem__(self, key: str, value: Any) -> None:
        if value is None:
            self._given.pop(key, None)
        else:
            self._given[key] = value
            _attach(self)


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

    def __str__(self) -> str:
        return self.to_json(indent=4)

    def to_dict(self) -> dict[str, Any]:
        """The properties as plain JSON-Schema data."""
        return _properties(self, "properties")

    def to_json(self, indent: int | None = None, **kwargs: Any) -> str:
        """:meth:`to_dict` as JSON text."""
        return _dumps(self.to_dict(), indent, kwargs)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Properties:
        """Properties holding the schemas of ``data``."""
        if not isinstance(data, Mapping):
            raise TypeError(f"Properties.from_dict() takes a dict, not {type(data).__name__}")
        return cls(data)

    @classmethod
    def from_json(cls, text: str | bytes) -> Properties:
        """Properties from JSON text."""
        return cls(_parse_json(text, "properties"))


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
    (``additionalProperties=False``) are passed through. Positional order as in the v4 SDK:
    ``Parameters(type, properties, required)``.
    """

    type: _Field[str] = _Field("object")
    properties: _Field[Properties | Mapping[str, Any] | None] = _Field(None)
    required: _Field[Sequence[str] | None] = _Field(None)

    def __init__(
        self,
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
    and the v4 SDK's ``Function(url=..., method=..., headers=...)`` are mapped into ``endpoint``
    (the server rejects those keys at the function's top level). Positional order as in the v4
    SDK: ``Function(name, description, url, method, headers, parameters, endpoint)``.
    """

    _PATH = "agent.think.functions[0]"
    name: _Field[str | None] = _Field(None)
    description: _Field[str | None] = _Field(None)
    url: _Field[str | None] = _Field(None)
    method: _Field[str | None] = _Field(None)
    headers: _Field[Mapping[str, str] | Sequence[Header] | None] = _Field(None)
    parameters: _Field[Parameters | Mapping[str, Any] | None] = _Field(None)
    endpoint: _Field[Endpoint | Mapping[str, Any] | None] = _Field(None)
    defer_until_eot: _Field[bool | None] = _Field(None)
    initial_agent_filler: _Field[bool | None] = _Field(None)
    agent_filler_max_count: _Field[int | None] = _Field(None)
    agent_filler_interval_ms: _Field[int | None] = _Field(None)

    def __init__(
        self,
        name: str | None = None,
        description: str | None = None,
        url: str | None = None,
        method: str | None = None,
        headers: Mapping[str, str] | Sequence[Header] | None = None,
        parameters: Parameters | Mapping[str, Any] | None = None,
        endpoint: Endpoint | Mapping[str, Any] | None = None,
        *,
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
        self.headers = list(headers) if isinstance(headers, tuple) else headers
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
            endpoint = Endpoint.from_dict(endpoint)
        return cls(endpoint=endpoint, **_known_kwargs(cls, data, cls._PATH))


class Think(_Options):
    """The LLM: ``agent.think`` (or ``UpdateThink.think``).

    Seed style: ``Think(provider=Provider(type="open_ai"), model="gpt-4o-mini",
    instructions="...", functions=[Function(...)])``. v4 style: ``think.provider.type =
    "open_ai"``, ``think.provider.model = ...``, ``think.prompt = ...`` on the default objects.
    ``model``, ``temperature`` and ``reasoning_mode`` go into the provider (type defaults to
    ``open_ai``, whose model defaults to :data:`DEFAULT_THINK_MODEL`); ``instructions`` (the
    seed's name) and ``prompt`` (the wire's) are the same option. ``endpoint`` is a
    bring-your-own LLM (url + headers). A list of Think is a fallback chain. Positional order as
    in the v4 SDK: ``Think(provider, functions, endpoint, prompt, context_length)``.
    """

    _PATH = "agent.think"
    provider: _ProviderChild = _ProviderChild("open_ai")
    functions: _Field[Sequence[Function | Mapping[str, Any]] | None] = _Field(None)
    endpoint: _Field[Endpoint | Mapping[str, Any] | None] = _Field(None)
    context_length: _Field[int | float | str | None] = _Field(None)
    #: The LLM model that will be sent (:data:`DEFAULT_THINK_MODEL` for ``open_ai``).
    model = _Flat()
    #: Sampling temperature.
    temperature = _Flat()
    #: Reasoning effort (``open_ai``, ``groq``).
    reasoning_mode = _Flat()

    def __init__(
        self,
        provider: Provider | Mapping[str, Any] | None = None,
        functions: Sequence[Function | Mapping[str, Any]] | None = None,
        endpoint: Endpoint | Mapping[str, Any] | None = None,
        prompt: str | None = None,
        context_length: int | float | str | None = None,
        *,
        model: str | None = None,
        instructions: str | None = None,
        temperature: float | None = None,
        reasoning_mode: str | None = None,
    ) -> None:
        super().__init__()
        self.provider = provider
        self.model = model
        self.temperature = temperature
        self.reasoning_mode = reasoning_mode
        # Both kept as given: two different texts are reported when the Think is built.
        if instructions is not None:
            self._given["instructions"] = instructions
        if prompt is not None:
            self._given["prompt"] = prompt
        self.functions = list(functions) if functions is not None else None
        self.endpoint = endpoint
        self.context_length = context_length

    @property
    def prompt(self) -> str | None:
        """The system prompt that will be sent (set as ``prompt`` or ``instructions``)."""
        value: str | None = self._given.get("prompt", self._given.get("instructions"))
        return value

    @prompt.setter
    def prompt(self, value: str | None) -> None:
        self._given.pop("instructions", None)
        if value is None:
            self._given.pop("prompt", None)
        else:
            self._given["prompt"] = value
            _attach(self)

    @property
    def instructions(self) -> str:
        """The seed's name for :attr:`prompt` (``""`` when unset, as the seed declares)."""
        value: str = self._given.get("instructions", self._given.get("prompt", ""))
        return value

    @instructions.setter
    def instructions(self, value: str | None) -> None:
        self._given.pop("prompt", None)
        if value is None:
            self._given.pop("instructions", None)
        else:
            self._given["instructions"] = value
            _attach(self)

    def _provider(self, path: str) -> dict[str, Any]:
        provider = self._given.get("provider")
        given = _plain(provider, path) if provider is not None else {}
        if not isinstance(given, dict):
            raise SettingsError(path, "provider must be a Provider(type=...) or a dict")
        flat: dict[str, Any] = {
            k: self._given[k]
            for k in ("model", "temperature", "reasoning_mode")
            if k in self._given
        }
        out = _merge_flat({"type": "open_ai", **given}, flat, path, "Think")
        if out["type"] == "open_ai" and "model" not in out:
            out["model"] = DEFAULT_THINK_MODEL
        return out

    def _read_flat(self, name: str) -> Any:
        try:
            return self._provider("agent.think.provider").get(name)
        except SettingsError:
            return self._given.get(name)

    def _build(self, path: str) -> dict[str, Any]:
        out: dict[str, Any] = {"provider": self._provider(_join(path, "provider"))}
        if self.endpoint is not None:
            out["endpoint"] = _endpoint_dict(self.endpoint, _join(path, "endpoint"), kind="think")
        given_prompt = self._given.get("prompt")
        given_instructions = self._given.get("instructions")
        if (
            given_prompt is not None
            and given_instructions is not None
            and given_prompt != given_instructions
        ):
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
            endpoint=Endpoint.from_dict(endpoint) if isinstance(endpoint, Mapping) else endpoint,
            functions=[Function.from_dict(f) if isinstance(f, Mapping) else f for f in functions]
            if isinstance(functions, list)
            else functions,
            **_known_kwargs(cls, data, cls._PATH),
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


#: ``flags``: ``Flags(history=False)`` turns off ``History`` events. One class with the wire
#: struct (:class:`deepgram_agent.messages.Flags`).
Flags = messages.Flags


_ThinkArg = Think | Mapping[str, Any] | Sequence[Think | Mapping[str, Any]]
_SpeakArg = Speak | Mapping[str, Any] | Sequence[Speak | Mapping[str, Any]]


def _one_or_chain(value: Any, path: str) -> Any:
    if isinstance(value, list | tuple):
        return [_plain(v, f"{path}[{i}]") for i, v in enumerate(value)]
    return _plain(value, path)


class Agent(_Options):
    """The inline ``agent`` object: ``listen``, ``think``, ``speak``, ``greeting``, ``context``.

    ``listen``, ``think`` and ``speak`` read as default objects until set (v4 style:
    ``agent.think.prompt = ...``); ``think`` and ``speak`` also take a list (a fallback chain).
    ``think_live`` (early access) takes the wire dict. ``language`` is deprecated by Deepgram
    (use the providers' language): it reads ``"en"`` and is sent only when set. Positional order
    as in the v4 SDK: ``Agent(language, listen, think, speak, greeting)``.
    """

    _PATH = "agent"
    language: _Field[str] = _Field("en")
    listen: _Child[Listen] = _Child(Listen)
    think: _Child[Think] = _Child(Think)
    speak: _Child[Speak] = _Child(Speak)
    greeting: _Field[str | None] = _Field(None)
    context: _Field[Context | Mapping[str, Any] | None] = _Field(None)
    think_live: _Field[Mapping[str, Any] | None] = _Field(None)

    def __init__(
        self,
        language: str | None = None,
        listen: Listen | Mapping[str, Any] | None = None,
        think: _ThinkArg | None = None,
        speak: _SpeakArg | None = None,
        greeting: str | None = None,
        *,
        context: Context | Mapping[str, Any] | None = None,
        think_live: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.listen = listen
        self.think = think
        self.speak = speak
        self.greeting = greeting
        self.context = context
        self.think_live = think_live
        self.language = language

    def _build(self, path: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        given = self._given
        if "listen" in given:
            out["listen"] = _plain(given["listen"], _join(path, "listen"))
        if "think" in given:
            out["think"] = _one_or_chain(given["think"], _join(path, "think"))
        if "speak" in given:
            out["speak"] = _one_or_chain(given["speak"], _join(path, "speak"))
        if self.greeting is not None:
            out["greeting"] = self.greeting
        if self.context is not None:
            out["context"] = _plain(self.context, _join(path, "context"))
        if self.think_live is not None:
            out["think_live"] = _plain(self.think_live, _join(path, "think_live"))
        if self.is_set("language"):
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
            context=Context.from_dict(context) if isinstance(context, Mapping) else context,
            **_known_kwargs(cls, data, cls._PATH),
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


def _typed_view(sent: dict[str, Any], fallback: messages.Settings) -> messages.Settings:
    """The typed Settings for JSON that carries ``extra`` keys.

    No value rule runs here (the server decides on what ``extra`` adds): the merged JSON is
    read structurally, keys the SDK does not model are dropped from the view, and when the
    merged JSON does not fit the SDK's types at all (a provider type it does not know, a value
    of another type), the view is the validated modelled part (``fallback``).
    """
    from ._prepare import typed_view

    return typed_view(sent, fallback)


class SettingsOptions(_Options):
    """The ``Settings`` message: everything the agent needs, sent once at the start.

    ``SettingsOptions()`` is a tree of defaults as in the v4 SDK (``options.agent.think``,
    ``options.audio.input``, ...): set what you need attribute by attribute; only what you set
    (plus the defaults the server needs) is sent, see the module docstring.

    Args:
        agent: an :class:`Agent`, a wire dict, or the id (str) of a stored agent configuration.
        listen, think, speak: the seed's top-level shortcuts, mapped into ``agent.*`` (giving one
            here and in ``agent`` too is an error).
        audio: ``Audio(input=..., output=...)``; sides not given are derived (see the module).
        tags: labels for usage filtering.
        experimental, mip_opt_out: read ``False`` and are sent only when set.
        flags: ``Flags(history=...)`` (or a dict, or a bool for ``history``).
        greeting, context: shortcuts for ``agent.greeting`` / ``agent.context``.
        extra: the escape hatch, deep-merged into the JSON after validation and sent as given
            (module docs).
        type: accepted for the v4 SDK's signature; always ``"Settings"``.
    """

    _PATH = ""
    agent: _Child[Agent] = _Child(Agent)
    audio: _Child[Audio] = _Child(Audio)
    listen: _Field[Listen | Mapping[str, Any] | None] = _Field(None)
    think: _Field[_ThinkArg | None] = _Field(None)
    speak: _Field[_SpeakArg | None] = _Field(None)
    tags: _Field[Sequence[str] | None] = _Field(None)
    experimental: _Field[bool] = _Field(False)
    flags: _Field[Flags | Mapping[str, Any] | bool | None] = _Field(None)
    mip_opt_out: _Field[bool] = _Field(False)
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
        type: str | None = None,
    ) -> None:
        super().__init__()
        _check_type("Settings", type)
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

    @property
    def type(self) -> str:
        """Always ``"Settings"``."""
        return "Settings"

    # -- building -------------------------------------------------------------------------------

    def _agent_parts(self) -> tuple[Any, dict[str, Any]]:
        """(agent as given, the top-level shortcuts that belong inside it)."""
        shortcuts: dict[str, Any] = {
            k: self._given[k]
            for k in ("listen", "think", "speak", "greeting", "context")
            if k in self._given
        }
        return self._given.get("agent"), shortcuts

    def _effective(self, key: str) -> Any:
        """The Listen/Think/Speak that will be sent, wherever it was given."""
        if key in self._given:
            return self._given[key]
        agent = self._given.get("agent")
        if isinstance(agent, Agent):
            return agent._given.get(key)
        if isinstance(agent, Mapping):  # agent={"listen": Listen(...), ...} counts too
            return agent.get(key)
        return None

    def _audio(self) -> dict[str, Any]:
        audio = self._given.get("audio")
        given = _plain(audio, "audio") if audio is not None else {}
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
        if self.is_set("experimental"):
            out["experimental"] = self.experimental
        if self.is_set("mip_opt_out"):
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
        """The ``Settings`` JSON to send: the modelled part validated, ``extra`` merged as given."""
        return self._compile()[1]

    def _unchecked_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = whole_floats_to_int(self._build(""))
        if isinstance(self.extra, Mapping) and self.extra:
            out = whole_floats_to_int(_deep_merge(out, self.extra))
        return out

    def to_message(self) -> messages.Settings:
        """The typed ``Settings`` (keys only ``extra`` adds are not in it)."""
        return self._compile()[0]

    @classmethod
    def _from_wire(cls, data: dict[str, Any]) -> SettingsOptions:
        kind = data.pop("type", "Settings")
        if kind != "Settings":
            raise SettingsError("type", f"expected 'Settings', got {kind!r}")
        agent = data.pop("agent", None)
        audio = data.pop("audio", None)
        flags = data.pop("flags", None)
        return cls(
            agent=Agent.from_dict(agent) if isinstance(agent, Mapping) else agent,
            audio=Audio.from_dict(audio) if isinstance(audio, Mapping) else audio,
            flags=Flags.from_dict(flags) if isinstance(flags, Mapping) else flags,
            **_known_kwargs(cls, data, cls._PATH, exclude=("extra", "type")),
        )


def _check_type(expected: str, given: str | None) -> None:
    if given is not None and given != expected:
        raise SettingsError("type", f"this message is always {expected!r}, not {given!r}")


# ----------------------------------------------------------------------------------------------
# The other client messages
# ----------------------------------------------------------------------------------------------


class _MessageOptions(_Options):
    """Base of the option classes that are whole client messages.

    Contract with the connection core: :meth:`to_dict` is the exact wire JSON to send (``type``
    included, validated) and :meth:`to_message` the typed ``messages.*`` struct.
    """

    _TYPE: ClassVar[str] = ""

    @property
    def type(self) -> str:
        """The message's wire ``type``."""
        return self._TYPE

    def _body(self) -> dict[str, Any]:  # pragma: no cover - overridden
        raise NotImplementedError

    def _build(self, path: str) -> dict[str, Any]:
        return {"type": self._TYPE, **self._body()}

    def to_message(self) -> messages.ClientMessage:
        """The validated typed message."""
        return check_client_message(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        """The validated wire JSON of the message (``type`` included)."""
        data: dict[str, Any] = whole_floats_to_int(self._build(""))
        check_client_message(data)
        return data

    @classmethod
    def _checked_body(cls, data: dict[str, Any]) -> dict[str, Any]:
        body = dict(data)
        kind = body.pop("type", cls._TYPE)
        if kind != cls._TYPE:
            raise SettingsError("type", f"expected {cls._TYPE!r}, got {kind!r}")
        return body

    @classmethod
    def _from_wire(cls: builtins.type[_M], data: dict[str, Any]) -> _M:
        return cls(**_known_kwargs(cls, cls._checked_body(data), cls._PATH, exclude=("type",)))


class UpdatePromptOptions(_MessageOptions):
    """``UpdatePrompt``: change the system prompt (``UpdatePromptOptions(prompt=...)``)."""

    _TYPE = "UpdatePrompt"
    prompt: _Field[str | None] = _Field(None)

    def __init__(self, *, prompt: str | None = None, type: str | None = None) -> None:
        super().__init__()
        _check_type(self._TYPE, type)
        self.prompt = prompt

    def _body(self) -> dict[str, Any]:
        if self.prompt is None:
            raise SettingsError("prompt", "UpdatePromptOptions needs prompt=...")
        return {"prompt": self.prompt}


class UpdateSpeakOptions(_MessageOptions):
    """``UpdateSpeak``: replace the TTS configuration.

    ``UpdateSpeakOptions(speak=Speak(model="aura-2-luna-en"))``, or v4 style
    ``UpdateSpeakOptions().speak.provider.model = ...``; a list is a fallback chain. The Speak's
    audio fields are not sent: the output format is fixed for the session.
    """

    _TYPE = "UpdateSpeak"
    speak: _Child[Speak] = _Child(Speak)

    def __init__(self, *, speak: _SpeakArg | None = None, type: str | None = None) -> None:
        super().__init__()
        _check_type(self._TYPE, type)
        self.speak = speak

    def _body(self) -> dict[str, Any]:
        speak = self._given.get("speak")
        if speak is None:
            raise SettingsError("speak", "UpdateSpeakOptions needs speak=Speak(...)")
        return {"speak": _one_or_chain(speak, "speak")}

    @classmethod
    def _from_wire(cls, data: dict[str, Any]) -> UpdateSpeakOptions:
        data = _known_kwargs(cls, cls._checked_body(data), "", exclude=("type",))
        speak = data.get("speak")
        if isinstance(speak, list):
            return cls(speak=[Speak.from_dict(s) if isinstance(s, Mapping) else s for s in speak])
        return cls(speak=Speak.from_dict(speak) if isinstance(speak, Mapping) else speak)


class UpdateThinkOptions(_MessageOptions):
    """``UpdateThink``: replace the whole think block (``think=Think(...)`` or a list)."""

    _TYPE = "UpdateThink"
    think: _Child[Think] = _Child(Think)

    def __init__(self, *, think: _ThinkArg | None = None, type: str | None = None) -> None:
        super().__init__()
        _check_type(self._TYPE, type)
        self.think = think

    def _body(self) -> dict[str, Any]:
        think = self._given.get("think")
        if think is None:
            raise SettingsError("think", "UpdateThinkOptions needs think=Think(...)")
        return {"think": _one_or_chain(think, "think")}

    @classmethod
    def _from_wire(cls, data: dict[str, Any]) -> UpdateThinkOptions:
        data = _known_kwargs(cls, cls._checked_body(data), "", exclude=("type",))
        think = data.get("think")
        if isinstance(think, list):
            return cls(think=[Think.from_dict(t) if isinstance(t, Mapping) else t for t in think])
        return cls(think=Think.from_dict(think) if isinstance(think, Mapping) else think)


class UpdateListenOptions(_MessageOptions):
    """``UpdateListen``: change STT tunables mid-session (``listen=Listen(...)``).

    The Listen's audio fields are not sent: the input format is fixed for the session.
    """

    _TYPE = "UpdateListen"
    listen: _Child[Listen] = _Child(Listen)

    def __init__(
        self, *, listen: Listen | Mapping[str, Any] | None = None, type: str | None = None
    ) -> None:
        super().__init__()
        _check_type(self._TYPE, type)
        self.listen = listen

    def _body(self) -> dict[str, Any]:
        listen = self._given.get("listen")
        if listen is None:
            raise SettingsError("listen", "UpdateListenOptions needs listen=Listen(...)")
        return {"listen": _plain(listen, "listen")}

    @classmethod
    def _from_wire(cls, data: dict[str, Any]) -> UpdateListenOptions:
        data = _known_kwargs(cls, cls._checked_body(data), "", exclude=("type",))
        listen = data.get("listen")
        return cls(listen=Listen.from_dict(listen) if isinstance(listen, Mapping) else listen)


class InjectAgentMessageOptions(_MessageOptions):
    """``InjectAgentMessage``: the agent says ``message`` verbatim.

    ``InjectAgentMessageOptions(text=...)`` (seed) or ``(message=...)`` (wire, v4), with an
    optional ``behavior`` (``default``, ``queue`` or ``interrupt``). ``is_dynamic=True`` without
    a message is the Think Live dynamic form.
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
        type: str | None = None,
    ) -> None:
        super().__init__()
        _check_type(self._TYPE, type)
        self.message = _one_of(
            "message", "InjectAgentMessageOptions", ("text", text), ("message", message)
        )
        self.behavior = behavior
        self.is_dynamic = is_dynamic

    @property
    def text(self) -> str | None:
        """The seed's name for ``message``."""
        return self.message

    @text.setter
    def text(self, value: str | None) -> None:
        self.message = value

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

    ``InjectUserMessageOptions(text=...)`` (seed) or ``(content=...)`` (wire, v4).
    """

    _TYPE = "InjectUserMessage"
    content: _Field[str | None] = _Field(None)

    def __init__(
        self, *, text: str | None = None, content: str | None = None, type: str | None = None
    ) -> None:
        super().__init__()
        _check_type(self._TYPE, type)
        self.content = _one_of(
            "content", "InjectUserMessageOptions", ("text", text), ("content", content)
        )

    @property
    def text(self) -> str | None:
        """The seed's name for ``content``."""
        return self.content

    @text.setter
    def text(self, value: str | None) -> None:
        self.content = value

    def _body(self) -> dict[str, Any]:
        if self.content is None:
            raise SettingsError(
                "content", "InjectUserMessageOptions needs text=... (or content=...)"
            )
        return {"content": self.content}


#: ``FunctionCallResponse``: one class with the wire message
#: (:class:`deepgram_agent.messages.FunctionCallResponse`), which also takes the seed's
#: ``FunctionCallResponse(name=..., result=...)`` and the classic positional
#: ``(id, name, content)``; an ``id`` left out is filled in from the pending request.
FunctionCallResponse = messages.FunctionCallResponse


class AgentKeepAlive(_MessageOptions):
    """``KeepAlive``: keeps an idle session open. ``type`` is accepted for the classic signature.

    ``str(AgentKeepAlive())`` is its JSON, so the v4 idiom ``connection.send(str(AgentKeepAlive()))``
    sends a ``KeepAlive`` (automatic keepalive makes it unnecessary, see ``ConnectOptions``).
    """

    _TYPE = "KeepAlive"

    def __init__(self, *, type: str | None = None) -> None:
        super().__init__()
        if type is not None and type != "KeepAlive":
            raise SettingsError("type", f"AgentKeepAlive is always 'KeepAlive', not {type!r}")

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

    Defaults (``audio.input`` omitted): ``linear16``, 24000 Hz (docs/protocol.md 4.1).
    """
    return settings.input_format
