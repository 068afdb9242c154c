"""What a connection is configured with: its tunables, URL, credentials and HTTP session pool."""

from __future__ import annotations

import asyncio
import ipaddress
import threading
import unicodedata
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import msgspec

from ._reconnect import ReconnectPolicy
from .exceptions import AuthenticationError, DeepgramError

__all__ = [
    "AGENT_PATH",
    "DEFAULT_BASE_URL",
    "ConnectOptions",
    "Credentials",
    "HttpSessionPool",
    "build_url",
    "is_loopback",
]

DEFAULT_BASE_URL = "wss://agent.deepgram.com"
AGENT_PATH = "/v1/agent/converse"


class ConnectOptions(msgspec.Struct, kw_only=True):
    """Tunables of a connection. Every wait is bounded by one of these.

    Attributes:
        open_timeout: seconds for the handshake, ``Welcome`` and ``SettingsApplied`` together.
        close_timeout: seconds ``close()`` waits for the server's close frame.
        send_timeout: seconds a write may wait for the server to read what was already sent
            (TCP flow control), counted from when it got stuck, whatever timeouts the callers
            use; past it the sends waiting raise ``DeepgramTimeoutError`` and the connection is
            closed as failed (a voice session whose uplink is stuck that long is dead).
            ``None`` waits forever (not recommended).
        ping_interval: seconds of silence from the server after which a WebSocket ping is
            sent; no answer within half of it closes the connection as lost, so a dead or
            silent server is noticed within 1.5x this (aiohttp rounds timers of 5 s and more
            up to the next whole second: 15-17 s with the default of 10). ``None`` turns the
            heartbeat off.
        keepalive_interval: send ``KeepAlive`` when nothing was sent for this long (seconds);
            ``None`` turns automatic keepalive off. The server closes an idle session after
            about 10 s (docs/protocol.md 3 rule 4).
        max_queue: received messages held for a slow consumer before the reader pauses (in
            every phase, before ``SettingsApplied`` too).
        max_message_size: largest frame accepted from the server, in bytes; a larger one
            ends the session with close code 1009.
        max_pending_audio_bytes: audio held while the session is not ready yet (older
            frames are dropped and counted beyond this).
        allow_insecure: allow ``ws://`` to a host that is not loopback.
        extra_headers: more HTTP headers for the upgrade request.
        reconnect: bring an abnormally closed session back with its conversation
            (``True`` for the default :class:`~deepgram_agent.ReconnectPolicy`, or a policy);
            off by default.
        record: write every frame of the session to this JSON-lines file
            (:mod:`deepgram_agent.recording`); credentials are never written.
        record_audio: also write the audio bytes (base64), not only their sizes.
    """

    open_timeout: float = 10.0
    close_timeout: float = 5.0
    send_timeout: float | None = 5.0
    ping_interval: float | None = 10.0
    keepalive_interval: float | None = 5.0
    max_queue: int = 1024
    max_message_size: int = 16 * 1024 * 1024
    max_pending_audio_bytes: int = 5 * 48_000 * 2
    allow_insecure: bool = False
    extra_headers: dict[str, str] = msgspec.field(default_factory=dict)
    reconnect: ReconnectPolicy | bool | None = None
    record: str | None = None
    record_audio: bool = False

    def __post_init__(self) -> None:
        if self.reconnect is True:
            self.reconnect = ReconnectPolicy()
        elif self.reconnect is False:
            self.reconnect = None
        elif self.reconnect is not None and not isinstance(self.reconnect, ReconnectPolicy):
            raise TypeError(
                "reconnect must be True, False, None or a ReconnectPolicy, "
                f"not {type(self.reconnect).__name__}"
            )
        if self.max_queue < 1:
            raise ValueError("max_queue must be at least 1")
        for name, value in self.extra_headers.items():
            if not isinstance(name, str) or not isinstance(value, str):
                raise TypeError(
                    f"extra_headers takes str names and values, not {type(name).__name__}: "
                    f"{type(value).__name__}"
                )
            # Checked here, so aiohttp's "header injection" ValueError never reaches the app;
            # the value is never quoted (it may be a credential).
            bad = _bad_character(name) or _bad_character(value)
            if bad is not None:
                raise ValueError(
                    f"extra_headers[{name.encode('unicode_escape').decode()!r}] contains a "
                    f"character that cannot be sent in an HTTP header: {bad}; remove it"
                )

    @property
    def reconnect_policy(self) -> ReconnectPolicy | None:
        """The reconnect policy in force, if any."""
        return self.reconnect if isinstance(self.reconnect, ReconnectPolicy) else None

    def replace(self, overrides: dict[str, Any]) -> ConnectOptions:
        """A copy with some fields changed.

        Raises:
            TypeError: an unknown option name (the message lists the known ones).
        """
        if not overrides:
            return self
        fields = {f: getattr(self, f) for f in self.__struct_fields__}
        unknown = set(overrides) - set(fields)
        if unknown:
            raise TypeError(
                f"unknown connection option(s): {', '.join(sorted(unknown))}; "
                f"known: {', '.join(fields)}"
            )
        fields.update(overrides)
        return ConnectOptions(**fields)


