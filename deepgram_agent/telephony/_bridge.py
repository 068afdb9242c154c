"""The phone bridge: one agent session per call, between a carrier's media stream and our core.

:class:`PhoneBridge` is framework-free at heart (:meth:`PhoneBridge.run` takes a
``(receive_text, send_text)`` pair); :meth:`~PhoneBridge.aiohttp_handler` and
:meth:`~PhoneBridge.asgi` adapt it to aiohttp and to any ASGI server (Starlette, FastAPI,
uvicorn). The carrier's dialect is a :class:`~._carrier.Carrier` (Twilio by default).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import inspect
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from ..audio._bargein import BargeIn, BargeInAction
from ..audio._convert import StreamConverter
from ..exceptions import DeepgramError, SettingsError
from ..messages import AudioFormat
from ..options import coerce_settings
from ._carrier import (
    TELEPHONY_FORMAT,
    CallInfo,
    Carrier,
    CarrierFrameError,
    Dtmf,
    Media,
    Other,
    PlaybackMark,
    Start,
    Stop,
)
from ._twilio import TwilioCarrier

if TYPE_CHECKING:
    from aiohttp import web

    from .._client import DeepgramClient

__all__ = ["CallStatistics", "Playback", "PhoneBridge", "PhoneCall", "ReceiveText", "SendText"]

log = logging.getLogger("deepgram_agent.telephony")

#: Returns the next text frame from the carrier (``bytes`` for a binary one), ``None`` once the
#: socket is closed.
ReceiveText = Callable[[], Awaitable[str | bytes | None]]
#: Sends one text frame to the carrier.
SendText = Callable[[str], Awaitable[None]]
#: Closes the carrier's socket with a WebSocket close code and reason.
CloseSocket = Callable[[int, str], Awaitable[None]]

SettingsSource = Any  # settings in any accepted form, or a callable(CallInfo) returning them

_call_ids = itertools.count(1)

# WebSocket close codes the bridge uses.
CLOSE_NORMAL = 1000
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_ERROR = 1011


def with_line_audio(settings: Any, line: AudioFormat) -> dict[str, Any]:
    """The validated wire dict of ``settings``, with ``audio.input``/``audio.output`` set to the
    line's format where the settings leave them out (``None``: an empty agent)."""
    if settings is None:
        data: Any = {}
    elif isinstance(settings, str | bytes | bytearray):
        data = msgspec.json.decode(settings)
    elif isinstance(settings, Mapping):
        data = settings
    else:
        data = coerce_settings(settings)[1]
    if not isinstance(data, Mapping):
        raise SettingsError("", "Settings must be a JSON object")
    audio = dict(data.get("audio") or {})
    fmt = {"encoding": line.encoding, "sample_rate": line.sample_rate}
    audio.setdefault("input", dict(fmt))
    audio.setdefault("output", {**fmt, "container": "none"})
    merged = {**data, "audio": audio}
    merged.setdefault("agent", {})
    return coerce_settings(merged)[1]


@dataclass(frozen=True)
class Playback:
    """A reply's end-of-audio mark came back from the carrier.

    Attributes:
        name: the mark's name (``reply-<n>``).
        reply: the reply's number in this call, from 1.
        interrupted: ``True`` when a ``clear`` (barge-in) dropped the audio before the mark:
            the caller did not hear the whole reply. ``False``: the caller heard it all.
        delay: seconds from sending the mark to its echo (how much was still buffered).
    """

    name: str
    reply: int
    interrupted: bool
    delay: float


