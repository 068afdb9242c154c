"""DeepgramClient and its agent router: where connections are made.

``client.agent.connect(settings)`` is the async core; ``client.agent.connect_sync(settings)``
the blocking facade; ``client.agent.websocket.v("1")`` / ``client.agent.asyncwebsocket.v("1")``
the seed's callback clients. All of them build the same :class:`AgentConnection`.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import aiohttp

from ._client_options import DeepgramClientOptions
from ._connection import AgentConnection, ConnectOptions, SessionPool, build_url
from ._queue import AnyQueue
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
        self._pool = SessionPool()

    def __repr__(self) -> str:
        return (
            f"DeepgramClient(api_key={_redact(self._api_key)}, "
            f"access_token={_redact(self._access_token)}, base_url={self._base_url!r})"
        )

    @property
    def url(self) -> str:
        """The agent socket URL connections will use."""
        return build_url(self._base_url or os.environ.get("DEEPGRAM_AGENT_URL"))

    def _auth_header(self) -> str:
        if self._access_token:
            return f"Bearer {self._access_token}"
        key = self._api_key or os.environ.get("DEEPGRAM_API_KEY")
        if not key:
            raise AuthenticationError(
                "no Deepgram credentials: pass DeepgramClient(api_key=...) or "
                "access_token=..., or set the DEEPGRAM_API_KEY environment variable"
            )
        return f"Token {key}"

    def _options(self, overrides: dict[str, Any]) -> ConnectOptions:
        if not overrides:
            return self.options
        fields = {f: getattr(self.options, f) for f in self.options.__struct_fields__}
        unknown = set(overrides) - set(fields)
        if unknown:
            raise TypeError(
                f"unknown connection option(s): {', '.join(sorted(unknown))}; "
                f"known: {', '.join(fields)}"
            )
        fields.update(overrides)
        return ConnectOptions(**fields)

    def _build(
        self,
        settings: Any,
        *,
        tools: Any = None,
        session: aiohttp.ClientSession | None = None,
        queue: AnyQueue | None = None,
        **overrides: Any,
    ) -> AgentConnection:
        """Validate the settings and build an unopened connection (no I/O)."""
        from ._codec import encode
        from .options import coerce_settings

        if tools is not None:
            settings = tools.merge_into(settings)
        typed, wire = coerce_settings(settings)
        conn = AgentConnection(
            url=self.url,
            auth_header=self._auth_header(),
            settings=typed,
            settings_json=encode(wire),
            options=self._options(overrides),
            session=session,
            queue=queue,
            pool=self._pool,
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
        **options: Any,
    ) -> ConnectRequest:
        """Open an async session: ``async with client.agent.connect(settings) as conn:``.

        Settings are validated locally first (a :class:`~deepgram_agent.SettingsError` names the
        bad field). The connection is returned once ``SettingsApplied`` arrived.

        Args:
            settings: ``SettingsOptions``, ``messages.Settings``, a dict or a JSON string.
            session: an aiohttp session to reuse (the connection then does not close it).
            tools: a function-tool registry (see ``deepgram_agent.tools``); its definitions
                are added to ``agent.think.functions`` and its calls answered automatically.
            **options: any :class:`ConnectOptions` field (``open_timeout``,
                ``keepalive_interval``, ``max_queue``, ...).
        """
        client = self._client
        return ConnectRequest(
            lambda: client._build(settings, tools=tools, session=session, **options)
        )

    def connect_sync(
        self, settings: Any, *, tools: Any = None, **options: Any
    ) -> SyncAgentConnection:
        """Open a blocking session (``with client.agent.connect_sync(settings) as conn:``).

        The same core runs on a private event-loop thread shared by every blocking
        connection of the process. Same methods as the async connection, without ``await``.
        """
        from .sync import SyncAgentConnection

        return SyncAgentConnection.open(self._client, settings, tools=tools, **options)

    @property
    def websocket(self) -> _Versioned[AgentWebSocketClient]:
        """The seed's blocking callback client: ``client.agent.websocket.v("1")``."""
        from .events import AgentWebSocketClient

        return _Versioned(lambda: AgentWebSocketClient(self._client))

    @property
    def asyncwebsocket(self) -> _Versioned[AsyncAgentWebSocketClient]:
        """The seed's async callback client: ``client.agent.asyncwebsocket.v("1")``."""
        from .events import AsyncAgentWebSocketClient

        return _Versioned(lambda: AsyncAgentWebSocketClient(self._client))


from typing import Generic, TypeVar  # noqa: E402

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
