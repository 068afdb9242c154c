"""Every message of the Voice Agent API v1 wire protocol, as msgspec Structs.

Two families live here:

* **Client -> server** messages (``Settings``, ``UpdatePrompt``, ...). They are *strict*:
  unknown keys are refused when decoding (the real server rejects a whole message for one
  unknown or misplaced key, docs/protocol.md 9.4), and optional fields default to ``UNSET`` so they
  are left out of the JSON instead of being sent as ``null``.
* **Server -> client** messages (``Welcome``, ``ConversationText``, ...). They are *lenient*:
  every field but ``type`` has a default and extra keys are ignored, because the real server
  omits fields its own schema calls required and adds new ones without notice.

Frames the SDK does not understand (an unknown ``type``, a known type with fields of the wrong
type, text that is not JSON) become :class:`Unhandled`, which keeps the raw bytes; see
:mod:`deepgram_agent._codec`.

The seed API's attribute names are available as read-only properties on the wire types
(``ConversationText.text``, ``FunctionCallRequest.function_call``, ``Error.message``, ...),
so there is one model, not two.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, ClassVar, Literal, NamedTuple, TypeAlias

import msgspec
from msgspec import UNSET, UnsetType

__all__ = [
    "AudioFormat",
    "WireDetails",
    # building blocks of Settings
    "AudioInput",
    "AudioOutput",
    "AudioConfig",
    "Flags",
    "ListenProvider",
    "ListenSettings",
    "ThinkProvider",
    "AwsCredentials",
    "ThinkEndpoint",
    "FunctionEndpoint",
    "FunctionDefinition",
    "ThinkSettings",
    "ThinkLiveProvider",
    "ThinkLiveSettings",
    "CartesiaVoice",
    "SpeakProvider",
    "SpeakEndpoint",
    "SpeakSettings",
    "HistoryConversationItem",
    "HistoryFunctionCall",
    "HistoryFunctionCallsItem",
    "ContextSettings",
    "AgentSettings",
    # client -> server
    "ClientMessage",
    "Settings",
    "UpdatePrompt",
    "UpdateSpeak",
    "UpdateThink",
    "UpdateListen",
    "UpdateThinkLive",
    "InjectUserMessage",
    "InjectAgentMessage",
    "FunctionCallResponse",
    "KeepAlive",
    "ForceEndTurn",
    "CustomToThinkProvider",
    "ClientMessageUnion",
    # server -> client
    "ServerMessage",
    "Welcome",
    "SettingsApplied",
    "ConversationText",
    "UserStartedSpeaking",
    "AgentThinking",
    "FunctionCallRequestItem",
    "FunctionCall",
    "FunctionCallRequest",
    "FunctionCallCancelledItem",
    "FunctionCallCancelled",
    "ServerFunctionCallResponse",
    "AgentStartedSpeaking",
    "AgentAudioDone",
    "PromptUpdated",
    "SpeakUpdated",
    "ThinkUpdated",
    "ListenUpdated",
    "ThinkLiveUpdated",
    "InjectionRefused",
    "LatencyReport",
    "FrustrationDetected",
    "History",
    "CustomFromThinkProvider",
    "Warning",
    "Error",
    "Unhandled",
    "Reconnecting",
    "Reconnected",
    "ServerMessageUnion",
    "SERVER_MESSAGE_TYPES",
    "CLIENT_MESSAGE_TYPES",
]


# ----------------------------------------------------------------------------------------------
# Serialisation shared by every message and building block
# ----------------------------------------------------------------------------------------------

_HIDDEN = frozenset({"wire_", "received_", "applied_"})


class _Serialises:
    """``to_dict``/``to_json``/``from_dict``/``from_json``, ``str()`` as JSON, and ``vars()``.

    The classic SDK's programs dump events with ``str(obj)``, ``obj.to_dict()`` or
    ``obj.__dict__``; all of them work on every struct of this module.
    """

    __slots__ = ()
    __struct_fields__: ClassVar[tuple[str, ...]]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (``type`` included for messages); unset fields are left out."""
        out: dict[str, Any] = msgspec.to_builtins(self)
        for key in _HIDDEN_WIRE_NAMES:
            out.pop(key, None)
        return out

    def to_json(self) -> str:
        """The JSON text of :meth:`to_dict`."""
        return msgspec.json.encode(self.to_dict()).decode()

    def __str__(self) -> str:
        return self.to_json()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Any:
        """Build from plain data (what :meth:`to_dict` returns, ``type`` optional).

        Raises:
            msgspec.ValidationError: the data does not fit (the message names the field).
        """
        plain = dict(data)
        tag = cls.__struct_config__.tag  # type: ignore[attr-defined]
        if isinstance(tag, str):
            plain.setdefault(cls.__struct_config__.tag_field, tag)  # type: ignore[attr-defined]
        return msgspec.convert(plain, cls)

    @classmethod
    def from_json(cls, text: str | bytes) -> Any:
        """Build from JSON text (see :meth:`from_dict`)."""
        data = msgspec.json.decode(text)
        if not isinstance(data, dict):
            raise msgspec.ValidationError(f"expected a JSON object, got {type(data).__name__}")
        return cls.from_dict(data)

    @property
    def __dict__(self) -> dict[str, Any]:  # type: ignore[override]
        """The fields and their values (``vars(msg)`` works, as the classic SDK's did)."""
        return {name: getattr(self, name) for name in self.__struct_fields__ if name not in _HIDDEN}


