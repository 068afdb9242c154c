"""DeepgramClient and its agent router: the one place that knows all three APIs.

``client.agent.connect(settings)`` is the async core; ``client.agent.connect_sync(settings)``
the blocking facade; ``client.agent.websocket.v("1")`` / ``client.agent.asyncwebsocket.v("1")``
the classic callback clients. Each is built here from the same pieces and handed what it needs
through its constructor: settings are prepared once (:mod:`deepgram_agent._prepare`), a
:class:`~deepgram_agent._connection.SocketConnection` (or, with ``reconnect=``, a
:class:`~deepgram_agent.ResumingConnection`) reads into the queue its API consumes.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import aiohttp

from ._client_options import DeepgramClientOptions
from ._config import ConnectOptions, Credentials, HttpSessionPool, build_url
from ._connection import AgentConnection, SocketConnection, SocketOwner
from ._prepare import prepare_settings
from ._protocol import AgentProtocol
from ._queue import AnyQueue, AsyncQueue, ThreadQueue
from .exceptions import AuthenticationError

if TYPE_CHECKING:
    from .events import AgentWebSocketClient, AsyncAgentWebSocketClient
    from .sync import SyncAgentConnection

__all__ = ["DeepgramClient", "AgentRouter", "ConnectRequest"]


def _redact(secret: str | None) -> str:
    return "None" if not secret else "'***'"


class DeepgramClient:
    """Entry point of the SDK.

    ``DeepgramClient(api_key, config)`` as in the ``deepgram`` v4 SDK works too, with a
    :class:`~deepgram_agent.DeepgramClientOptions` (its ``url``, ``headers``, ``verbose`` and
    ``options`` are mapped onto the arguments below; the explicit arguments win).

    Args:
        api_key: a Deepgram API key, sent as ``Authorization: Token <key>``. Empty or ``None``
            falls back to ``config.api_key``, then to ``DEEPGRAM_API_KEY`` when the connection
            is made (not now, so a script can set the environment later).
        config: the v4 SDK's client options (``DeepgramClientOptions``).
        access_token: a temporary token (JWT from ``/v1/auth/grant``), sent as
            ``Authorization: Bearer <token>``; wins over ``api_key``.
        base_url: the agent host, e.g. ``wss://agent.deepgram.com`` (the default) or the
            emulator's ``ws://127.0.0.1:PORT``; falls back to ``config.url``, then to
            ``DEEPGRAM_AGENT_URL``.
        options: default tunables for every connection (timeouts, keepalive, queue size);
            ``config``'s handshake headers and keepalive choice are applied on top.

    Raises:
        TypeError: ``config`` is not a ``DeepgramClientOptions``.
    """

    def __init__(
        self,
        api_key: str | DeepgramClientOptions | None = None,
        config: DeepgramClientOptions | None = None,
        *,
        access_token: str | None = None,
        base_url: str | None = None,
        options: ConnectOptions | None = None,
    ) -> None:
        if isinstance(api_key, DeepgramClientOptions) and config is None:
            api_key, config = None, api_key  # DeepgramClient(config)
        if config is not None and not isinstance(config, DeepgramClientOptions):
            raise TypeError(
                "config must be a DeepgramClientOptions (the v4 client options), not "
                f"{type(config).__name__}; pass connection tunables as options=ConnectOptions(...)"
            )
        if api_key is not None and not isinstance(api_key, str):
            raise TypeError(f"api_key must be a string, not {type(api_key).__name__}")
        if options is not None and not isinstance(options, ConnectOptions):
            raise TypeError(
                f"options must be a ConnectOptions, not {type(options).__name__}; the v4 "
                "SDK's DeepgramClientOptions goes in config= (the second argument)"
            )
        options = options or ConnectOptions()
        if config is not None:
            api_key = api_key or config.api_key or None
            access_token = access_token or config.access_token or None
            base_url = base_url or config.base_url()
            options = config.connect_options(options)
            config.apply_logging()
        #: The v4 client options given, if any (the classic clients read their audio options).
        self.config = config
        self._api_key = api_key or None
        self._access_token = access_token
        self._base_url = base_url
        self.options = options
        self.agent = AgentRouter(self)
        self._pool = HttpSessionPool()

    def __repr__(self) -> str:
        return (
            f"DeepgramClient(api_key={_redact(self._api_key)}, "
            f"access_token={_redact(self._access_token)}, base_url={self._base_url!r})"
        )

    @property
    def url(self) -> str:
        """The agent socket URL connections will use."""
        return build_url(self._base_url or os.environ.get("DEEPGRAM_AGENT_URL"))

    def _credentials(self) -> Credentials:
        if self._access_token:
            return Credentials("Bearer", self._access_token)
        key = self._api_key or os.environ.get("DEEPGRAM_API_KEY")
        if not key:
            raise AuthenticationError(
                "no Deepgram credentials: pass DeepgramClient(api_key=...) or "
                "access_token=..., or set the DEEPGRAM_API_KEY environment variable"
            )
        return Credentials("Token", key)

    def _connection(
        self,
        settings: Any,
        *,
        queue: AnyQueue | None = None,
        tools: Any = None,
        session: aiohttp.ClientSession | None = None,
        validate: bool = True,
        **overrides: Any,
    ) -> AgentConnection:
        """Prepare the settings and build an unopened connection (no I/O)."""
        options = self.options.replace(overrides)
        prepared = prepare_settings(settings, validate=validate)
        if tools is not None:
            prepared = tools.merge_into_prepared(prepared)
        queue = queue if queue is not None else AsyncQueue(options.max_queue)
        url = self.url
        credentials = self._credentials()
        recorder = None
        if options.record:
            from .recording import FrameRecorder

            recorder = FrameRecorder(options.record, audio=options.record_audio, url=url)

        def make_socket(
            protocol: AgentProtocol | None = None,
            owner: SocketOwner | None = None,
            resumed: bool = False,
        ) -> SocketConnection:
            return SocketConnection(
                url=url,
                credentials=credentials,
                prepared=prepared,
                options=options,
                session=session,
                pool=self._pool,
                queue=queue,
                owner=owner,
                protocol=protocol,
                recorder=recorder,
                resumed=resumed,
            )

        policy = options.reconnect_policy
        conn: AgentConnection
        if policy is None:
            conn = make_socket()
        else:
            from ._resume import ResumingConnection

            conn = ResumingConnection(
                make_socket=make_socket,
                settings_wire=prepared.wire,
                settings=prepared.typed,
                options=options,
                policy=policy,
                queue=queue,
                recorder=recorder,
            )
        if tools is not None:
            tools.attach(conn)
        return conn


class ConnectRequest:
    """What ``client.agent.connect(...)`` returns: use it with ``async with`` (preferred) or
    ``await`` it for a connection you close yourself."""

    def __init__(self, make: Any) -> None:
        self._make = make
        self._conn: AgentConnection | None = None

    async def _open(self) -> AgentConnection:
        conn: AgentConnection = self._make()
        await conn.start()
        return conn

    def __await__(self) -> Generator[Any, None, AgentConnection]:
        return self._open().__await__()

    async def __aenter__(self) -> AgentConnection:
        self._conn = await self._open()
        return self._conn

    async def __aexit__(self, *exc: object) -> None:
        if self._conn is not None:
            await self._conn.close()

    def __enter__(self) -> Any:
        raise TypeError(
            "client.agent.connect(...) is asynchronous: use 'async with client.agent.connect("
            "settings) as conn' in async code, or 'with client.agent.connect_sync(settings) as "
            "conn' in blocking code"
        )

    def __exit__(self, *exc: object) -> None:  # pragma: no cover - __enter__ always raises
        return None


class AgentRouter:
    """``client.agent``: the ways to open a Voice Agent session."""

    def __init__(self, client: DeepgramClient) -> None:
        self._client = client

    def connect(
        self,
        settings: Any,
        *,
        session: aiohttp.ClientSession | None = None,
        tools: Any = None,
        validate: bool = True,
        **options: Any,
    ) -> ConnectRequest:
        """Open an async session: ``async with client.agent.connect(settings) as conn:``.

        Settings are validated locally first (a :class:`~deepgram_agent.SettingsError` names the
        bad field and how to send it anyway). The connection is returned once
        ``SettingsApplied`` arrived.

        Args:
            settings: ``SettingsOptions``, ``messages.Settings``, a dict or a JSON string.
            session: an aiohttp session to reuse (the connection then does not close it).
            tools: a function-tool registry (see ``deepgram_agent.tools``); its definitions
                are added to ``agent.think.functions`` and its calls answered automatically.
            validate: ``False`` sends the Settings exactly as given (a dict or JSON; only
                ``type`` is added when missing) and lets the server decide: for keys,
                providers or values Deepgram added after this SDK was released. A refusal
                still raises :class:`~deepgram_agent.SettingsRejected`.
            **options: any :class:`ConnectOptions` field (``open_timeout``, ``send_timeout``,
                ``keepalive_interval``, ``max_queue``, ``reconnect``, ...).
        """
        client = self._client
        return ConnectRequest(
            lambda: client._connection(
                settings, tools=tools, session=session, validate=validate, **options
            )
        )

    def _blocking(
        self, settings: Any, *, tools: Any = None, validate: bool = True, **options: Any
    ) -> tuple[SyncAgentConnection, ThreadQueue[Any]]:
        from .sync import SyncAgentConnection, loop_thread

        lt = loop_thread()
        opts = self._client.options.replace(options)
        queue: ThreadQueue[Any] = ThreadQueue(opts.max_queue, lt.loop)
        core = self._client._connection(
            settings, queue=queue, tools=tools, validate=validate, **options
        )
        return SyncAgentConnection(core, queue, lt), queue

    def _async(
        self, settings: Any, *, tools: Any = None, validate: bool = True, **options: Any
    ) -> tuple[AgentConnection, AsyncQueue[Any]]:
        opts = self._client.options.replace(options)
        queue: AsyncQueue[Any] = AsyncQueue(opts.max_queue)
        core = self._client._connection(
            settings, queue=queue, tools=tools, validate=validate, **options
        )
        return core, queue

    def connect_sync(
        self, settings: Any, *, tools: Any = None, validate: bool = True, **options: Any
    ) -> SyncAgentConnection:
        """Open a blocking session (``with client.agent.connect_sync(settings) as conn:``).

        The same core runs on a private event-loop thread shared by every blocking
        connection of the process. Same methods as the async connection, without ``await``;
        same arguments as :meth:`connect`.
        """
        conn, _ = self._blocking(settings, tools=tools, validate=validate, **options)
        conn.start()
        return conn

    @property
    def websocket(self) -> _Versioned[AgentWebSocketClient]:
        """The classic blocking callback client: ``client.agent.websocket.v("1")``."""
        from .events import AgentWebSocketClient

        return _Versioned(lambda: AgentWebSocketClient(self._blocking, self._client.config))

    @property
    def asyncwebsocket(self) -> _Versioned[AsyncAgentWebSocketClient]:
        """The classic async callback client: ``client.agent.asyncwebsocket.v("1")``."""
        from .events import AsyncAgentWebSocketClient

        return _Versioned(lambda: AsyncAgentWebSocketClient(self._async, self._client.config))


_T = TypeVar("_T")


class _Versioned(Generic[_T]):
    def __init__(self, make: Any) -> None:
        self._make = make

    def v(self, version: str = "1") -> _T:
        """The client for API ``version`` (only ``"1"`` exists)."""
        if str(version) != "1":
            raise ValueError(f"unknown agent API version {version!r}; only '1' exists")
        result: _T = self._make()
        return result
