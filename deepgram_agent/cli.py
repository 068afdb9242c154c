"""The ``deepgram-agent`` command line (also ``python -m deepgram_agent``).

Commands: ``demo``, ``talk``, ``run FILE.wav``, ``emulate``, ``validate SETTINGS.json``,
``serve`` (the browser page and phone routes: :mod:`deepgram_agent.web`). With no
``DEEPGRAM_API_KEY`` (or with ``--emulator``), ``demo``, ``run`` and ``talk`` use the embedded
emulator, so everything works with no key, no network and (except ``talk``) no audio device.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, TextIO

from . import messages as m
from .exceptions import (
    AuthenticationError,
    ConnectionClosedError,
    DeepgramApiError,
    DeepgramConnectionError,
    DeepgramError,
    DeepgramTimeoutError,
    MissingDependencyError,
    ProtocolError,
    SettingsError,
)

__all__ = ["EXIT_CODES", "main", "build_parser"]

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_AUTH = 3
EXIT_SERVER = 4
EXIT_NETWORK = 5

#: Exit status of every outcome (also shown by ``--help``).
EXIT_CODES = {
    EXIT_OK: "success (validate: the settings are valid)",
    1: "validate: the settings are invalid",
    EXIT_USAGE: "usage error (bad option, missing or unreadable file, invalid settings)",
    EXIT_AUTH: "authentication failed (missing, wrong or expired key)",
    EXIT_SERVER: "the server refused the settings, reported an error or broke the protocol",
    EXIT_NETWORK: "network failure (unreachable, timed out, connection lost)",
}

log = logging.getLogger("deepgram_agent.cli")


class UsageError(Exception):
    """A problem with the command line or its files (exit status 2)."""


# ---------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------


class Printer:
    """Human-readable lines (colour on a TTY) or one JSON object per line (``--json``)."""

    _COLOURS: ClassVar[dict[str, str]] = {
        "agent": "36",
        "user": "33",
        "function": "35",
        "barge-in": "31",
        "latency": "2",
    }

    def __init__(self, *, as_json: bool, stream: TextIO | None = None) -> None:
        self.as_json = as_json
        self.stream = stream if stream is not None else sys.stdout
        self.t0 = time.monotonic()
        self.colour = not as_json and self.stream.isatty() and not os.environ.get("NO_COLOR")

    def elapsed(self) -> float:
        """Seconds since the command started."""
        return time.monotonic() - self.t0

    def event(self, kind: str, line: str, /, **fields: Any) -> None:
        """Print one event: ``[  1.23s] text`` or ``{"t": 1.23, "event": kind, ...}``."""
        t = self.elapsed()
        if self.as_json:
            line = json.dumps({"t": round(t, 3), "event": kind, **fields}, default=str)
        else:
            line = f"[{t:7.2f}s] {line}"
            code = self._COLOURS.get(kind)
            if self.colour and code:
                line = f"\x1b[{code}m{line}\x1b[0m"
        print(line, file=self.stream, flush=True)

    def plain(self, text: str) -> None:
        """A line that is not an event (summary); skipped with ``--json``."""
        if not self.as_json:
            print(text, file=self.stream, flush=True)


# ---------------------------------------------------------------------------------------------
# Settings and targets
# ---------------------------------------------------------------------------------------------

DEMO_PROMPT = "You are a friendly demo agent. Keep answers short."
DEMO_GREETING = "Hello! I am the demo agent."


def default_settings(*, input_rate: int = 16000, greeting: str | None = None) -> dict[str, Any]:
    """The Settings the CLI sends when ``--settings`` is not given."""
    agent: dict[str, Any] = {
        "language": "en",
        "listen": {"provider": {"type": "deepgram", "model": "nova-3"}},
        "think": {
            "provider": {"type": "open_ai", "model": "gpt-4o-mini"},
            "prompt": DEMO_PROMPT,
        },
        "speak": {"provider": {"type": "deepgram", "model": "aura-2-thalia-en"}},
    }
    if greeting:
        agent["greeting"] = greeting
    return {
        "type": "Settings",
        "audio": {
            "input": {"encoding": "linear16", "sample_rate": input_rate},
            "output": {"encoding": "linear16", "sample_rate": 24000, "container": "none"},
        },
        "agent": agent,
    }


def load_settings_file(path: str) -> dict[str, Any]:
    """Read a Settings JSON file.

    Raises:
        UsageError: missing, unreadable or not a JSON object.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read settings file {path!r}: {exc.strerror or exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}"
        ) from exc
    if not isinstance(data, dict):
        raise UsageError(f"{path}: a Settings file must hold a JSON object")
    return data