_HIDDEN_WIRE_NAMES = ("__deepgram_agent_wire__", "__received__", "__applied__")


# ----------------------------------------------------------------------------------------------
# Building blocks (strict, UNSET = omitted)
# ----------------------------------------------------------------------------------------------


class _Wire(
    _Serialises, msgspec.Struct, kw_only=True, forbid_unknown_fields=True, repr_omit_defaults=True
):
    """Base of every strict client-side structure."""


class AudioInput(_Wire):
    """``audio.input``: the format of the user audio the client sends (docs/protocol.md 4.1)."""

    encoding: str
    sample_rate: int


class AudioOutput(_Wire):
    """``audio.output``: the format of the agent audio the server sends (docs/protocol.md 4.2)."""

    encoding: str | UnsetType = UNSET
    sample_rate: int | UnsetType = UNSET
    bitrate: int | UnsetType = UNSET
    container: str | UnsetType = UNSET


class AudioConfig(_Wire):
    """``audio``: ``{"input"?, "output"?}``."""

    input: AudioInput | UnsetType = UNSET
    output: AudioOutput | UnsetType = UNSET


class Flags(_Wire):
    """``flags``: ``{"history"?: bool}``."""

    history: bool | UnsetType = UNSET


class ListenProvider(_Wire):
    """``agent.listen.provider`` (docs/protocol.md 5.1.1).

    One struct for both versions: ``v1`` (Nova) keys are ``model``, ``language``, ``keyterms``,
    ``smart_format``; ``v2`` (Flux) keys are ``model``, ``language_hints``, ``eot_threshold``,
    ``eager_eot_threshold``, ``eot_timeout_ms``, ``keyterms``. Mixing them is rejected by
    :func:`deepgram_agent._validate.check_settings`, as the server's strict parser would.
    """

    type: str = "deepgram"
    version: str | UnsetType = UNSET
    model: str | UnsetType = UNSET
    language: str | UnsetType = UNSET
    keyterms: list[str] | UnsetType = UNSET
    smart_format: bool | UnsetType = UNSET
    language_hints: list[str] | UnsetType = UNSET
    eot_threshold: float | UnsetType = UNSET
    eager_eot_threshold: float | UnsetType = UNSET
    eot_timeout_ms: int | UnsetType = UNSET


class ListenSettings(_Wire):
    """``agent.listen``: ``{"provider": ListenProvider}``."""

    provider: ListenProvider | UnsetType = UNSET


class AwsCredentials(_Wire):
    """AWS credentials for the ``aws_bedrock`` think and ``aws_polly`` speak providers."""

    type: str | UnsetType = UNSET
    region: str | UnsetType = UNSET
    access_key_id: str | UnsetType = UNSET
    secret_access_key: str | UnsetType = UNSET
    session_token: str | UnsetType = UNSET


class ThinkProvider(_Wire):
    """``agent.think.provider``, tagged by ``type`` (docs/protocol.md 5.1.2).

    The keys each ``type`` accepts are checked by :mod:`deepgram_agent._validate`; model names
    stay free strings because the server's lists change faster than any SDK.
    """

    type: str
    model: str | UnsetType = UNSET
    version: str | UnsetType = UNSET
    temperature: float | UnsetType = UNSET
    reasoning_mode: str | UnsetType = UNSET
    credentials: AwsCredentials | UnsetType = UNSET
    voice_prompt_opt_out: bool | UnsetType = UNSET


class ThinkEndpoint(_Wire):
    """``agent.think.endpoint``: a bring-your-own LLM (no ``method`` key here)."""

    url: str | UnsetType = UNSET
    headers: dict[str, str] | UnsetType = UNSET


class FunctionEndpoint(_Wire):
    """``functions[i].endpoint``: present means the *server* calls this URL."""

    url: str | UnsetType = UNSET
    method: str | UnsetType = UNSET
    headers: dict[str, str] | UnsetType = UNSET


class FunctionDefinition(_Wire):
    """``agent.think.functions[i]`` (docs/protocol.md 5.1.3)."""

    name: str | UnsetType = UNSET
    description: str | UnsetType = UNSET
    parameters: dict[str, Any] | UnsetType = UNSET
    endpoint: FunctionEndpoint | UnsetType = UNSET
    defer_until_eot: bool | UnsetType = UNSET
    initial_agent_filler: bool | UnsetType = UNSET
    agent_filler_max_count: int | UnsetType = UNSET
    agent_filler_interval_ms: int | UnsetType = UNSET


