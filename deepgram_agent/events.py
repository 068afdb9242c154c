"""The seed's callback API: ``conn.on(AgentWebSocketEvents.X, handler)`` and ``conn.start()``.

Both clients are consumers of the one async core:

* :class:`AgentWebSocketClient` (``client.agent.websocket.v("1")``) runs the core on the shared
  loop thread (:mod:`deepgram_agent.sync`) and calls handlers on a dispatcher thread of its own,
  in arrival order, so a slow handler never stalls the socket reader (the bounded queue between
  them is what pushes back).
* :class:`AsyncAgentWebSocketClient` (``client.agent.asyncwebsocket.v("1")``) runs a dispatcher
  task on the caller's loop; coroutine handlers are awaited, plain ones called.

Handlers are called ``handler(client, event)``: the seed's ``def on_text(self, text_event,
**kwargs)`` works, and so does a handler taking the event by keyword only
(``def on_text(self, *, text_event)``) or a bound method taking just the event. A handler that
raises is logged and reported as an ``Error`` event (code ``CLIENT_HANDLER_ERROR``); the
connection stays up.

Methods return ``bool`` as the seed and the ``deepgram`` v4 SDK say, and do not raise for what
happens on the wire or for bad arguments:

* ``start()`` is True once the session is ready. Settings that fail the local checks, a refused
  handshake or a server ``Error`` give False after an ``Error`` event and a ``Close`` event
  (local failures send nothing; their ``Error`` carries the code the server would answer with).
* The senders give False plus an ``Error`` event when the message is invalid or the send fails
  (not started, closed), and False plus an ERROR log line on the ``deepgram_agent`` logger for
  an argument of the wrong type or ``None`` (nothing is sent: ``inject_agent_message`` never
  sends an ``InjectUserMessage``).
* ``send()`` is the v4 SDK's: ``bytes`` are audio, a ``str`` is a message's JSON text.
* ``send_settings()`` after ``start()`` sends what changed as runtime updates (``UpdatePrompt``,
  ``UpdateThink``, ``UpdateSpeak``, ``UpdateListen``); changes no update can carry (audio
  formats, greeting, ...) give False and an ``Error`` event, and nothing is sent.

``DeepgramClientOptions(options={"speaker_playback": "true", "microphone_record": "true"})``
makes ``start()`` play the agent on the speaker and stream the microphone
(:mod:`deepgram_agent.audio`); see :mod:`deepgram_agent._client_options`.
"""

from __future__ import annotations

import asyncio
import enum
import inspect
import logging
import threading
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import msgspec

from . import messages as m
from ._connection import AgentConnection, AgentEvent
from ._queue import AsyncQueue, End, ThreadQueue
from .exceptions import (
    AuthenticationError,
    ConnectionClosedError,
    ConnectionClosedOK,
    DeepgramApiError,
    DeepgramConnectionError,
    DeepgramError,
    DeepgramTimeoutError,
    MissingDependencyError,
    ProtocolError,
)

if TYPE_CHECKING:
    from ._client_options import DeepgramClientOptions
    from .sync import SyncAgentConnection

#: ``open(settings, tools=..., **options)``: an unstarted blocking connection and its queue.
OpenBlocking = Callable[..., "tuple[SyncAgentConnection, ThreadQueue[Any]]"]
#: ``open(settings, tools=..., **options)``: an unstarted async connection and its queue.
OpenAsync = Callable[..., "tuple[AgentConnection, AsyncQueue[Any]]"]

__all__ = [
    "AgentWebSocketEvents",
    "OpenResponse",
    "CloseResponse",
    "AgentWebSocketClient",
    "AsyncAgentWebSocketClient",
]

logger = logging.getLogger("deepgram_agent")


class AgentWebSocketEvents(enum.StrEnum):
    """Names of the events handlers can subscribe to (values equal the wire ``type``)."""

    # Synthetic events
    Open = "Open"
    Close = "Close"
    AudioData = "AudioData"
    Unhandled = "Unhandled"
    Error = "Error"
    # Server messages
    Welcome = "Welcome"
    SettingsApplied = "SettingsApplied"
    ConversationText = "ConversationText"
    UserStartedSpeaking = "UserStartedSpeaking"
    AgentThinking = "AgentThinking"
    FunctionCallRequest = "FunctionCallRequest"
    FunctionCallCancelled = "FunctionCallCancelled"
    FunctionCallResponse = "FunctionCallResponse"
    AgentStartedSpeaking = "AgentStartedSpeaking"
    AgentAudioDone = "AgentAudioDone"
    InjectionRefused = "InjectionRefused"
    PromptUpdated = "PromptUpdated"
    SpeakUpdated = "SpeakUpdated"
    ThinkUpdated = "ThinkUpdated"
    ListenUpdated = "ListenUpdated"
    ThinkLiveUpdated = "ThinkLiveUpdated"
    LatencyReport = "LatencyReport"
    FrustrationDetected = "FrustrationDetected"
    History = "History"
    Warning = "Warning"
    CustomFromThinkProvider = "__customFromThinkProvider"
    # SDK events (reconnect with context)
    Reconnecting = "Reconnecting"
    Reconnected = "Reconnected"
    # Client message names (the seed lists them; nothing is emitted for them)
    Settings = "Settings"
    UpdatePrompt = "UpdatePrompt"
    UpdateSpeak = "UpdateSpeak"
    InjectAgentMessage = "InjectAgentMessage"
    InjectUserMessage = "InjectUserMessage"
    AgentKeepAlive = "KeepAlive"