class Target:
    """Where a command connects: the real service or an embedded emulator."""

    def __init__(self, *, url: str | None, api_key: str, emulator: Any = None) -> None:
        self.url = url
        self.api_key = api_key
        self.emulator = emulator

    @property
    def label(self) -> str:
        """What to call it in the output (never includes the key)."""
        if self.emulator is not None:
            return f"emulator at {self.emulator.url}"
        return self.url or "wss://agent.deepgram.com"

    def client(self) -> Any:
        """A DeepgramClient for this target."""
        from ._client import DeepgramClient

        return DeepgramClient(api_key=self.api_key, base_url=self.url)


@contextlib.asynccontextmanager
async def open_target(
    args: argparse.Namespace, *, script: Any = None, realtime: bool = True, **emu: Any
) -> AsyncIterator[Target]:
    """The real service when a key is set (and ``--emulator`` is not), else an emulator."""
    key = os.environ.get("DEEPGRAM_API_KEY", "")
    if key and not args.emulator:
        yield Target(url=args.url, api_key=key)
        return
    from .testing import AgentEmulator

    async with AgentEmulator(script=script, realtime_audio=realtime, **emu) as emulator:
        yield Target(url=emulator.url, api_key="emulator", emulator=emulator)


# ---------------------------------------------------------------------------------------------
# Shared session plumbing
# ---------------------------------------------------------------------------------------------