class ThinkSettings(_Wire):
    """``agent.think`` (one entry; a list of them is a fallback chain)."""

    provider: ThinkProvider
    endpoint: ThinkEndpoint | UnsetType = UNSET
    functions: list[FunctionDefinition] | UnsetType = UNSET
    prompt: str | UnsetType = UNSET
    context_length: int | float | Literal["max"] | UnsetType = UNSET


class ThinkLiveProvider(_Wire):
    """``agent.think_live.provider`` (early access, docs/protocol.md 5.1.4)."""

    type: str = "deepgram"
    version: str | UnsetType = UNSET
    agent_backchannel_sensitivity: float | UnsetType = UNSET
    presence_check_max_count: int | UnsetType = UNSET
    presence_check_interval_ms: int | UnsetType = UNSET
    frustration_max_count: int | UnsetType = UNSET
    restricted_terms: list[str] | UnsetType = UNSET


class ThinkLiveSettings(_Wire):
    """``agent.think_live``."""

    provider: ThinkLiveProvider


class CartesiaVoice(_Wire):
    """``speak.provider.voice`` for Cartesia: ``{"mode", "id"}``."""

    mode: str
    id: str


class SpeakProvider(_Wire):
    """``agent.speak.provider``, tagged by ``type`` (docs/protocol.md 5.1.5)."""

    type: str
    model: str | UnsetType = UNSET
    model_id: str | UnsetType = UNSET
    version: str | UnsetType = UNSET
    speed: float | UnsetType = UNSET
    expressivity: int | UnsetType = UNSET
    language: str | UnsetType = UNSET
    language_code: str | UnsetType = UNSET
    voice: str | CartesiaVoice | UnsetType = UNSET
    volume: float | UnsetType = UNSET
    engine: str | UnsetType = UNSET
    credentials: AwsCredentials | UnsetType = UNSET


class SpeakEndpoint(_Wire):
    """``agent.speak.endpoint`` (required for non-Deepgram providers)."""

    url: str | UnsetType = UNSET
    headers: dict[str, str] | UnsetType = UNSET


class SpeakSettings(_Wire):
    """``agent.speak`` (one entry; a list of them is a fallback chain)."""

    provider: SpeakProvider
    endpoint: SpeakEndpoint | UnsetType = UNSET


class HistoryFunctionCall(_Wire):
    """One completed function call, as replayed in ``agent.context.messages``."""

    id: str
    name: str
    client_side: bool
    arguments: str
    response: str
    thought_signature: str | UnsetType = UNSET


class HistoryConversationItem(
    msgspec.Struct,
    kw_only=True,
    forbid_unknown_fields=True,
    tag_field="type",
    tag="History",
    repr_omit_defaults=True,
):
    """``{"type": "History", "role", "content"}`` inside ``agent.context.messages``."""

    role: str
    content: str


class HistoryFunctionCallsItem(
    msgspec.Struct,
    kw_only=True,
    forbid_unknown_fields=True,
    tag_field="type",
    tag="History",
    repr_omit_defaults=True,
):
    """``{"type": "History", "function_calls": [...]}`` inside ``agent.context.messages``.

    Shares its tag with :class:`HistoryConversationItem`; the two are told apart by their keys
    (see :func:`deepgram_agent._validate.history_items`), which msgspec's tagged unions cannot
    do, so ``ContextSettings.messages`` is typed loosely and checked by hand.
    """

    function_calls: list[HistoryFunctionCall]


class ContextSettings(_Wire):
    """``agent.context``: prior conversation to preload (docs/protocol.md 5.1.6)."""

    # Two shapes share the tag "History" and differ only by their keys, which a msgspec tagged
    # union cannot express: items are checked one by one by ``_validate.check_settings``.
    messages: list[Any] | UnsetType = UNSET


class AgentSettings(_Wire):
    """The inline ``agent`` object of ``Settings``."""

    listen: ListenSettings | UnsetType = UNSET
    think: ThinkSettings | list[ThinkSettings] | UnsetType = UNSET
    think_live: ThinkLiveSettings | UnsetType = UNSET
    speak: SpeakSettings | list[SpeakSettings] | UnsetType = UNSET
    greeting: str | UnsetType = UNSET
    context: ContextSettings | UnsetType = UNSET
    language: str | UnsetType = UNSET


# ----------------------------------------------------------------------------------------------
# Client -> server messages (docs/protocol.md 5)
# ----------------------------------------------------------------------------------------------


class ClientMessage(
    _Serialises,
    msgspec.Struct,
    kw_only=True,
    forbid_unknown_fields=True,
    tag_field="type",
    repr_omit_defaults=True,
):
    """Base of every message the client sends as a text frame."""

    @property
    def type(self) -> str:
        """The wire ``type`` of this message."""
        return str(self.__struct_config__.tag)