class OpenResponse(msgspec.Struct, kw_only=True):
    """The ``Open`` event: the socket is open (before ``Welcome``)."""

    type: str = "Open"


class CloseResponse(msgspec.Struct, kw_only=True):
    """The ``Close`` event, fired exactly once when the connection has closed."""

    type: str = "Close"
    code: int | None = None
    reason: str = ""


_KNOWN_EVENTS = frozenset(e.value for e in AgentWebSocketEvents)

#: ``Error.code`` for failures the SDK reports itself through the callback API.
_FAILURE_CODES: dict[type, str] = {
    AuthenticationError: "CLIENT_AUTHENTICATION_FAILED",
    DeepgramApiError: "CLIENT_HANDSHAKE_REFUSED",
    DeepgramConnectionError: "CLIENT_CONNECTION_FAILED",
    ConnectionClosedError: "CLIENT_CONNECTION_LOST",
    ConnectionClosedOK: "CLIENT_CONNECTION_CLOSED",
    DeepgramTimeoutError: "CLIENT_TIMEOUT",
    ProtocolError: "CLIENT_PROTOCOL_ERROR",
}


def _close_code(conn: AgentConnection) -> int | None:
    failed = conn.failed_start
    status = getattr(failed, "status", None)
    return status if isinstance(status, int) else conn.close_code


#: Event name per item type, so dispatch costs one dict lookup per message.
_EVENT_NAMES: dict[type, str] = {
    bytes: "AudioData",
    m.Unhandled: "Unhandled",
    m.Reconnecting: "Reconnecting",
    m.Reconnected: "Reconnected",
    OpenResponse: "Open",
    CloseResponse: "Close",
    **{cls: tag for tag, cls in m.SERVER_MESSAGE_TYPES.items()},
}


def _event_name(item: Any) -> str:
    name = _EVENT_NAMES.get(type(item))
    if name is not None:
        return name
    if isinstance(item, bytes | bytearray):
        return "AudioData"
    if isinstance(item, m.Unhandled):
        return "Unhandled"
    return str(item.type)


def _v4_keyword(event: str) -> str:
    """The keyword the classic v4 SDK passed an event by (``conversation_text=``, ``data=``)."""
    if event == "AudioData":
        return "data"
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in event).lstrip("_")


def _reported(failure: BaseException, conn: AgentConnection | None = None) -> bool:
    """Whether the server's own ``Error`` event already told the handlers why start failed
    (the server refused the Settings): then no second, synthetic ``Error`` follows."""
    from .exceptions import SettingsRejected

    return isinstance(failure, SettingsRejected)


def _adapt(handler: Callable[..., Any], event_name: str = "") -> Callable[[Any, Any], Any]:
    """Return ``call(client, event)`` invoking ``handler`` with the convention it declares.

    ``handler(client, event)`` (the seed's ``def on_x(self, event, **kwargs)``), a bound method
    taking the event, a keyword-only event parameter, and the v4 SDK's keyword convention
    (``def on_x(self, **kwargs)`` gets ``conversation_text=event``) all work.
    """
    try:
        sig = inspect.signature(handler)
    except (TypeError, ValueError):
        return lambda client, event: handler(client, event)
    has_varkw = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    keyword = _v4_keyword(event_name) if event_name else "event"
    positional = [
        p
        for p in sig.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    ]
    has_varargs = any(p.kind is p.VAR_POSITIONAL for p in sig.parameters.values())
    kwonly = [
        p.name for p in sig.parameters.values() if p.kind is p.KEYWORD_ONLY and p.default is p.empty
    ]
    if len(positional) >= 2 or has_varargs:
        return handler  # called as handler(client, event): no wrapper needed
    if len(positional) == 1:
        if kwonly:
            name = kwonly[0]
            return lambda client, event: handler(client, **{name: event})
        if has_varkw and not inspect.ismethod(handler):
            # def on_x(self, **kwargs): the v4 SDK passed the event by keyword
            return lambda client, event: handler(client, **{keyword: event})
        return lambda client, event: handler(event)
    if kwonly:
        name = kwonly[0]
        return lambda client, event: handler(**{name: event})
    if has_varkw:
        return lambda client, event: handler(**{keyword: event})
    return lambda client, event: handler(client, event)


class _Raised:
    """A ``SystemExit``/``KeyboardInterrupt`` a coroutine handler raised on the loop thread."""

    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class _Handlers:
    """Handler registry and event delivery shared by both callback clients."""

    def __init__(self) -> None:
        # Tuples, rebuilt by on()/off(), so delivery never copies a list.
        self._handlers: dict[
            str, tuple[tuple[Callable[..., Any], Callable[[Any, Any], Any]], ...]
        ] = {}

    def on(self, event: AgentWebSocketEvents | str, handler: Callable[..., Any]) -> None:
        """Subscribe ``handler`` to ``event`` (called ``handler(client, event_object)``)."""
        name = str(event.value if isinstance(event, AgentWebSocketEvents) else event)
        if name not in _KNOWN_EVENTS:
            raise ValueError(f"unknown event {event!r}; use a name from AgentWebSocketEvents")
        if not callable(handler):
            raise TypeError(f"handler must be callable, got {type(handler).__name__}")
        self._handlers[name] = (*self._handlers.get(name, ()), (handler, _adapt(handler, name)))

    def off(self, event: AgentWebSocketEvents | str, handler: Callable[..., Any]) -> None:
        """Unsubscribe ``handler`` from ``event``."""
        name = str(event.value if isinstance(event, AgentWebSocketEvents) else event)
        self._handlers[name] = tuple(h for h in self._handlers.get(name, ()) if h[0] is not handler)

    @staticmethod
    def _handler_error(name: str, handler: Callable[..., Any], exc: BaseException) -> m.Error:
        label = getattr(handler, "__qualname__", repr(handler))
        logger.error("deepgram_agent: handler %s for %s raised %r", label, name, exc, exc_info=exc)
        return m.Error(
            code="CLIENT_HANDLER_ERROR",
            description=f"handler {label} for {name} raised {type(exc).__name__}: {exc}",
        )

    @staticmethod
    def _failure(exc: BaseException) -> m.Error:
        code = getattr(exc, "code", None)
        if isinstance(code, str) and code:
            code_text = code
        else:
            code_text = _FAILURE_CODES.get(type(exc), "CLIENT_ERROR")
        return m.Error(code=code_text, description=str(exc))