class Session:
    """Prints a connection's events and keeps the figures the commands report."""

    def __init__(self, printer: Printer, conn: Any, *, writer: Any = None) -> None:
        self.p = printer
        self.conn = conn
        self.writer = writer
        self.audio_bytes = 0
        self.turns: list[dict[str, Any]] = []
        self.user_texts: list[str] = []
        self.agent_texts: list[str] = []
        self.function_calls: list[Any] = []
        self.barge_ins = 0
        self.errors: list[str] = []
        self.agent_speaking = False
        self._turn_sent: float | None = None
        self._turn_label = ""
        self._server_latency: dict[str, float | None] = {}
        self._waiters: list[tuple[Callable[[Any], bool], asyncio.Future[Any]]] = []
        self.closed_error: BaseException | None = None

    # ----------------------------------------------------------------------------- turns

    def user_turn_sent(self, label: str, at: float | None = None) -> None:
        """Start timing a user turn (injected message, or the end of user audio)."""
        self._turn_sent = time.monotonic() if at is None else at
        self._turn_label = label
        self._server_latency = {}

    def wait_for(self, pred: Callable[[Any], bool]) -> asyncio.Future[Any]:
        """A future resolved with the first later event matching ``pred``."""
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiters.append((pred, fut))
        return fut

    # ----------------------------------------------------------------------------- events

    async def pump(self, on_event: Callable[[Any], None] | None = None) -> None:
        """Read the connection until it closes, printing and dispatching every event."""
        try:
            async for event in self.conn:
                self.handle(event)
                if on_event is not None:
                    on_event(event)
                for pred, fut in list(self._waiters):
                    if not fut.done() and pred(event):
                        fut.set_result(event)
                        self._waiters.remove((pred, fut))
        except DeepgramError as exc:
            self.closed_error = exc
        finally:
            for _pred, fut in self._waiters:
                if not fut.done():
                    fut.cancel()

    def handle(self, event: Any) -> None:
        """Print one event and update the figures."""
        p = self.p
        if isinstance(event, bytes):
            if self.writer is not None:
                self.writer.write(event)
            self.audio_bytes += len(event)
            self.agent_speaking = True  # AgentStartedSpeaking needs "experimental" (9.6)
            if self._turn_sent is not None:
                client_ms = (time.monotonic() - self._turn_sent) * 1000
                self._report_latency(client_ms)
                self._turn_sent = None
            return
        if isinstance(event, m.ConversationText):
            role = "agent" if event.role == "assistant" else event.role
            (self.agent_texts if role == "agent" else self.user_texts).append(event.content)
            p.event(role, f"{role}: {event.content}", role=role, text=event.content)
        elif isinstance(event, m.UserStartedSpeaking):
            if self.agent_speaking:
                self.barge_ins += 1
                p.event(
                    "barge-in",
                    "barge-in: user started speaking while the agent was talking; agent audio cut",
                )
            else:
                p.event("user_started_speaking", "(user started speaking)")
            self.agent_speaking = False
        elif isinstance(event, m.AgentStartedSpeaking):
            self.agent_speaking = True
            self._server_latency = {
                "total": event.total_latency,
                "ttt": event.ttt_latency,
                "tts": event.tts_latency,
            }
        elif isinstance(event, m.AgentAudioDone):
            self.agent_speaking = False
            p.event("agent_audio_done", "(agent audio done)")
        elif isinstance(event, m.AgentThinking):
            p.event("thinking", f"(agent thinking: {event.content})", text=event.content)
        elif isinstance(event, m.PromptUpdated):
            p.event("prompt_updated", "prompt updated (PromptUpdated)")
        elif isinstance(event, m.Welcome):
            p.event("welcome", f"welcome, request_id {event.request_id}")
        elif isinstance(event, m.Error):
            text = f"{event.code}: {event.description}" if event.code else event.description
            self.errors.append(text)
            p.event("error", f"server error: {text}", code=event.code, text=event.description)
        elif isinstance(event, m.Warning):
            p.event("warning", f"server warning: {event.description}", code=event.code)
        elif isinstance(event, m.InjectionRefused):
            p.event("injection_refused", f"injection refused: {event.message}")

    def _report_latency(self, client_ms: float) -> None:
        lat = self._server_latency
        turn = len(self.turns) + 1

        def ms(v: float | None) -> str:
            return "n/a" if v is None else f"{v * 1000:.0f} ms"

        server = (
            f"server total {ms(lat.get('total'))} (ttt {ms(lat.get('ttt'))}, "
            f"tts {ms(lat.get('tts'))})"
            if lat
            else "server figures n/a"
        )
        record = {"turn": turn, "label": self._turn_label, "client_ms": round(client_ms, 1)}
        record.update({f"server_{k}_ms": None if v is None else v * 1000 for k, v in lat.items()})
        self.turns.append(record)
        self.p.event(
            "latency",
            f"latency turn {turn} ({self._turn_label}): client {client_ms:.0f} ms "
            f"(user turn sent -> first agent audio) | {server}",
            **record,
        )

    def on_tool_result(self, record: Any) -> None:
        """``Tools(on_result=...)``: print a finished function call."""
        self.function_calls.append(record)
        args = json.dumps(record.arguments, sort_keys=True)
        self.p.event(
            "function",
            f"function call {record.name}({args}) -> {record.content} "
            f"[{record.outcome}, {record.duration * 1000:.0f} ms]",
            name=record.name,
            arguments=record.arguments,
            result=record.content,
            outcome=record.outcome,
        )


async def _wait(fut: asyncio.Future[Any], timeout: float, what: str, p: Printer) -> Any:
    try:
        return await asyncio.wait_for(fut, timeout)
    except (TimeoutError, asyncio.CancelledError):
        if not fut.cancelled() and fut.done():
            return fut.result()
        p.event("timeout", f"(no {what} within {timeout:.0f} s; going on)", what=what)
        return None


def _is(kind: type, pred: Callable[[Any], bool] | None = None) -> Callable[[Any], bool]:
    return lambda e: isinstance(e, kind) and (pred is None or pred(e))


def _loud_pcm(sample_rate: int, seconds: float) -> bytes:
    from .testing._audio import tone

    return tone("linear16", sample_rate, seconds)


def _silence(sample_rate: int, seconds: float) -> bytes:
    return bytes(2 * round(sample_rate * seconds))


# ---------------------------------------------------------------------------------------------
# demo
# ---------------------------------------------------------------------------------------------

WEATHER_QUESTION = "What's the weather in Paris?"
STORY_REQUEST = "Tell me a long story about the sea."
BARGE_IN_TRANSCRIPT = "Sorry to interrupt: that's enough, thanks!"
NEW_PROMPT = "From now on, answer like a pirate."


