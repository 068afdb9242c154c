"""One emulated Voice Agent session: state, recording, and the protocol driver.

:class:`SessionState` is plain data (what the agent is configured with, who is speaking,
counters). :class:`EmulatorSession` records what the client sent, offers bounded waits for tests
and drives the conversation over an aiohttp ``WebSocketResponse``. The decisions that need no
I/O live in :mod:`._protocol` (parsing, validation, credentials), :mod:`._script` (what to say)
and :mod:`._audio` (VAD and the agent's voice).

Ordering of a turn (docs/protocol.md 9.2; ``[x]`` only with ``"experimental": true``)::

    ConversationText(user) History(user) [EndOfThought] [AgentThinking]
    [FunctionCallRequest [FunctionCallResponse(server-side)] (client answers) History(function_calls)]*
    ConversationText(assistant #1) History [AgentStartedSpeaking] <audio>
    [ConversationText(assistant #n) History <audio>]* LatencyReport AgentAudioDone

:class:`~deepgram_agent.testing.Quirks` varies this order the way live captures do (9.6).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import msgspec
from aiohttp import web

from .._protocol import PendingCalls, Phase, client_order_error
from .._validate import normalize_client_message, normalize_settings
from ..exceptions import DeepgramTimeoutError
from ..messages import (
    AgentAudioDone,
    AgentStartedSpeaking,
    AgentThinking,
    ClientMessage,
    ConversationText,
    Error,
    ForceEndTurn,
    FunctionCallCancelled,
    FunctionCallCancelledItem,
    FunctionCallRequest,
    FunctionCallRequestItem,
    FunctionCallResponse,
    History,
    HistoryFunctionCallItem,
    InjectAgentMessage,
    InjectionRefused,
    InjectUserMessage,
    LatencyReport,
    ListenUpdated,
    PromptUpdated,
    ServerFunctionCallResponse,
    ServerMessage,
    Settings,
    SettingsApplied,
    SpeakUpdated,
    ThinkLiveUpdated,
    ThinkUpdated,
    UpdateListen,
    UpdatePrompt,
    UpdateSpeak,
    UpdateThink,
    UpdateThinkLive,
    UserStartedSpeaking,
    Warning,
    Welcome,
)
from ._audio import DEFAULT_MS_PER_CHAR, EnergyVad, bytes_per_sample, tone, wav_header
from ._faults import Faults
from ._protocol import Reject, Unchecked, parse_client_text, wire
from ._quirks import Quirks
from ._replay import ClientTally, ExpectFrames, RealtimePacer, ReplayStep, silence
from ._script import Script, ToolCall, TurnContext, split_sentences

__all__ = ["EmulatorSession", "SessionOptions", "SessionState"]

log = logging.getLogger("deepgram_agent.emulator")

_END_OF_THOUGHT = b'{"type":"EndOfThought"}'
_TEXT = aiohttp.WSMsgType.TEXT
_BINARY = aiohttp.WSMsgType.BINARY

#: The server's texts (docs/protocol.md 9.6, live captures).
IDLE_TIMEOUT_TEXT = (
    "We waited too long for a websocket message. Please ensure that you're sending binary "
    "messages containing user speech."
)
#: The variant before Settings; only its gist was captured, the wording here is ours.
IDLE_BEFORE_SETTINGS_TEXT = (
    "We waited too long for a websocket message. Please ensure that you're sending a "
    "'Settings' message at the beginning of the session."
)
#: Constructed after "Received <Type> before Settings." (the live text for JSON messages).

# Keys whose values may be secrets: a log line about them names the path only.
_SECRET_PATH = ("headers", "credentials", "authorization", "api_key", "token")


@dataclass(frozen=True, kw_only=True)
class SessionOptions:
    """Timing and audio knobs shared by every session of one emulator (see AgentEmulator)."""

    idle_timeout: float = 10.0
    realtime_audio: bool = True
    settings_applied_delay: float = 0.005
    function_response_timeout: float = 60.0
    history_delay: float = 0.005
    ms_per_char: float = DEFAULT_MS_PER_CHAR
    chunk_ms: float = 20.0
    vad_threshold: float = 0.02
    vad_silence: float = 0.3
    close_timeout: float = 2.0
    replay_timeout: float = 10.0
    replay_realtime: bool = False
    strict: bool = True
    quirks: Quirks = field(default_factory=Quirks)
    slow_think_interval: float = 5.0


@dataclass(kw_only=True)
class SessionState:
    """What the emulated agent is configured with and doing, plus traffic counters.

    Runtime updates (``UpdatePrompt``/``UpdateSpeak``/``UpdateThink``/``UpdateListen``) show here
    as soon as they are acknowledged. ``UpdatePrompt`` *replaces* the prompt
    (docs/protocol.md 12 #2 is unresolved; replacing is what the newest page says).
    """

    phase: str = "connected"  # connected -> active (after SettingsApplied) -> closed
    experimental: bool = False
    prompt: str | None = None
    think: Any = None
    speak: Any = None
    listen: dict[str, Any] | None = None
    think_live: dict[str, Any] | None = None
    greeting: str | None = None
    agent_id: str | None = None
    input_encoding: str = "linear16"
    input_sample_rate: int = 24000
    output_encoding: str = "linear16"
    output_sample_rate: int = 24000
    output_container: str = "none"
    history_enabled: bool = True
    history: list[dict[str, Any]] = field(default_factory=list)
    user_speaking: bool = False
    agent_speaking: bool = False
    pending_calls: dict[str, str] = field(default_factory=dict)
    turns: int = 0
    error: dict[str, str] | None = None
    frames_in: int = 0
    bytes_in: int = 0
    json_in: int = 0
    audio_frames_in: int = 0
    audio_bytes_in: int = 0
    frames_out: int = 0
    bytes_out: int = 0
    json_out: int = 0
    audio_frames_out: int = 0
    audio_bytes_out: int = 0

    @staticmethod
    def _first(block: Any) -> dict[str, Any]:
        if isinstance(block, list):
            block = block[0] if block else None
        return block if isinstance(block, dict) else {}

    @staticmethod
    def _provider(block: Any) -> dict[str, Any]:
        provider = SessionState._first(block).get("provider")
        return provider if isinstance(provider, dict) else {}

    @property
    def speak_model(self) -> str | None:
        """The model (or ``model_id``/voice) of the first speak provider."""
        provider = self._provider(self.speak)
        value = provider.get("model") or provider.get("model_id") or provider.get("voice")
        return value if isinstance(value, str) else None

    @property
    def think_model(self) -> str | None:
        """The model of the first think provider."""
        value = self._provider(self.think).get("model")
        return value if isinstance(value, str) else None

    @property
    def listen_model(self) -> str | None:
        """The listen provider's model."""
        value = self._provider(self.listen).get("model")
        return value if isinstance(value, str) else None

    @property
    def listen_version(self) -> str:
        """``v1`` (Nova) or ``v2`` (Flux)."""
        value = self._provider(self.listen).get("version", "v1")
        return value if isinstance(value, str) else "v1"

    @property
    def functions(self) -> dict[str, dict[str, Any]]:
        """The declared functions of the first think entry, by name."""
        out: dict[str, dict[str, Any]] = {}
        for fn in self._first(self.think).get("functions") or []:
            if isinstance(fn, dict) and isinstance(fn.get("name"), str):
                out[fn["name"]] = fn
        return out


class _SessionOver(Exception):
    """The socket is gone (closed, dropped, or closing); stop quietly."""


@dataclass
class _Pending:
    name: str
    future: asyncio.Future[str]
    started: float


class EmulatorSession:
    """One client connection to the emulator.

    Attributes:
        index: position in :attr:`AgentEmulator.sessions` (connection attempts in order).
        request_id: the id sent in ``Welcome`` and the ``dg-request-id`` header.
        handshake_status: 101, or the HTTP status the upgrade was refused with.
        received: every frame the client sent, in order: JSON objects as dicts (a frame that
            is not a JSON object is recorded as ``{"type": "", "raw": <text>}``), binary
            frames as their byte count.
        sent_types: the ``type`` of every JSON frame the emulator sent (audio not listed).
        settings: the applied ``Settings`` exactly as received, or ``None``.
        state: a :class:`SessionState`.
        script: this session's own copy of the script (transcripts pop from it).
        faults: the :class:`Faults` in force.
        closed: an ``asyncio.Event`` set once the connection is over.
        close_code: the close code (sent by either side; 1005 when the client's close frame
            carried no status); ``None`` when the TCP connection was dropped without a close
            frame or never upgraded.
    """

    def __init__(
        self,
        *,
        index: int,
        options: SessionOptions,
        script: Script,
        faults: Faults | None,
        replay: list[ReplayStep] | None = None,
        replaying: bool = False,
    ) -> None:
        self.index = index
        self.request_id = str(uuid.uuid4())
        self.handshake_status: int | None = None
        self.received: list[dict[str, Any] | int] = []
        self.sent_types: list[str] = []
        self.settings: dict[str, Any] | None = None
        self.state = SessionState()
        self.script = script
        self.faults = faults or Faults()
        self.closed = asyncio.Event()
        self.close_code: int | None = None
        self.connected_at = time.time()
        self._opts = options
        self._rx_changed = asyncio.Event()
        self._ws: web.WebSocketResponse | None = None
        self._transport: asyncio.Transport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last_rx = 0.0
        self._frames_sent = 0
        self._dead = False
        self._ending = False
        self._closer: asyncio.Task[None] | None = None
        self._agent_tasks: set[asyncio.Task[None]] = set()
        self._speech_tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._pending: dict[str, _Pending] = {}
        self._calls = PendingCalls()
        self._vad: EnergyVad | None = None
        self._stall_until = 0.0
        self._rng: random.Random = options.quirks.rng(index)
        self._unblock = asyncio.Event()  # set when the session ends (frees stopped loops)
        self._reading_stopped = False  # Faults.stop_reading_after / silent_after
        self._silent = False  # Faults.silent_after
        self._audio_open = False  # agent audio sent, AgentAudioDone not yet
        self._late_done: asyncio.Task[None] | None = None  # AgentAudioDone after a barge-in
        self._aux_tasks: set[asyncio.Task[None]] = set()  # timers not cut by a barge-in
        self._held_history: list[list[HistoryFunctionCallItem]] = []  # late History
        self._batch_history = False
        self._stt_audio = 0  # bytes of user audio since the last stt_latency report
        self._stt_clock = 0.0  # loop time of the last stt_latency report
        self._close_by = ""  # who ended the session, for the log
        self._close_reason = ""
        # Replay mode (AgentEmulator(replay=...)): the recorded steps replace the script.
        self._replaying = replaying
        self._replay = replay

    def __repr__(self) -> str:
        return (
            f"<EmulatorSession #{self.index} {self.state.phase} request_id={self.request_id} "
            f"in={self.state.frames_in} out={self.state.frames_out}>"
        )

    # -----------------------------------------------------------------------------------------
    # Test-facing API
    # -----------------------------------------------------------------------------------------

    def received_json(self, type: str | None = None) -> list[dict[str, Any]]:
        """The JSON frames received, optionally only those of one ``type``."""
        return [
            m
            for m in self.received
            if isinstance(m, dict) and (type is None or m.get("type") == type)
        ]

    @property
    def audio_bytes_received(self) -> int:
        """Total bytes of binary (audio) frames received."""
        return sum(m for m in self.received if isinstance(m, int))

    async def wait_for_received(
        self,
        type: str,
        count: int = 1,
        timeout: float = 5.0,
    ) -> list[dict[str, Any]]:
        """Wait until at least ``count`` JSON frames of ``type`` have been received.

        Returns:
            The matching frames.

        Raises:
            DeepgramTimeoutError: not enough arrived within ``timeout`` seconds (the message
                lists what did arrive). Cancelling the wait is safe.
        """

        async def until() -> list[dict[str, Any]]:
            while True:
                found = self.received_json(type)
                if len(found) >= count:
                    return found
                await self._rx_changed.wait()

        try:
            return await asyncio.wait_for(until(), timeout)
        except TimeoutError:
            got = [m.get("type") if isinstance(m, dict) else "<audio>" for m in self.received]
            raise DeepgramTimeoutError(
                f"session #{self.index}: expected {count} {type!r} frame(s) within {timeout} s; "
                f"received {got}"
            ) from None

    async def wait_for_audio(self, nbytes: int, timeout: float = 5.0) -> int:
        """Wait until at least ``nbytes`` bytes of audio have been received; return the total.

        Raises:
            DeepgramTimeoutError: fewer arrived within ``timeout`` seconds.
        """

        async def until() -> int:
            while (got := self.audio_bytes_received) < nbytes:
                await self._rx_changed.wait()
            return got

        try:
            return await asyncio.wait_for(until(), timeout)
        except TimeoutError:
            raise DeepgramTimeoutError(
                f"session #{self.index}: expected {nbytes} bytes of audio within {timeout} s; "
                f"received {self.audio_bytes_received}"
            ) from None

    async def wait_closed(self, timeout: float = 5.0) -> int | None:
        """Wait until the connection is over and return :attr:`close_code`.

        Raises:
            DeepgramTimeoutError: still open after ``timeout`` seconds.
        """
        try:
            await asyncio.wait_for(self.closed.wait(), timeout)
        except TimeoutError:
            raise DeepgramTimeoutError(
                f"session #{self.index} still open after {timeout} s"
            ) from None
        return self.close_code

    async def send(self, message: ServerMessage | bytes | str) -> None:
        """Push a frame to the client now: a server message, raw text, or binary audio bytes.

        Useful to exercise a client with events the script does not produce.
        """
        if isinstance(message, ServerMessage):
            await self._send_json(message)
        elif isinstance(message, str):
            await self._send_frame(message.encode(), _TEXT, kind="<raw>")
        else:
            await self._send_frame(bytes(message), _BINARY, kind=None)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the session from the server side (bounded by the close timeout).

        A session that stopped reading (``Faults.stop_reading_after``/``silent_after``) could
        not complete a closing handshake: its TCP connection is dropped instead.
        """
        if self._reading_stopped and not self.closed.is_set():
            self._note_close("emulator", "dropped (the session had stopped reading)")
            self._drop()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.closed.wait(), self._opts.close_timeout)
            return
        await self._shutdown(code, reason)

    # -----------------------------------------------------------------------------------------
    # Driver
    # -----------------------------------------------------------------------------------------

    async def run(self, request: web.Request, ws: web.WebSocketResponse) -> None:
        """Serve the upgraded connection until it is over."""
        self._ws = ws
        transport = request.transport
        self._transport = transport if isinstance(transport, asyncio.Transport) else None
        self._loop = asyncio.get_running_loop()
        self._last_rx = self._loop.time()
        watchdog = asyncio.create_task(self._watchdog())
        try:
            await self._check_faults(0)
            if self.faults.delay_welcome > 0:
                await self._pause(self.faults.delay_welcome)
            if self._replaying:
                self._spawn(self._run_replay)
            else:
                await self._send_json(Welcome(request_id=self.request_id))
            await self._read_loop()
        except _SessionOver:
            pass
        finally:
            self._unblock.set()
            watchdog.cancel()
            tasks = [watchdog, *self._agent_tasks, *self._aux_tasks]
            for task in [*self._agent_tasks, *self._aux_tasks]:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self._closer is not None:
                with contextlib.suppress(Exception):
                    await self._closer
            if not self._dead and not ws.closed:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(ws.close(), self._opts.close_timeout)
            if self.close_code is None and not self._dead:
                self.close_code = ws.close_code
            self.state.phase = "closed"
            self._log_closed()
            self.closed.set()
            self._pulse()

    def _note_close(self, by: str, reason: str) -> None:
        if not self._close_by:
            self._close_by, self._close_reason = by, reason

    def _log_closed(self) -> None:
        st = self.state
        log.info(
            "session #%d: closed %s (close code %s): in %d JSON + %d audio frames (%d audio "
            "bytes), out %d JSON + %d audio frames (%d audio bytes)",
            self.index,
            f"by the {self._close_by}, {self._close_reason}" if self._close_by else "",
            self.close_code if self.close_code is not None else "none: TCP dropped",
            st.json_in,
            st.audio_frames_in,
            st.audio_bytes_in,
            st.json_out,
            st.audio_frames_out,
            st.audio_bytes_out,
        )

    def mark_refused(self, status: int) -> None:
        """Record a refused handshake."""
        self.handshake_status = status
        self.state.phase = "closed"
        self.closed.set()

    async def _read_loop(self) -> None:
        ws = self._ws
        assert ws is not None
        while True:
            if self._reading_stopped:
                await self._unblock.wait()  # never reads again; the session's end frees it
                return
            msg = await ws.receive()
            if msg.type in (_TEXT, _BINARY):
                await self._stall_gate()
                assert self._loop is not None
                self._last_rx = self._loop.time()
                if msg.type is _TEXT:
                    data = msg.data if isinstance(msg.data, bytes) else msg.data.encode()
                    await self._on_text(data)
                else:
                    await self._on_audio(msg.data)
            elif msg.type is aiohttp.WSMsgType.CLOSE:
                await self._echo_close(msg.data, msg.extra if isinstance(msg.extra, str) else "")
                return
            elif msg.type is aiohttp.WSMsgType.PING:  # autoping is off (Faults.silent_after)
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await ws.pong(msg.data)
            elif msg.type is aiohttp.WSMsgType.PONG:
                continue
            else:  # CLOSING (our own close is under way), CLOSED, ERROR
                if msg.type is not aiohttp.WSMsgType.CLOSING:
                    self._note_close("client", "the connection ended without a close frame")
                return

    async def _echo_close(self, code: int, reason: str) -> None:
        """Answer a client's close frame with the same code and reason (docs/protocol.md 9.6)."""
        ws = self._ws
        assert ws is not None
        self._ending = True
        if self.close_code is None:
            self.close_code = code if code else 1005  # 1005: the frame carried no status
        self._note_close("client", f"reason {reason!r}, echoed")
        try:
            if code:
                await asyncio.wait_for(
                    ws.close(code=code, message=reason.encode(), drain=False),
                    self._opts.close_timeout,
                )
            else:  # no status: answer with an empty close frame too
                await asyncio.wait_for(
                    ws.send_frame(b"", aiohttp.WSMsgType.CLOSE), self._opts.close_timeout
                )
                if self._transport is not None:
                    self._transport.close()
        except (TimeoutError, ConnectionError, RuntimeError):
            if self._transport is not None:
                self._transport.close()

    def _pulse(self) -> None:
        self._rx_changed.set()
        self._rx_changed = asyncio.Event()

    # ----------------------------------------------------------------------------- sending

    async def _stall_gate(self) -> None:
        assert self._loop is not None
        delay = self._stall_until - self._loop.time()
        if delay > 0:
            await self._pause(delay)

    async def _pause(self, seconds: float) -> None:
        """Wait out a delay (a fault's, a stall's), or stop at once when the session ends.

        A session asleep in a delay is not reading its socket, so nothing else would wake it:
        without this, closing the emulator waited for the delay (or its close timeouts).

        Raises:
            _SessionOver: the session was closed or dropped during the wait.
        """
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._unblock.wait()
        if self._unblock.is_set():
            raise _SessionOver

    async def _send_json(self, message: ServerMessage) -> None:
        await self._send_frame(wire(message), _TEXT, kind=message.type)

    async def _send_frame(
        self, payload: bytes, opcode: aiohttp.WSMsgType, *, kind: str | None, injected: bool = False
    ) -> None:
        await self._stall_gate()
        if self._silent:  # Faults.silent_after: nothing is ever sent again
            await self._unblock.wait()
            raise _SessionOver
        ws = self._ws
        if self._dead or ws is None or ws.closed:
            raise _SessionOver
        st = self.state
        st.frames_out += 1
        st.bytes_out += len(payload)
        if opcode is _BINARY:
            st.audio_frames_out += 1
            st.audio_bytes_out += len(payload)
        else:
            st.json_out += 1
            self.sent_types.append(kind or "")
            log.debug("session #%d: -> %s (%d bytes)", self.index, kind or "?", len(payload))
        if opcode is _BINARY and st.audio_frames_out == 1:
            log.debug(
                "session #%d: -> first agent audio frame (%d bytes)", self.index, len(payload)
            )
        try:
            await ws.send_frame(payload, opcode)
        except (ConnectionError, RuntimeError) as exc:
            raise _SessionOver from exc
        if not injected:
            self._frames_sent += 1
            await self._check_faults(self._frames_sent)

    async def _check_faults(self, n: int) -> None:
        f = self.faults
        if f.garbage_after == n:
            await self._send_frame(b"this is not JSON {", _TEXT, kind="<garbage>", injected=True)
        if f.unknown_type_after == n:
            raw = b'{"type":"EmulatorSurprise","detail":"an event type no client knows"}'
            await self._send_frame(raw, _TEXT, kind="EmulatorSurprise", injected=True)
        if f.wrong_types_after == n:
            raw = b'{"type":"ConversationText","role":7,"content":["not","text"]}'
            await self._send_frame(raw, _TEXT, kind="ConversationText", injected=True)
        if f.huge_frame_after == n:
            overhead = len(wire(ConversationText(role="assistant", content="")))
            pad = "x" * max(0, f.huge_frame_bytes - overhead)  # exactly huge_frame_bytes
            big = wire(ConversationText(role="assistant", content=pad))
            await self._send_frame(big, _TEXT, kind="ConversationText", injected=True)
        if f.invalid_utf8_after == n:
            # Valid JSON syntax, but the string holds bytes that are not UTF-8.
            raw = b'{"type":"ConversationText","role":"assistant","content":"caf\xc3\x28 \xff\xfe"}'
            await self._send_frame(raw, _TEXT, kind="ConversationText", injected=True)
        if f.deep_nesting_after == n:
            depth = f.deep_nesting_depth
            raw = (
                b'{"type":"ConversationText","role":"assistant","content":"deep","nested":'
                + b"[" * depth
                + b"]" * depth
                + b"}"
            )
            await self._send_frame(raw, _TEXT, kind="ConversationText", injected=True)
        if f.stall_after == n and f.stall_for > 0:
            assert self._loop is not None
            self._stall_until = self._loop.time() + f.stall_for
            self._last_rx = max(self._last_rx, self._stall_until)
            if self._transport is not None:
                with contextlib.suppress(Exception):
                    self._transport.pause_reading()
                self._loop.call_later(f.stall_for, self._resume_reading)
        if f.stop_reading_after == n:
            log.info("session #%d: fault: stops reading the socket after frame %d", self.index, n)
            self._stop_reading()
        if f.silent_after == n:
            log.info("session #%d: fault: goes silent after frame %d (no pongs)", self.index, n)
            self._silent = True
            self._stop_reading()
        if f.close_after == n:
            self._note_close("emulator", f"fault close_after={n}, reason {f.close_reason!r}")
            await asyncio.shield(self._begin_close(f.close_code, f.close_reason))
            raise _SessionOver
        if f.drop_after == n:
            self._note_close("emulator", f"fault drop_after={n}: TCP dropped")
            self._drop()
            raise _SessionOver

    def _stop_reading(self) -> None:
        """Never read the socket again: TCP fills and the client's sends back up."""
        self._reading_stopped = True
        if self._transport is not None:
            with contextlib.suppress(Exception):
                self._transport.pause_reading()
        self._wake.set()  # the watchdog stops timing client silence

    async def _drop_later(self, delay: float) -> None:
        """``Faults.drop_after_ready``: drop the TCP connection ``delay`` s after ready."""
        await asyncio.sleep(delay)
        self._note_close("emulator", f"fault drop_after_ready={delay:g}: TCP dropped")
        self._drop()

    def _resume_reading(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            with contextlib.suppress(Exception):
                self._transport.resume_reading()

    def _drop(self) -> None:
        """Close the TCP connection without a WebSocket close frame."""
        self._dead = True
        self.close_code = None
        self._unblock.set()
        if self._transport is not None:
            self._transport.close()

    def _begin_close(self, code: int, reason: str) -> asyncio.Task[None]:
        if self._closer is None:
            self._ending = True
            self._unblock.set()
            self._note_close("emulator", f"reason {reason!r}")
            if self.close_code is None:
                self.close_code = code
            self._closer = asyncio.create_task(self._close_ws(code, reason))
        return self._closer

    async def _close_ws(self, code: int, reason: str) -> None:
        ws = self._ws
        if ws is None or self._dead:
            return
        try:
            await asyncio.wait_for(
                ws.close(code=code, message=reason.encode()), self._opts.close_timeout
            )
        except (TimeoutError, ConnectionError, RuntimeError):
            if self._transport is not None:
                self._transport.close()

    async def _shutdown(self, code: int, reason: str) -> None:
        if self._ws is None or self.closed.is_set():
            return
        await asyncio.shield(self._begin_close(code, reason))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.closed.wait(), self._opts.close_timeout)

    async def _fatal(self, code: str, description: str) -> None:
        """Send ``Error``, then close; always raises :class:`_SessionOver`.

        The real server was seen closing with 1005 (no status) after some errors; aiohttp cannot
        put 1005 on the wire, so the emulator closes with 1000 and an empty reason.
        """
        if self._ending:
            raise _SessionOver
        self._ending = True
        self.state.error = {"code": code, "description": description}
        log.info("session #%d: sends Error %s: %s", self.index, code, description)
        self._note_close("emulator", f"after Error {code}")
        try:
            await self._send_json(Error(code=code, description=description))
        finally:
            await asyncio.shield(self._begin_close(1000, ""))
        raise _SessionOver

    # ----------------------------------------------------------------------------- watchdog

    async def _watchdog(self) -> None:
        """Idle timeout (nothing received) and unanswered function calls."""
        loop = asyncio.get_running_loop()
        opts = self._opts
        try:
            while True:
                if self._reading_stopped:
                    deadline = math.inf  # a session that does not read cannot time the client
                    kind = "stopped"
                elif self._pending:
                    first = min(p.started for p in self._pending.values())
                    deadline = first + opts.function_response_timeout
                    kind = "function"
                else:
                    deadline = self._last_rx + opts.idle_timeout
                    kind = "idle"
                now = loop.time()
                if now >= deadline:
                    # The server's one text for both (docs/protocol.md 3 rule 4 and 9.6).
                    if kind == "function":
                        names = ", ".join(sorted({p.name for p in self._pending.values()}))
                        log.info(
                            "session #%d: no FunctionCallResponse within %g s for: %s",
                            self.index,
                            opts.function_response_timeout,
                            names,
                        )
                    text = (
                        IDLE_TIMEOUT_TEXT
                        if self.settings is not None
                        else (IDLE_BEFORE_SETTINGS_TEXT)
                    )
                    await self._fatal("CLIENT_MESSAGE_TIMEOUT", text)
                    return
                self._wake.clear()
                if deadline == math.inf:
                    await self._wake.wait()
                    continue
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
                # cancellation that lands as the event is set, and the session then lingers.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max(deadline - now, 0.001)):
                        await self._wake.wait()
        except _SessionOver:
            return

    # ----------------------------------------------------------------------------- receiving

    def _record(self, item: dict[str, Any] | int, size: int) -> None:
        st = self.state
        st.frames_in += 1
        st.bytes_in += size
        if isinstance(item, int):
            st.audio_frames_in += 1
            st.audio_bytes_in += size
            if st.audio_frames_in == 1:
                log.debug("session #%d: <- first audio frame (%d bytes)", self.index, size)
        else:
            st.json_in += 1
            log.debug("session #%d: <- %s (%d bytes)", self.index, item.get("type") or "?", size)
        self.received.append(item)
        self._pulse()

    async def _on_text(self, data: bytes) -> None:
        plain, result = parse_client_text(data, strict=self._opts.strict)
        if plain is None:
            self._record({"type": "", "raw": data.decode("utf-8", "replace")}, len(data))
        else:
            self._record(plain, len(data))
        if isinstance(result, Reject):
            what = (
                "Settings" if plain is not None and plain.get("type") == "Settings" else ("message")
            )
            log.info("session #%d: %s rejected: %s", self.index, what, _loggable(result.detail))
            await self._fatal(result.code, result.description)
            return
        assert plain is not None
        is_settings = isinstance(result, Settings) or (
            isinstance(result, Unchecked) and result.type == "Settings"
        )
        if self.settings is None:
            if not is_settings:
                await self._fatal_order(result.type)
            elif self._replaying:
                self.settings = plain  # validated; the recording says what comes next
                output = _dict(_dict(plain.get("audio")).get("output"))
                self.state.output_encoding = _text(output.get("encoding"), "linear16")
            else:
                await self._on_settings(plain, checked=isinstance(result, Settings))
            return
        if self._replaying and not is_settings:
            return  # recorded and tallied; the replay answers, not the script
        if isinstance(result, Unchecked):
            if is_settings:
                await self._fatal_second_settings()
            log.info(
                "session #%d: %s not understood, ignored (strict=False): %s",
                self.index,
                result.type,
                _loggable(result.detail),
            )
            return
        await self._dispatch(plain, result)

    async def _on_audio(self, data: bytes) -> None:
        self._record(len(data), len(data))
        if self.settings is None:
            await self._fatal_order("", binary=True)
        if self._opts.quirks.latency_report == "split" and self.state.phase == "active":
            await self._stt_report(len(data))
        if self._vad is None:
            return
        for event in self._vad.feed(data):
            if event == "start":
                await self._on_speech_start()
            else:
                await self._on_speech_end()

    async def _stt_report(self, size: int) -> None:
        """Split latency reports: ``stt_latency`` about every 0.25 s while user audio streams."""
        st = self.state
        interval = self._opts.quirks.stt_report_interval
        width = {"linear16": 2, "linear32": 4, "mulaw": 1, "alaw": 1}.get(st.input_encoding)
        assert self._loop is not None
        if width is not None and st.input_sample_rate > 0:  # the audio clock, in bytes
            every = max(1, round(interval * st.input_sample_rate) * width)
            self._stt_audio += size
            due = self._stt_audio >= every
            if due:
                self._stt_audio %= every
        else:  # compressed audio: the wall clock
            now = self._loop.time()
            due = now - self._stt_clock >= interval
            if due:
                self._stt_clock = now
        if due:
            stt = self.script.latency.get("stt_latency", 0.02)
            await self._send_json(LatencyReport(stt_latency=stt))

    async def _fatal_second_settings(self) -> None:
        await self._fatal_order("Settings")

    async def _fatal_order(self, kind: str, *, binary: bool = False) -> None:
        """A frame out of the session order: the server's Error (the rule the client shares)."""
        phase = Phase.READY if self.settings is not None else Phase.AWAITING_APPLIED
        error = client_order_error(phase, kind, binary=binary)
        assert error is not None
        await self._fatal(error.code, error.description)

    async def _dispatch(self, plain: dict[str, Any], msg: ClientMessage) -> None:
        st = self.state
        if isinstance(msg, Settings):
            await self._fatal_second_settings()
        elif isinstance(msg, InjectUserMessage):
            self._start_turn(msg.content, from_audio=False)
        elif isinstance(msg, InjectAgentMessage):
            await self._on_inject_agent(msg)
        elif isinstance(msg, FunctionCallResponse):
            self._on_function_response(msg)
        elif isinstance(msg, UpdatePrompt):
            st.prompt = msg.prompt
            await self._send_json(PromptUpdated())
        elif isinstance(msg, UpdateSpeak):
            st.speak = plain["speak"]
            await self._send_json(SpeakUpdated())
        elif isinstance(msg, UpdateThink):
            st.think = plain["think"]
            prompt = SessionState._first(st.think).get("prompt")
            st.prompt = prompt if isinstance(prompt, str) else None
            await self._send_json(ThinkUpdated())
        elif isinstance(msg, UpdateListen):
            self._apply_listen_update(normalize_client_message(plain)["listen"])
            await self._send_json(ListenUpdated())
        elif isinstance(msg, UpdateThinkLive):
            st.think_live = plain["think_live"]
            await self._send_json(ThinkLiveUpdated())
        elif isinstance(msg, ForceEndTurn):
            await self._on_force_end_turn()
        # KeepAlive and __customToThinkProvider: recorded, no reply.

    def _apply_listen_update(self, listen: dict[str, Any]) -> None:
        # docs/protocol.md 5.5: a partial update; omitted keys keep their value except
        # language_hints, which resets when omitted.
        old = dict((self.state.listen or {}).get("provider") or {})
        new = listen.get("provider") or {}
        old.pop("language_hints", None)
        old.update(new)
        self.state.listen = {"provider": old}

    # ----------------------------------------------------------------------------- settings

    async def _on_settings(self, received: dict[str, Any], *, checked: bool) -> None:
        """Apply Settings (``checked``: validated; otherwise taken as far as it makes sense)."""
        st = self.state
        plain = normalize_settings(received)  # language_hint -> language_hints
        agent = plain.get("agent")
        if isinstance(agent, str):
            try:
                uuid.UUID(agent)
            except ValueError:
                await self._fatal(
                    "INVALID_AGENT_ID",
                    f"The agent id {agent!r} is not a valid agent configuration id.",
                )
            st.agent_id = agent
            agent = {}
        agent = _dict(agent)
        self.settings = received
        audio = _dict(plain.get("audio"))
        audio_in = _dict(audio.get("input"))
        audio_out = _dict(audio.get("output"))
        st.input_encoding = _text(audio_in.get("encoding"), "linear16")
        st.input_sample_rate = _rate(audio_in.get("sample_rate"))
        st.output_encoding = _text(audio_out.get("encoding"), "linear16")
        st.output_sample_rate = _rate(audio_out.get("sample_rate"))
        st.output_container = _text(audio_out.get("container"), "none")
        st.history_enabled = _dict(plain.get("flags")).get("history", True) is not False
        st.experimental = plain.get("experimental") is True
        st.think = agent.get("think")
        st.speak = agent.get("speak")
        listen = agent.get("listen")
        st.listen = listen if isinstance(listen, dict) else None
        think_live = agent.get("think_live")
        st.think_live = think_live if isinstance(think_live, dict) else None
        greeting = agent.get("greeting")
        st.greeting = greeting if isinstance(greeting, str) else None
        prompt = SessionState._first(st.think).get("prompt")
        st.prompt = prompt if isinstance(prompt, str) else None
        messages = _dict(agent.get("context")).get("messages")
        st.history = (
            [m for m in messages if isinstance(m, dict)] if isinstance(messages, list) else []
        )
        log.info(
            "session #%d: Settings accepted%s: input %s/%d Hz, output %s/%d Hz, listen %s, "
            "think %s, speak %s, experimental %s",
            self.index,
            "" if checked else " unchecked (strict=False)",
            st.input_encoding,
            st.input_sample_rate,
            st.output_encoding,
            st.output_sample_rate,
            st.listen_model or "default",
            st.think_model or ("stored agent" if st.agent_id else "default"),
            st.speak_model or "default",
            st.experimental,
        )
        self._vad = EnergyVad(
            encoding=st.input_encoding,
            sample_rate=st.input_sample_rate,
            threshold=self._opts.vad_threshold,
            silence=self._opts.vad_silence,
        )
        delay = self._opts.settings_applied_delay + self.faults.delay_settings_applied
        if delay > 0:
            await self._pause(delay)
        await self._send_json(SettingsApplied())
        st.phase = "active"
        if self.faults.drop_after_ready is not None:
            self._aux(self._drop_later(self.faults.drop_after_ready))
        await self._flood()
        if st.greeting:
            self._spawn(
                lambda: self._speak(st.greeting or "", started_speaking=False, report=False),
                speech=True,
            )

    async def _run_replay(self) -> None:
        """Play this session's recorded steps (see :mod:`._replay`)."""
        steps = self._replay
        if steps is None:
            await self._fatal(
                "REPLAY_EXHAUSTED",
                f"The recording has no session #{self.index}; connection attempts beyond the "
                "recorded sessions are refused.",
            )
            return
        loop = asyncio.get_running_loop()
        tally = ClientTally()
        pacer = RealtimePacer() if self._opts.replay_realtime else None
        for step in steps:
            if isinstance(step, ExpectFrames):
                await self._replay_expect(step, tally)
                continue
            if pacer is not None:
                delay = pacer.delay(step, loop.time())
                if delay > 0:
                    await asyncio.sleep(delay)
            if step.text is not None:
                await self._send_frame(step.text, _TEXT, kind=step.type)
            else:
                data = step.audio
                if data is None:
                    data = silence(self.state.output_encoding, step.size)
                await self._send_frame(data, _BINARY, kind=None)
            if pacer is not None:
                pacer.sent(step, loop.time())
            if step.type == "SettingsApplied":
                self.state.phase = "active"

    async def _replay_expect(self, step: ExpectFrames, tally: ClientTally) -> None:
        timeout = self._opts.replay_timeout

        async def until() -> None:
            while True:
                tally.update(self.received)
                if tally.satisfied(step):
                    return
                await self._rx_changed.wait()

        try:
            await asyncio.wait_for(until(), timeout)
        except TimeoutError:
            await self._fatal(
                "REPLAY_TIMEOUT",
                f"Replay: expected the client to have sent {step.describe()} within "
                f"{timeout:g} s; received {tally.describe()}.",
            )

    async def _flood(self) -> None:
        f = self.faults
        for i in range(f.flood_events):
            await self._send_json(ConversationText(role="assistant", content=f"Flood event {i}."))
        if f.flood_audio:
            st = self.state
            chunk = tone(st.output_encoding, st.output_sample_rate, self._opts.chunk_ms / 1000)
            for _ in range(f.flood_audio):
                await self._send_frame(chunk, _BINARY, kind=None)

    # ----------------------------------------------------------------------------- agent tasks

    def _spawn(
        self, factory: Callable[[], Coroutine[Any, Any, None]], *, speech: bool = False
    ) -> asyncio.Task[None]:
        """Start agent work. ``speech`` marks a task that is speaking from its first step."""
        task = asyncio.create_task(self._guard(factory))
        self._agent_tasks.add(task)
        if speech:
            self._speech_tasks.add(task)
        task.add_done_callback(self._agent_tasks.discard)
        task.add_done_callback(self._speech_tasks.discard)
        return task

    def _aux(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Start a timer task that a barge-in does not cut (ended with the session)."""

        async def guarded() -> None:
            with contextlib.suppress(_SessionOver):
                await coro

        task = asyncio.create_task(guarded())
        self._aux_tasks.add(task)
        task.add_done_callback(self._aux_tasks.discard)
        return task

    async def _guard(self, factory: Callable[[], Coroutine[Any, Any, None]]) -> None:
        try:
            await factory()
        except _SessionOver:
            pass
        except Exception:
            log.exception("emulator session #%d: internal error", self.index)
            with contextlib.suppress(_SessionOver):
                await self._fatal("INTERNAL_SERVER_ERROR", "The emulator hit an internal error.")

    def _decide(self, quirk: str) -> bool:
        """Whether a :class:`Quirks` variation happens now (its probability, this session's rng)."""
        p = float(getattr(self._opts.quirks, quirk))
        if p <= 0:
            return False
        return p >= 1 or self._rng.random() < p

    def _interrupt(self, *, keep_speech: bool = False) -> list[FunctionCallCancelledItem]:
        """Stop agent work now; with ``keep_speech``, replies already speaking go on.

        Returns:
            The client-side calls that became void (for ``FunctionCallCancelled``).
        """
        for task in list(self._agent_tasks):
            if not (keep_speech and task in self._speech_tasks):
                task.cancel()
                self._agent_tasks.discard(task)
                self._speech_tasks.discard(task)
        cancelled = [FunctionCallCancelledItem(id=i, name=p.name) for i, p in self._pending.items()]
        for i in self._pending:
            self._calls.discard(i)
        for p in self._pending.values():
            p.future.cancel()
        self._pending.clear()
        self.state.pending_calls.clear()
        self._held_history = []
        self._wake.set()  # no call pending: the watchdog times idle_timeout again
        if not self._speech_tasks:
            self.state.agent_speaking = False
        return cancelled

    def _start_turn(self, text: str, *, from_audio: bool) -> None:
        # A new user turn drops a reply that has not started speaking (and voids its function
        # calls); speech already under way finishes first, so its AgentAudioDone can arrive
        # after the new turn's EndOfThought, as in the 2025 recordings (docs/protocol.md 9.3).
        cancelled = self._interrupt(keep_speech=True)
        speaking = list(self._speech_tasks)
        self._spawn(lambda: self._turn(text, after=speaking, cancelled=cancelled, audio=from_audio))

    async def _history_text(self, role: str, content: str) -> None:
        item = {"type": "History", "role": role, "content": content}
        self.state.history.append(item)
        if self.state.history_enabled:
            await self._send_json(History(role=role, content=content))

    async def _latency(self, **figures: float) -> None:
        """One ``LatencyReport`` (split mode: one per figure, as the live server sends them)."""
        await self._send_json(msgspec.convert(figures, LatencyReport))

    async def _think_delay(self, seconds: float) -> None:
        """The scripted LLM takes its time: ``Warning SLOW_THINK_REQUEST`` every interval."""
        loop = asyncio.get_running_loop()
        interval = self._opts.slow_think_interval
        start = loop.time()
        k = 1
        while True:
            elapsed = loop.time() - start
            if seconds <= k * interval:  # done before the next warning is due
                await asyncio.sleep(max(0.0, seconds - elapsed))
                return
            await asyncio.sleep(max(0.0, k * interval - elapsed))
            await self._send_json(
                Warning(
                    code="SLOW_THINK_REQUEST",
                    description=f"We have now waited {k * interval:g} seconds for a think response.",
                )
            )
            k += 1

    async def _turn(
        self,
        text: str,
        *,
        after: list[asyncio.Task[None]],
        cancelled: list[FunctionCallCancelledItem],
        audio: bool,
    ) -> None:
        st = self.state
        script = self.script
        split = self._opts.quirks.latency_report == "split"
        if cancelled:
            await self._send_json(FunctionCallCancelled(functions=cancelled))
        await self._send_json(ConversationText(role="user", content=text))
        await self._history_text("user", text)
        if st.experimental and script.end_of_thought:  # gated like AgentStartedSpeaking (9.6)
            await self._send_frame(_END_OF_THOUGHT, _TEXT, kind="EndOfThought")
        if after:
            await asyncio.wait(after)
        rule, match = script.choose(text)
        ctx = TurnContext(text=text, match=match, state=st)
        if rule is not None and rule.delay > 0:
            await self._think_delay(rule.delay)
        thinking = (
            rule.thinking if rule is not None and rule.thinking is not None else script.thinking
        )
        if thinking and st.experimental:
            await self._send_json(AgentThinking(content=thinking))
        ttt = script.latency.get("ttt_latency", 0.25)
        if split:
            await self._latency(ttt_token_latency=ttt)
        groups = rule.requests() if rule is not None else []
        self._held_history = []
        self._batch_history = len(groups) > 1 and self._decide("batched_function_history")
        late = bool(groups) and self._decide("late_function_history")
        hold = self._batch_history or late
        if groups and script.preamble and self._decide("text_before_function_call"):
            await self._speak(script.preamble, started_speaking=st.experimental, report=False)
            task = asyncio.current_task()
            if task is not None:
                self._speech_tasks.discard(task)  # done speaking; the calls are not speech
        for i, group in enumerate(groups):
            await self._call_functions(group, ctx, hold=hold, tool_latency=split and i == 0)
        if hold and not late:
            await self._flush_function_history()
        reply = script.render(rule.reply if rule is not None else None, ctx)
        await self._speak(
            reply, started_speaking=st.experimental, report=True, tools=bool(groups), audio=audio
        )
        await self._flush_function_history()  # late History with nothing spoken after it
        st.turns += 1

    async def _flush_function_history(self) -> None:
        """Send the ``History(function_calls)`` held back by the late/batched variations."""
        held, self._held_history = self._held_history, []
        if not held:
            return
        if self._batch_history:
            held = [[item for group in held for item in group]]
        for items in held:
            await self._send_function_history(items)

    async def _send_function_history(self, items: list[HistoryFunctionCallItem]) -> None:
        st = self.state
        if self._decide("history_client_side_false"):  # live capture: mislabelled calls
            items = [
                HistoryFunctionCallItem(
                    id=it.id,
                    name=it.name,
                    client_side=False,
                    arguments=it.arguments,
                    response=it.response,
                    thought_signature=it.thought_signature,
                )
                for it in items
            ]
        st.history.append({"type": "History", "function_calls": [_plain(it) for it in items]})
        if st.history_enabled:
            await self._send_json(History(function_calls=items))

    async def _call_functions(
        self, group: list[ToolCall], ctx: TurnContext, *, hold: bool, tool_latency: bool
    ) -> None:
        st = self.state
        declared = st.functions
        for call in group:
            if call.name not in declared:
                await self._fatal(
                    "NON_EXISTENT_FUNCTION_CALLED",
                    f"The agent called the function '{call.name}', which is not declared in "
                    "agent.think.functions.",
                )
        entries: list[tuple[ToolCall, str, str, bool]] = []
        for call in group:
            server_side = "endpoint" in declared[call.name]
            entries.append((call, call.new_id(), call.arguments_text(), server_side))
        await self._send_json(
            FunctionCallRequest(
                functions=[
                    FunctionCallRequestItem(
                        id=cid,
                        name=call.name,
                        arguments=args,
                        client_side=not server_side,
                        thought_signature=call.thought_signature,
                    )
                    for call, cid, args, server_side in entries
                ]
            )
        )
        if tool_latency:
            await self._latency(ttt_tool_latency=self.script.latency.get("ttt_latency", 0.25))
        results: dict[str, str] = {}
        for call, cid, _args, server_side in entries:
            if server_side:
                # The real server calls the endpoint; the emulator answers from the script.
                await self._send_json(
                    ServerFunctionCallResponse(id=cid, name=call.name, content=call.result)
                )
                results[cid] = call.result
        loop = asyncio.get_running_loop()
        waits: dict[str, asyncio.Future[str]] = {}
        for call, cid, _args, server_side in entries:
            if not server_side:
                fut: asyncio.Future[str] = loop.create_future()
                self._pending[cid] = _Pending(call.name, fut, loop.time())
                self._calls.add(cid, call.name)
                st.pending_calls[cid] = call.name
                waits[cid] = fut
        if waits:
            self._wake.set()  # the watchdog now times the function response
        for cid, fut in waits.items():
            results[cid] = await fut
        if self._opts.history_delay > 0:
            await asyncio.sleep(self._opts.history_delay)
        items = [
            HistoryFunctionCallItem(
                id=cid,
                name=call.name,
                client_side=not server_side,
                arguments=args,
                response=results[cid],
                thought_signature=call.thought_signature,
            )
            for call, cid, args, server_side in entries
        ]
        if hold:
            self._held_history.append(items)
        else:
            await self._send_function_history(items)
        for call, cid, args, _server_side in entries:
            ctx.results[call.name] = results[cid]
            ctx.arguments[call.name] = args

    def _on_function_response(self, msg: FunctionCallResponse) -> None:
        """Resolve a pending call. Unknown or already-answered ids are ignored.

        A response without ``id`` answers the oldest pending call of that ``name``.
        """
        given = msg.id if isinstance(msg.id, str) else None
        cid = self._calls.resolve(msg.name, given)  # the rule the client applies too
        pending = self._pending.pop(cid, None) if cid is not None else None
        if pending is None:
            log.info(
                "session #%d: FunctionCallResponse for %s (%s) ignored: no such pending call",
                self.index,
                given,
                msg.name,
            )
            return
        self.state.pending_calls.pop(cid or "", None)
        if not pending.future.done():
            pending.future.set_result(msg.content)
        self._wake.set()  # back to timing client silence with idle_timeout

    async def _speak(
        self,
        text: str,
        *,
        started_speaking: bool,
        report: bool,
        behavior: str = "default",
        tools: bool = False,
        audio: bool = False,
        after: list[asyncio.Task[None]] | None = None,
    ) -> None:
        if after:
            await asyncio.wait(after)
        late_done = self._late_done
        if late_done is not None and not late_done.done():
            # The AgentAudioDone of a speech cut by a barge-in comes before new speech.
            await asyncio.wait([late_done])
        task = asyncio.current_task()
        if task is not None and task in self._agent_tasks:
            self._speech_tasks.add(task)
        st = self.state
        opts = self._opts
        split = report and opts.quirks.latency_report == "split"
        sentences = split_sentences(text)
        if not sentences:
            return
        enc, rate = st.output_encoding, st.output_sample_rate
        width = bytes_per_sample(enc)
        clips = [tone(enc, rate, len(s) * opts.ms_per_char / 1000) for s in sentences]
        chunk = max(width, int(rate * opts.chunk_ms / 1000) * width)
        bytes_per_second = rate * width
        latency = self.script.latency
        ttt, tts = latency.get("ttt_latency", 0.25), latency.get("tts_latency", 0.1)
        total = round(ttt + tts, 3)
        loop = asyncio.get_running_loop()
        start = loop.time()
        played = 0.0
        for i, (sentence, clip) in enumerate(zip(sentences, clips, strict=True)):
            if i == 0 and split:
                await self._latency(ttt_text_latency=ttt)
            await self._send_json(
                ConversationText(
                    role="assistant", content=sentence, conversational_behavior=behavior
                )
            )
            await self._history_text("assistant", sentence)
            if i == 0:
                await self._flush_function_history()  # Quirks.late_function_history
            if i == 0 and started_speaking:
                await self._send_json(
                    AgentStartedSpeaking(total_latency=total, tts_latency=tts, ttt_latency=ttt)
                )
            st.agent_speaking = True
            if i == 0 and st.output_container == "wav":
                total_bytes = sum(len(c) for c in clips)
                await self._send_frame(wav_header(enc, rate, total_bytes), _BINARY, kind=None)
                self._audio_open = True
            for offset in range(0, len(clip), chunk):
                piece = clip[offset : offset + chunk]
                if opts.realtime_audio:
                    delay = start + played - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                else:
                    await asyncio.sleep(0)
                await self._send_frame(piece, _BINARY, kind=None)
                self._audio_open = True
                if i == 0 and offset == 0 and split:
                    await self._latency(tts_latency=tts)
                    await self._latency(total_latency=total)
                played += len(piece) / bytes_per_second
        st.agent_speaking = False
        if report and not split:
            # docs/protocol.md 9.5 places LatencyReport after the audio, before AgentAudioDone.
            extra: dict[str, Any] = {}
            if audio and "stt_latency" in latency:
                extra["stt_latency"] = latency["stt_latency"]
            if tools:
                extra["ttt_tool_latency"] = ttt
            await self._latency(
                ttt_token_latency=ttt,
                ttt_text_latency=ttt,
                tts_latency=tts,
                total_latency=total,
                **extra,
            )
        self._audio_open = False
        await self._send_json(AgentAudioDone())

    # ----------------------------------------------------------------------------- injections

    async def _on_inject_agent(self, msg: InjectAgentMessage) -> None:
        # behavior's values and message-or-is_dynamic are enforced by check_client_message.
        behavior = msg.behavior if isinstance(msg.behavior, str) else "default"
        if msg.is_dynamic is True:
            text, style = self.script.filler, "filler"
        else:
            text, style = str(msg.message), "default"
        user_busy = self._vad is not None and self._vad.speaking
        agent_busy = bool(self._agent_tasks)
        if behavior == "interrupt":
            cancelled = self._interrupt()
            self._audio_open = False
            if cancelled:
                await self._send_json(FunctionCallCancelled(functions=cancelled))
            self._spawn(
                lambda: self._speak(text, started_speaking=False, report=False, behavior=style),
                speech=True,
            )
            return
        if user_busy:
            await self._send_json(InjectionRefused(message="User is currently speaking."))
            return
        if behavior == "queue":
            after = list(self._agent_tasks)
            self._spawn(
                lambda: self._speak(
                    text, started_speaking=False, report=False, behavior=style, after=after
                )
            )
            return
        if agent_busy:
            await self._send_json(InjectionRefused(message="Agent is currently speaking."))
            return
        self._spawn(
            lambda: self._speak(text, started_speaking=False, report=False, behavior=style),
            speech=True,
        )

    # ----------------------------------------------------------------------------- user audio

    def _barge_in_delay(self) -> float | None:
        spec = self._opts.quirks.audio_done_after_barge_in
        if spec is None or not isinstance(spec, tuple):
            return spec
        low, high = spec
        return low if high <= low else self._rng.uniform(low, high)

    async def _audio_done_after(self, delay: float) -> None:
        await asyncio.sleep(delay)
        await self._send_json(AgentAudioDone())

    async def _on_speech_start(self) -> None:
        was_speaking = self._audio_open
        cancelled = self._interrupt()  # barge-in: the reply's audio stops at once
        self._audio_open = False
        self.state.user_speaking = True
        await self._send_json(UserStartedSpeaking())
        if cancelled and not self._decide("silent_cancel"):
            await self._send_json(FunctionCallCancelled(functions=cancelled))
        delay = self._barge_in_delay() if was_speaking else None
        if delay is not None:
            # docs/protocol.md 8: AgentAudioDone for the cut speech 10-180 ms after the barge-in.
            self._late_done = self._aux(self._audio_done_after(delay))

    async def _on_speech_end(self) -> None:
        self.state.user_speaking = False
        transcript = self.script.next_transcript()
        if transcript:
            self._start_turn(transcript, from_audio=True)

    async def _on_force_end_turn(self) -> None:
        if self.state.listen_version != "v2":
            await self._send_json(
                Warning(
                    code="FORCE_END_TURN_UNSUPPORTED",
                    description="ForceEndTurn is only supported with a Flux (v2) listen provider.",
                )
            )
        # Emulator convenience: the pending audio turn ends either way (documented).
        if self._vad is not None and self._vad.force_end():
            await self._on_speech_end()


def _plain(item: HistoryFunctionCallItem) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": item.id,
        "name": item.name,
        "client_side": item.client_side,
        "arguments": item.arguments,
        "response": item.response,
    }
    if item.thought_signature is not None:
        out["thought_signature"] = item.thought_signature
    return out


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any, default: str) -> str:
    return value if isinstance(value, str) else default


def _rate(value: Any, default: int = 24000) -> int:
    """A usable sample rate from Settings data (unchecked Settings may hold anything)."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return default


def _loggable(detail: str) -> str:
    """A validation detail fit for a log line: about secrets, only the path."""
    path = detail.split(":", 1)[0]
    if any(part in path for part in _SECRET_PATH):
        return f"{path}: (value not logged)"
    return detail