class CallStatistics:
    """Counters of one call, and the bridge's own processing time per audio frame."""

    __slots__ = (
        "agent_frames",
        "bad_frames",
        "bytes_to_agent",
        "bytes_to_caller",
        "caller_frames",
        "clears",
        "dropped_frames",
        "frame_seconds",
        "marks_heard",
        "marks_sent",
    )

    def __init__(self) -> None:
        self.caller_frames = 0
        self.agent_frames = 0
        self.bytes_to_agent = 0
        self.bytes_to_caller = 0
        self.bad_frames = 0
        self.dropped_frames = 0
        self.clears = 0
        self.marks_sent = 0
        self.marks_heard = 0
        #: Seconds each frame spent inside the bridge (both directions), the newest 512
        #: (bounded: ~16 KiB per call however long it lasts).
        self.frame_seconds: collections.deque[float] = collections.deque(maxlen=512)

    def __repr__(self) -> str:
        fields = ", ".join(
            f"{k}={getattr(self, k)}" for k in self.__slots__ if k != "frame_seconds"
        )
        return f"CallStatistics({fields})"


class PhoneCall:
    """One call through the bridge; handed to every callback.

    Attributes:
        id: a process-unique number (for logs).
        info: what the carrier's start frame said (``None`` until it arrived).
        conn: the agent session (``None`` before it opened and after a failed start).
        gate: the call's :class:`~deepgram_agent.audio.BargeIn`.
        stats: a :class:`CallStatistics`.
        end_reason: why the call ended (``"stop"``, ``"caller closed"``, ``"agent closed"``,
            or the error), once it has.
    """

    def __init__(self, bridge: PhoneBridge, send: SendText, close: CloseSocket | None) -> None:
        self.id = next(_call_ids)
        self.bridge = bridge
        self.carrier: Carrier = bridge.carrier()
        self.info: CallInfo | None = None
        self.conn: Any = None
        self.gate = BargeIn()
        self.stats = CallStatistics()
        self.end_reason = ""
        self._send = send
        self._close = close
        self._closed = False
        self._to_agent: StreamConverter | None = None
        self._to_caller: StreamConverter | None = None
        self._reply = 0
        self._reply_audio = False  # audio sent in the current reply
        self._unplayed = False  # audio sent after the last mark
        self._marks: dict[str, tuple[int, float]] = {}  # name -> (reply, sent at)
        self._cleared: set[str] = set()
        self._ended = asyncio.Event()

    def __repr__(self) -> str:
        who = self.info.call_id if self.info is not None else "-"
        return f"<PhoneCall #{self.id} {self.carrier.name} {who}>"

    @property
    def ended(self) -> bool:
        """True once the call is over."""
        return self._ended.is_set()

    async def wait_ended(self, timeout: float | None = None) -> None:
        """Wait until the call is over (bounded by ``timeout`` seconds; cancelling is safe)."""
        async with asyncio.timeout(timeout):
            await self._ended.wait()

    async def hang_up(self, reason: str = "") -> None:
        """End the call from the app's side: close the carrier's socket and the agent session."""
        await self._close_socket(CLOSE_NORMAL, reason or "call ended by the application")
        if self.conn is not None:
            await self.conn.close()

    # ----------------------------------------------------------------------------- internals

    async def _close_socket(self, code: int, reason: str) -> None:
        if self._closed:
            return
        self._closed = True
        if self._close is not None:
            with contextlib.suppress(Exception):
                await self._close(code, reason[:120])

    async def _fail(self, code: int, reason: str) -> None:
        log.warning("call #%d (%s): %s", self.id, self.carrier.name, reason)
        self.end_reason = reason
        await self._close_socket(code, reason)

    def _bad_frame(self, why: str) -> bool:
        """Count a frame we cannot use; True when the caller has sent too many."""
        self.stats.bad_frames += 1
        log.warning("call #%d: ignored a frame from the carrier: %s", self.id, why)
        return self.stats.bad_frames > self.bridge.max_bad_frames

    async def _send_frame(self, text: str) -> bool:
        if self._closed:
            return False
        try:
            await self._send(text)
        except Exception as exc:  # the carrier's socket is gone
            log.info("call #%d: carrier socket gone (%s)", self.id, exc)
            self._closed = True
            return False
        return True