def build_url(base_url: str | None) -> str:
    """The full socket URL for a base URL (``wss://host`` -> ``wss://host/v1/agent/converse``).

    ``http``/``https`` are accepted as ``ws``/``wss``. A URL that already has a path is used
    as given.
    """
    base = (base_url or DEFAULT_BASE_URL).strip()
    if "://" not in base:
        base = "wss://" + base
    scheme, rest = base.split("://", 1)
    scheme = {"http": "ws", "https": "wss"}.get(scheme.lower(), scheme.lower())
    if scheme not in ("ws", "wss"):
        raise DeepgramError(f"unsupported URL scheme {scheme!r}: use wss:// (or ws:// locally)")
    url = f"{scheme}://{rest}"
    path = urlsplit(url).path
    if path in ("", "/"):
        url = url.rstrip("/") + AGENT_PATH
    return url


def is_loopback(host: str | None) -> bool:
    """Whether ``host`` names this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _bad_character(secret: str) -> str | None:
    """Describe the first character that cannot go into an HTTP header, without the secret."""
    for i, ch in enumerate(secret):
        if ch in "\r\n" or unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") or ord(ch) > 0xFF:
            name = unicodedata.name(ch, "control character")
            where = "at the end" if i == len(secret) - 1 else f"at position {i + 1}"
            return f"U+{ord(ch):04X} ({name}) {where}"
    return None


class Credentials:
    """The ``Authorization`` header value, kept out of every repr, log and exception.

    Raises:
        AuthenticationError: the secret holds a character no HTTP header may carry (a
            trailing newline from a key file is the usual one); the message names the
            character and its position, never the secret.
    """

    __slots__ = ("_scheme", "_secret")

    def __init__(self, scheme: str, secret: str) -> None:
        bad = _bad_character(secret)
        if bad is not None:
            what = "access token" if scheme == "Bearer" else "API key"
            raise AuthenticationError(
                f"the {what} contains a character that cannot be sent in an HTTP header: "
                f"{bad}; strip it (e.g. key.strip() when it was read from a file)"
            )
        self._scheme = scheme
        self._secret = secret

    def header(self) -> str:
        """The header value (``Token <key>`` or ``Bearer <jwt>``)."""
        return f"{self._scheme} {self._secret}"

    def redact(self, text: str) -> str:
        """``text`` with the secret replaced by ``***`` (for texts that might echo it)."""
        return text.replace(self._secret, "***") if self._secret else text

    def __repr__(self) -> str:
        return f"Credentials({self._scheme} ***)"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("credentials cannot be pickled")


def _new_session() -> aiohttp.ClientSession:
    # No per-host connection limit: every agent session holds one socket for its whole life,
    # and aiohttp's default of 100 would make the 101st connection wait.
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))


class HttpSessionPool:
    """One aiohttp ``ClientSession`` per event loop, shared by a client's connections.

    A session costs memory (connector, cookie jar, resolver); a thousand connections need only
    one. It is created by the first connection on a loop and closed when the last one on that
    loop is closed, so nothing is left open at exit.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_loop: dict[asyncio.AbstractEventLoop, list[Any]] = {}

    def acquire(self) -> aiohttp.ClientSession:
        """The loop's shared session (created if needed); pair with :meth:`release`."""
        loop = asyncio.get_running_loop()
        with self._lock:
            entry = self._by_loop.get(loop)
            if entry is None or entry[0].closed:
                entry = self._by_loop[loop] = [_new_session(), 0]
            entry[1] += 1
            session: aiohttp.ClientSession = entry[0]
            return session

    async def release(self, session: aiohttp.ClientSession) -> None:
        """Return a session; the last connection of its loop closes it."""
        loop = asyncio.get_running_loop()
        with self._lock:
            entry = self._by_loop.get(loop)
            if entry is None or entry[0] is not session:
                last = True
            else:
                entry[1] -= 1
                last = entry[1] <= 0
                if last:
                    del self._by_loop[loop]
        if last:
            await session.close()