def demo_script() -> Any:
    """The emulator's brain for ``demo``."""
    from .testing import Rule, Script, ToolCall

    return Script(
        rules=[
            Rule(
                match="weather",
                thinking="The user wants the weather: call get_weather.",
                tool_calls=[ToolCall(name="get_weather", arguments={"city": "Paris"})],
                reply="In Paris it is {result[get_weather]}.",
            ),
            Rule(
                match="story",
                reply=(
                    "Once upon a time, a small boat left the harbour at dawn. "
                    "The sea was calm and silver under the rising sun. "
                    "Far away, a lighthouse keeper watched the horizon. "
                    "Nobody knew that a storm was coming."
                ),
            ),
            Rule(match="enough", reply="Arr, fair enough! Stopping here."),
        ],
        transcripts=[BARGE_IN_TRANSCRIPT],
        default_transcript=None,
    )


def demo_tools(session_ref: list[Session]) -> Any:
    """The function-tools registry the demo registers ``get_weather`` in."""
    from .tools import Tools

    tools = Tools(timeout=10, on_result=lambda r: session_ref[0].on_tool_result(r))

    @tools.tool
    def get_weather(city: str) -> str:
        """Get the current weather for a city.

        Args:
            city: the city name, e.g. "Paris".
        """
        return "sunny and 21 degrees Celsius" if city else "unknown"

    return tools


async def cmd_demo(args: argparse.Namespace, p: Printer) -> int:
    """The scripted conversation: greeting, function call, prompt update, barge-in."""
    from .options import coerce_settings, input_format, output_format

    settings = (
        load_settings_file(args.settings)
        if args.settings
        # The server's latency figures come in AgentStartedSpeaking, which the real server
        # sends only with "experimental": true (protocol.md 9.6).
        else {**default_settings(greeting=DEMO_GREETING), "experimental": True}
    )
    coerce_settings(settings)  # fail fast, before any connection
    session_ref: list[Session] = []
    tools = demo_tools(session_ref)
    pace = 0.03  # seconds of emulated agent speech per character: keeps the demo short
    async with open_target(
        args, script=demo_script(), realtime=True, ms_per_char=pace * 1000, vad_silence=0.3
    ) as target:
        p.event("connecting", f"connecting to {target.label}", url=target.label)
        async with target.client().agent.connect(settings, tools=tools) as conn:
            enc, rate = output_format(conn.settings)
            in_enc, in_rate = input_format(conn.settings)
            out_path = Path(args.out)
            writer = _open_writer(out_path, enc, rate)
            session = Session(p, conn, writer=writer)
            session_ref.append(session)
            p.event("connected", f"connected; agent audio {enc} {rate} Hz -> {out_path}")
            reader = asyncio.create_task(session.pump())
            mic = _MicSimulator(conn, in_enc, in_rate)
            mic_task = asyncio.create_task(mic.run())
            try:
                await _demo_steps(session, conn, mic, p, has_greeting=_greets(conn.settings))
            finally:
                mic.stop()
                await asyncio.gather(mic_task, return_exceptions=True)
                await conn.close()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader
                writer.close()
        _summary(session, p, writer, target)
    return _outcome(session)


def _outcome(session: Session) -> int:
    """Exit status of a finished session: a server ``Error`` wins, then a lost connection."""
    if session.errors:
        return EXIT_SERVER
    if session.closed_error is not None:
        raise session.closed_error
    return EXIT_OK


def _open_writer(path: str | Path, encoding: str, rate: int) -> Any:
    from .audio import WavWriter

    try:
        return WavWriter(path, encoding, rate)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise UsageError(f"cannot save the agent's audio: {exc}") from exc


def _greets(settings: m.Settings) -> bool:
    greeting = getattr(settings.agent, "greeting", None)
    return isinstance(greeting, str) and bool(greeting)


