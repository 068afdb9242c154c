"""The ``deepgram-agent`` command line (also ``python -m deepgram_agent``).

Commands: ``demo``, ``talk``, ``run FILE.wav``, ``emulate``, ``validate SETTINGS.json``,
``serve`` (the browser page and phone routes: :mod:`deepgram_agent.web`). With no
``DEEPGRAM_API_KEY`` and no URL (or with ``--emulator``), ``demo``, ``run`` and ``talk`` use the
embedded emulator, so everything works with no key, no network and (except ``talk``) no audio
device. A URL given with ``--url`` or ``DEEPGRAM_AGENT_URL`` is always used (it needs a key).

Ctrl-C ends ``demo``, ``run`` and ``talk`` at once: the session is closed normally (close code
1000), the WAV file written so far is finished (a valid file with the audio received) and the
exit status is 130. ``emulate`` serves until Ctrl-C, its normal way to stop (exit status 0).

``-v`` logs the ``deepgram_agent`` loggers at DEBUG on standard error, ``-vv`` also at the
``TRACE`` level (5: every audio frame); API keys and tokens are redacted from every line.

Each subcommand is an ``_add_<name>(subparsers)`` function that declares only the options the
command takes and sets the defaults ``func`` (a plain or ``async`` function taking ``(args,
printer)`` and returning the exit status) and ``parser`` (its own parser, for error messages).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import logging
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar, TextIO
from urllib.parse import urlsplit

from . import __version__
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

__all__ = ["EXIT_CODES", "TRACE", "build_parser", "main"]

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2
EXIT_AUTH = 3
EXIT_SERVER = 4
EXIT_NETWORK = 5
EXIT_AUDIO_UNAVAILABLE = 6
EXIT_AUDIO_FORMAT = 7
EXIT_INTERRUPTED = 130

#: Exit status of every outcome (also shown by ``--help``).
EXIT_CODES = {
    EXIT_OK: "success (validate: the settings are valid; emulate: stopped with Ctrl-C)",
    EXIT_INVALID: "validate: the settings are invalid",
    EXIT_USAGE: "usage error (bad option, missing or unreadable file, invalid settings)",
    EXIT_AUTH: "authentication failed (missing, wrong or expired key)",
    EXIT_SERVER: "the server refused the settings, reported an error or broke the protocol",
    EXIT_NETWORK: "network failure (unreachable, timed out, connection lost)",
    EXIT_AUDIO_UNAVAILABLE: "audio unavailable (no usable audio device, PortAudio or the "
    "'audio' extra missing)",
    EXIT_AUDIO_FORMAT: "an audio encoding the server takes but the CLI cannot encode or decode "
    "(opus, flac, mp3, ...)",
    EXIT_INTERRUPTED: "interrupted by Ctrl-C (session closed normally, WAV so far kept)",
}

#: Logging level below DEBUG for per-audio-frame lines (``-vv``).
TRACE = 5

log = logging.getLogger("deepgram_agent.cli")


class CliError(Exception):
    """A failure the CLI reports with one line and a documented exit status."""

    exit_code: ClassVar[int] = EXIT_USAGE
    kind: ClassVar[str] = "usage"


class UsageError(CliError):
    """A problem with the command line or its files (exit status 2)."""


class MissingKeyError(CliError):
    """A URL was given without a key (exit status 3)."""

    exit_code = EXIT_AUTH
    kind = "auth"


class AudioUnavailableError(CliError):
    """No usable audio device, PortAudio library or ``audio`` extra (exit status 6)."""

    exit_code = EXIT_AUDIO_UNAVAILABLE
    kind = "audio"


class AudioFormatError(CliError):
    """An encoding the server takes but the CLI cannot produce or decode (exit status 7)."""

    exit_code = EXIT_AUDIO_FORMAT
    kind = "audio_format"


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
        "skipped": "2",
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

    def note(self, text: str) -> None:
        """Something the user should know that is not part of the conversation (stderr)."""
        if self.as_json:
            self.event("note", text, text=text)
        else:
            print(f"note: {text}", file=sys.stderr, flush=True)


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


def check_local_audio(
    typed: m.Settings, *, command: str, send: bool = True, receive: bool = True
) -> None:
    """Refuse, before connecting, audio encodings the CLI cannot produce or decode.

    The server takes more encodings (opus, flac, mp3, ...) than the CLI's pure-Python tools
    can encode (microphone, WAV file) or decode (speaker, WAV file); those are not errors in
    the Settings, so ``validate`` accepts them and the library sends them.

    Raises:
        AudioFormatError: ``audio.input`` cannot be encoded or ``audio.output`` decoded.
    """
    from .audio import convert, to_linear16
    from .options import input_format, output_format

    in_enc, _ = input_format(typed)
    out_enc, _ = output_format(typed)
    try:
        if send:
            convert(b"", "linear16", in_enc)
    except ValueError as exc:
        raise AudioFormatError(
            f"{command} cannot send {in_enc!r} audio (audio.input.encoding): the CLI encodes "
            "only linear16, mulaw and alaw. The server takes it, so use the library with your "
            "own encoder, or set audio.input.encoding to linear16"
        ) from exc
    try:
        if receive:
            to_linear16(b"", out_enc)
    except ValueError as exc:
        raise AudioFormatError(
            f"{command} cannot decode {out_enc!r} agent audio (audio.output.encoding): the CLI "
            "decodes only linear16, mulaw, alaw and linear32. The server sends it, so use the "
            "library with your own decoder, or set audio.output.encoding to linear16"
        ) from exc


class Target:
    """Where a command connects: the real service, a URL the user gave, or an emulator."""

    def __init__(
        self, *, url: str | None, api_key: str, emulator: Any = None, source: str = ""
    ) -> None:
        self.url = url
        self.api_key = api_key
        self.emulator = emulator
        #: Where the URL came from: ``--url``, ``DEEPGRAM_AGENT_URL`` or ``""``.
        self.source = source

    @property
    def label(self) -> str:
        """What to call it in the output (never includes the key)."""
        if self.emulator is not None:
            return f"emulator at {self.emulator.url}"
        return self.url or "wss://agent.deepgram.com"

    @property
    def local(self) -> bool:
        """Whether the server runs on this machine (the emulator; never Deepgram's service)."""
        if self.emulator is not None:
            return True
        host = urlsplit(self.client().url).hostname or ""
        if host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    def client(self) -> Any:
        """A DeepgramClient for this target."""
        from ._client import DeepgramClient

        return DeepgramClient(api_key=self.api_key, base_url=self.url)


def resolve_target(args: argparse.Namespace, p: Printer) -> Target | None:
    """Decide where to connect, before any I/O; ``None`` means the embedded emulator.

    Rules: ``--emulator`` wins (``--url`` cannot be combined with it); a URL from ``--url``
    or ``DEEPGRAM_AGENT_URL`` is used and needs ``DEEPGRAM_API_KEY``; a key alone means
    Deepgram's service; nothing at all means the embedded emulator.

    Raises:
        MissingKeyError: a URL without a key.
        UsageError: a URL that cannot be used (wrong scheme).
    """
    key = os.environ.get("DEEPGRAM_API_KEY", "")
    env_url = os.environ.get("DEEPGRAM_AGENT_URL", "").strip()
    if args.emulator:
        if env_url:
            p.note(f"DEEPGRAM_AGENT_URL ({env_url}) is ignored: --emulator uses the bundled one")
        return None
    if args.url is not None:
        url, source = args.url.strip(), "--url"
        if not url:
            raise UsageError("--url is empty; give a URL such as wss://agent.deepgram.com")
    elif env_url:
        url, source = env_url, "DEEPGRAM_AGENT_URL"
    else:
        url, source = "", ""
    if url and not key:
        given = f"--url {url}" if source == "--url" else f"DEEPGRAM_AGENT_URL={url}"
        raise MissingKeyError(
            f"{given} needs a key, but DEEPGRAM_API_KEY is not set: set it (any value works for "
            f"an emulator started without --api-key), or drop {source} to use the bundled "
            "emulator"
        )
    if not key:
        return None
    target = Target(url=url or None, api_key=key, source=source)
    try:
        target.client().url  # noqa: B018  (validates the scheme)
    except DeepgramError as exc:
        raise UsageError(f"{source} {url}: {exc}") from exc
    return target


@contextlib.asynccontextmanager
async def open_target(
    target: Target | None, *, script: Any = None, realtime: bool = True, **emu: Any
) -> AsyncIterator[Target]:
    """``target`` as is, or (``None``) an embedded emulator for the command's lifetime."""
    if target is not None:
        yield target
        return
    from .testing import AgentEmulator

    async with AgentEmulator(script=script, realtime_audio=realtime, **emu) as emulator:
        yield Target(url=emulator.url, api_key="emulator", emulator=emulator)


# ---------------------------------------------------------------------------------------------
# Shared session plumbing
# ---------------------------------------------------------------------------------------------

#: What a :meth:`Session.wait_for` future resolves to when the connection ended first.
_ENDED = object()


class Session:
    """Prints a connection's events and keeps the figures the commands report."""

    def __init__(
        self, printer: Printer, conn: Any, *, writer: Any = None, simulated: bool = False
    ) -> None:
        self.p = printer
        self.conn = conn
        self.writer = writer
        #: The server's latency figures are made up (the emulator): say so when printing them.
        self.simulated = simulated
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
        self._turn_since = "user turn sent"
        self._server_latency: dict[str, float | None] = {}
        self._waiters: list[tuple[Callable[[Any], bool], asyncio.Future[Any]]] = []
        self.closed_error: BaseException | None = None
        #: Set once the connection has ended (normally or not).
        self.ended = asyncio.Event()

    # ----------------------------------------------------------------------------- turns

    def user_turn_sent(
        self, label: str, at: float | None = None, *, since: str = "user turn sent"
    ) -> None:
        """Start timing a user turn (an injected message, or the user's transcript): the
        client latency is from now (or ``at``) to the first agent audio, ``since`` names it."""
        self._turn_sent = time.monotonic() if at is None else at
        self._turn_label = label
        self._turn_since = since
        self._server_latency = {}

    def wait_for(self, pred: Callable[[Any], bool]) -> asyncio.Future[Any]:
        """A future resolved with the first later event matching ``pred`` (or with a private
        marker, which :func:`_wait` turns into ``None``, when the connection ends first)."""
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.ended.is_set():
            fut.set_result(_ENDED)
        else:
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
            self.ended.set()
            for _pred, fut in self._waiters:
                if not fut.done():
                    fut.set_result(_ENDED)
            self._waiters.clear()

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

        figures = (
            f"total {ms(lat.get('total'))} (ttt {ms(lat.get('ttt'))}, tts {ms(lat.get('tts'))})"
        )
        if not lat:
            server = "server figures n/a"
        elif self.simulated:  # the emulator makes them up; it answers at once
            server = f"simulated server figures (emulator): {figures}"
        else:
            server = f"server {figures}"
        record: dict[str, Any] = {
            "turn": turn,
            "label": self._turn_label,
            "client_ms": round(client_ms, 1),
        }
        record.update({f"server_{k}_ms": None if v is None else v * 1000 for k, v in lat.items()})
        if lat:
            record["server_simulated"] = self.simulated
        self.turns.append(record)
        self.p.event(
            "latency",
            f"latency turn {turn} ({self._turn_label}): client {client_ms:.0f} ms "
            f"({self._turn_since} -> first agent audio) | {server}",
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
    """The event ``fut`` resolves to; ``None`` after ``timeout`` (said so) or when the
    connection ended first. Cancellation (Ctrl-C) is never mistaken for a timeout."""
    try:
        result = await asyncio.wait_for(fut, timeout)
    except TimeoutError:
        p.event("timeout", f"(no {what} within {timeout:.0f} s; going on)", what=what)
        return None
    return None if result is _ENDED else result


async def _finish_session(conn: Any, reader: asyncio.Task[None]) -> None:
    """Close the connection (code 1000) and let the reader drain; bounded, cancel-safe.

    Raises:
        Exception: what the reader failed with (a bug in printing or saving), unless the
            command is being cancelled (Ctrl-C), which must stay a cancellation.
    """
    try:
        await conn.close()
    finally:
        await asyncio.wait({reader}, timeout=5)
        if not reader.done():
            reader.cancel()
            await asyncio.wait({reader}, timeout=1)
    failure = reader.exception() if reader.done() and not reader.cancelled() else None
    current = asyncio.current_task()
    if failure is not None and (current is None or not current.cancelling()):
        raise failure


def _interrupted(p: Printer, writer: Any) -> None:
    p.event(
        "interrupted",
        f"interrupted: session closed; {writer.duration:.2f} s of agent audio saved in "
        f"{writer.path}",
        path=str(writer.path),
        seconds=round(writer.duration, 3),
    )


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
        # sends only with "experimental": true (docs/protocol.md 9.6).
        else {**default_settings(greeting=DEMO_GREETING), "experimental": True}
    )
    typed, _ = coerce_settings(settings)  # fail fast, before any connection
    check_local_audio(typed, command="demo")
    chosen = resolve_target(args, p)
    session_ref: list[Session] = []
    tools = demo_tools(session_ref)
    pace = 0.03  # seconds of emulated agent speech per character: keeps the demo short
    async with open_target(
        chosen, script=demo_script(), realtime=True, ms_per_char=pace * 1000, vad_silence=0.3
    ) as target:
        p.event("connecting", f"connecting to {target.label}", url=target.label)
        async with target.client().agent.connect(settings, tools=tools) as conn:
            enc, rate = output_format(conn.settings)
            in_enc, in_rate = input_format(conn.settings)
            out_path = Path(args.out)
            writer = _open_writer(out_path, enc, rate)
            session = Session(p, conn, writer=writer, simulated=target.local)
            session_ref.append(session)
            p.event("connected", f"connected; agent audio {enc} {rate} Hz -> {out_path}")
            reader = asyncio.create_task(session.pump())
            mic = _MicSimulator(conn, in_enc, in_rate)
            mic_task = asyncio.create_task(mic.run())
            interrupted = False
            try:
                await _demo_steps(
                    session, conn, mic, p, target, has_greeting=_greets(conn.settings)
                )
            except asyncio.CancelledError:
                interrupted = True
                raise
            finally:
                mic.stop()
                await asyncio.wait({mic_task}, timeout=1)
                mic_task.cancel()  # no-op once it has ended
                try:
                    await _finish_session(conn, reader)
                finally:
                    writer.close()
                    if interrupted:
                        _interrupted(p, writer)
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
    except ValueError as exc:  # checked before connecting; kept for Settings changed in flight
        raise AudioFormatError(f"cannot save the agent's audio: {exc}") from exc


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
        """The sending loop (20 ms chunks); sets ``burst_done`` when it ends, too."""
        from .audio import convert

        chunk_s = 0.02
        loop = asyncio.get_running_loop()
        start, n = loop.time(), 0
        try:
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
                with contextlib.suppress(TimeoutError):  # asyncio.timeout keeps cancel intact
                    async with asyncio.timeout(max(0.0, delay)):
                        await self._stopped.wait()
        finally:
            self.burst_done.set()  # nobody waits for a burst that will never be sent


async def _demo_steps(
    s: Session, conn: Any, mic: _MicSimulator, p: Printer, target: Target, *, has_greeting: bool
) -> None:
    done = _is(m.AgentAudioDone)
    if has_greeting:
        await _wait(s.wait_for(done), 15, "greeting", p)
    if s.ended.is_set():
        return
    # Turn 1: a question that makes the agent call a client-side function.
    first_done = s.wait_for(done)
    p.event("inject", f"> sending user message: {WEATHER_QUESTION!r}", text=WEATHER_QUESTION)
    s.user_turn_sent("weather question")
    await conn.inject_user_message(WEATHER_QUESTION)
    await _wait(first_done, 20, "reply to the weather question", p)
    if s.ended.is_set():
        return
    if not s.function_calls:
        _weather_skipped(p, target)
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
    if s.ended.is_set():
        return
    await asyncio.sleep(0.6)  # let the agent speak a little before interrupting it
    p.event("speak", "> user speaks over the agent (loud audio to the server's VAD)")
    mic.speak(0.4)
    await _wait(barged, 10, "UserStartedSpeaking", p)
    # Turn 3: the interruption's transcript gets its own reply. The cut reply's own
    # AgentAudioDone comes shortly after the barge-in (docs/protocol.md 8): wait for the user's
    # text first, then for the end of the reply to it.
    heard = s.wait_for(_is(m.ConversationText, lambda e: e.role == "user"))
    await mic.burst_done.wait()
    if s.ended.is_set():
        return
    s.user_turn_sent("spoken interruption")
    await _wait(heard, 20, "transcript of the interruption", p)
    await _wait(s.wait_for(done), 20, "reply to the interruption", p)


def _weather_skipped(p: Printer, target: Target) -> None:
    if target.emulator is not None:
        why = "the emulator's script did not call it (custom --settings?)"
    elif target.local:
        why = (
            f"{target.label} looks like a plain emulator (python -m deepgram_agent.testing): it "
            "has no LLM and its default script calls no function. `deepgram-agent demo "
            "--emulator` (or unsetting DEEPGRAM_AGENT_URL) runs the bundled emulator with the "
            "demo's script; an emulator started with --script can call get_weather too"
        )
    else:
        why = "the agent's LLM chose not to call it"
    p.event(
        "skipped",
        f"(function-call step skipped: the agent answered without calling get_weather; {why})",
        step="function_call",
        reason=why,
    )


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
        if server is not None and t.get("server_simulated"):
            srv += " (simulated)"
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
    check_local_audio(typed, command="run")
    in_enc, in_rate = input_format(typed)
    out_enc, out_rate = output_format(typed)
    if in_rate != info.sample_rate:
        raise UsageError(
            f"{args.file} is {info.sample_rate} Hz but the settings' audio.input.sample_rate is "
            f"{in_rate}; make them match"
        )
    chosen = resolve_target(args, p)
    if args.script and chosen is not None:
        raise UsageError(
            f"--script drives the bundled emulator, but this run connects to {chosen.label}; "
            "add --emulator, or drop --script"
        )
    try:
        script = Script.load(args.script) if args.script else Script()
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot load script {args.script!r}: {exc}") from exc
    async with open_target(chosen, script=script, realtime=not args.fast) as target:
        p.event("connecting", f"connecting to {target.label}", url=target.label)
        async with target.client().agent.connect(settings) as conn:
            writer = _open_writer(args.out, out_enc, out_rate)
            session = Session(p, conn, writer=writer, simulated=target.local)
            replying = _ReplyTracker()

            def on_event(event: Any) -> None:
                replying.see(event)
                if isinstance(event, m.ConversationText) and event.role == "user":
                    session.user_turn_sent(repr(event.content), since="transcript received")

            reader = asyncio.create_task(session.pump(on_event))
            interrupted = False
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
                await replying.settle(session, quiet=0.5 if args.fast else 1.0, limit=20)
            except asyncio.CancelledError:
                interrupted = True
                raise
            finally:
                try:
                    await _finish_session(conn, reader)
                finally:
                    writer.close()
                    if interrupted:
                        _interrupted(p, writer)
        p.event(
            "saved",
            f"agent audio: {writer.duration:.2f} s ({out_enc} {out_rate} Hz) -> {writer.path}",
            path=str(writer.path),
            seconds=round(writer.duration, 3),
        )
    return _outcome(session)


class _ReplyTracker:
    """Whether the agent still owes a reply: a user transcript came after the last
    ``AgentAudioDone`` (a reply cut by a barge-in is owed no longer: the new turn replaces it)."""

    def __init__(self) -> None:
        self.owed = False
        self.activity = asyncio.Event()

    def see(self, event: Any) -> None:
        """Account for one event from the connection."""
        self.activity.set()
        if isinstance(event, m.ConversationText) and event.role == "user":
            self.owed = True
        elif isinstance(event, m.AgentAudioDone):
            self.owed = False

    async def settle(self, session: Session, *, quiet: float, limit: float) -> None:
        """Wait until no reply is owed and nothing arrived for ``quiet`` seconds (or the
        connection ended, or ``limit`` seconds passed)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while loop.time() < deadline and not session.ended.is_set():
            self.activity.clear()
            try:
                await asyncio.wait_for(self.activity.wait(), quiet)
            except TimeoutError:
                if not self.owed:
                    return


# ---------------------------------------------------------------------------------------------
# talk
# ---------------------------------------------------------------------------------------------


def _device_errors(device: Any) -> tuple[type[BaseException], ...]:
    """The exception class a sounddevice-like module raises for device problems."""
    error = getattr(device, "PortAudioError", None)
    if isinstance(error, type) and issubclass(error, Exception):
        return (error,)
    return ()


def _no_device(exc: BaseException) -> AudioUnavailableError:
    return AudioUnavailableError(
        f"no usable audio device ({type(exc).__name__}: {exc}). Connect a microphone and "
        "speakers (or choose the default ones in your system settings); `python -m "
        "sounddevice` lists what PortAudio sees. `deepgram-agent run FILE.wav` needs no device"
    )


def _probe_devices(device: Any) -> None:
    """Fail before connecting when there is no default input or output device."""
    query = getattr(device, "query_devices", None)
    if query is None:
        return
    catch: tuple[type[BaseException], ...] = (*_device_errors(device), ValueError)
    for kind in ("input", "output"):
        try:
            query(kind=kind)
        except catch as exc:
            raise _no_device(exc) from exc


async def cmd_talk(args: argparse.Namespace, p: Printer, *, device: Any = None) -> int:
    """Microphone and speaker conversation until Ctrl-C (or the connection ends)."""
    from .audio import Microphone, Player, load_sounddevice
    from .options import coerce_settings
    from .testing import Script

    settings = load_settings_file(args.settings) if args.settings else default_settings()
    typed, _ = coerce_settings(settings)
    check_local_audio(typed, command="talk")
    if device is None:
        try:
            device = load_sounddevice()  # fail before connecting when the extra is missing
        except MissingDependencyError as exc:
            raise AudioUnavailableError(str(exc)) from exc
    _probe_devices(device)
    errors = _device_errors(device)
    chosen = resolve_target(args, p)
    async with open_target(chosen, script=Script(), realtime=True) as target:
        p.event("connecting", f"connecting to {target.label}", url=target.label)
        async with target.client().agent.connect(settings) as conn:
            session = Session(p, conn, simulated=target.local)
            player = Player(conn, device=device)
            mute = (lambda: player.playing) if args.half_duplex else None
            mic = Microphone(conn, device=device, mute=mute)
            async with contextlib.AsyncExitStack() as streams:
                try:
                    await streams.enter_async_context(player)
                    await streams.enter_async_context(mic)
                except errors as exc:
                    raise _no_device(exc) from exc
                p.event("ready", "talk now (Ctrl-C to stop)")

                async def send() -> None:
                    async for chunk in mic:
                        await conn.send_audio(chunk)

                sender = asyncio.create_task(send())
                try:
                    await session.pump(player.handle)
                except asyncio.CancelledError:
                    p.event("interrupted", "interrupted: closing the session")
                    raise
                finally:
                    mic.close()
                    sender.cancel()
                    await asyncio.wait({sender}, timeout=1)
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
        return EXIT_INVALID
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
# Parser
# ---------------------------------------------------------------------------------------------

_FORMATTER = argparse.RawDescriptionHelpFormatter


def _epilog() -> str:
    codes = "\n".join(f"  {code:>3}  {text}" for code, text in EXIT_CODES.items())
    return (
        "environment:\n"
        "  DEEPGRAM_API_KEY   your key; without it (and without a URL) demo/run/talk use the\n"
        "                     bundled emulator\n"
        "  DEEPGRAM_AGENT_URL default for --url (needs DEEPGRAM_API_KEY)\n\n"
        f"exit codes:\n{codes}\n\n"
        "quick start (no key, no network, no audio device needed):\n"
        "  deepgram-agent demo"
    )


def _opt_target(cmd: argparse.ArgumentParser) -> None:
    where = cmd.add_mutually_exclusive_group()
    where.add_argument(
        "--url",
        default=None,
        help="agent host, e.g. wss://agent.deepgram.com or a running emulator's ws://127.0.0.1:"
        "PORT (default: DEEPGRAM_AGENT_URL; needs DEEPGRAM_API_KEY)",
    )
    where.add_argument(
        "--emulator",
        action="store_true",
        help="use the bundled emulator even when DEEPGRAM_API_KEY or DEEPGRAM_AGENT_URL is set",
    )


def _opt_settings(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--settings", metavar="FILE", help="a Settings JSON file to send")


def _opt_json(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--json", action="store_true", help="one JSON event per line")


def _opt_verbose(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="debug logs on stderr: -v one line per frame (audio summarised), -vv every audio "
        "frame too; keys and tokens redacted",
    )


def _subcommand(sub: Any, name: str, **kwargs: Any) -> argparse.ArgumentParser:
    cmd: argparse.ArgumentParser = sub.add_parser(
        name, epilog=_epilog(), formatter_class=_FORMATTER, **kwargs
    )
    return cmd


def _add_demo(sub: Any) -> None:
    demo = _subcommand(
        sub,
        "demo",
        help="a scripted conversation (emulator when no key is set)",
        description="Greeting, a function call, a prompt update and a barge-in; prints the "
        "transcript and latencies and saves the agent's audio.",
    )
    _opt_target(demo)
    _opt_settings(demo)
    demo.add_argument("--out", default="agent_demo.wav", help="WAV file (default %(default)s)")
    _opt_json(demo)
    _opt_verbose(demo)
    demo.set_defaults(func=cmd_demo, parser=demo)


def _add_run(sub: Any) -> None:
    run = _subcommand(
        sub,
        "run",
        help="stream a WAV file as the user's speech",
        description="Stream a 16-bit PCM mono WAV file as the user's speech (converted to the "
        "Settings' audio.input encoding), print the transcript and save the agent's reply.",
    )
    run.add_argument("file", metavar="FILE.wav", help="16-bit PCM mono WAV")
    _opt_target(run)
    _opt_settings(run)
    run.add_argument("--out", default="agent_reply.wav", help="WAV file (default %(default)s)")
    run.add_argument("--fast", action="store_true", help="send as fast as allowed")
    run.add_argument(
        "--script", metavar="FILE", help="bundled emulator's script (transcripts, rules)"
    )
    _opt_json(run)
    _opt_verbose(run)
    run.set_defaults(func=cmd_run, parser=run)


def _add_talk(sub: Any) -> None:
    talk = _subcommand(
        sub,
        "talk",
        help="microphone and speaker conversation (needs the audio extra)",
        description="Talk to the agent through the default microphone and speakers until "
        'Ctrl-C. Needs pip install "deepgram-agent[audio]" and the PortAudio library.',
    )
    _opt_target(talk)
    _opt_settings(talk)
    talk.add_argument(
        "--half-duplex",
        action="store_true",
        help="mute the microphone while the agent talks (speakers without echo cancellation)",
    )
    _opt_json(talk)
    _opt_verbose(talk)
    talk.set_defaults(func=cmd_talk, parser=talk)


EMULATE_DESCRIPTION = """\
Serve the Voice Agent emulator for other programs until Ctrl-C (exit status 0). The first
line printed is its base URL (ws://127.0.0.1:PORT with the default --host); point a client
at it with DEEPGRAM_AGENT_URL or --url.

Keys: clients must send a key, as with Deepgram (Authorization: Token K, Bearer K, or the
token/bearer subprotocol). Without --api-key any non-empty key is accepted; with --api-key K
only K is, and any other key gets HTTP 401, as a wrong Deepgram key does (use it to test your
app's handling of a bad key)."""


def _add_emulate(sub: Any) -> None:
    from .testing.__main__ import build_parser as emulator_parser

    emulate = _subcommand(
        sub,
        "emulate",
        parents=[emulator_parser()],
        conflict_handler="resolve",
        help="serve the emulator on a port for other programs",
        description=EMULATE_DESCRIPTION,
    )
    _opt_verbose(emulate)
    emulate.set_defaults(func=cmd_emulate, parser=emulate)


def _add_validate(sub: Any) -> None:
    validate = _subcommand(
        sub,
        "validate",
        help="check a Settings file locally",
        description="Check a Settings file against the rules the server applies and list every "
        "problem with its JSON path.",
    )
    validate.add_argument("file", metavar="SETTINGS.json")
    _opt_json(validate)
    validate.set_defaults(func=cmd_validate, parser=validate)


SERVE_DESCRIPTION = """\
Serve the browser voice page (GET /) and the phone routes (GET /twilio, POST /twilio/voice,
GET /telnyx) on one aiohttp server until Ctrl-C (exit status 0). Without DEEPGRAM_API_KEY (or
with --emulator) the calls go to the bundled emulator, so it works offline. It binds
127.0.0.1 by default; any other address needs --token (or --twilio-auth-token), because the
server spends your Deepgram key."""


def _add_serve(sub: Any) -> None:
    serve = _subcommand(
        sub,
        "serve",
        help="the browser voice page and phone routes (Twilio, Telnyx) on one server",
        description=SERVE_DESCRIPTION,
    )
    _opt_target(serve)
    _opt_settings(serve)
    serve.add_argument("--host", default="127.0.0.1", help="address (default %(default)s)")
    serve.add_argument("--port", type=int, default=8080, help="port (default %(default)s)")
    serve.add_argument(
        "--token", help="access token the page and the phone routes need (required off loopback)"
    )
    serve.add_argument(
        "--twilio-auth-token", help="check Twilio's X-Twilio-Signature with this account token"
    )
    _opt_verbose(serve)
    serve.set_defaults(func=cmd_serve, parser=serve)


def cmd_serve(args: argparse.Namespace, p: Printer) -> int:
    """``deepgram-agent serve`` (runs its own event loop; Ctrl-C is its normal stop)."""
    from .web import serve_command

    if args.url is None:
        args.url = os.environ.get("DEEPGRAM_AGENT_URL")
    return serve_command(args)


def build_parser() -> argparse.ArgumentParser:
    """The ``deepgram-agent`` argument parser (each subcommand declares only its options)."""
    parser = argparse.ArgumentParser(
        prog="deepgram-agent",
        description="Talk to Deepgram's Voice Agent API (or its local emulator).",
        epilog=_epilog(),
        formatter_class=_FORMATTER,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_demo(sub)
    _add_talk(sub)
    _add_run(sub)
    _add_emulate(sub)
    _add_serve(sub)
    _add_validate(sub)
    return parser


# ---------------------------------------------------------------------------------------------
# Logging
# ---------------------------------------------------------------------------------------------

#: ``Token <secret>``, ``Bearer <secret>`` and the ``token, <secret>`` subprotocol form.
_CREDENTIAL = re.compile(r"(?i)\b(token|bearer)(\s*,\s*|\s+)([A-Za-z0-9._~+/=-]{16,})")


def redact(text: str, secrets: Sequence[str] = ()) -> str:
    """``text`` with every known secret and every ``Token``/``Bearer`` credential masked."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return _CREDENTIAL.sub(r"\1\2***", text)


class RedactingFormatter(logging.Formatter):
    """A formatter that masks secrets in the whole line: message, arguments and traceback."""

    def __init__(self, fmt: str, *, secrets: Sequence[str] = ()) -> None:
        super().__init__(fmt)
        self.secrets = tuple(s for s in secrets if s)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record), self.secrets)


@contextlib.contextmanager
def cli_logging(
    verbosity: int, *, secrets: Sequence[str] = (), stream: TextIO | None = None
) -> Iterator[logging.Handler]:
    """Send the ``deepgram_agent`` loggers to ``stream`` (stderr) for the command's lifetime.

    ``0``: warnings and errors; ``1`` (``-v``): DEBUG; ``2`` (``-vv``): ``TRACE`` (level 5,
    every audio frame). The level and the handler are restored afterwards.
    """
    logging.addLevelName(TRACE, "TRACE")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(
        RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", secrets=secrets)
    )
    root = logging.getLogger("deepgram_agent")
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.WARNING if verbosity <= 0 else logging.DEBUG if verbosity == 1 else TRACE)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


def _secrets(args: argparse.Namespace) -> list[str]:
    found = [os.environ.get("DEEPGRAM_API_KEY", "")]
    emulator_key = getattr(args, "api_key", None)
    if isinstance(emulator_key, str):
        found.append(emulator_key)
    return [s for s in found if s]


# ---------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------


def _error(p: Printer, kind: str, text: str) -> None:
    if p.as_json:
        p.event("fatal", text, kind=kind, text=text)
    print(f"error: {text}", file=sys.stderr, flush=True)


class _Interrupts:
    """Ctrl-C presses seen while an async command ran."""

    def __init__(self) -> None:
        self.count = 0


async def _interruptible(coro: Coroutine[Any, Any, int], seen: _Interrupts) -> int:
    """Run ``coro``; the first Ctrl-C cancels it (its cleanup closes the session with 1000 and
    finishes files), a second one stops waiting for that cleanup."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()

    def on_sigint() -> None:
        seen.count += 1
        if seen.count > 1:
            raise KeyboardInterrupt
        if task is not None:
            task.cancel()

    installed = False
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.add_signal_handler(signal.SIGINT, on_sigint)  # main thread on Unix only
        installed = True
    try:
        return await coro
    finally:
        if installed:
            loop.remove_signal_handler(signal.SIGINT)


def _run(args: argparse.Namespace, p: Printer) -> int:
    result = args.func(args, p)
    if asyncio.iscoroutine(result):
        seen = _Interrupts()
        try:
            result = asyncio.run(_interruptible(result, seen))
        except asyncio.CancelledError:
            if seen.count:
                raise KeyboardInterrupt from None
            raise
        if seen.count:  # the command swallowed the cancellation and finished anyway
            raise KeyboardInterrupt
    assert isinstance(result, int)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (see ``EXIT_CODES``)."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # reported with the subcommand's usage, which lists what it does take
        getattr(args, "parser", parser).error(f"unrecognized arguments: {' '.join(unknown)}")
    p = Printer(as_json=getattr(args, "json", False))
    with cli_logging(getattr(args, "verbose", 0), secrets=_secrets(args)):
        try:
            return _run(args, p)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr, flush=True)
            return EXIT_INTERRUPTED
        except CliError as exc:
            _error(p, exc.kind, str(exc))
            return exc.exit_code
        except (SettingsError, MissingDependencyError) as exc:
            _error(p, "usage", str(exc))
            return EXIT_USAGE
        except AuthenticationError as exc:
            _error(p, "auth", str(exc))
            return EXIT_AUTH
        except (DeepgramApiError, ProtocolError) as exc:
            _error(p, "server", str(exc))
            return EXIT_SERVER
        except (
            DeepgramConnectionError,
            DeepgramTimeoutError,
            ConnectionClosedError,
            OSError,
        ) as exc:
            _error(p, "network", str(exc))
            return EXIT_NETWORK


if __name__ == "__main__":
    sys.exit(main())