class AudioFormat(NamedTuple):
    """An audio format on the wire: ``encoding`` (``linear16``, ``mulaw``, ...) and rate in Hz."""

    encoding: str
    sample_rate: int


class Settings(ClientMessage, tag="Settings"):
    """``Settings``: must be the first and only once (docs/protocol.md 5.1)."""

    audio: AudioConfig
    agent: AgentSettings | str
    tags: list[str] | UnsetType = UNSET
    experimental: bool | UnsetType = UNSET
    flags: Flags | UnsetType = UNSET
    mip_opt_out: bool | UnsetType = UNSET

    @property
    def input_format(self) -> AudioFormat:
        """The user audio format the server expects (``linear16``/24000 when omitted, 4.1)."""
        inp = self.audio.input
        if isinstance(inp, UnsetType):
            return AudioFormat("linear16", 24000)
        return AudioFormat(inp.encoding, inp.sample_rate)

    @property
    def output_format(self) -> AudioFormat:
        """The agent audio format the server sends (``linear16``/24000 for omitted keys)."""
        out = self.audio.output
        if isinstance(out, UnsetType):
            return AudioFormat("linear16", 24000)
        encoding = out.encoding if isinstance(out.encoding, str) else "linear16"
        rate = out.sample_rate if isinstance(out.sample_rate, int) else 24000
        return AudioFormat(encoding, rate)


class UpdatePrompt(ClientMessage, tag="UpdatePrompt"):
    """``UpdatePrompt``; answered by ``PromptUpdated``."""

    prompt: str


class UpdateSpeak(ClientMessage, tag="UpdateSpeak"):
    """``UpdateSpeak``; answered by ``SpeakUpdated``."""

    speak: SpeakSettings | list[SpeakSettings]


class UpdateThink(ClientMessage, tag="UpdateThink"):
    """``UpdateThink``; answered by ``ThinkUpdated``."""

    think: ThinkSettings | list[ThinkSettings]


class UpdateListen(ClientMessage, tag="UpdateListen"):
    """``UpdateListen``; answered by ``ListenUpdated``."""

    listen: ListenSettings


class UpdateThinkLive(ClientMessage, tag="UpdateThink_Live"):
    """``UpdateThink_Live`` (early access); answered by ``ThinkLiveUpdated``."""

    think_live: ThinkLiveSettings


class InjectUserMessage(ClientMessage, tag="InjectUserMessage"):
    """``InjectUserMessage``: act as if the user said ``content``."""

    content: str


class InjectAgentMessage(ClientMessage, tag="InjectAgentMessage"):
    """``InjectAgentMessage``: the agent speaks ``message`` verbatim.

    ``behavior`` is ``default``, ``queue`` or ``interrupt``. The dynamic form (Think Live) sets
    ``is_dynamic=True`` and no ``message``.
    """

    message: str | UnsetType = UNSET
    behavior: str | UnsetType = UNSET  # default | queue | interrupt; open: newer values pass
    is_dynamic: bool | UnsetType = UNSET


def _settings_error(path: str, problem: str) -> Exception:
    from .exceptions import SettingsError

    return SettingsError(path, problem)


class _FunctionCallResponseMeta(type(msgspec.Struct)):  # type: ignore[misc]
    """Lets ``FunctionCallResponse`` take every constructor shape its users know."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        if args:  # the classic SDK's dataclass order: (id, name, content)
            if len(args) > 3:
                raise TypeError("FunctionCallResponse takes at most (id, name, content)")
            for key, value in zip(("id", "name", "content"), args, strict=False):
                if key in kwargs:
                    raise TypeError(f"FunctionCallResponse got {key!r} twice")
                kwargs[key] = value
        for old, new in (("result", "content"), ("output", "content"), ("function_call_id", "id")):
            if old in kwargs:  # the seed's result=, and the early-access names
                if kwargs.get(new) is not None and kwargs[old] is not None:
                    raise _settings_error(
                        new, f"{old}= and {new}= are the same field; pass one of them"
                    )
                value = kwargs.pop(old)
                if value is not None:
                    kwargs[new] = value
        if kwargs.get("name") is None:
            raise _settings_error("name", "FunctionCallResponse needs name= (the function's name)")
        if kwargs.get("content") is None:
            raise _settings_error(
                "content",
                "FunctionCallResponse needs result=... (or content=...): the text for "
                "the LLM (JSON-encode structured results)",
            )
        content = kwargs.get("content")
        if content is not None and not isinstance(content, str):
            kwargs["content"] = msgspec.json.encode(content).decode()
        if kwargs.get("id") in (None, ""):
            kwargs.pop("id", None)
        return super().__call__(**kwargs)


class FunctionCallResponse(
    ClientMessage, tag="FunctionCallResponse", metaclass=_FunctionCallResponseMeta
):
    """``FunctionCallResponse``: the client's answer to a ``client_side`` function call.

    One class for every way it is written::

        FunctionCallResponse(id="call_1", name="get_weather", content='{"temp": 21}')
        FunctionCallResponse(name="get_weather", result=json.dumps(weather))  # the seed's
        FunctionCallResponse("call_1", "get_weather", '{"temp": 21}')  # classic positional

    ``content`` (or ``result``) that is not a string is sent as JSON text. Without an ``id``
    the connection answers the oldest pending call of that ``name``.
    """

    name: str
    content: str
    id: str | UnsetType = UNSET

    @property
    def result(self) -> str:
        """The seed's name for ``content``."""
        return self.content

    def to_message(self, id: str | None = None) -> FunctionCallResponse:
        """This response, with ``id`` filled in when it has none (an id given wins)."""
        if id is None or isinstance(self.id, str):
            return self
        return FunctionCallResponse(id=id, name=self.name, content=self.content)