class _MicSimulator:
    """Sends silence at real-time pace, like an open microphone, and a loud burst on demand."""

    def __init__(self, conn: Any, encoding: str, rate: int) -> None:
        self.conn = conn
        self.encoding = encoding
        self.rate = rate
        self._burst = 0.0
        self._stopped = asyncio.Event()
        self.burst_done = asyncio.Event()

    def speak(self, seconds: float) -> None:
        """Send ``seconds`` of loud audio next (the emulator's VAD hears speech)."""
        self.burst_done.clear()
        self._burst = seconds

    def stop(self) -> None:
        """Stop sending."""
        self._stopped.set()

    async def run(self) -> None:
        """The sending loop (20 ms chunks)."""
        from .audio import convert

        chunk_s = 0.02
        loop = asyncio.get_running_loop()
        start, n = loop.time(), 0
        while not self._stopped.is_set():
            if self._burst > 0:
                pcm = _loud_pcm(self.rate, chunk_s)
                self._burst -= chunk_s
                if self._burst <= 0:
                    self.burst_done.set()
            else:
                pcm = _silence(self.rate, chunk_s)
            try:
                await self.conn.send_audio(convert(pcm, "linear16", self.encoding))
            except DeepgramError:
                return
            n += 1
            delay = start + n * chunk_s - loop.time()
            with contextlib.suppress(TimeoutError):  # asyncio.timeout keeps cancellation intact
                async with asyncio.timeout(max(0.0, delay)):
                    await self._stopped.wait()


async def _demo_steps(
    s: Session, conn: Any, mic: _MicSimulator, p: Printer, *, has_greeting: bool
) -> None:
    done = _is(m.AgentAudioDone)
    if has_greeting:
        await _wait(s.wait_for(done), 15, "greeting", p)
    # Turn 1: a question that makes the agent call a client-side function.
    first_done = s.wait_for(done)
    p.event("inject", f"> sending user message: {WEATHER_QUESTION!r}", text=WEATHER_QUESTION)
    s.user_turn_sent("weather question")
    await conn.inject_user_message(WEATHER_QUESTION)
    await _wait(first_done, 20, "reply to the weather question", p)
    # A runtime prompt update.
    updated = s.wait_for(_is(m.PromptUpdated))
    p.event("update_prompt", f"> updating the prompt: {NEW_PROMPT!r}", prompt=NEW_PROMPT)
    await conn.update_prompt(NEW_PROMPT)
    await _wait(updated, 10, "PromptUpdated", p)
    # Turn 2: a long reply, cut by the user speaking over it (barge-in).
    started = s.wait_for(lambda e: isinstance(e, bytes))
    barged = s.wait_for(_is(m.UserStartedSpeaking))
    p.event("inject", f"> sending user message: {STORY_REQUEST!r}", text=STORY_REQUEST)
    s.user_turn_sent("story request")
    await conn.inject_user_message(STORY_REQUEST)
    await _wait(started, 20, "story reply audio", p)
    await asyncio.sleep(0.6)  # let the agent speak a little before interrupting it
    p.event("speak", "> user speaks over the agent (loud audio to the server's VAD)")
    mic.speak(0.4)
    await _wait(barged, 10, "UserStartedSpeaking", p)
    # Turn 3: the interruption's transcript gets its own reply. The cut reply's own
    # AgentAudioDone comes shortly after the barge-in (protocol.md 8): wait for the user's
    # text first, then for the end of the reply to it.
    heard = s.wait_for(_is(m.ConversationText, lambda e: e.role == "user"))
    await mic.burst_done.wait()
    s.user_turn_sent("spoken interruption")
    await _wait(heard, 20, "transcript of the interruption", p)
    await _wait(s.wait_for(done), 20, "reply to the interruption", p)


def _summary(s: Session, p: Printer, writer: Any, target: Target) -> None:
    stats = s.conn.statistics()
    summary = {
        "target": target.label,
        "user_turns": len(s.user_texts),
        "agent_utterances": len(s.agent_texts),
        "function_calls": [
            {"name": r.name, "arguments": r.arguments, "result": r.content}
            for r in s.function_calls
        ],
        "barge_ins": s.barge_ins,
        "latency": s.turns,
        "audio_file": str(writer.path),
        "audio_seconds": round(writer.duration, 3),
        "audio_format": f"{writer.encoding} {writer.sample_rate} Hz mono",
        "messages_received": getattr(stats, "messages_received", None),
        "errors": s.errors,
    }
    if p.as_json:
        p.event("summary", "summary", **summary)
        return
    bar = "-" * 64
    p.plain(bar)
    p.plain(f"Summary ({target.label})")
    p.plain(f"  user turns        {len(s.user_texts)}")
    p.plain(f"  agent utterances  {len(s.agent_texts)}")
    for r in s.function_calls:
        p.plain(f"  function call     {r.name}({json.dumps(r.arguments)}) -> {r.content}")
    p.plain(f"  barge-ins         {s.barge_ins}")
    for t in s.turns:
        server = t.get("server_total_ms")
        srv = "n/a" if server is None else f"{server:.0f} ms"
        p.plain(f"  turn {t['turn']} latency    client {t['client_ms']:.0f} ms, server {srv}")
    p.plain(
        f"  agent audio       {writer.duration:.2f} s ({writer.encoding} "
        f"{writer.sample_rate} Hz) -> {writer.path}"
    )
    p.plain(f"  errors            {len(s.errors)}")
    p.plain(bar)