class AgentWebSocketClient(_Handlers):
    """The seed's blocking callback client (``client.agent.websocket.v("1")``)."""

    def __init__(
        self, open_connection: OpenBlocking, config: DeepgramClientOptions | None = None
    ) -> None:
        super().__init__()
        self._open = open_connection
        self._config = config
        self._conn: SyncAgentConnection | None = None
        self._thread: threading.Thread | None = None
        self._close_fired = False
        self._lock = threading.Lock()
        # Set once the dispatcher has delivered SettingsApplied, so start() returns after the
        # Open/Welcome/SettingsApplied handlers ran (deterministic output order).
        self._applied_delivered = threading.Event()
        # Set once start() knows how the connection went: the dispatcher reports a failed
        # start (Error before Close) only then, however the end raced with start().
        self._start_done = threading.Event()
        # The Settings JSON in force (what send_settings() compares against) and the tools.
        self._applied: dict[str, Any] = {}
        self._tools: Any = None
        # DeepgramClientOptions(options={"speaker_playback"/"microphone_record": "true"}).
        self._player: Any = None
        self._mic: Any = None
        self._mic_thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"<AgentWebSocketClient conn={self._conn!r}>"

    @property
    def connection(self) -> SyncAgentConnection | None:
        """The blocking connection underneath, once started."""
        return self._conn

    # --------------------------------------------------------------- delivery (dispatcher thread)

    def _emit(self, name: str, event: Any) -> None:
        for handler, call in self._handlers.get(name, ()):
            try:
                result = call(self, event)
                if result is not None and inspect.isawaitable(result):
                    from .sync import loop_thread

                    async def _await(aw: Awaitable[Any] = result) -> Any:
                        try:
                            return await aw
                        except (SystemExit, KeyboardInterrupt) as exc:
                            # Handed back, not raised: on the SDK's shared loop thread it
                            # would stop the loop every blocking connection runs on.
                            return _Raised(exc)

                    outcome = loop_thread().run(_await(), None)
                    if isinstance(outcome, _Raised):
                        raise outcome.exc
            except (Exception, SystemExit, KeyboardInterrupt) as exc:
                # SystemExit & co. from a handler cannot end the program from this thread;
                # uncaught, they would end the dispatcher and silently wedge the session.
                if name != "Error":
                    self._emit("Error", self._handler_error(name, handler, exc))
                else:
                    logger.error("deepgram_agent: an Error handler raised %r", exc, exc_info=exc)

    def _fire_close(self, code: int | None, reason: str) -> None:
        with self._lock:
            if self._close_fired:
                return
            self._close_fired = True
        self._emit("Close", CloseResponse(code=code, reason=reason))

    def _dispatch(self, conn: SyncAgentConnection, queue: ThreadQueue[Any]) -> None:
        get = queue.get
        names = _EVENT_NAMES
        handlers = self._handlers
        applied = m.SettingsApplied
        while True:
            item = get(None)
            kind = type(item)
            name = names.get(kind)
            if name is not None:
                if name in handlers:
                    self._emit(name, item)
                if kind is applied:
                    self._applied_delivered.set()
                continue
            if kind is End:
                # The socket may end (a server closing after Welcome) before start() has
                # recorded why it failed: wait for start() to know (bounded).
                opts = conn.core.options
                self._start_done.wait(opts.open_timeout + opts.close_timeout + 5)
                failure = conn.core.failed_start or item.error
                if failure is not None and not _reported(failure, conn.core):
                    self._emit("Error", self._failure(failure))
                self._fire_close(_close_code(conn.core), conn.core.close_reason)
                self._applied_delivered.set()
                return
            self._emit(_event_name(item), item)
            if isinstance(item, m.SettingsApplied):
                self._applied_delivered.set()

    # --------------------------------------------------------------- lifecycle

    def start(self, options: Any = None, **kwargs: Any) -> bool:
        """Connect, send the settings and wait for ``SettingsApplied``.

        Args:
            options: ``SettingsOptions``, ``messages.Settings``, a dict or a JSON string
                (``None``: ``SettingsOptions()``).
            **kwargs: connection options (``open_timeout``, ``keepalive_interval``, ``tools``...).

        Returns:
            True when the session is ready. False, after an ``Error`` event and a ``Close``
            event, when the settings fail the local checks (nothing is sent; the ``Error``
            carries the code the server would answer with and the JSON path), when the server
            refused them, or when it could not be reached.

        Raises:
            MissingDependencyError: ``DeepgramClientOptions(options=...)`` asks for the speaker
                or the microphone and the ``audio`` extra is not installed (checked before
                connecting).
            DeepgramError: ``start()`` was already called on this client, or a sound device
                asked for could not be opened (before connecting; nothing is left open).
        """
        if self._conn is not None:
            raise DeepgramError("start() was already called on this client; create a new one")
        if options is None:
            from .options import SettingsOptions

            options = SettingsOptions()
        want_speaker, want_mic = _wanted_devices(self._config)
        tools = kwargs.pop("tools", None)
        self._close_fired = False
        try:
            # Settings are prepared and checked here, once: a local failure is an event.
            conn, queue = self._open(options, tools=tools, **kwargs)
        except (DeepgramError, TypeError, ValueError) as exc:  # a bad option value included
            self._emit("Error", self._local_failure("start", exc))
            self._fire_close(None, "")
            return False
        # The devices open before connecting: a missing or busy device fails start() with
        # nothing sent.
        self._player, self._mic = _open_devices(self._config, conn.core, want_speaker, want_mic)
        self._conn = conn
        self._applied, self._tools = conn.core.settings_wire, tools
        conn.core.add_open_hook(lambda: queue.put_nowait(OpenResponse()))
        if want_speaker or want_mic:
            # Devices stop when the session ends, whoever ends it (off the loop thread: stopping
            # a stream waits for its last block).
            conn.core.add_close_hook(
                lambda _err: threading.Thread(target=self._stop_devices, daemon=True).start()
            )
        self._thread = threading.Thread(
            target=self._dispatch, args=(conn, queue), name="deepgram-agent-handlers", daemon=True
        )
        self._thread.start()
        if self._mic is not None:
            # Captured audio is held by the connection until SettingsApplied, then sent.
            self._pump_microphone(conn, self._mic)
        try:
            conn.start()
        except DeepgramError as exc:
            self._start_done.set()
            self._after_failed_start(exc)
            self._stop_devices()
            return False
        finally:
            self._start_done.set()
        if threading.current_thread() is not self._thread:
            self._applied_delivered.wait(conn.core.options.open_timeout)
        return True

    def _pump_microphone(self, conn: SyncAgentConnection, mic: Any) -> None:
        def pump() -> None:
            for chunk in mic:
                try:
                    conn.send_audio(chunk)
                except DeepgramError:
                    break
            mic.close()

        self._mic_thread = threading.Thread(target=pump, name="deepgram-agent-mic", daemon=True)
        self._mic_thread.start()

    def _stop_devices(self) -> None:
        mic, self._mic = self._mic, None
        if mic is not None:
            mic.close()
        thread = self._mic_thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(5)
        player, self._player = self._player, None
        if player is not None:
            player.close()

    def _after_failed_start(self, exc: DeepgramError) -> None:
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(10)
        # Normally the dispatcher has reported the failure and fired Close from the End item
        # the core queued; this is the fallback if it could not within the bound.
        if not self._close_fired:
            self._emit("Error", self._failure(exc))
            self._fire_close(getattr(exc, "status", None), "")

    def _local_failure(self, what: str, exc: BaseException) -> m.Error:
        logger.error("deepgram_agent: %s() failed before anything was sent: %s", what, exc)
        return self._failure(exc)

    def _do(self, op: Callable[[SyncAgentConnection], Any], what: str = "send") -> bool:
        conn = self._conn
        if conn is None:
            logger.warning("deepgram_agent: %s() before start(): nothing was sent", what)
            self._emit(
                "Error", m.Error(code="CLIENT_NOT_STARTED", description="call start() first")
            )
            return False
        try:
            op(conn)
        except DeepgramError as exc:
            logger.warning("deepgram_agent: %s() failed: %s", what, exc)
            self._emit("Error", self._failure(exc))
            return False
        return True

    def _send_routed(self, method: str, value: Any) -> bool:
        try:
            op, arg = _route(method, value)
        except _WrongArgument as exc:
            logger.error("deepgram_agent: %s; nothing was sent", exc)
            return False
        return self._do(lambda c: getattr(c, op)(arg), method)

    def send_settings(self, settings: Any) -> bool:
        """Apply new settings: before :meth:`start`, start with them; afterwards, send what changed.

        The server takes ``Settings`` only once per session (a second one is refused with
        ``SETTINGS_ALREADY_APPLIED``), so after ``start()`` the difference from the settings in
        force is sent as the runtime updates the server accepts: ``UpdatePrompt`` when only the
        think prompt changed, else ``UpdateThink`` for ``agent.think``; ``UpdateSpeak`` for
        ``agent.speak``; ``UpdateListen`` for ``agent.listen``. Nothing changed: nothing is sent.

        Returns:
            True when the updates were sent (or there was nothing to send). False, with an
            ``Error`` event (code ``CLIENT_SETTINGS_NOT_UPDATABLE``) and nothing sent, when a
            change has no runtime update (audio formats, greeting, context, tags, flags, a
            removed listen/think/speak, ...); False with an ``Error`` event when the settings
            are invalid or a send failed; False (logged) for an argument that is not settings.
        """
        if self._conn is None:
            return self.start(settings)
        if _settings_type_error(settings) is not None:
            logger.error("deepgram_agent: %s; nothing was sent", _settings_type_error(settings))
            return False
        try:
            new = _wire_settings(settings, self._tools)
        except DeepgramError as exc:
            self._emit("Error", self._local_failure("send_settings", exc))
            return False
        updates, fixed = _plan_updates(self._applied, new)
        if fixed:
            self._emit("Error", _not_updatable(fixed))
            return False

        def send_all(c: SyncAgentConnection) -> None:
            for update in updates:
                c.send(update)

        if not self._do(send_all, "send_settings"):
            return False
        self._applied = new
        return True

    def update_prompt(self, options: Any) -> bool:
        """Send ``UpdatePrompt`` (an ``UpdatePromptOptions`` or the prompt text)."""
        return self._send_routed("update_prompt", options)

    def update_speak_options(self, options: Any) -> bool:
        """Send ``UpdateSpeak`` (an ``UpdateSpeakOptions``, a ``Speak`` or a list of them)."""
        return self._send_routed("update_speak_options", options)

    update_speak = update_speak_options

    def update_think(self, options: Any) -> bool:
        """Send ``UpdateThink`` (an ``UpdateThinkOptions``, a ``Think`` or a list of them)."""
        return self._send_routed("update_think", options)

    def update_listen(self, options: Any) -> bool:
        """Send ``UpdateListen`` (an ``UpdateListenOptions`` or a ``Listen``)."""
        return self._send_routed("update_listen", options)

    def inject_agent_message(self, options: Any) -> bool:
        """Send ``InjectAgentMessage`` (an ``InjectAgentMessageOptions`` or the text)."""
        return self._send_routed("inject_agent_message", options)

    def inject_user_message(self, options: Any) -> bool:
        """Send ``InjectUserMessage`` (an ``InjectUserMessageOptions`` or the text)."""
        return self._send_routed("inject_user_message", options)

    def send_function_call_response(self, response: Any) -> bool:
        """Send ``FunctionCallResponse``; a missing id is taken from the pending request."""
        return self._send_routed("send_function_call_response", response)

    def keep_alive(self) -> bool:
        """Send ``KeepAlive`` (automatic keepalive already runs; this is rarely needed)."""
        return self._do(lambda c: c.keep_alive(), "keep_alive")

    def force_end_turn(self) -> bool:
        """Send ``ForceEndTurn``."""
        return self._do(lambda c: c.force_end_turn(), "force_end_turn")

    def send_audio(self, audio_data: bytes) -> bool:
        """Send user audio (bytes in the Settings' ``audio.input`` format)."""
        return self._send_routed("send_audio", audio_data)

    def send(self, data: Any) -> bool:
        """Send audio or a message, as the v4 SDK's ``send()``.

        ``bytes`` (or ``bytearray``/``memoryview``) are user audio; a ``str`` is the JSON text
        of a client message (``str(AgentKeepAlive())``, ``response.to_json()``); an option
        object, a ``messages`` struct or a dict is a message too. Messages are validated like
        every other send.

        Returns:
            True when sent. False with an ``Error`` event when the message is invalid or the
            send failed; False (logged) for ``None`` or a value of another type.
        """
        return self._send_routed("send", data)

    def send_raw(self, payload: Any) -> bool:
        """Send a JSON text frame without validation (escape hatch)."""
        return self._do(lambda c: c.send_raw(payload), "send_raw")

    def close(self) -> bool:
        """Close the connection (idempotent; safe from a handler). ``Close`` fires once."""
        conn = self._conn
        if conn is None:
            return True
        self._stop_devices()
        conn.close()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(conn.core.options.close_timeout + 5)
        return True

    finish = close

    def is_connected(self) -> bool:
        """True while the session is open and ready."""
        return self._conn is not None and self._conn.core.ready


