"""The blocking facade: the async core on a private event-loop thread.

Every blocking connection of the process shares one daemon thread running one asyncio loop
(started on first use), so a thousand connections cost one thread, and closing them leaks none.
Messages reach the calling thread through a bounded thread-safe queue filled by the core's
reader; sends are submitted to the loop and waited for, so they are safe from any thread (a
microphone callback, a handler). At interpreter exit, connections still open are closed
(bounded), so a script that forgets ``close()`` still exits promptly.

    with client.agent.connect_sync(settings) as conn:
        conn.inject_user_message("Hello")
        for msg in conn:
            ...
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import threading
import weakref
from collections.abc import Coroutine, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from ._connection import AgentConnection, AgentEvent, ConnectionStatistics
from ._queue import End, ThreadQueue
from .exceptions import ConnectionClosedOK, DeepgramTimeoutError
from .messages import AudioFormat

if TYPE_CHECKING:
    from ._client import DeepgramClient

__all__ = ["SyncAgentConnection", "connect", "loop_thread"]

T = TypeVar("T")

#: Extra seconds granted on top of a connection's own bounds for a cross-thread wait.
_SLACK = 5.0


class _LoopThread:
    """One asyncio loop on one daemon thread, shared by every blocking connection."""

    _lock = threading.Lock()
    _instance: _LoopThread | None = None

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._run, name="deepgram-agent-loop", daemon=True)
        self.thread.start()
        self._ready.wait(5)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        self.loop.run_forever()

    @classmethod
    def get(cls) -> _LoopThread:
        with cls._lock:
            if cls._instance is None or not cls._instance.thread.is_alive():
                cls._instance = _LoopThread()
            return cls._instance

    def in_loop_thread(self) -> bool:
        return threading.current_thread() is self.thread

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None) -> T:
        """Run ``coro`` on the loop and wait for it (bounded by ``timeout``)."""
        if self.in_loop_thread():
            coro.close()
            raise RuntimeError(
                "a blocking deepgram_agent call was made on the SDK's own loop thread; use the "
                "async API (await conn.method()) from async code"
            )
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return fut.result(timeout)
        except TimeoutError:
            fut.cancel()
            raise DeepgramTimeoutError(f"the operation did not finish within {timeout} s") from None
        except BaseException:
            fut.cancel()
            raise

    def submit(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Schedule ``coro`` without waiting."""
        asyncio.run_coroutine_threadsafe(coro, self.loop)


def loop_thread() -> _LoopThread:
    """The shared loop thread (started on first use)."""
    return _LoopThread.get()


_open_connections: weakref.WeakSet[SyncAgentConnection] = weakref.WeakSet()


@atexit.register
def _close_all_at_exit() -> None:  # pragma: no cover - runs at interpreter exit
    for conn in list(_open_connections):
        with contextlib.suppress(Exception):
            conn.close(timeout=2.0)