# ---------------------------------------------------------------------------------------------
# run FILE.wav
# ---------------------------------------------------------------------------------------------


async def cmd_run(args: argparse.Namespace, p: Printer) -> int:
    """Stream a WAV file as the user's speech; print the transcript; save the reply audio."""
    from .audio import convert, read_wav_info, wav_chunks
    from .options import coerce_settings, input_format, output_format
    from .testing import Script

    try:
        info = read_wav_info(args.file)
    except FileNotFoundError as exc:
        raise UsageError(f"no such file: {args.file}") from exc
    except (OSError, ValueError) as exc:
        raise UsageError(str(exc)) from exc
    if info.channels != 1:
        raise UsageError(f"{args.file}: {info.channels} channels; the agent needs mono audio")
    settings = (
        load_settings_file(args.settings)
        if args.settings
        else default_settings(input_rate=info.sample_rate)
    )
    typed, _ = coerce_settings(settings)
    in_enc, in_rate = input_format(typed)
    if in_rate != info.sample_rate:
        raise UsageError(
            f"{args.file} is {info.sample_rate} Hz but the settings' audio.input.sample_rate is "
            f"{in_rate}; make them match"
        )
    try:
        script = Script.load(args.script) if args.script else Script()
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot load script {args.script!r}: {exc}") from exc
    async with open_target(args, script=script, realtime=not args.fast) as target:
        p.event("connecting", f"connecting to {target.label}", url=target.label)
        async with target.client().agent.connect(settings) as conn:
            enc, rate = output_format(conn.settings)
            writer = _open_writer(args.out, enc, rate)
            session = Session(p, conn, writer=writer)
            counts = {"user": 0, "done": 0}
            activity = asyncio.Event()

            def count(event: Any) -> None:
                activity.set()
                if isinstance(event, m.ConversationText) and event.role == "user":
                    counts["user"] += 1
                elif isinstance(event, m.AgentAudioDone):
                    counts["done"] += 1

            reader = asyncio.create_task(session.pump(count))
            try:
                p.event(
                    "streaming",
                    f"streaming {args.file} ({info.duration:.2f} s, {info.sample_rate} Hz)"
                    + (" as fast as possible" if args.fast else " at real-time pace"),
                )
                async for chunk in wav_chunks(args.file, realtime=not args.fast):
                    await conn.send_audio(convert(chunk, "linear16", in_enc))
                # Trailing silence so the server's end-of-speech detection fires.
                silence = convert(_silence(in_rate, 0.02), "linear16", in_enc)
                for _ in range(50):
                    await conn.send_audio(silence)
                    if not args.fast:
                        await asyncio.sleep(0.02)
                p.event("streamed", "file sent; waiting for the agent")
                await _settle(counts, activity, quiet=0.5 if args.fast else 1.0, limit=20)
            finally:
                await conn.close()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader
                writer.close()
        p.event(
            "saved",
            f"agent audio: {writer.duration:.2f} s ({enc} {rate} Hz) -> {writer.path}",
            path=str(writer.path),
            seconds=round(writer.duration, 3),
        )
    return _outcome(session)