class PhoneBridge:
    """Connects phone calls to Deepgram's Voice Agent API, one agent session per call.

    ::

        bridge = PhoneBridge(DeepgramClient(), telephony_settings(my_settings), tools=tools)
        app.router.add_get("/twilio", bridge.aiohttp_handler)  # aiohttp
        # Starlette/FastAPI: Mount("/twilio", app=bridge.asgi())
        # anything else: await bridge.run(receive_text, send_text)

    Each call: the carrier's ``start`` frame gives the call's metadata (:class:`CallInfo`);
    the agent session opens with the Settings (or the factory's Settings for this call);
    caller audio goes to ``send_audio``; agent audio goes back to the caller through the
    barge-in gate (:class:`~deepgram_agent.audio.BargeIn`); a barge-in sends the carrier a
    ``clear``; the end of each reply sends a ``mark``, and its echo means the caller heard it
    (``on_playback_done``). The carrier's ``stop`` (or its socket closing) closes the session.

    Audio formats: Settings that leave out ``audio.input`` or ``audio.output`` get the line's
    format filled in for the call (mu-law 8000 on Twilio). Settings that name another format
    are converted per frame (``mismatch="convert"``, logged once per bridge: it costs a
    resampler's latency and CPU) or refused (``mismatch="fail"``: the call is closed with a
    reason naming both formats). Use :func:`deepgram_agent.presets.telephony_settings`.

    Every callback may be a plain function or a coroutine function; one that raises is logged
    and the call goes on.

    Args:
        client: a :class:`~deepgram_agent.DeepgramClient` (its key never reaches the caller).
        settings: Settings in any accepted form, or a callable receiving the
            :class:`CallInfo` and returning them (sync or async), for per-call Settings
            (see :class:`~deepgram_agent.presets.SettingsTemplate`). Raising in it refuses the
            call (closed with 1011 and the error's text).
        carrier: the carrier dialect class (:class:`TwilioCarrier` by default).
        tools: a :class:`~deepgram_agent.tools.Tools` registry for every call.
        reconnect: ``True`` or a :class:`~deepgram_agent.ReconnectPolicy`.
        authorize: called with the :class:`CallInfo` before anything is spent; a false
            answer closes the call (1008). ``deepgram-agent serve`` checks its token here.
        on_start: ``(call)`` once the start frame arrived, before the agent session opens.
        on_event: ``(call, event)`` for every event of the agent session (audio included);
            it runs before the event is forwarded, so keep it quick (or hand work to a task).
        on_playback_done: ``(call, playback)`` when a reply's mark came back
            (:class:`Playback`; ``interrupted`` tells whether a barge-in cut it).
        on_dtmf: ``(call, digit)`` when the caller pressed a key.
        on_end: ``(call)`` when the call is over (``call.end_reason`` says why).
        mismatch: ``"convert"`` or ``"fail"`` (see above).
        start_timeout: seconds to wait for the carrier's start frame.
        max_frame_bytes: the largest frame accepted from the carrier (1009 beyond).
        max_bad_frames: invalid frames tolerated per call (each is logged) before closing it.
        connect_options: more ``connect()`` options (``open_timeout``, ``record``, ...).
    """

    def __init__(
        self,
        client: DeepgramClient,
        settings: SettingsSource = None,
        *,
        carrier: type[Carrier] = TwilioCarrier,
        tools: Any = None,
        reconnect: Any = None,
        authorize: Callable[[CallInfo], bool | Awaitable[bool]] | None = None,
        on_start: Callable[[PhoneCall], object] | None = None,
        on_event: Callable[[PhoneCall, Any], object] | None = None,
        on_playback_done: Callable[[PhoneCall, Playback], object] | None = None,
        on_dtmf: Callable[[PhoneCall, str], object] | None = None,
        on_end: Callable[[PhoneCall], object] | None = None,
        mismatch: Literal["convert", "fail"] = "convert",
        start_timeout: float = 10.0,
        max_frame_bytes: int = 64 * 1024,
        max_bad_frames: int = 20,
        connect_options: Mapping[str, Any] | None = None,
    ) -> None:
        if mismatch not in ("convert", "fail"):
            raise ValueError(f"mismatch must be 'convert' or 'fail', not {mismatch!r}")
        if not callable(settings):
            with_line_audio(settings, TELEPHONY_FORMAT)  # fail at startup, not on a call
        self.client = client
        self.settings = settings
        self.carrier = carrier
        self.tools = tools
        self.reconnect = reconnect
        self.authorize = authorize
        self.on_start = on_start
        self.on_event = on_event
        self.on_playback_done = on_playback_done
        self.on_dtmf = on_dtmf
        self.on_end = on_end
        self.mismatch = mismatch
        self.start_timeout = start_timeout
        self.max_frame_bytes = max_frame_bytes
        self.max_bad_frames = max_bad_frames
        self.connect_options = dict(connect_options or {})
        #: The calls in progress.
        self.calls: set[PhoneCall] = set()
        #: Calls handled since the bridge was made.
        self.calls_total = 0
        self._warned_convert = False

    def __repr__(self) -> str:
        return f"<PhoneBridge {self.carrier.name} calls={len(self.calls)}>"

    # ----------------------------------------------------------------------------- adapters

    async def run(
        self, receive_text: ReceiveText, send_text: SendText, close: CloseSocket | None = None
    ) -> PhoneCall:
        """Serve one call over any WebSocket: the framework-free entry point.

        Args:
            receive_text: returns the carrier's next frame (``str``; ``bytes`` for a binary
                frame, which is ignored), or ``None`` once the socket is closed.
            send_text: sends one text frame to the carrier.
            close: closes the socket with a code and reason (the bridge calls it when the
                call ends on its side or is refused).

        Returns:
            The finished :class:`PhoneCall`. Never raises for what the caller or the agent
            did (everything is logged and the call closed); cancelling is safe.
        """
        call = PhoneCall(self, send_text, close)
        self.calls.add(call)
        self.calls_total += 1
        try:
            await self._serve(call, receive_text)
        except Exception:
            log.exception("call #%d: internal error in the bridge", call.id)
            await call._fail(CLOSE_ERROR, "internal error in the bridge")
        finally:
            self.calls.discard(call)
            if call.conn is not None and not call.conn.closed:
                with contextlib.suppress(Exception):
                    await asyncio.shield(call.conn.close())
            await call._close_socket(CLOSE_NORMAL, call.end_reason or "call over")
            call._ended.set()
            await self._callback("on_end", self.on_end, call)
        return call

    async def aiohttp_handler(self, request: web.Request) -> web.StreamResponse:
        """An aiohttp handler: ``app.router.add_get("/twilio", bridge.aiohttp_handler)``."""
        from ._adapters import serve_aiohttp

        return await serve_aiohttp(self, request)

    def asgi(self) -> Any:
        """An ASGI application serving the bridge on a WebSocket (any path it is mounted on).

        Starlette/FastAPI: ``Mount("/twilio", app=bridge.asgi())``; uvicorn runs it alone
        too (``uvicorn.Config(bridge.asgi())``). Plain HTTP requests get ``426``.
        """
        from ._adapters import AsgiBridge

        return AsgiBridge(self)

    # ----------------------------------------------------------------------------- one call

    async def _callback(self, name: str, fn: Callable[..., object] | None, *args: Any) -> Any:
        if fn is None:
            return None
        try:
            result = fn(*args)
            if inspect.isawaitable(result):
                result = await result
            return result
        except Exception:
            log.exception("call %r: callback %s raised; the call goes on", args[0], name)
            return None

    async def _wait_start(self, call: PhoneCall, receive: ReceiveText) -> CallInfo | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.start_timeout
        while True:
            try:
                async with asyncio.timeout(max(0.0, deadline - loop.time())):
                    frame = await receive()
            except TimeoutError:
                await call._fail(CLOSE_POLICY, f"no start frame within {self.start_timeout:g} s")
                return None
            if frame is None:
                call.end_reason = "caller closed before the stream started"
                return None
            event = await self._parse(call, frame)
            if event is None:
                if call._closed:
                    return None
                continue
            if isinstance(event, Start):
                return event.info
            if isinstance(event, Stop):
                call.end_reason = "stop before start"
                return None
            # connected, media before start, marks: nothing to do yet

    async def _parse(self, call: PhoneCall, frame: str | bytes) -> Any:
        """One carrier frame as an event; ``None`` for a frame that was ignored."""
        if len(frame) > self.max_frame_bytes:
            await call._fail(
                CLOSE_TOO_BIG, f"frame of {len(frame)} bytes; the limit is {self.max_frame_bytes}"
            )
            return None
        if isinstance(frame, bytes):
            if call._bad_frame("binary frame (the carrier sends JSON text)"):
                await call._fail(CLOSE_POLICY, "too many invalid frames")
            return None
        try:
            return call.carrier.parse(frame)
        except CarrierFrameError as exc:
            if call._bad_frame(str(exc)):
                await call._fail(CLOSE_POLICY, "too many invalid frames")
            return None

    async def _settings_for(self, info: CallInfo) -> dict[str, Any]:
        source = self.settings
        if callable(source):
            source = source(info)
            if inspect.isawaitable(source):
                source = await source
        return with_line_audio(source, info.media_format)

    def _converters(self, call: PhoneCall, conn: Any) -> str | None:
        """Set up format conversion; returns a refusal reason in ``fail`` mode."""
        line: AudioFormat = (
            call.carrier.info.media_format if call.carrier.info else AudioFormat("mulaw", 8000)
        )
        problems = []
        if tuple(conn.input_format) != tuple(line):
            problems.append(f"agent input {conn.input_format[0]}/{conn.input_format[1]}")
        if tuple(conn.output_format) != tuple(line):
            problems.append(f"agent output {conn.output_format[0]}/{conn.output_format[1]}")
        if not problems:
            return None
        text = (
            f"{' and '.join(problems)} do not match the line's {line[0]}/{line[1]}; "
            "use deepgram_agent.presets.telephony_settings()"
        )
        if self.mismatch == "fail":
            return text
        call._to_agent = StreamConverter(line, conn.input_format)
        call._to_caller = StreamConverter(conn.output_format, line)
        if not self._warned_convert:
            self._warned_convert = True
            log.warning("converting audio on every call: %s", text)
        return None

    async def _serve(self, call: PhoneCall, receive: ReceiveText) -> None:
        info = await self._wait_start(call, receive)
        if info is None:
            return
        call.info = info
        if self.authorize is not None:
            allowed = self.authorize(info)
            if inspect.isawaitable(allowed):
                allowed = await allowed
            if not allowed:
                await call._fail(CLOSE_POLICY, "call not authorized")
                return
        log.info("call #%d: %s call %s started", call.id, info.carrier, info.call_id)
        await self._callback("on_start", self.on_start, call)
        try:
            settings = await self._settings_for(info)
        except Exception as exc:
            await call._fail(CLOSE_ERROR, f"no settings for this call: {exc}")
            return
        options = dict(self.connect_options)
        if self.reconnect is not None:
            options["reconnect"] = self.reconnect
        try:
            conn = await self.client.agent.connect(settings, tools=self.tools, **options)
        except DeepgramError as exc:
            await call._fail(CLOSE_ERROR, f"agent session failed: {exc}")
            return
        call.conn = conn
        try:
            refusal = self._converters(call, conn)
        except (ValueError, DeepgramError) as exc:
            refusal = f"cannot convert audio: {exc}"
        if refusal is not None:
            await call._fail(CLOSE_ERROR, refusal)
            return
        agent = asyncio.create_task(self._from_agent(call, conn))
        caller = asyncio.create_task(self._from_caller(call, conn, receive))
        try:
            await asyncio.wait({caller, agent}, return_when=asyncio.FIRST_COMPLETED)
            if not caller.done():  # the agent session ended first: hang up on the caller
                call.end_reason = call.end_reason or "agent closed"
                await call._close_socket(CLOSE_NORMAL, "agent session ended")
                caller.cancel()
        finally:
            if not caller.done():
                caller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await caller
            if not conn.closed:
                await conn.close()
            await agent

    async def _from_caller(self, call: PhoneCall, conn: Any, receive: ReceiveText) -> None:
        stats = call.stats
        to_agent = call._to_agent
        while True:
            frame = await receive()
            if frame is None:
                call.end_reason = call.end_reason or "caller closed"
                return
            t0 = time.perf_counter()
            event = await self._parse(call, frame)
            if isinstance(event, Media):
                if not event.payload or event.track not in ("inbound", "inbound_track"):
                    log.debug("call #%d: ignored an empty or outbound media frame", call.id)
                    continue
                stats.caller_frames += 1
                audio = to_agent.process(event.payload) if to_agent else event.payload
                if audio:
                    try:
                        await conn.send_audio(audio)
                    except DeepgramError as exc:
                        log.info("call #%d: audio not sent (%s)", call.id, exc)
                        continue
                    stats.bytes_to_agent += len(audio)
                stats.frame_seconds.append(time.perf_counter() - t0)
            elif isinstance(event, PlaybackMark):
                await self._mark_echoed(call, event.name)
            elif isinstance(event, Dtmf):
                await self._callback("on_dtmf", self.on_dtmf, call, event.digit)
            elif isinstance(event, Stop):
                call.end_reason = "stop"
                return
            elif isinstance(event, Start):
                if call._bad_frame("a second start frame"):
                    await call._fail(CLOSE_POLICY, "too many invalid frames")
            elif isinstance(event, Other):
                if event.event != "connected":
                    log.info("call #%d: ignored a %r frame from the carrier", call.id, event.event)
            elif call._closed:  # an ignored frame that ended the call (too big, too many)
                return

    async def _mark_echoed(self, call: PhoneCall, name: str) -> None:
        pending = call._marks.pop(name, None)
        if pending is None:
            log.debug("call #%d: mark %r is not one of ours", call.id, name)
            return
        reply, sent = pending
        interrupted = name in call._cleared
        call._cleared.discard(name)
        call.stats.marks_heard += 1
        done = Playback(name, reply, interrupted, time.monotonic() - sent)
        await self._callback("on_playback_done", self.on_playback_done, call, done)

    async def _from_agent(self, call: PhoneCall, conn: Any) -> None:
        stats = call.stats
        carrier = call.carrier
        gate = call.gate
        try:
            async for event in conn:
                t0 = time.perf_counter()
                if self.on_event is not None:
                    await self._callback("on_event", self.on_event, call, event)
                if isinstance(event, bytes):
                    action = gate.audio(len(event))
                    if action is BargeInAction.DROP:
                        stats.dropped_frames += 1
                        continue
                    if action is BargeInAction.REPLY_START:
                        call._reply += 1
                        call._reply_audio = False
                    payload = call._to_caller.process(event) if call._to_caller else event
                    if not payload:
                        continue
                    if not await call._send_frame(carrier.media(payload)):
                        return
                    call._reply_audio = call._unplayed = True
                    stats.agent_frames += 1
                    stats.bytes_to_caller += len(payload)
                    stats.frame_seconds.append(time.perf_counter() - t0)
                    continue
                action = gate.handle(event)
                if action is BargeInAction.FLUSH:
                    if call._to_caller is not None:
                        call._to_caller.reset()
                    if call._unplayed or call._marks:
                        if not await call._send_frame(carrier.clear()):
                            return
                        stats.clears += 1
                        call._cleared.update(call._marks)
                        call._unplayed = False
                    call._reply_audio = False
                elif action is BargeInAction.REPLY_DONE and call._reply_audio:
                    name = f"reply-{call._reply}"
                    if not await call._send_frame(carrier.mark(name)):
                        return
                    call._marks[name] = (call._reply, time.monotonic())
                    call._reply_audio = call._unplayed = False
                    stats.marks_sent += 1
        except DeepgramError as exc:
            call.end_reason = f"agent session ended: {exc}"
            log.warning("call #%d: agent session ended abnormally: %s", call.id, exc)
