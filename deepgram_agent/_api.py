"""The public connection type: :class:`AgentConnection`, what ``connect()`` gives you.

Two kinds implement it: :class:`~deepgram_agent._connection.SocketConnection` (one socket,
used once) and, with ``reconnect=``, :class:`~deepgram_agent.ResumingConnection` (a fresh
socket per outage). This module holds what both share: iteration with one reader at a time,
``recv()``, and the typed senders, which turn their arguments into validated messages once
(:mod:`deepgram_agent._prepare`) and hand them to the kind's ``_send_message``.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, NamedTuple, TypeAlias

import msgspec

from . import messages as m
from ._config import ConnectOptions
from ._prepare import prepare_message, prepare_update
from ._protocol import Hook
from .exceptions import ConcurrencyError, ConnectionClosedOK, DeepgramTimeoutError

__all__ = ["AgentConnection", "AgentEvent", "ConnectionStatistics", "audio_bytes"]

#: What a connection yields: a typed server message, an undecodable frame, agent audio, or an
#: SDK event of a resumed session.
AgentEvent: TypeAlias = m.ServerMessage | m.Unhandled | m.Reconnecting | m.Reconnected | bytes


class ConnectionStatistics(NamedTuple):
    """Counters of one connection (``conn.statistics()``); a resumed session sums its sockets."""

    messages_received: int
    audio_frames_received: int
    audio_bytes_received: int
    unhandled_received: int
    messages_sent: int
    audio_frames_sent: int
    audio_bytes_sent: int
    keepalives_sent: int
    queued: int
    queue_high_water: int
    max_queue: int
    pending_before_ready: int
    dropped_before_ready: int
    reconnects: int
    stale_responses_dropped: int


def audio_bytes(data: Any) -> bytes | bytearray | memoryview:
    """Check a ``send_audio`` argument: raw PCM/encoded bytes, or a C-contiguous int16 array.

    Raises:
        TypeError: anything else, naming what it got and what to pass.
    """
    if isinstance(data, bytes | bytearray):
        return data
    if isinstance(data, memoryview):
        return data.cast("B") if data.format != "B" or data.ndim != 1 else data
    dtype = getattr(data, "dtype", None)
    if dtype is not None and hasattr(data, "tobytes"):  # a numpy array
        flags = getattr(data, "flags", None)
        contiguous = bool(getattr(flags, "c_contiguous", False))
        if str(dtype) == "int16" and contiguous:
            return memoryview(data).cast("B")
        raise TypeError(
            f"send_audio() takes raw audio bytes or a C-contiguous int16 array; got an array of "
            f"{dtype}{'' if contiguous else ' (not C-contiguous)'}: convert it first, e.g. "
            "(samples * 32767).astype('<i2').tobytes() for float samples in [-1, 1]"
        )
    raise TypeError(
        f"send_audio() takes audio bytes (bytes, bytearray, memoryview or an int16 numpy "
        f"array), not {type(data).__name__}; encode text messages with the other senders"
    )


class AgentConnection(abc.ABC):
    """An open Voice Agent session: what ``client.agent.connect(settings)`` gives you.

    Iterate it to receive, in arrival order, every server message (typed), every undecodable
    frame (:class:`~deepgram_agent.messages.Unhandled`) and the agent's audio (``bytes``)::

        async with client.agent.connect(settings) as conn:
            await conn.inject_user_message("Hello")
            async for msg in conn:
                ...

    Iteration ends quietly when the connection closes normally (code 1000, or ``close()``)
    and raises :class:`~deepgram_agent.ConnectionClosedError` when it closes abnormally.
    Server ``Error`` and ``Warning`` messages are yielded, never raised. One task reads a
    connection at a time; sends are safe from any task of its loop.

    Two kinds exist: :class:`SocketConnection` (one socket) and, with ``reconnect=``,
    :class:`~deepgram_agent.ResumingConnection` (a fresh socket per outage, same API).
    """

    __slots__ = ("_reader", "_readers")

    # -- what each kind provides

    _reader: asyncio.Task[Any] | None  # the task reading with async for
    _readers: int  # live async-for loops of that task
    options: ConnectOptions
    #: A typed view of the Settings this session was opened with.
    settings: m.Settings
    #: The Settings JSON this session was opened with, exactly as sent (tools' functions
    #: merged in; a resumed socket sends it with the conversation added).
    settings_wire: dict[str, Any]
    #: Why ``start()`` failed, if it did (the callback API reports it before ``Close``).
    failed_start: BaseException | None

    @property
    @abc.abstractmethod
    def url(self) -> str:
        """The socket URL (never carries credentials)."""

    @property
    @abc.abstractmethod
    def request_id(self) -> str | None:
        """``Welcome.request_id`` of the current socket."""

    @property
    @abc.abstractmethod
    def ready(self) -> bool:
        """True once ``SettingsApplied`` arrived and until the connection closes."""

    @property
    @abc.abstractmethod
    def closed(self) -> bool:
        """True once the connection has closed (for whatever reason)."""

    @property
    @abc.abstractmethod
    def close_code(self) -> int | None:
        """The WebSocket close code once closed."""

    @property
    @abc.abstractmethod
    def close_reason(self) -> str:
        """The WebSocket close reason once closed."""

    @property
    @abc.abstractmethod
    def pending_function_calls(self) -> dict[str, str]:
        """Client-side calls requested and not answered or cancelled yet: ``{id: name}``."""

    @abc.abstractmethod
    async def start(self) -> None:
        """Open the socket, send ``Settings`` and wait for ``SettingsApplied``."""

    @abc.abstractmethod
    def _next(self) -> Awaitable[AgentEvent]:
        """The next item (raises ``StopAsyncIteration`` at a quiet end)."""

    def _stepper(self, owner: Any = None) -> Callable[[], Awaitable[AgentEvent]]:
        """What ``async for`` calls per item (the shortest path to :meth:`_next`).

        ``owner`` is the ``async for`` (``_Reading``) that keeps it in its ``__anext__`` slot;
        a connection whose stepper can change installs the new one there.
        """
        return self._next

    @abc.abstractmethod
    async def _send_message(self, message: m.ClientMessage) -> None:
        """Send one validated client message."""

    @abc.abstractmethod
    async def send_audio(self, data: bytes | bytearray | memoryview) -> None:
        """Send one chunk of user audio (in the ``audio.input`` format) as a binary frame."""

    @abc.abstractmethod
    async def send_raw(self, payload: bytes | str | Mapping[str, Any]) -> None:
        """Send a JSON text frame exactly as given, with no validation (escape hatch)."""

    @abc.abstractmethod
    async def keep_alive(self) -> None:
        """Send ``KeepAlive`` now (automatic keepalive makes this rarely necessary)."""

    @abc.abstractmethod
    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection. Idempotent, bounded by ``close_timeout``, safe from any task."""

    @abc.abstractmethod
    async def wait_closed(self, timeout: float | None = None) -> None:
        """Wait until the connection has closed (``DeepgramTimeoutError`` after ``timeout``)."""

    @abc.abstractmethod
    def statistics(self) -> ConnectionStatistics:
        """Counters of this connection."""

    @abc.abstractmethod
    def add_hook(self, message_type: type | None, hook: Hook) -> None:
        """Call ``hook(item)`` for every item of ``message_type`` (``None``: every item,
        audio ``bytes`` included), in arrival order, before the consumer gets it.

        Hooks run in the task that reads the socket; they must be quick and must not block
        (start a task for real work). One that raises is logged; the stream goes on.
        """

    @abc.abstractmethod
    def add_open_hook(self, hook: Callable[[], object]) -> None:
        """Call ``hook()`` each time a socket is open, before any message is read."""

    @abc.abstractmethod
    def add_close_hook(self, hook: Callable[[BaseException | None], None]) -> None:
        """Call ``hook(error_or_None)`` once when the connection has closed for good."""

    # -- shared by both kinds

    def _check_reader(self) -> asyncio.Task[Any] | None:
        """The current task; ``ConcurrencyError`` if another task's ``async for`` is live."""
        task = asyncio.current_task()
        owner = self._reader
        if self._readers and owner is not None and owner is not task and not owner.done():
            raise ConcurrencyError(
                f"task {owner.get_name()!r} is already reading this connection with "
                "'async for'; read it from one task only (hand messages on with a queue)"
            )
        return task

    def _claim_reader(self) -> None:
        """Record the current task as this connection's reader (one at a time)."""
        self._reader = self._check_reader()
        self._readers += 1

    def _release_reader(self) -> None:
        """Forget one claim of :meth:`_claim_reader` (an ``async for`` loop ended)."""
        self._readers = max(0, self._readers - 1)
        if not self._readers:
            self._reader = None

    @property
    def input_format(self) -> m.AudioFormat:
        """The user audio format this session's Settings declared (what ``send_audio`` takes)."""
        return self.settings.input_format

    @property
    def output_format(self) -> m.AudioFormat:
        """The agent audio format this session's Settings asked for (what iteration yields)."""
        return self.settings.output_format

    def __aiter__(self) -> AsyncIterator[AgentEvent]:
        return _Reading(self)

    def __anext__(self) -> Awaitable[AgentEvent]:
        return self._next()

    def __iter__(self) -> Any:
        raise TypeError(
            "this is an async connection: iterate it with 'async for msg in conn', or open a "
            "blocking one with 'with client.agent.connect_sync(settings) as conn: for msg in conn'"
        )

    async def recv(self, timeout: float | None = None) -> AgentEvent:
        """Return the next message, ``Unhandled`` frame or audio chunk.

        Args:
            timeout: seconds to wait at most (``None``: until something arrives).

        Raises:
            ConnectionClosedOK: the connection closed normally.
            ConnectionClosedError: it closed abnormally.
            DeepgramTimeoutError: nothing arrived within ``timeout``.
            ConcurrencyError: another task is reading this connection with ``async for``.

        Cancelling is safe: no message is lost.
        """
        self._check_reader()  # another task's async for would lose what this one takes
        try:
            async with asyncio.timeout(timeout):
                return await self._next()
        except StopAsyncIteration:
            raise ConnectionClosedOK(self.close_code, self.close_reason) from None
        except TimeoutError:
            raise DeepgramTimeoutError(f"no message within {timeout} s") from None

    async def send(self, message: Any) -> None:
        """Validate and send any client message.

        Accepts a ``deepgram_agent.messages`` struct, one of the classic option objects
        (``UpdatePromptOptions``, ``FunctionCallResponse``, ...), a plain dict or JSON text. A
        ``FunctionCallResponse`` without an id gets the id of the oldest pending request for
        that function name.

        Raises:
            SettingsError: the message is invalid (names the JSON path).
            TypeError: not a message.
            ConnectionClosed: the connection is closed.
            DeepgramTimeoutError: the server did not read for ``send_timeout`` seconds.
        """
        await self._send_message(prepare_message(message))

    async def update_prompt(self, prompt: str) -> None:
        """Send ``UpdatePrompt``; the server answers ``PromptUpdated``."""
        await self._send_message(m.UpdatePrompt(prompt=_text(prompt, "prompt")))

    async def update_speak(self, speak: Any) -> None:
        """Send ``UpdateSpeak`` (a ``Speak`` option, ``messages.SpeakSettings``, a list, or a dict)."""
        await self._send_message(prepare_update("UpdateSpeak", "speak", speak))

    async def update_think(self, think: Any) -> None:
        """Send ``UpdateThink`` (a ``Think`` option, ``messages.ThinkSettings``, a list, or a dict)."""
        await self._send_message(prepare_update("UpdateThink", "think", think))

    async def update_listen(self, listen: Any) -> None:
        """Send ``UpdateListen`` (a ``Listen`` option, ``messages.ListenSettings`` or a dict)."""
        await self._send_message(prepare_update("UpdateListen", "listen", listen))

    async def inject_user_message(self, content: str) -> None:
        """Send ``InjectUserMessage``: the agent acts as if the user said ``content``."""
        await self._send_message(m.InjectUserMessage(content=_text(content, "content")))

    async def inject_agent_message(self, message: str, *, behavior: str | None = None) -> None:
        """Send ``InjectAgentMessage``: the agent says ``message`` verbatim.

        Args:
            message: the text to speak.
            behavior: ``"default"``, ``"queue"`` or ``"interrupt"`` (server default when omitted).
        """
        data: dict[str, Any] = {"type": "InjectAgentMessage", "message": _text(message, "message")}
        if behavior is not None:
            data["behavior"] = behavior
        await self.send(data)

    async def send_function_call_response(
        self,
        response: Any = None,
        *,
        id: str | None = None,
        name: str | None = None,
        content: Any = None,
    ) -> None:
        """Answer a client-side function call with ``FunctionCallResponse {id, name, content}``.

        Pass either a response object (``FunctionCallResponse``) or the keywords. ``content``
        that is not a string is sent as JSON text.
        """
        if response is None:
            if name is None:
                raise TypeError("send_function_call_response() needs a response object or name=")
            text = content if isinstance(content, str) else msgspec.json.encode(content).decode()
            response = (
                m.FunctionCallResponse(name=name, content=text, id=id)
                if id
                else m.FunctionCallResponse(name=name, content=text)
            )
        await self.send(response)

    async def force_end_turn(self) -> None:
        """Send ``ForceEndTurn``: end the current user turn now (Flux listen only)."""
        await self._send_message(m.ForceEndTurn())

    async def __aenter__(self) -> AgentConnection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    return value


class _Reading:
    """One ``async for`` over a connection: it claims the connection for its task while alive.

    A second task that starts reading while another task's loop is still running gets a
    ``ConcurrencyError`` at once, instead of silently taking every other message. One iterator
    object stepped from two tasks at the same moment refuses the second step with asyncio's
    ``RuntimeError`` ("already running"); the first step is not disturbed.
    """

    # ``__anext__`` is a slot holding the connection's stepper (for a socket, the ``__anext__``
    # of its reader's item generator): the interpreter's ``async for`` looks it up on the
    # type, finds the slot descriptor and calls what it holds, so there is no Python frame of
    # ours between the loop and the reader (~70 ns less per message than a ``def __anext__``).
    __slots__ = ("__anext__", "__weakref__", "_conn")
    __anext__: Callable[[], Awaitable[AgentEvent]]

    def __init__(self, conn: AgentConnection) -> None:
        conn._claim_reader()
        try:
            self.__anext__ = conn._stepper(self)
        except BaseException:
            conn._release_reader()
            raise
        self._conn = conn  # from here on, __del__ releases the claim

    def __aiter__(self) -> _Reading:
        return self

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self._conn._release_reader()