async def _settle(
    counts: dict[str, int], activity: asyncio.Event, *, quiet: float, limit: float
) -> None:
    """Wait until every user turn was answered and nothing happened for ``quiet`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while loop.time() < deadline:
        activity.clear()
        try:
            await asyncio.wait_for(activity.wait(), quiet)
        except TimeoutError:
            if counts["done"] >= counts["user"]:
                return


# ---------------------------------------------------------------------------------------------
# talk
# ---------------------------------------------------------------------------------------------


async def cmd_talk(args: argparse.Namespace, p: Printer, *, device: Any = None) -> int:
    """Microphone and speaker conversation until Ctrl-C (or the connection ends)."""
    from .audio import Microphone, Player, load_sounddevice
    from .options import coerce_settings
    from .testing import Script

    if device is None:
        device = load_sounddevice()  # fail before connecting when the extra is missing
    settings = load_settings_file(args.settings) if args.settings else default_settings()
    coerce_settings(settings)
    async with open_target(args, script=Script(), realtime=True) as target:
        p.event("connecting", f"connecting to {target.label}", url=target.label)
        async with target.client().agent.connect(settings) as conn:
            session = Session(p, conn)
            player = Player(conn, device=device)
            mute = (lambda: player.playing) if args.half_duplex else None
            mic = Microphone(conn, device=device, mute=mute)
            async with player, mic:
                p.event("ready", "talk now (Ctrl-C to stop)")

                async def send() -> None:
                    async for chunk in mic:
                        await conn.send_audio(chunk)

                sender = asyncio.create_task(send())
                try:
                    await session.pump(player.handle)
                finally:
                    mic.close()
                    sender.cancel()
                    await asyncio.gather(sender, return_exceptions=True)
            if mic.dropped_blocks:
                p.event("dropped", f"(microphone blocks dropped: {mic.dropped_blocks})")
    return _outcome(session)


# ---------------------------------------------------------------------------------------------
# validate / emulate
# ---------------------------------------------------------------------------------------------


def cmd_validate(args: argparse.Namespace, p: Printer) -> int:
    """Check a Settings file locally and print every problem found (not just the first one the
    server would report); exit 0 valid, 1 invalid, 2 unreadable."""
    from ._validate import all_settings_problems
    from .options import coerce_settings

    data = load_settings_file(args.file)
    data.setdefault("type", "Settings")
    problems = all_settings_problems(data)
    if not problems:
        try:  # the full client-side path, in case it knows more than the plain check
            coerce_settings(data)
        except SettingsError as exc:
            problems = [exc]
    if problems:
        listed = [{"path": e.path, "problem": e.problem, "code": e.code} for e in problems]
        if p.as_json:
            # The first problem's fields stay at the top level (what the server would report).
            p.event("invalid", "", **listed[0], problems=listed)
        else:
            count = f"{len(problems)} problem" + ("s" if len(problems) != 1 else "")
            p.plain(f"{args.file}: invalid ({count})")
            for e in problems:
                p.plain(f"  {e.path or '$'}: {e.problem} [{e.code}]")
        return 1
    if p.as_json:
        p.event("valid", "", valid=True, problems=[])
    else:
        p.plain(f"{args.file}: valid Settings")
    return EXIT_OK


def cmd_emulate(args: argparse.Namespace, p: Printer) -> int:
    """Serve the emulator until Ctrl-C (prints its URL first); same options as
    ``python -m deepgram_agent.testing``, ``--replay`` included."""
    from .testing.__main__ import serve_from_args

    status = serve_from_args(args)
    if status != 0:
        raise UsageError("the emulator could not start (see the message above)")
    return EXIT_OK


# ---------------------------------------------------------------------------------------------
# Parser and entry point
# ---------------------------------------------------------------------------------------------


def _epilog() -> str:
    codes = "\n".join(f"  {code}  {text}" for code, text in EXIT_CODES.items())
    return (
        "environment:\n"
        "  DEEPGRAM_API_KEY   your key; without it demo/run/talk use the local emulator\n"
        "  DEEPGRAM_AGENT_URL default for --url\n\n"
        f"exit codes:\n{codes}\n\n"
        "quick start (no key, no network, no audio device needed):\n"
        "  deepgram-agent demo"
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``deepgram-agent`` argument parser."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=None, help="agent host, e.g. wss://agent.deepgram.com")
    common.add_argument("--settings", metavar="FILE", help="a Settings JSON file to send")
    common.add_argument("--json", action="store_true", help="one JSON event per line")
    common.add_argument("-v", "--verbose", action="store_true", help="debug logging (key redacted)")
    live = argparse.ArgumentParser(add_help=False)
    live.add_argument(
        "--emulator",
        action="store_true",
        help="use the embedded emulator even when DEEPGRAM_API_KEY is set",
    )
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="deepgram-agent",
        description="Talk to Deepgram's Voice Agent API (or its local emulator).",
        epilog=_epilog(),
        formatter_class=fmt,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = sub.add_parser(
        "demo",
        parents=[common, live],
        help="a scripted conversation (emulator when no key is set)",
        description="Greeting, a function call, a prompt update and a barge-in; prints the "
        "transcript and latencies and saves the agent's audio.",
        epilog=_epilog(),
        formatter_class=fmt,
    )
    demo.add_argument("--out", default="agent_demo.wav", help="WAV file (default %(default)s)")

    run = sub.add_parser(
        "run",
        parents=[common, live],
        help="stream a WAV file as the user's speech",
        epilog=_epilog(),
        formatter_class=fmt,
    )
    run.add_argument("file", metavar="FILE.wav", help="16-bit PCM mono WAV")
    run.add_argument("--out", default="agent_reply.wav", help="WAV file (default %(default)s)")
    run.add_argument("--fast", action="store_true", help="send as fast as allowed")
    run.add_argument("--script", metavar="FILE", help="emulator script (transcripts, rules)")

    talk = sub.add_parser(
        "talk",
        parents=[common, live],
        help="microphone and speaker conversation (needs the audio extra)",
        epilog=_epilog(),
        formatter_class=fmt,
    )
    talk.add_argument(
        "--half-duplex",
        action="store_true",
        help="mute the microphone while the agent talks (speakers without echo cancellation)",
    )

    from .testing.__main__ import build_parser as emulator_parser

    sub.add_parser(
        "emulate",
        parents=[emulator_parser(), common],
        conflict_handler="resolve",
        help="serve the emulator on a port for other programs",
        epilog=_epilog(),
        formatter_class=fmt,
    )

    serve = sub.add_parser(
        "serve",
        parents=[common, live],
        conflict_handler="resolve",
        help="the browser voice page and phone routes (Twilio, Telnyx) on one server",
        epilog=_epilog(),
        formatter_class=fmt,
    )
    serve.add_argument("--host", default="127.0.0.1", help="address (default %(default)s)")
    serve.add_argument("--port", type=int, default=8080, help="port (default %(default)s)")
    serve.add_argument("--token", help="access token required off loopback")
    serve.add_argument("--twilio-auth-token", help="check the webhook's X-Twilio-Signature")

    validate = sub.add_parser(
        "validate",
        parents=[common],
        help="check a Settings file locally",
        epilog=_epilog(),
        formatter_class=fmt,
    )
    validate.add_argument("file", metavar="SETTINGS.json")
    return parser


class _RedactKey(logging.Filter):
    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secret:
            msg = record.getMessage()
            if self.secret in msg:
                record.msg = msg.replace(self.secret, "***")
                record.args = None
        return True


def _setup_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_RedactKey(os.environ.get("DEEPGRAM_API_KEY", "")))
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("deepgram_agent")
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.WARNING)


def _error(p: Printer, kind: str, text: str) -> None:
    if p.as_json:
        p.event("fatal", text, kind=kind, text=text)
    print(f"error: {text}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (see ``EXIT_CODES``)."""
    args = build_parser().parse_args(argv)
    if getattr(args, "url", None) is None:
        args.url = os.environ.get("DEEPGRAM_AGENT_URL")
    _setup_logging(args.verbose)
    p = Printer(as_json=args.json)
    try:
        if args.command == "validate":
            return cmd_validate(args, p)
        if args.command == "emulate":
            return cmd_emulate(args, p)
        if args.command == "serve":
            from .web import serve_command

            return serve_command(args)
        command = {"demo": cmd_demo, "run": cmd_run, "talk": cmd_talk}[args.command]
        return asyncio.run(command(args, p))
    except KeyboardInterrupt:
        return EXIT_OK
    except UsageError as exc:
        _error(p, "usage", str(exc))
    except SettingsError as exc:
        _error(p, "usage", str(exc))
    except MissingDependencyError as exc:
        _error(p, "usage", str(exc))
        return EXIT_USAGE
    except AuthenticationError as exc:
        _error(p, "auth", str(exc))
        return EXIT_AUTH
    except (DeepgramApiError, ProtocolError) as exc:
        _error(p, "server", str(exc))
        return EXIT_SERVER
    except (DeepgramConnectionError, DeepgramTimeoutError, ConnectionClosedError, OSError) as exc:
        _error(p, "network", str(exc))
        return EXIT_NETWORK
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