class SyncAgentConnection:
    """A blocking view of :class:`~deepgram_agent.AgentConnection`: same method names, no
    ``await``. Iterating yields what the async connection yields; ``recv(timeout=...)`` waits
    for one item. All methods are safe from any thread.
    """

    def __init__(self, core: AgentConnection, queue: ThreadQueue[Any], lt: _LoopThread) -> None:
        self._core = core
        self._queue = queue
        self._lt = lt
        self._bound = core.options.open_timeout + core.options.close_timeout + _SLACK

    @classmethod
    def open(
        cls, client: DeepgramClient, settings: Any, *, tools: Any = None, **options: Any
    ) -> SyncAgentConnection:
        """Validate, connect and wait for ``SettingsApplied`` (see ``AgentRouter.connect``)."""
        conn = cls.build(client, settings, tools=tools, **options)
        conn.start()
        return conn

    @classmethod
    def build(
        cls, client: DeepgramClient, settings: Any, *, tools: Any = None, **options: Any
    ) -> SyncAgentConnection:
        """Build an unopened connection (validates the settings; no I/O)."""
        lt = _LoopThread.get()
        opts = client._options(options)
        queue: ThreadQueue[Any] = ThreadQueue(opts.max_queue, lt.loop)
        core = client._build(settings, tools=tools, queue=queue, **options)
        return cls(core, queue, lt)

    def start(self) -> None:
        """Open the socket and wait for ``SettingsApplied`` (bounded by ``open_timeout``)."""
        _open_connections.add(self)
        try:
            self._lt.run(self._core.start(), self._bound)
        except BaseException:
            _open_connections.discard(self)
            raise

    @property
    def core(self) -> AgentConnection:
        """The async connection underneath (use it only from the SDK's loop thread)."""
        return self._core

    def __repr__(self) -> str:
        return repr(self._core).replace("<AgentConnection", "<SyncAgentConnection", 1)

    @property
    def request_id(self) -> str | None:
        """``Welcome.request_id`` of this session."""
        return self._core.request_id

    @property
    def input_format(self) -> AudioFormat:
        """The user audio format this session's Settings declared."""
        return self._core.input_format

    @property
    def output_format(self) -> AudioFormat:
        """The agent audio format this session's Settings asked for."""
        return self._core.output_format

    @property
    def closed(self) -> bool:
        """True once the connection has closed."""
        return self._core.closed

    @property
    def close_code(self) -> int | None:
        """The close code once closed."""
        return self._core.close_code

    # ---------------------------------------------------------------- receiving

    def recv(self, timeout: float | None = None) -> AgentEvent:
        """Return the next message, ``Unhandled`` frame or audio chunk.

        Raises:
            ConnectionClosedOK: the connection closed normally.
            ConnectionClosedError: it closed abnormally.
            DeepgramTimeoutError: nothing arrived within ``timeout`` seconds.
        """
        item = self._queue.get(timeout)
        if isinstance(item, End):
            if item.error is not None:
                raise item.error
            raise ConnectionClosedOK(self._core.close_code, self._core.close_reason)
        return item  # type: ignore[no-any-return]

    def __iter__(self) -> Iterator[AgentEvent]:
        return self

    def __next__(self) -> AgentEvent:
        item = self._queue.get(None)
        if isinstance(item, End):
            if item.error is not None:
                raise item.error
            raise StopIteration
        return item  # type: ignore[no-any-return]

    # ---------------------------------------------------------------- sending

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._lt.run(coro, self._bound)

    def send_audio(self, data: bytes | bytearray | memoryview) -> None:
        """Send one chunk of user audio (see ``AgentConnection.send_audio``)."""
        if data:
            self._call(self._core.send_audio(bytes(data)))

    def send(self, message: Any) -> None:
        """Validate and send any client message (see ``AgentConnection.send``)."""
        self._call(self._core.send(message))

    def send_raw(self, payload: Any) -> None:
        """Send a JSON text frame without validation (escape hatch)."""
        self._call(self._core.send_raw(payload))

    def update_prompt(self, prompt: str) -> None:
        """Send ``UpdatePrompt``."""
        self._call(self._core.update_prompt(prompt))

    def update_speak(self, speak: Any) -> None:
        """Send ``UpdateSpeak``."""
        self._call(self._core.update_speak(speak))

    def update_think(self, think: Any) -> None:
        """Send ``UpdateThink``."""
        self._call(self._core.update_think(think))

    def update_listen(self, listen: Any) -> None:
        """Send ``UpdateListen``."""
        self._call(self._core.update_listen(listen))

    def inject_user_message(self, content: str) -> None:
        """Send ``InjectUserMessage``."""
        self._call(self._core.inject_user_message(content))

    def inject_agent_message(self, message: str, *, behavior: str | None = None) -> None:
        """Send ``InjectAgentMessage``."""
        self._call(self._core.inject_agent_message(message, behavior=behavior))

    def send_function_call_response(
        self,
        response: Any = None,
        *,
        id: str | None = None,
        name: str | None = None,
        content: Any = None,
    ) -> None:
        """Send ``FunctionCallResponse`` (see ``AgentConnection.send_function_call_response``)."""
        self._call(
            self._core.send_function_call_response(response, id=id, name=name, content=content)
        )

    def keep_alive(self) -> None:
        """Send ``KeepAlive`` now."""
        self._call(self._core.keep_alive())

    def force_end_turn(self) -> None:
        """Send ``ForceEndTurn``."""
        self._call(self._core.force_end_turn())

    # ---------------------------------------------------------------- closing

    def close(self, *, timeout: float | None = None) -> None:
        """Close the connection. Idempotent, bounded, safe from any thread and from handlers."""
        _open_connections.discard(self)
        if self._lt.in_loop_thread():
            self._lt.submit(self._core.close())
            return
        bound = timeout if timeout is not None else self._core.options.close_timeout * 2 + _SLACK
        with contextlib.suppress(DeepgramTimeoutError):
            self._lt.run(self._core.close(), bound)

    def wait_closed(self, timeout: float | None = None) -> None:
        """Block until the connection has closed (``DeepgramTimeoutError`` after ``timeout``)."""
        self._lt.run(self._core.wait_closed(timeout), None if timeout is None else timeout + _SLACK)

    def statistics(self) -> ConnectionStatistics:
        """Counters of this connection."""
        return self._core.statistics()

    @property
    def pending_function_calls(self) -> dict[str, str]:
        """Client-side calls requested and not answered yet: ``{id: name}``."""
        return self._core.pending_function_calls

    def __enter__(self) -> SyncAgentConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(
    client: DeepgramClient, settings: Any, *, tools: Any = None, **options: Any
) -> SyncAgentConnection:
    """Open a blocking connection: ``deepgram_agent.sync.connect(client, settings)``."""
    return SyncAgentConnection.open(client, settings, tools=tools, **options)
