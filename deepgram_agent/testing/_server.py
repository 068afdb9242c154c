"""The emulator's HTTP/WebSocket server: AgentEmulator, run_in_thread, serve, serve_forever."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TextIO, TypeVar

from aiohttp import web

from ..exceptions import DeepgramTimeoutError
from ._faults import Faults
from ._protocol import parse_credential
from ._quirks import Quirks
from ._replay import Recording
from ._script import Script
from ._session import EmulatorSession, SessionOptions

__all__ = ["AGENT_PATH", "AgentEmulator", "serve", "serve_forever"]

#: The socket path of the Voice Agent API.
AGENT_PATH = "/v1/agent/converse"

log = logging.getLogger("deepgram_agent.emulator")

T = TypeVar("T")
FaultsSpec = Faults | Callable[[int], Faults | None] | None


class AgentEmulator:
    """A protocol-faithful local Voice Agent server (aiohttp, 127.0.0.1, ephemeral port).

    Use it as an async context manager in async code, :meth:`run_in_thread` from blocking
    code, or ``python -m deepgram_agent.testing`` from a shell::

        async with AgentEmulator(script=Script(default_reply="Hi!")) as emu:
            ...connect to emu.url + "/v1/agent/converse" with "Authorization: Token anything"...
            session = await emu.wait_for_session()
            await session.wait_for_received("Settings")

    Every session is independent (own script copy, state, timers); nothing is global.

    What the real server does is what the emulator does, as far as it is known (docs/protocol.md
    9.6): ``AgentStartedSpeaking``, ``EndOfThought`` and ``AgentThinking`` only when the Settings
    have ``"experimental": true``; ``AgentAudioDone`` shortly after a barge-in; the server's
    exact ``Error``/``Warning`` texts; a client's close code and reason echoed back. The live
    server's irregular orders are available as :class:`Quirks` (off by default).

    Logs go to the ``deepgram_agent.emulator`` logger: connections, handshakes (refusals
    included), Settings accepted or rejected with the reason, errors sent, closes (INFO);
    every frame (DEBUG). Credentials and Settings contents are never logged.

    Args:
        api_key: the only credential accepted (as ``Token``, ``Bearer`` or subprotocol). ``None``
            accepts any non-empty credential. A missing or wrong one gets HTTP 401.
        script: the scripted brain; each session works on its own copy.
        idle_timeout: seconds without any client frame before ``Error CLIENT_MESSAGE_TIMEOUT``
            and close (the real server: about 10 s). Not counted while a function call waits.
        realtime_audio: pace agent audio in real time (True) or send it as fast as possible.
        faults: a :class:`Faults` for every session, or a callable given the session index
            (connection attempts counted from 0) returning one (or ``None``).
        host: interface to bind; keep the loopback default.
        port: TCP port; 0 picks a free one.
        settings_applied_delay: seconds between ``Settings`` and ``SettingsApplied`` (the real
            server took ~40 ms).
        function_response_timeout: seconds to wait for a ``FunctionCallResponse`` before
            ``Error CLIENT_MESSAGE_TIMEOUT`` and close.
        history_delay: seconds between the last function result and ``History(function_calls)``.
        ms_per_char: milliseconds of agent audio per character of reply text.
        chunk_ms: duration of each agent audio frame (20 ms: 960 bytes at linear16 24 kHz).
        vad_threshold: RMS level (0..1 of full scale) that counts as user speech.
        vad_silence: seconds of quiet that end a user utterance.
        close_timeout: bound for every closing handshake.
        replay: a session recording (:mod:`deepgram_agent.recording`) to play back instead of
            the script: connection attempt *i* gets recorded session *i*, server frames
            verbatim, paced by what the client sends (see :mod:`deepgram_agent.testing._replay`).
            A path, or an already loaded :class:`Recording`.
        replay_timeout: seconds a replay waits for a client frame the recording expects before
            ``Error REPLAY_TIMEOUT`` and close.
        replay_realtime: keep the recorded gaps between server frames (default: as fast as
            possible).
        strict: validate every client message as the real server does (the default). ``False``
            accepts any ``Settings`` that is a JSON object with ``"type": "Settings"`` unchecked
            (for testing ``validate=False``) and ignores later messages it cannot validate;
            ``Settings`` must still come first.
        quirks: the live server's irregular habits to imitate (:class:`Quirks`); ``None`` is
            ``Quirks()``: the documented order, deterministic.
        slow_think_interval: seconds between ``Warning SLOW_THINK_REQUEST`` messages while a
            scripted rule's ``delay`` runs (the real server: every 5 s).
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        script: Script | None = None,
        idle_timeout: float = 10.0,
        realtime_audio: bool = True,
        faults: FaultsSpec = None,
        host: str = "127.0.0.1",
        port: int = 0,
        settings_applied_delay: float = 0.005,
        function_response_timeout: float = 60.0,
        history_delay: float = 0.005,
        ms_per_char: float = 60.0,
        chunk_ms: float = 20.0,
        vad_threshold: float = 0.02,
        vad_silence: float = 0.3,
        close_timeout: float = 2.0,
        replay: str | Path | Recording | None = None,
        replay_timeout: float = 10.0,
        replay_realtime: bool = False,
        strict: bool = True,
        quirks: Quirks | None = None,
        slow_think_interval: float = 5.0,
    ) -> None:
        if api_key is not None and not api_key:
            raise ValueError("api_key must be a non-empty string, or None to accept any key")
        if replay_timeout <= 0:
            raise ValueError("replay_timeout must be a positive number of seconds")
        if slow_think_interval <= 0:
            raise ValueError("slow_think_interval must be a positive number of seconds")
        self._api_key = api_key
        #: The recording being replayed, or ``None`` (the script drives the sessions).
        self.replay: Recording | None = (
            replay if isinstance(replay, Recording) or replay is None else Recording.load(replay)
        )
        self.script = script if script is not None else Script()
        self.faults = faults
        self.host = host
        self.port = port
        self.options = SessionOptions(
            idle_timeout=idle_timeout,
            realtime_audio=realtime_audio,
            settings_applied_delay=settings_applied_delay,
            function_response_timeout=function_response_timeout,
            history_delay=history_delay,
            ms_per_char=ms_per_char,
            chunk_ms=chunk_ms,
            vad_threshold=vad_threshold,
            vad_silence=vad_silence,
            close_timeout=close_timeout,
            replay_timeout=replay_timeout,
            replay_realtime=replay_realtime,
            strict=strict,
            quirks=quirks if quirks is not None else Quirks(),
            slow_think_interval=slow_think_interval,
        )
        self.sessions: list[EmulatorSession] = []
        self._runner: web.AppRunner | None = None
        self._new_session: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread_loop: asyncio.AbstractEventLoop | None = None
        self._handlers: set[asyncio.Task[Any]] = set()
        self._closing = False

    def __repr__(self) -> str:
        where = self.url if self._runner is not None else "not started"
        return f"<AgentEmulator {where} sessions={len(self.sessions)}>"

    # ----------------------------------------------------------------------------- properties

    @property
    def api_key(self) -> str:
        """The key clients should send (``"emulator-key"`` stands for "any" when unset)."""
        return self._api_key if self._api_key is not None else "emulator-key"

    @property
    def url(self) -> str:
        """The base URL, ``ws://127.0.0.1:<port>``; the socket is at :data:`AGENT_PATH`."""
        if self._runner is None:
            raise RuntimeError("the emulator is not running; use 'async with AgentEmulator()'")
        return f"ws://{self.host}:{self.port}"

    @property
    def agent_url(self) -> str:
        """The full socket URL, ``ws://127.0.0.1:<port>/v1/agent/converse``."""
        return self.url + AGENT_PATH

    # ----------------------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Bind and start serving. Prefer ``async with``."""
        if self._runner is not None:
            raise RuntimeError("the emulator is already running")
        self._loop = asyncio.get_running_loop()
        self._new_session = asyncio.Event()
        self._closing = False
        app = web.Application()
        app.router.add_get(AGENT_PATH, self._handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        for address in runner.addresses:
            if isinstance(address, tuple) and len(address) >= 2:
                self.port = int(address[1])
                break

    async def aclose(self) -> None:
        """Close every session (close code 1001) and stop serving. Idempotent, bounded."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        self._closing = True
        open_sessions = [s for s in self.sessions if not s.closed.is_set()]
        if open_sessions:
            await asyncio.gather(
                *(s.close(1001, "emulator shutting down") for s in open_sessions),
                return_exceptions=True,
            )
        if self._handlers:
            _done, stuck = await asyncio.wait(self._handlers, timeout=self.options.close_timeout)
            # A session busy in a fault delay (e.g. delay_settings_applied) is not reading its
            # socket; cancel it rather than leave it pending on a loop about to close.
            for task in stuck:
                task.cancel()
            if stuck:
                await asyncio.wait(stuck, timeout=self.options.close_timeout)
        await runner.cleanup()

    async def __aenter__(self) -> AgentEmulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def wait_for_session(self, index: int = 0, timeout: float = 5.0) -> EmulatorSession:
        """Wait until connection attempt ``index`` (0-based) has arrived and return it.

        Raises:
            DeepgramTimeoutError: it did not arrive within ``timeout`` seconds.
        """

        async def until() -> EmulatorSession:
            while len(self.sessions) <= index:
                assert self._new_session is not None
                event = self._new_session
                await event.wait()
            return self.sessions[index]

        try:
            return await asyncio.wait_for(until(), timeout)
        except TimeoutError:
            raise DeepgramTimeoutError(
                f"no session #{index} within {timeout} s ({len(self.sessions)} so far)"
            ) from None

    # ----------------------------------------------------------------------------- threads

    @classmethod
    @contextlib.contextmanager
    def run_in_thread(cls, **kwargs: Any) -> Iterator[AgentEmulator]:
        """Run an emulator on a private event-loop thread (for blocking code and subprocess tests).

        Takes the same keyword arguments as the constructor. Use :meth:`run_sync` to await the
        emulator's coroutines (``wait_for_session``, ``wait_for_received``) from the caller's
        thread.
        """
        emu = cls(**kwargs)
        loop = asyncio.new_event_loop()
        thread = threading.Thread(
            target=loop.run_forever, name="deepgram-agent-emulator", daemon=True
        )
        thread.start()
        try:
            asyncio.run_coroutine_threadsafe(emu.start(), loop).result(timeout=10)
            emu._thread_loop = loop
            yield emu
        finally:
            try:
                if emu._runner is not None:
                    asyncio.run_coroutine_threadsafe(emu.aclose(), loop).result(timeout=10)
            finally:
                emu._thread_loop = None
                loop.call_soon_threadsafe(loop.stop)
                thread.join(timeout=10)
                if not thread.is_alive():
                    loop.close()

    def run_sync(self, coro: Coroutine[Any, Any, T], timeout: float | None = 30.0) -> T:
        """Run one of the emulator's coroutines from another thread and return its result.

        Only for an emulator started with :meth:`run_in_thread`; in async code, just await.
        """
        loop = self._thread_loop
        if loop is None:
            coro.close()
            raise RuntimeError(
                "run_sync() is for emulators started with AgentEmulator.run_in_thread(); "
                "in async code, await the coroutine directly"
            )
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=timeout)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = 30.0) -> T:
        """Same as :meth:`run_sync`."""
        return self.run_sync(coro, timeout)

    # ----------------------------------------------------------------------------- handler

    def _faults_for(self, index: int) -> Faults | None:
        spec = self.faults
        if spec is None or isinstance(spec, Faults):
            return spec
        return spec(index)

    def _accepts(self, secret: str) -> bool:
        return bool(secret) and (self._api_key is None or secret == self._api_key)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        try:
            return await self._serve(request)
        finally:
            if task is not None:
                self._handlers.discard(task)

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        index = len(self.sessions)
        faults = self._faults_for(index)
        session = EmulatorSession(
            index=index,
            options=self.options,
            script=self.script.copy(),
            faults=faults,
            replay=self.replay.plan(index) if self.replay is not None else None,
            replaying=self.replay is not None,
        )
        self.sessions.append(session)
        assert self._new_session is not None
        self._new_session.set()
        self._new_session = asyncio.Event()
        request_headers = {"dg-request-id": session.request_id}
        log.info("session #%d: connection from %s", index, request.remote)

        if self._closing:
            session.mark_refused(503)
            log.info("session #%d: handshake refused with HTTP 503 (shutting down)", index)
            return _refusal(503, "The emulator is shutting down.", request_headers)
        credential = parse_credential(request.headers)
        if credential is None or not self._accepts(credential[1]):
            session.mark_refused(401)
            why = "no credential offered" if credential is None else "the key is not accepted"
            log.info("session #%d: handshake refused with HTTP 401 (%s)", index, why)
            return _refusal(401, "Invalid credentials.", request_headers, err_code="INVALID_AUTH")
        if faults is not None and faults.refuse_status is not None:
            session.mark_refused(faults.refuse_status)
            log.info(
                "session #%d: handshake refused with HTTP %d (fault)", index, faults.refuse_status
            )
            return _refusal(faults.refuse_status, faults.refuse_body, request_headers)

        scheme, _secret, subprotocol = credential
        ws = web.WebSocketResponse(
            protocols=(subprotocol,) if subprotocol else (),
            # Faults.silent_after must not answer pings: the session pongs by hand until then.
            autoping=faults is None or faults.silent_after is None,
            # A client's close is echoed with its own code and reason (docs/protocol.md 9.6).
            autoclose=False,
            compress=False,
            decode_text=False,
            timeout=self.options.close_timeout,
            max_msg_size=16 * 1024 * 1024,
        )
        if not ws.can_prepare(request).ok:
            session.mark_refused(400)
            log.info("session #%d: handshake refused with HTTP 400 (not an upgrade)", index)
            return _refusal(400, "Expected a WebSocket upgrade request.", request_headers)
        ws.headers["dg-request-id"] = session.request_id
        await ws.prepare(request)
        session.handshake_status = 101
        log.info(
            "session #%d: WebSocket open (%s credential in the %s), request_id %s",
            index,
            scheme,
            "subprotocol" if subprotocol else "Authorization header",
            session.request_id,
        )
        await session.run(request, ws)
        return ws


def _refusal(
    status: int, text: str, headers: dict[str, str], *, err_code: str | None = None
) -> web.Response:
    body: dict[str, str] = {"err_code": err_code or f"HTTP_{status}", "err_msg": text}
    body["request_id"] = headers["dg-request-id"]
    return web.Response(
        status=status,
        text=json.dumps(body),
        content_type="application/json",
        headers={**headers, "dg-error": text},
    )


async def serve(
    *,
    out: TextIO | None = None,
    stop: asyncio.Event | None = None,
    **kwargs: Any,
) -> None:
    """Run an emulator until ``stop`` is set or the process gets SIGINT/SIGTERM.

    The base URL is printed to ``out`` (standard output by default) as the first line,
    flushed, so a parent process can read it.

    Args:
        out: where to print the URL.
        stop: an event that ends serving when set.
        **kwargs: :class:`AgentEmulator` keyword arguments.
    """
    stream = out if out is not None else sys.stdout
    stop_event = stop if stop is not None else asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, stop_event.set)
                installed.append(sig)
    try:
        async with AgentEmulator(**kwargs) as emu:
            print(emu.url, file=stream, flush=True)
            await stop_event.wait()
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


def serve_forever(**kwargs: Any) -> None:
    """Blocking: run an emulator until SIGINT/SIGTERM (what ``deepgram-agent emulate`` calls).

    Takes the keyword arguments of :func:`serve`.
    """
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(**kwargs))