class KeepAlive(ClientMessage, tag="KeepAlive"):
    """``KeepAlive``: keeps an idle session open; no reply."""


class ForceEndTurn(ClientMessage, tag="ForceEndTurn"):
    """``ForceEndTurn``: end the current user turn now (Flux only)."""


class CustomToThinkProvider(ClientMessage, tag="__customToThinkProvider"):
    """``__customToThinkProvider``: an opaque payload for the think provider."""

    content: Any = None


ClientMessageUnion: TypeAlias = (
    Settings
    | UpdatePrompt
    | UpdateSpeak
    | UpdateThink
    | UpdateListen
    | UpdateThinkLive
    | InjectUserMessage
    | InjectAgentMessage
    | FunctionCallResponse
    | KeepAlive
    | ForceEndTurn
    | CustomToThinkProvider
)

CLIENT_MESSAGE_TYPES: dict[str, type[ClientMessage]] = {
    str(cls.__struct_config__.tag): cls
    for cls in (
        Settings,
        UpdatePrompt,
        UpdateSpeak,
        UpdateThink,
        UpdateListen,
        UpdateThinkLive,
        InjectUserMessage,
        InjectAgentMessage,
        FunctionCallResponse,
        KeepAlive,
        ForceEndTurn,
        CustomToThinkProvider,
    )
}


# ----------------------------------------------------------------------------------------------
# Server -> client messages (docs/protocol.md 6). Lenient: every field has a default.
# ----------------------------------------------------------------------------------------------


class WireDetails(msgspec.Struct, kw_only=True, gc=False):
    """What a server message carried beyond this SDK's model (``msg.raw``, ``msg.extra``).

    Attributes:
        raw: the frame exactly as received.
        extra: top-level keys this SDK does not model, with their values.
        repairs: what was done to make the message fit its type, one line each (a nested
            unknown key left out, ``arguments`` sent as an object kept as JSON text, a
            ``null`` replaced by the default, ...).
    """

    raw: bytes
    extra: dict[str, Any] = msgspec.field(default_factory=dict)
    repairs: tuple[str, ...] = ()

    def __repr__(self) -> str:
        shown = self.raw[:120]
        more = f"... ({len(self.raw)} bytes)" if len(self.raw) > 120 else ""
        return f"WireDetails(raw={shown!r}{more}, extra={self.extra!r}, repairs={self.repairs!r})"


class ServerMessage(
    _Serialises,
    msgspec.Struct,
    kw_only=True,
    tag_field="type",
    repr_omit_defaults=True,
    omit_defaults=True,
    forbid_unknown_fields=True,
    gc=False,
):
    """Base of every JSON message the server sends.

    Every field but ``type`` has a default: the real server omits fields its own schema calls
    required. Nothing it sends is lost: a message with keys this SDK does not model, or with a
    field of an unexpected type, still arrives as its type when it can (the frame and the
    unknown keys are then in :attr:`raw` and :attr:`extra`); one that cannot be mapped arrives
    as :class:`Unhandled`.

    ``gc=False``: decoded messages never form reference cycles, so the garbage collector need
    not track them; with thousands of messages a second this saves real CPU.
    """

    wire_: WireDetails | None = msgspec.field(default=None, name="__deepgram_agent_wire__")

    @property
    def type(self) -> str:
        """The wire ``type`` of this message."""
        return str(self.__struct_config__.tag)

    @property
    def raw(self) -> bytes | None:
        """The frame as received, kept when the message carried something this SDK does not
        model (``None`` for a message that fit its type exactly)."""
        return self.wire_.raw if self.wire_ is not None else None

    @property
    def extra(self) -> dict[str, Any]:
        """Top-level keys of the frame this SDK does not model (e.g. a field the server added
        after this release), with their values; ``{}`` when there were none."""
        return self.wire_.extra if self.wire_ is not None else {}

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data, ``type`` included, every field (defaults too); keys the SDK
        does not model are added back from :attr:`extra`."""
        out: dict[str, Any] = {"type": self.type}
        for name in self.__struct_fields__:
            if name not in _HIDDEN:
                out[_ENCODE_NAMES.get(name, name)] = msgspec.to_builtins(getattr(self, name))
        if self.wire_ is not None:
            out.update(self.wire_.extra)
        return out


_ENCODE_NAMES = {"message_": "message"}


class Welcome(ServerMessage, tag="Welcome"):
    """``Welcome``: the first frame; ``request_id`` identifies the session."""

    request_id: str = ""

    @property
    def message(self) -> str:
        """The seed API's ``WelcomeResponse.message``: a readable line with the request id."""
        return f"Connected to the Deepgram Voice Agent (request_id {self.request_id})"


