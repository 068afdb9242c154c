"""A fake phone call for tests: speaks a carrier's media-stream protocol to your bridge.

:class:`FakeCall` plays the carrier's part (Twilio Media Streams, or Telnyx): it opens the
WebSocket, sends ``connected`` and ``start``, streams the caller's "microphone" at real-time
pace (20 ms mu-law frames: silence, or the loud tone you queue with :meth:`FakeCall.say`, which
the emulator's voice detector hears as speech), and plays the agent's audio on a simulated
line: ``mark`` frames are echoed once the audio sent before them has "played" (at 8000 bytes
a second), and a ``clear`` drops what is buffered and echoes the pending marks at once, as the
carriers do. Everything it receives is kept for assertions::

    async with FakeCall("ws://127.0.0.1:8080/twilio") as call:
        await call.wait_for("media")            # the greeting
        call.say(0.5)                           # the caller speaks for half a second
        await call.wait_for("mark", timeout=10) # ... and heard the whole reply
        await call.hang_up()                    # "stop", then close
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import math
import uuid
from array import array
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp
import msgspec

from ..audio._g711 import pcm_from_mulaw, pcm_to_mulaw
from ..exceptions import DeepgramTimeoutError

__all__ = ["FakeCall", "Received", "mulaw_tone", "tone_frequency"]

Carrier = Literal["twilio", "telnyx"]

_SILENCE_BYTE = b"\xff"  # mu-law code of 0
_ids = itertools.count(1)


def mulaw_tone(seconds: float, *, freq: float = 300.0, amplitude: float = 0.5) -> bytes:
    """``seconds`` of a sine tone as mu-law at 8 kHz (speech to an energy detector)."""
    n = round(seconds * 8000)
    pcm = array(
        "h", (round(amplitude * 32767 * math.sin(2 * math.pi * freq * i / 8000)) for i in range(n))
    )
    return pcm_to_mulaw(pcm.tobytes())


def tone_frequency(mulaw: bytes) -> tuple[float, float]:
    """``(frequency in Hz, RMS level 0..1)`` of mu-law audio at 8 kHz, from its zero crossings."""
    pcm = array("h")
    pcm.frombytes(pcm_from_mulaw(mulaw))
    if len(pcm) < 2:
        return 0.0, 0.0
    crossings = sum(1 for a, b in itertools.pairwise(pcm) if (a < 0) != (b < 0))
    rms = math.sqrt(sum(s * s for s in pcm) / len(pcm)) / 32768
    return crossings / 2 / (len(pcm) / 8000), rms


@dataclass
class Received:
    """One frame the fake carrier received from the bridge.

    Attributes:
        kind: ``media``, ``clear``, ``mark``, or ``other``.
        at: the event loop's time when it arrived.
        payload: the decoded audio of a ``media`` frame.
        name: a mark's name.
        frame: the frame as decoded JSON.
    """

    kind: str
    at: float
    payload: bytes = b""
    name: str = ""
    frame: dict[str, Any] = field(default_factory=dict, repr=False)


class FakeCall:
    """One fake call to a phone bridge.

    Args:
        url: the bridge's WebSocket URL (``ws://127.0.0.1:8080/twilio``).
        carrier: the dialect to speak: ``"twilio"`` or ``"telnyx"``.
        call_id: the call's id (a ``CA...`` id by default).
        custom_parameters: Twilio ``customParameters`` (Telnyx: ``client_state``) in ``start``.
        chunk_ms: duration of each caller audio frame.
        realtime: pace the caller's audio at real time (what carriers do); ``False`` sends it
            as fast as the socket takes it.
        headers: extra HTTP headers for the WebSocket upgrade.
        timeout: the default bound of every wait, in seconds.

    Attributes:
        received: every frame received, in order (:class:`Received`).
        audio: all agent audio received (mu-law bytes).
        echoed: the names of the marks echoed back, in order.
        close_code: the WebSocket close code once the bridge closed the call.
    """

    def __init__(
        self,
        url: str,
        *,
        carrier: Carrier = "twilio",
        call_id: str | None = None,
        custom_parameters: dict[str, str] | None = None,
        chunk_ms: float = 20.0,
        realtime: bool = True,
        headers: dict[str, str] | None = None,
        timeout: float = 10.0,
    ) -> None:
        if carrier not in ("twilio", "telnyx"):
            raise ValueError(f"carrier must be 'twilio' or 'telnyx', not {carrier!r}")
        n = next(_ids)
        self.url = url
        self.carrier = carrier
        self.call_id = call_id or f"CA{uuid.uuid4().hex}"
        self.stream_id = f"MZ{uuid.uuid4().hex}" if carrier == "twilio" else str(uuid.uuid4())
        self.custom_parameters = dict(custom_parameters or {})
        self.frame_bytes = max(1, round(8 * chunk_ms))
        self.chunk_seconds = self.frame_bytes / 8000
        self.realtime = realtime
        self.headers = dict(headers or {})
        self.timeout = timeout
        self.name = f"fake call {n}"
        self.received: list[Received] = []
        self.audio = bytearray()
        self.echoed: list[str] = []
        self.close_code: int | None = None
        self._speech: deque[bytes] = deque()
        self._seq = itertools.count(1)
        self._chunk = itertools.count(1)
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._changed = asyncio.Event()
        self._said = asyncio.Event()
        self._said.set()
        self._closed = asyncio.Event()
        self._stopped = False
        self._play_until = 0.0
        self._pending_marks: dict[str, asyncio.TimerHandle] = {}
        self._sent_audio_bytes = 0

    def __repr__(self) -> str:
        return f"<FakeCall {self.carrier} {self.call_id} received={len(self.received)}>"

    # ----------------------------------------------------------------------------- lifecycle

    async def __aenter__(self) -> FakeCall:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def connect(self, *, start: bool = True) -> None:
        """Open the WebSocket, send ``connected`` and (with ``start``) the ``start`` frame, and
        start the microphone and the line."""
        self._session = aiohttp.ClientSession()
        try:
            self._ws = await self._session.ws_connect(
                self.url, headers=self.headers, timeout=aiohttp.ClientWSTimeout(ws_close=2.0)
            )
        except BaseException:
            await self._session.close()
            raise
        await self.send(self._connected())
        if start:
            await self.send(self._start())
        self._tasks = [asyncio.create_task(self._read()), asyncio.create_task(self._microphone())]

    async def hang_up(self) -> None:
        """Send ``stop`` (the caller hung up) and wait for the bridge to close the socket."""
        if not self._stopped and self._ws is not None and not self._ws.closed:
            self._stopped = True
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.send(self._stop())
        with contextlib.suppress(DeepgramTimeoutError):
            await self.wait_closed(self.timeout)
        await self.close()

    async def close(self) -> None:
        """Stop everything and close the socket (idempotent; no ``stop`` frame)."""
        self._stopped = True
        for handle in self._pending_marks.values():
            handle.cancel()
        self._pending_marks.clear()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._ws is not None and not self._ws.closed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._ws.close(), 2.0)
        if self._session is not None:
            await self._session.close()
        self._closed.set()
        self._pulse()

    # ----------------------------------------------------------------------------- the caller

    def say(self, seconds: float, *, freq: float = 300.0, amplitude: float = 0.5) -> None:
        """Queue ``seconds`` of loud tone: the microphone sends it next, then silence again."""
        tone = mulaw_tone(seconds, freq=freq, amplitude=amplitude)
        for i in range(0, len(tone), self.frame_bytes):
            self._speech.append(tone[i : i + self.frame_bytes])
        self._said.clear()

    async def wait_said(self, timeout: float | None = None) -> None:
        """Wait until everything queued with :meth:`say` has been sent."""
        try:
            await asyncio.wait_for(self._said.wait(), timeout or self.timeout)
        except TimeoutError:
            raise DeepgramTimeoutError(f"{self.name}: speech not sent in time") from None

    async def press(self, digit: str) -> None:
        """Send a DTMF key press."""
        frame: dict[str, Any] = {"event": "dtmf", "dtmf": {"digit": digit}}
        if self.carrier == "twilio":
            frame["dtmf"]["track"] = "inbound_track"
        await self.send(self._envelope(frame))

    async def send(self, frame: dict[str, Any] | str | bytes) -> None:
        """Send any frame (a dict as JSON; ``str``/``bytes`` as is: for hostile tests)."""
        ws = self._ws
        if ws is None:
            raise RuntimeError("not connected: use 'async with FakeCall(url)'")
        if isinstance(frame, bytes):
            await ws.send_bytes(frame)
        elif isinstance(frame, str):
            await ws.send_str(frame)
        else:
            await ws.send_str(msgspec.json.encode(frame).decode())

    # ----------------------------------------------------------------------------- waiting

    def count(self, kind: str) -> int:
        """How many frames of ``kind`` arrived so far."""
        return sum(1 for r in self.received if r.kind == kind)

    async def wait_for(
        self, kind: str, count: int = 1, *, after: int = 0, timeout: float | None = None
    ) -> list[Received]:
        """Wait until ``count`` frames of ``kind`` arrived after index ``after`` of
        :attr:`received`; returns them.

        Raises:
            DeepgramTimeoutError: not in time (the message lists what did arrive).
        """

        async def until() -> list[Received]:
            while True:
                found = [r for r in self.received[after:] if r.kind == kind]
                if len(found) >= count:
                    return found
                if self._closed.is_set():
                    raise DeepgramTimeoutError(
                        f"{self.name}: closed ({self.close_code}) before {count} {kind!r}"
                    )
                await self._changed.wait()

        try:
            return await asyncio.wait_for(until(), timeout or self.timeout)
        except TimeoutError:
            kinds = [r.kind for r in self.received[after:]]
            summary = {k: kinds.count(k) for k in dict.fromkeys(kinds)}
            raise DeepgramTimeoutError(
                f"{self.name}: expected {count} {kind!r} within {timeout or self.timeout} s; "
                f"got {summary}"
            ) from None

    async def wait_heard(self, count: int = 1, *, timeout: float | None = None) -> list[str]:
        """Wait until ``count`` marks were echoed (the audio before them has played).

        Raises:
            DeepgramTimeoutError: not in time.
        """

        async def until() -> list[str]:
            while len(self.echoed) < count:
                if self._closed.is_set():
                    raise DeepgramTimeoutError(f"{self.name}: closed before {count} marks")
                await self._changed.wait()
            return list(self.echoed)

        try:
            return await asyncio.wait_for(until(), timeout or self.timeout)
        except TimeoutError:
            raise DeepgramTimeoutError(
                f"{self.name}: {len(self.echoed)} of {count} marks played in time"
            ) from None

    async def wait_closed(self, timeout: float | None = None) -> int | None:
        """Wait until the bridge closed the socket; returns the close code."""
        try:
            await asyncio.wait_for(self._closed.wait(), timeout or self.timeout)
        except TimeoutError:
            raise DeepgramTimeoutError(f"{self.name}: still open") from None
        return self.close_code

    # ----------------------------------------------------------------------------- internals

    def _pulse(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _microphone(self) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        sent = 0
        silence = _SILENCE_BYTE * self.frame_bytes
        while not self._stopped:
            if self._speech:
                chunk = self._speech.popleft()
            else:
                chunk = silence
                self._said.set()
            if self.realtime:
                delay = start + sent * self.chunk_seconds - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                elif delay < -1.0:  # far behind (a loaded machine): do not burst a backlog
                    start = loop.time() - sent * self.chunk_seconds
            else:
                await asyncio.sleep(0)
            try:
                await self.send(self._media(chunk))
            except (ConnectionError, RuntimeError):
                return
            sent += 1
            if not self._speech:
                self._said.set()

    async def _read(self) -> None:
        ws = self._ws
        assert ws is not None
        loop = asyncio.get_running_loop()
        try:
            async for msg in ws:
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    continue
                frame = msgspec.json.decode(msg.data)
                kind = frame.get("event") if isinstance(frame, dict) else None
                now = loop.time()
                if kind == "media":
                    payload = base64.b64decode(frame["media"]["payload"], validate=True)
                    self.audio += payload
                    self._play_until = max(now, self._play_until) + len(payload) / 8000
                    self.received.append(Received("media", now, payload=payload, frame=frame))
                elif kind == "clear":
                    self._play_until = now
                    self.received.append(Received("clear", now, frame=frame))
                    for name, handle in list(self._pending_marks.items()):
                        handle.cancel()
                        self._echo(name)
                elif kind == "mark":
                    name = str(frame["mark"]["name"])
                    self.received.append(Received("mark", now, name=name, frame=frame))
                    delay = max(0.0, self._play_until - now)
                    self._pending_marks[name] = loop.call_later(delay, self._echo, name)
                else:
                    self.received.append(Received("other", now, frame=frame))
                self._pulse()
        finally:
            self.close_code = ws.close_code
            self._stopped = True
            self._closed.set()
            self._pulse()

    def _echo(self, name: str) -> None:
        self._pending_marks.pop(name, None)
        if self._stopped or self._ws is None or self._ws.closed:
            return
        self.echoed.append(name)
        self._pulse()
        frame = self._envelope({"event": "mark", "mark": {"name": name}})
        task = asyncio.ensure_future(self.send(frame))
        task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)

    # ----------------------------------------------------------------------------- frames

    def _envelope(self, frame: dict[str, Any]) -> dict[str, Any]:
        seq = str(next(self._seq))
        if self.carrier == "twilio":
            return {**frame, "sequenceNumber": seq, "streamSid": self.stream_id}
        return {**frame, "sequence_number": seq, "stream_id": self.stream_id}

    def _connected(self) -> dict[str, Any]:
        if self.carrier == "twilio":
            return {"event": "connected", "protocol": "Call", "version": "1.0.0"}
        return {"event": "connected", "version": "1.0.0"}

    def _start(self) -> dict[str, Any]:
        if self.carrier == "twilio":
            start: dict[str, Any] = {
                "accountSid": "AC" + "0" * 32,
                "streamSid": self.stream_id,
                "callSid": self.call_id,
                "tracks": ["inbound"],
                "customParameters": self.custom_parameters,
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            }
        else:
            start = {
                "user_id": str(uuid.UUID(int=0)),
                "call_control_id": self.call_id,
                "media_format": {"encoding": "PCMU", "sample_rate": 8000, "channels": 1},
            }
            if "client_state" in self.custom_parameters:
                start["client_state"] = self.custom_parameters["client_state"]
        return self._envelope({"event": "start", "start": start})

    def _media(self, chunk: bytes) -> dict[str, Any]:
        n = next(self._chunk)
        timestamp = str(round(self._sent_audio_bytes / 8))
        self._sent_audio_bytes += len(chunk)
        return self._envelope(
            {
                "event": "media",
                "media": {
                    "track": "inbound",
                    "chunk": str(n),
                    "timestamp": timestamp,
                    "payload": base64.b64encode(chunk).decode("ascii"),
                },
            }
        )

    def _stop(self) -> dict[str, Any]:
        if self.carrier == "twilio":
            stop = {"accountSid": "AC" + "0" * 32, "callSid": self.call_id}
        else:
            stop = {"user_id": str(uuid.UUID(int=0)), "call_control_id": self.call_id}
        return self._envelope({"event": "stop", "stop": stop})
