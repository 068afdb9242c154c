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
connection stays up. Methods return ``bool`` as the seed says: ``False`` plus an ``Error``
event when the operation failed at run time; programming errors (wrong argument types,
invalid settings) raise.
"""

from __future__ import annotations

import asyncio
import enum
import inspect
import logging
import threading
from collections.abc import Awaitable, Callable
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
    ProtocolError,
)

if TYPE_CHECKING:
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


def _adapt(handler: Callable[..., Any]) -> Callable[[Any, Any], Any]:
    """Return ``call(client, event)`` invoking ``handler`` with the convention it declares."""
    try:
        sig = inspect.signature(handler)
    except (TypeError, ValueError):
        return lambda client, event: handler(client, event)
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
        return lambda client, event: handler(event)
    if kwonly:
        name = kwonly[0]
        return lambda client, event: handler(**{name: event})
    return lambda client, event: handler(client, event)


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
        self._handlers[name] = (*self._handlers.get(name, ()), (handler, _adapt(handler)))

    def off(self, event: AgentWebSocketEvents | str, handler: Callable[..., Any]) -> None:
        """Unsubscribe ``handler`` from ``event``."""
        name = str(event.value if isinstance(event, AgentWebSocketEvents) else event)
        self._handlers[name] = tuple(h for h in self._handlers.get(name, ()) if h[0] is not handler)

    def _handlers_for(
        self, name: str
    ) -> tuple[tuple[Callable[..., Any], Callable[[Any, Any], Any]], ...]:
        return self._handlers.get(name, ())

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

    def __init__(self, open_connection: OpenBlocking) -> None:
        super().__init__()
        self._open = open_connection
        self._conn: SyncAgentConnection | None = None
        self._thread: threading.Thread | None = None
        self._close_fired = False
        self._lock = threading.Lock()
        # Set once the dispatcher has delivered SettingsApplied, so start() returns after the
        # Open/Welcome/SettingsApplied handlers ran (deterministic output order).
        self._applied_delivered = threading.Event()

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
                        return await aw

                    loop_thread().run(_await(), None)
            except Exception as exc:
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
                failure = conn.core.failed_start or item.error
                if failure is not None:
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
            options: ``SettingsOptions``, ``messages.Settings``, a dict or a JSON string.
            **kwargs: connection options (``open_timeout``, ``keepalive_interval``, ``tools``...).

        Returns:
            True when the session is ready; False (after an ``Error`` event and ``Close``) when
            the server refused it or could not be reached.

        Raises:
            SettingsError: the settings are invalid (nothing was sent).
            TypeError: ``options`` is not a settings object.
        """
        if self._conn is not None:
            raise DeepgramError("start() was already called on this client; create a new one")
        if options is None:
            from .options import SettingsOptions

            options = SettingsOptions()
        conn, queue = self._open(options, **kwargs)
        self._conn = conn
        conn.core.add_open_hook(lambda: queue.put_nowait(OpenResponse()))
        self._thread = threading.Thread(
            target=self._dispatch, args=(conn, queue), name="deepgram-agent-handlers", daemon=True
        )
        self._thread.start()
        try:
            conn.start()
        except DeepgramError as exc:
            self._after_failed_start(exc)
            return False
        if threading.current_thread() is not self._thread:
            self._applied_delivered.wait(conn.core.options.open_timeout)
        return True

    def _after_failed_start(self, exc: DeepgramError) -> None:
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(10)
        # Normally the dispatcher has reported the failure and fired Close from the End item
        # the core queued; this is the fallback if it could not within the bound.
        if not self._close_fired:
            self._emit("Error", self._failure(exc))
            self._fire_close(getattr(exc, "status", None), "")

    def _do(self, op: Callable[[SyncAgentConnection], Any]) -> bool:
        conn = self._conn
        if conn is None:
            self._emit(
                "Error", m.Error(code="CLIENT_NOT_STARTED", description="call start() first")
            )
            return False
        try:
            op(conn)
        except DeepgramError as exc:
            self._emit("Error", self._failure(exc))
            return False
        return True

    def send_settings(self, settings: Any) -> bool:
        """Start with ``settings`` if not started yet; afterwards ``False`` plus an ``Error``
        event, since the server accepts ``Settings`` only once per session."""
        if self._conn is None:
            return self.start(settings)
        self._emit(
            "Error",
            m.Error(
                code="SETTINGS_ALREADY_APPLIED",
                description="Settings were already applied; open a new connection to replace them, "
                "or use update_prompt/update_speak_options",
            ),
        )
        return False

    def update_prompt(self, options: Any) -> bool:
        """Send ``UpdatePrompt`` (an ``UpdatePromptOptions`` or the prompt text)."""
        return self._do(lambda c: c.send(_prompt(options)))

    def update_speak_options(self, options: Any) -> bool:
        """Send ``UpdateSpeak`` (an ``UpdateSpeakOptions``)."""
        return self._do(lambda c: c.update_speak(options))

    update_speak = update_speak_options

    def update_think(self, options: Any) -> bool:
        """Send ``UpdateThink``."""
        return self._do(lambda c: c.update_think(options))

    def update_listen(self, options: Any) -> bool:
        """Send ``UpdateListen``."""
        return self._do(lambda c: c.update_listen(options))

    def inject_agent_message(self, options: Any) -> bool:
        """Send ``InjectAgentMessage`` (an ``InjectAgentMessageOptions`` or the text)."""
        return self._do(lambda c: c.send(_agent_message(options)))

    def inject_user_message(self, options: Any) -> bool:
        """Send ``InjectUserMessage`` (an ``InjectUserMessageOptions`` or the text)."""
        return self._do(lambda c: c.send(_user_message(options)))

    def send_function_call_response(self, response: Any) -> bool:
        """Send ``FunctionCallResponse``; a missing id is taken from the pending request."""
        return self._do(lambda c: c.send(response))

    def keep_alive(self) -> bool:
        """Send ``KeepAlive`` (automatic keepalive already runs; this is rarely needed)."""
        return self._do(lambda c: c.keep_alive())

    def force_end_turn(self) -> bool:
        """Send ``ForceEndTurn``."""
        return self._do(lambda c: c.force_end_turn())

    def send_audio(self, audio_data: bytes) -> bool:
        """Send user audio."""
        if not isinstance(audio_data, bytes | bytearray | memoryview):
            raise TypeError(f"audio_data must be bytes, got {type(audio_data).__name__}")
        return self._do(lambda c: c.send_audio(audio_data))

    def send(self, message: Any) -> bool:
        """Validate and send any client message."""
        return self._do(lambda c: c.send(message))

    def send_raw(self, payload: Any) -> bool:
        """Send a JSON text frame without validation (escape hatch)."""
        return self._do(lambda c: c.send_raw(payload))

    def close(self) -> bool:
        """Close the connection (idempotent; safe from a handler). ``Close`` fires once."""
        conn = self._conn
        if conn is None:
            return True
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

    def __init__(self, open_connection: OpenAsync) -> None:
        super().__init__()
        self._open = open_connection
        self._conn: AgentConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._close_fired = False
        self._applied_delivered = asyncio.Event()

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
                failure = conn.failed_start or item.error
                if failure is not None:
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
        """Connect, send the settings and wait for ``SettingsApplied`` (see the blocking twin)."""
        if self._conn is not None:
            raise DeepgramError("start() was already called on this client; create a new one")
        if options is None:
            from .options import SettingsOptions

            options = SettingsOptions()
        conn, queue = self._open(options, **kwargs)
        self._conn = conn
        conn.add_open_hook(lambda: queue.put_nowait(OpenResponse()))
        self._task = asyncio.get_running_loop().create_task(
            self._dispatch(conn, queue), name="deepgram-agent-handlers"
        )
        try:
            await conn.start()
        except DeepgramError:
            task = self._task
            if task is not None:
                try:
                    async with asyncio.timeout(10):
                        await asyncio.shield(task)
                except TimeoutError:
                    task.cancel()
            return False
        if asyncio.current_task() is not self._task:
            try:
                async with asyncio.timeout(conn.options.open_timeout):
                    await self._applied_delivered.wait()
            except TimeoutError:
                pass
        return True

    async def _do(self, op: Callable[[AgentConnection], Awaitable[Any]]) -> bool:
        conn = self._conn
        if conn is None:
            await self._emit(
                "Error", m.Error(code="CLIENT_NOT_STARTED", description="call start() first")
            )
            return False
        try:
            await op(conn)
        except DeepgramError as exc:
            await self._emit("Error", self._failure(exc))
            return False
        return True

    async def send_settings(self, settings: Any) -> bool:
        """Start with ``settings`` if not started yet; afterwards ``False`` plus an ``Error``."""
        if self._conn is None:
            return await self.start(settings)
        await self._emit(
            "Error",
            m.Error(
                code="SETTINGS_ALREADY_APPLIED",
                description="Settings were already applied; open a new connection to replace them",
            ),
        )
        return False

    async def update_prompt(self, options: Any) -> bool:
        """Send ``UpdatePrompt``."""
        return await self._do(lambda c: c.send(_prompt(options)))

    async def update_speak_options(self, options: Any) -> bool:
        """Send ``UpdateSpeak``."""
        return await self._do(lambda c: c.update_speak(options))

    update_speak = update_speak_options

    async def update_think(self, options: Any) -> bool:
        """Send ``UpdateThink``."""
        return await self._do(lambda c: c.update_think(options))

    async def update_listen(self, options: Any) -> bool:
        """Send ``UpdateListen``."""
        return await self._do(lambda c: c.update_listen(options))

    async def inject_agent_message(self, options: Any) -> bool:
        """Send ``InjectAgentMessage``."""
        return await self._do(lambda c: c.send(_agent_message(options)))

    async def inject_user_message(self, options: Any) -> bool:
        """Send ``InjectUserMessage``."""
        return await self._do(lambda c: c.send(_user_message(options)))

    async def send_function_call_response(self, response: Any) -> bool:
        """Send ``FunctionCallResponse``; a missing id is taken from the pending request."""
        return await self._do(lambda c: c.send(response))

    async def keep_alive(self) -> bool:
        """Send ``KeepAlive``."""
        return await self._do(lambda c: c.keep_alive())

    async def force_end_turn(self) -> bool:
        """Send ``ForceEndTurn``."""
        return await self._do(lambda c: c.force_end_turn())

    async def send_audio(self, audio_data: bytes) -> bool:
        """Send user audio."""
        if not isinstance(audio_data, bytes | bytearray | memoryview):
            raise TypeError(f"audio_data must be bytes, got {type(audio_data).__name__}")
        return await self._do(lambda c: c.send_audio(audio_data))

    async def send(self, message: Any) -> bool:
        """Validate and send any client message."""
        return await self._do(lambda c: c.send(message))

    async def send_raw(self, payload: Any) -> bool:
        """Send a JSON text frame without validation (escape hatch)."""
        return await self._do(lambda c: c.send_raw(payload))

    async def close(self) -> bool:
        """Close the connection (idempotent; safe from a handler). ``Close`` fires once."""
        conn = self._conn
        if conn is None:
            return True
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


def _prompt(options: Any) -> Any:
    if isinstance(options, str):
        return m.UpdatePrompt(prompt=options)
    return options


def _agent_message(options: Any) -> Any:
    if isinstance(options, str):
        return m.InjectAgentMessage(message=options)
    return options


def _user_message(options: Any) -> Any:
    if isinstance(options, str):
        return m.InjectUserMessage(content=options)
    return options