class AsyncAgentWebSocketClient(_Handlers):
    """The seed's async callback client (``client.agent.asyncwebsocket.v("1")``)."""

    def __init__(
        self, open_connection: OpenAsync, config: DeepgramClientOptions | None = None
    ) -> None:
        super().__init__()
        self._open = open_connection
        self._config = config
        self._conn: AgentConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._close_fired = False
        self._applied_delivered = asyncio.Event()
        self._start_done = asyncio.Event()  # see the blocking twin
        self._applied: dict[str, Any] = {}
        self._tools: Any = None
        self._player: Any = None
        self._mic: Any = None
        self._mic_task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"<AsyncAgentWebSocketClient conn={self._conn!r}>"

    @property
    def connection(self) -> AgentConnection | None:
        """The async connection underneath, once started."""
        return self._conn

    async def _emit(self, name: str, event: Any) -> None:
        for handler, call in self._handlers.get(name, ()):
            try:
                result = call(self, event)
                if result is not None and inspect.isawaitable(result):
                    await result
            except Exception as exc:
                if name != "Error":
                    await self._emit("Error", self._handler_error(name, handler, exc))
                else:
                    logger.error("deepgram_agent: an Error handler raised %r", exc, exc_info=exc)

    async def _fire_close(self, code: int | None, reason: str) -> None:
        if self._close_fired:
            return
        self._close_fired = True
        await self._emit("Close", CloseResponse(code=code, reason=reason))

    async def _dispatch(self, conn: AgentConnection, queue: AsyncQueue[AgentEvent]) -> None:
        while True:
            item = await queue.get()
            if isinstance(item, End):
                opts = conn.options
                try:  # see the blocking twin: report a failed start only once start() knows
                    async with asyncio.timeout(opts.open_timeout + opts.close_timeout + 5):
                        await self._start_done.wait()
                except TimeoutError:
                    pass
                failure = conn.failed_start or item.error
                if failure is not None and not _reported(failure, conn):
                    await self._emit("Error", self._failure(failure))
                await self._fire_close(_close_code(conn), conn.close_reason)
                self._applied_delivered.set()
                return
            name = _event_name(item)
            if name in self._handlers:
                await self._emit(name, item)
            if type(item) is m.SettingsApplied:
                self._applied_delivered.set()

    async def start(self, options: Any = None, **kwargs: Any) -> bool:
        """Connect, send the settings and wait for ``SettingsApplied`` (see the blocking twin:
        the same arguments, return values, events and ``MissingDependencyError``)."""
        if self._conn is not None:
            raise DeepgramError("start() was already called on this client; create a new one")
        if options is None:
            from .options import SettingsOptions

            options = SettingsOptions()
        want_speaker, want_mic = _wanted_devices(self._config)
        tools = kwargs.pop("tools", None)
        self._close_fired = False
        try:
            conn, queue = self._open(options, tools=tools, **kwargs)
        except (DeepgramError, TypeError, ValueError) as exc:  # a bad option value included
            logger.error("deepgram_agent: start() failed before anything was sent: %s", exc)
            await self._emit("Error", self._failure(exc))
            await self._fire_close(None, "")
            return False
        self._player, self._mic = _open_devices(self._config, conn, want_speaker, want_mic)
        self._conn = conn
        self._applied, self._tools = conn.settings_wire, tools
        conn.add_open_hook(lambda: queue.put_nowait(OpenResponse()))
        if want_speaker or want_mic:
            # On the loop: the microphone wakes its async iterator there (stopping a stream
            # waits at most for its last block).
            conn.add_close_hook(lambda _err: self._close_devices())
        self._task = asyncio.get_running_loop().create_task(
            self._dispatch(conn, queue), name="deepgram-agent-handlers"
        )
        mic = self._mic
        if mic is not None:
            # Captured audio is held by the connection until SettingsApplied, then sent.

            async def pump() -> None:
                async for chunk in mic:
                    try:
                        await conn.send_audio(chunk)
                    except DeepgramError:
                        break
                mic.close()

            self._mic_task = asyncio.get_running_loop().create_task(
                pump(), name="deepgram-agent-mic"
            )
        try:
            await conn.start()
        except DeepgramError:
            self._start_done.set()
            task = self._task
            if task is not None:
                try:
                    async with asyncio.timeout(10):
                        await asyncio.shield(task)
                except TimeoutError:
                    task.cancel()
            self._close_devices()
            return False
        finally:
            self._start_done.set()
        if asyncio.current_task() is not self._task:
            try:
                async with asyncio.timeout(conn.options.open_timeout):
                    await self._applied_delivered.wait()
            except TimeoutError:
                pass
        return True

    def _close_devices(self) -> None:
        mic, self._mic = self._mic, None
        if mic is not None:
            mic.close()  # the pump task ends with the microphone's iterator
        player, self._player = self._player, None
        if player is not None:
            player.close()

    async def _do(
        self, op: Callable[[AgentConnection], Awaitable[Any]], what: str = "send"
    ) -> bool:
        conn = self._conn
        if conn is None:
            logger.warning("deepgram_agent: %s() before start(): nothing was sent", what)
            await self._emit(
                "Error", m.Error(code="CLIENT_NOT_STARTED", description="call start() first")
            )
            return False
        try:
            await op(conn)
        except DeepgramError as exc:
            logger.warning("deepgram_agent: %s() failed: %s", what, exc)
            await self._emit("Error", self._failure(exc))
            return False
        return True

    async def _send_routed(self, method: str, value: Any) -> bool:
        try:
            op, arg = _route(method, value)
        except _WrongArgument as exc:
            logger.error("deepgram_agent: %s; nothing was sent", exc)
            return False
        result: bool = await self._do(lambda c: getattr(c, op)(arg), method)
        return result

    async def send_settings(self, settings: Any) -> bool:
        """Apply new settings (see the blocking twin: before ``start()`` it starts; afterwards
        the changes go out as ``UpdatePrompt``/``UpdateThink``/``UpdateSpeak``/``UpdateListen``,
        or nothing is sent and False is returned with an ``Error`` event)."""
        if self._conn is None:
            return await self.start(settings)
        if _settings_type_error(settings) is not None:
            logger.error("deepgram_agent: %s; nothing was sent", _settings_type_error(settings))
            return False
        try:
            new = _wire_settings(settings, self._tools)
        except DeepgramError as exc:
            logger.error("deepgram_agent: send_settings() failed before anything was sent: %s", exc)
            await self._emit("Error", self._failure(exc))
            return False
        updates, fixed = _plan_updates(self._applied, new)
        if fixed:
            await self._emit("Error", _not_updatable(fixed))
            return False

        async def send_all(c: AgentConnection) -> None:
            for update in updates:
                await c.send(update)

        if not await self._do(send_all, "send_settings"):
            return False
        self._applied = new
        return True

    async def update_prompt(self, options: Any) -> bool:
        """Send ``UpdatePrompt``."""
        return await self._send_routed("update_prompt", options)

    async def update_speak_options(self, options: Any) -> bool:
        """Send ``UpdateSpeak``."""
        return await self._send_routed("update_speak_options", options)

    update_speak = update_speak_options

    async def update_think(self, options: Any) -> bool:
        """Send ``UpdateThink``."""
        return await self._send_routed("update_think", options)

    async def update_listen(self, options: Any) -> bool:
        """Send ``UpdateListen``."""
        return await self._send_routed("update_listen", options)

    async def inject_agent_message(self, options: Any) -> bool:
        """Send ``InjectAgentMessage``."""
        return await self._send_routed("inject_agent_message", options)

    async def inject_user_message(self, options: Any) -> bool:
        """Send ``InjectUserMessage``."""
        return await self._send_routed("inject_user_message", options)

    async def send_function_call_response(self, response: Any) -> bool:
        """Send ``FunctionCallResponse``; a missing id is taken from the pending request."""
        return await self._send_routed("send_function_call_response", response)

    async def keep_alive(self) -> bool:
        """Send ``KeepAlive``."""
        return await self._do(lambda c: c.keep_alive(), "keep_alive")

    async def force_end_turn(self) -> bool:
        """Send ``ForceEndTurn``."""
        return await self._do(lambda c: c.force_end_turn(), "force_end_turn")

    async def send_audio(self, audio_data: bytes) -> bool:
        """Send user audio."""
        return await self._send_routed("send_audio", audio_data)

    async def send(self, data: Any) -> bool:
        """Send audio (``bytes``) or a message (a JSON ``str``, an option object, a struct or a
        dict), as the v4 SDK's ``send()``; see the blocking twin."""
        return await self._send_routed("send", data)

    async def send_raw(self, payload: Any) -> bool:
        """Send a JSON text frame without validation (escape hatch)."""
        return await self._do(lambda c: c.send_raw(payload), "send_raw")

    async def close(self) -> bool:
        """Close the connection (idempotent; safe from a handler). ``Close`` fires once."""
        conn = self._conn
        if conn is None:
            return True
        self._close_devices()
        mic_task = self._mic_task
        if mic_task is not None and mic_task is not asyncio.current_task():
            try:
                async with asyncio.timeout(5):
                    await asyncio.shield(mic_task)
            except TimeoutError:
                mic_task.cancel()
        await conn.close()
        task = self._task
        if task is not None and task is not asyncio.current_task():
            try:
                async with asyncio.timeout(conn.options.close_timeout + 5):
                    await asyncio.shield(task)
            except TimeoutError:
                task.cancel()
        return True

    finish = close

    async def is_connected(self) -> bool:
        """True while the session is open and ready."""
        return self._conn is not None and self._conn.ready