class SettingsApplied(ServerMessage, tag="SettingsApplied"):
    """``SettingsApplied``: audio may flow now."""

    applied_: bytes | None = msgspec.field(default=None, name="__applied__")

    @property
    def settings(self) -> dict[str, Any]:
        """The seed API's ``SettingsAppliedResponse.settings``: the Settings (JSON) that were
        applied, as the connection sent them (``{}`` for a message built by hand)."""
        if not self.applied_:
            return {}
        data: dict[str, Any] = msgspec.json.decode(self.applied_)
        return data


class ConversationText(ServerMessage, tag="ConversationText"):
    """``ConversationText``: one user or assistant utterance."""

    role: str = ""
    content: str = ""
    conversational_behavior: str = "default"
    languages_hinted: list[str] | None = None
    languages: list[str] | None = None

    @property
    def text(self) -> str:
        """The seed API's name for ``content``."""
        return self.content


class _Received:
    """A ``timestamp`` (the seed API's string): when the client received the message."""

    __slots__ = ()
    received_: float | None

    @property
    def timestamp(self) -> str:
        """When this message was received, ISO 8601 in UTC (``""`` for one built by hand).

        The wire carries no time for it; the connection stamps it on arrival.
        """
        if self.received_ is None:
            return ""
        return datetime.datetime.fromtimestamp(self.received_, datetime.UTC).isoformat()


class UserStartedSpeaking(_Received, ServerMessage, tag="UserStartedSpeaking"):
    """``UserStartedSpeaking``: the user began an utterance (barge-in trigger)."""

    received_: float | None = msgspec.field(default=None, name="__received__")


class AgentThinking(ServerMessage, tag="AgentThinking"):
    """``AgentThinking``: unspoken reasoning text."""

    content: str = ""


class FunctionCallRequestItem(
    _Serialises,
    msgspec.Struct,
    kw_only=True,
    repr_omit_defaults=True,
    forbid_unknown_fields=True,
    gc=False,
):
    """One entry of ``FunctionCallRequest.functions``. ``arguments`` is JSON *text*.

    ``client_side`` is ``None`` when the server left it out (it is not invented): the SDK then
    treats the call as the client's unless the function was declared with an ``endpoint``
    (a server-side function), and the connection expects an answer for it.
    """

    id: str = ""
    name: str = ""
    arguments: str = "{}"
    client_side: bool | None = None
    thought_signature: str | None = None

    def parsed_arguments(self) -> dict[str, Any]:
        """Decode ``arguments``.

        Raises:
            ValueError: the text is not a JSON object.
        """
        try:
            value = msgspec.json.decode(self.arguments) if self.arguments.strip() else {}
        except (msgspec.DecodeError, RecursionError) as exc:
            raise ValueError(f"function arguments are not valid JSON: {exc}") from None
        if not isinstance(value, dict):
            raise ValueError(f"function arguments are not a JSON object: {self.arguments!r}")
        return value


class FunctionCall(_Serialises, msgspec.Struct, kw_only=True, repr_omit_defaults=True):
    """The seed API's view of one requested call: ``name`` and decoded ``arguments``.

    ``arguments`` is ``{}`` when the wire text is not a JSON object; ``raw_arguments`` always
    keeps the text as sent.
    """

    name: str
    arguments: dict[str, Any]
    id: str = ""
    client_side: bool | None = None
    raw_arguments: str = "{}"


class FunctionCallRequest(ServerMessage, tag="FunctionCallRequest"):
    """``FunctionCallRequest``: the LLM wants one or more functions called."""

    functions: list[FunctionCallRequestItem] = msgspec.field(default_factory=list)

    @property
    def function_call(self) -> FunctionCall | None:
        """The seed API's view of the first requested call (``None`` if the list is empty)."""
        if not self.functions:
            return None
        item = self.functions[0]
        try:
            args = item.parsed_arguments()
        except ValueError:
            args = {}
        return FunctionCall(
            name=item.name,
            arguments=args,
            id=item.id,
            client_side=item.client_side,
            raw_arguments=item.arguments,
        )

    @property
    def call_id(self) -> str:
        """The seed API's ``call_id``: the id of the first requested call."""
        return self.functions[0].id if self.functions else ""