# ------------------------------------------------------------------------------------------------
# Helpers shared by both classic clients
# ------------------------------------------------------------------------------------------------


class _WrongArgument(Exception):
    """A sender got a value of the wrong type (reported as False plus a log line)."""


_BYTES = (bytes, bytearray, memoryview)

#: classic method -> (wire type, option class, message struct, text -> message, and for the
#: Update messages the connection method that wraps their content: a Speak, a Think, ...).
_SENDERS: dict[str, tuple[str, str, type, Callable[[str], Any] | None, str | None]] = {
    "update_prompt": (
        "UpdatePrompt",
        "UpdatePromptOptions",
        m.UpdatePrompt,
        lambda text: m.UpdatePrompt(prompt=text),
        None,
    ),
    "inject_agent_message": (
        "InjectAgentMessage",
        "InjectAgentMessageOptions",
        m.InjectAgentMessage,
        lambda text: m.InjectAgentMessage(message=text),
        None,
    ),
    "inject_user_message": (
        "InjectUserMessage",
        "InjectUserMessageOptions",
        m.InjectUserMessage,
        lambda text: m.InjectUserMessage(content=text),
        None,
    ),
    "send_function_call_response": (
        "FunctionCallResponse",
        "FunctionCallResponse",
        m.FunctionCallResponse,
        None,
        None,
    ),
    "update_speak_options": (
        "UpdateSpeak",
        "UpdateSpeakOptions",
        m.UpdateSpeak,
        None,
        "update_speak",
    ),
    "update_think": ("UpdateThink", "UpdateThinkOptions", m.UpdateThink, None, "update_think"),
    "update_listen": ("UpdateListen", "UpdateListenOptions", m.UpdateListen, None, "update_listen"),
}