class FunctionCallCancelledItem(
    _Serialises, msgspec.Struct, kw_only=True, forbid_unknown_fields=True, gc=False
):
    """One entry of ``FunctionCallCancelled.functions``."""

    id: str = ""
    name: str = ""


class FunctionCallCancelled(ServerMessage, tag="FunctionCallCancelled"):
    """``FunctionCallCancelled``: these calls are void; send no response for them."""

    functions: list[FunctionCallCancelledItem] = msgspec.field(default_factory=list)


class ServerFunctionCallResponse(ServerMessage, tag="FunctionCallResponse"):
    """``FunctionCallResponse`` sent by the server after it ran a server-side function."""

    id: str | None = None
    name: str = ""
    content: str = ""


class AgentStartedSpeaking(_Received, ServerMessage, tag="AgentStartedSpeaking"):
    """``AgentStartedSpeaking``: a reply's audio follows; latencies in seconds."""

    received_: float | None = msgspec.field(default=None, name="__received__")

    total_latency: float | None = None
    tts_latency: float | None = None
    ttt_latency: float | None = None


class AgentAudioDone(ServerMessage, tag="AgentAudioDone"):
    """``AgentAudioDone``: the last audio frame of the current agent speech was sent."""


class PromptUpdated(ServerMessage, tag="PromptUpdated"):
    """Reply to ``UpdatePrompt``."""


class SpeakUpdated(ServerMessage, tag="SpeakUpdated"):
    """Reply to ``UpdateSpeak``."""


class ThinkUpdated(ServerMessage, tag="ThinkUpdated"):
    """Reply to ``UpdateThink``."""


class ListenUpdated(ServerMessage, tag="ListenUpdated"):
    """Reply to ``UpdateListen``."""


class ThinkLiveUpdated(ServerMessage, tag="ThinkLiveUpdated"):
    """Reply to ``UpdateThink_Live``."""


class InjectionRefused(ServerMessage, tag="InjectionRefused"):
    """``InjectionRefused``: an injected message was not accepted now."""

    message: str = ""


class LatencyReport(ServerMessage, tag="LatencyReport"):
    """``LatencyReport``: per-turn latencies in seconds (every field optional)."""

    stt_latency: float | None = None
    ttt_token_latency: float | None = None
    ttt_text_latency: float | None = None
    ttt_tool_latency: float | None = None
    ttt_thinking_latency: float | None = None
    tts_latency: float | None = None
    total_latency: float | None = None


class FrustrationDetected(ServerMessage, tag="FrustrationDetected"):
    """``FrustrationDetected`` (Think Live)."""

    count: int = 0
    escalated: bool = False


class HistoryFunctionCallItem(
    _Serialises,
    msgspec.Struct,
    kw_only=True,
    repr_omit_defaults=True,
    forbid_unknown_fields=True,
    gc=False,
):
    """One function call inside a ``History`` event (``client_side`` ``None`` when omitted;
    the live server has been seen to mislabel it, docs/protocol.md 9.6)."""

    id: str = ""
    name: str = ""
    client_side: bool | None = None
    arguments: str = ""
    response: str = ""
    thought_signature: str | None = None


class History(ServerMessage, tag="History"):
    """``History``: either a conversation item (``role``/``content``) or ``function_calls``."""

    role: str | None = None
    content: str | None = None
    function_calls: list[HistoryFunctionCallItem] | None = None

    @property
    def is_function_calls(self) -> bool:
        """True for the function-call shape."""
        return self.function_calls is not None


class CustomFromThinkProvider(ServerMessage, tag="__customFromThinkProvider"):
    """``__customFromThinkProvider``: an opaque payload from the think provider."""

    content: Any = None


class Warning(ServerMessage, tag="Warning"):
    """``Warning``: non-fatal."""

    description: str = ""
    code: str = ""

    @property
    def message(self) -> str:
        """Same as ``description``."""
        return self.description


class Error(ServerMessage, tag="Error"):
    """``Error``: fatal; the server normally closes next.

    The SDK also uses this type for errors it reports itself through the callback API (a
    handler that raised, a send that failed); those carry a ``code`` starting with ``CLIENT_``.
    """

    description: str = ""
    code: str = ""
    # Older servers (and the V4 SDK) carried a separate ``message``; kept when present.
    message_: str | None = msgspec.field(default=None, name="message")

    @property
    def message(self) -> str:
        """The seed API's ``ErrorResponse.message``: ``description`` unless one was sent."""
        return self.message_ or self.description

    def __str__(self) -> str:
        code = f"{self.code}: " if self.code else ""
        return f"{code}{self.description}"