#: The content an Update message wraps: (option class, message struct, fallback lists allowed).
_CONTENT: dict[str, tuple[str, type, bool]] = {
    "update_speak": ("Speak", m.SpeakSettings, True),
    "update_think": ("Think", m.ThinkSettings, True),
    "update_listen": ("Listen", m.ListenSettings, False),
}


def _route(method: str, value: Any) -> tuple[str, Any]:
    """Which connection method sends ``value`` for the classic ``method``, and with what.

    Raises:
        _WrongArgument: ``value`` is ``None`` or not something ``method`` sends.
    """
    from . import options as o

    if value is None:
        raise _WrongArgument(f"{method}() got None")
    if method == "send_audio":
        if isinstance(value, _BYTES):
            return "send_audio", value
        raise _WrongArgument(f"send_audio() takes bytes, not {type(value).__name__}")
    if method == "send":
        if isinstance(value, _BYTES):
            return "send_audio", value
        if isinstance(
            value, str | Mapping | o._MessageOptions | o.SettingsOptions | m.ClientMessage
        ):
            return "send", value
        raise _WrongArgument(
            "send() takes audio bytes, or a message as JSON text, an option object, a "
            f"deepgram_agent.messages struct or a dict; not {type(value).__name__}"
        )
    wire_type, option_cls, struct_cls, text_of, wrapper = _SENDERS[method]
    if isinstance(value, getattr(o, option_cls) | struct_cls):
        return "send", value
    if text_of is not None and isinstance(value, str):
        return "send", text_of(value)
    if isinstance(value, Mapping) and (wrapper is None or "type" in value):
        kind = value.get("type", wire_type)
        if kind != wire_type:
            raise _WrongArgument(f"{method}() sends {wire_type}, not a dict of type {kind!r}")
        return "send", {**value, "type": wire_type}
    if wrapper is not None:
        content_cls, content_struct, lists = _CONTENT[wrapper]
        accepted = (getattr(o, content_cls), content_struct, Mapping)
        parts = list(value) if lists and isinstance(value, list | tuple) else [value]
        if parts and all(isinstance(p, accepted) for p in parts):
            return wrapper, value
        raise _WrongArgument(
            f"{method}() sends {wire_type}: pass {option_cls}(...) or {content_cls}(...), "
            f"not {type(value).__name__}"
        )
    text = " or the text" if text_of is not None else ""
    raise _WrongArgument(
        f"{method}() sends {wire_type}: pass {option_cls}(...){text}, not {type(value).__name__}"
    )


def _wire_settings(options: Any, tools: Any) -> dict[str, Any]:
    """The exact Settings JSON ``options`` (with ``tools`` declared) would send; validates."""
    from ._prepare import prepare_settings

    prepared = prepare_settings(options)
    if tools is not None:
        prepared = tools.merge_into_prepared(prepared)
    return prepared.wire


def _settings_type_error(value: Any) -> str | None:
    from .options import SettingsOptions

    if isinstance(value, SettingsOptions | m.Settings | Mapping | str | bytes | bytearray):
        return None
    return (
        "send_settings() takes a SettingsOptions, a messages.Settings, a dict or JSON text, "
        f"not {type(value).__name__}"
    )


def _plan_updates(
    old: dict[str, Any], new: dict[str, Any]
) -> tuple[list[dict[str, Any]], list[str]]:
    """The runtime updates that turn the Settings in force (``old``) into ``new``.

    Returns:
        ``(updates, fixed)``: the messages to send, and the paths of changes no runtime update
        can carry (when ``fixed`` is not empty, nothing may be sent).
    """
    updates: list[dict[str, Any]] = []
    fixed = [k for k in sorted(set(old) | set(new)) if k != "agent" and old.get(k) != new.get(k)]
    old_agent, new_agent = old.get("agent"), new.get("agent")
    if not isinstance(old_agent, dict) or not isinstance(new_agent, dict):
        if old_agent != new_agent:
            fixed.append("agent")
        return updates, fixed
    for key in sorted(set(old_agent) | set(new_agent)):
        before, after = old_agent.get(key), new_agent.get(key)
        if before == after:
            continue
        if after is None or key not in ("listen", "think", "speak"):
            fixed.append(f"agent.{key}")
        elif key == "think" and _only_prompt_changed(before, after):
            updates.append({"type": "UpdatePrompt", "prompt": after["prompt"]})
        elif key == "think":
            updates.append({"type": "UpdateThink", "think": after})
        elif key == "speak":
            updates.append({"type": "UpdateSpeak", "speak": after})
        else:
            updates.append({"type": "UpdateListen", "listen": after})
    return updates, fixed