class Reconnecting(_Serialises, msgspec.Struct, kw_only=True):
    """SDK event (not a wire message): the session dropped and a reconnect attempt is next.

    Attributes:
        attempt: 1 for the first attempt of this outage.
        delay: seconds waited before this attempt.
        cause: why the previous socket ended (or why the previous attempt failed).
    """

    attempt: int
    delay: float
    cause: str

    type: ClassVar[str] = "Reconnecting"

    def to_dict(self) -> dict[str, Any]:
        """The event as plain JSON-ready data, ``type`` included."""
        return {"type": self.type, **msgspec.to_builtins(self)}

    def to_json(self) -> str:
        """The event as JSON text."""
        return msgspec.json.encode(self.to_dict()).decode()

    def __str__(self) -> str:
        return self.to_json()


class Reconnected(_Serialises, msgspec.Struct, kw_only=True):
    """SDK event (not a wire message): a new session continues the conversation.

    Attributes:
        attempt: the attempt that succeeded.
        request_id: the new session's ``Welcome.request_id``.
        downtime: seconds from the drop to ``SettingsApplied`` of the new session.
        context_items: conversation items replayed in ``agent.context.messages``.
        resent: types of the messages sent again because the old session never acknowledged
            them (injections sent just before the drop).
    """

    attempt: int
    request_id: str | None
    downtime: float
    context_items: int = 0
    resent: list[str] = msgspec.field(default_factory=list)

    type: ClassVar[str] = "Reconnected"

    def to_dict(self) -> dict[str, Any]:
        """The event as plain JSON-ready data, ``type`` included."""
        return {"type": self.type, **msgspec.to_builtins(self)}

    def to_json(self) -> str:
        """The event as JSON text."""
        return msgspec.json.encode(self.to_dict()).decode()

    def __str__(self) -> str:
        return self.to_json()


class Unhandled(_Serialises, msgspec.Struct, kw_only=True):
    """A frame the SDK could not map onto a known message.

    ``message_type`` is the frame's ``type`` (``""`` when there was none), ``raw`` the exact
    bytes, and ``reason`` says why it was not decoded: ``None`` for a well-formed message of a
    type this SDK does not know (for example the undocumented ``EndOfThought``), otherwise the
    decoding error (not JSON, fields of the wrong type, ...).
    """

    message_type: str
    raw: bytes
    reason: str | None = None

    type: ClassVar[str] = "Unhandled"

    @property
    def is_protocol_error(self) -> bool:
        """True when the frame was malformed, not merely of an unknown type."""
        return self.reason is not None

    def json(self) -> Any:
        """The frame parsed as JSON, or ``None`` when it is not JSON."""
        try:
            return msgspec.json.decode(self.raw)
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
            return None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Unhandled:
        """Rebuild from :meth:`to_dict`'s output (``raw`` as text or bytes)."""
        raw = data.get("raw", b"")
        return cls(
            message_type=str(data.get("message_type", "")),
            raw=raw.encode() if isinstance(raw, str) else bytes(raw),
            reason=data.get("reason"),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data: ``type`` (``"Unhandled"``), ``message_type``, ``reason`` and ``raw``
        (the frame as text, undecodable bytes replaced) and ``data`` (the parsed frame, or
        ``None`` when it is not JSON)."""
        return {
            "type": self.type,
            "message_type": self.message_type,
            "reason": self.reason,
            "raw": self.raw.decode("utf-8", "replace"),
            "data": self.json(),
        }

    def to_json(self) -> str:
        """The event as JSON text (see :meth:`to_dict`)."""
        return msgspec.json.encode(self.to_dict()).decode()

    def __str__(self) -> str:
        return self.to_json()

    def __repr__(self) -> str:
        shown = self.raw[:200]
        more = f"... ({len(self.raw)} bytes)" if len(self.raw) > 200 else ""
        return f"Unhandled(message_type={self.message_type!r}, raw={shown!r}{more}, reason={self.reason!r})"


ServerMessageUnion: TypeAlias = (
    Welcome
    | SettingsApplied
    | ConversationText
    | UserStartedSpeaking
    | AgentThinking
    | FunctionCallRequest
    | FunctionCallCancelled
    | ServerFunctionCallResponse
    | AgentStartedSpeaking
    | AgentAudioDone
    | PromptUpdated
    | SpeakUpdated
    | ThinkUpdated
    | ListenUpdated
    | ThinkLiveUpdated
    | InjectionRefused
    | LatencyReport
    | FrustrationDetected
    | History
    | CustomFromThinkProvider
    | Warning
    | Error
)

SERVER_MESSAGE_TYPES: dict[str, type[ServerMessage]] = {
    str(cls.__struct_config__.tag): cls
    for cls in (
        Welcome,
        SettingsApplied,
        ConversationText,
        UserStartedSpeaking,
        AgentThinking,
        FunctionCallRequest,
        FunctionCallCancelled,
        ServerFunctionCallResponse,
        AgentStartedSpeaking,
        AgentAudioDone,
        PromptUpdated,
        SpeakUpdated,
        ThinkUpdated,
        ListenUpdated,
        ThinkLiveUpdated,
        InjectionRefused,
        LatencyReport,
        FrustrationDetected,
        History,
        CustomFromThinkProvider,
        Warning,
        Error,
    )
}