def _only_prompt_changed(before: Any, after: Any) -> bool:
    if not isinstance(before, dict) or not isinstance(after, dict) or "prompt" not in after:
        return False
    rest = {k: v for k, v in before.items() if k != "prompt"}
    return rest == {k: v for k, v in after.items() if k != "prompt"}


def _not_updatable(fixed: list[str]) -> m.Error:
    text = (
        f"these settings cannot change during a session: {', '.join(fixed)} (no runtime update "
        "message carries them; the server accepts Settings only once); nothing was sent. "
        "Open a new connection for them; prompt, think, speak and listen changes are sent as "
        "UpdatePrompt/UpdateThink/UpdateSpeak/UpdateListen"
    )
    logger.error("deepgram_agent: send_settings(): %s", text)
    return m.Error(code="CLIENT_SETTINGS_NOT_UPDATABLE", description=text)


def _wanted_devices(config: DeepgramClientOptions | None) -> tuple[bool, bool]:
    """(speaker, microphone) asked for in ``DeepgramClientOptions(options=...)``.

    Raises:
        MissingDependencyError: one is asked for and the ``audio`` extra is missing.
    """
    if config is None:
        return False, False
    speaker, mic = bool(config.speaker_playback), bool(config.microphone_record)
    if speaker or mic:
        from .audio import load_sounddevice

        try:
            load_sounddevice()
        except MissingDependencyError as exc:
            asked = ", ".join(
                f'"{n}": "true"'
                for n, on in (("speaker_playback", speaker), ("microphone_record", mic))
                if on
            )
            raise MissingDependencyError(
                f"DeepgramClientOptions(options={{{asked}}}) uses the sound devices through "
                f"deepgram_agent.audio: {exc}"
            ) from exc
    return speaker, mic


def _open_devices(
    config: DeepgramClientOptions | None, core: AgentConnection, speaker: bool, mic: bool
) -> tuple[Any, Any]:
    """Open and start the speaker (fed by a hook on every event) and the microphone (muted
    while the speaker plays, as in the v4 SDK), in the Settings' formats.

    Raises:
        DeepgramError: a device could not be opened (nothing is left open).
    """
    from .audio import Microphone, Player

    if config is None or not (speaker or mic):
        return None, None
    player: Any = None
    microphone: Any = None
    option = "speaker_playback"
    try:
        if speaker:
            player = Player(core, **config.device_settings("speaker"))
            player.start()
        if mic:
            option = "microphone_record"
            mute = (lambda: player.playing) if player is not None else None
            microphone = Microphone(core, mute=mute, **config.device_settings("microphone"))
            microphone.start()
    except Exception as exc:
        for device in (microphone, player):
            if device is not None:
                device.close()
        if isinstance(exc, DeepgramError):
            raise
        which = "speaker" if option == "speaker_playback" else "microphone"
        raise DeepgramError(
            f"could not open the {which} for DeepgramClientOptions(options={{'{option}': "
            f"'true'}}): {type(exc).__name__}: {exc}; check the device (and "
            f"{option}_device_index), or leave {option} out"
        ) from exc
    if player is not None:
        core.add_hook(None, player.handle)
    return player, microphone
