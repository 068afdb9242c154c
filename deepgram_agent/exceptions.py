"""Exceptions raised by deepgram_agent.

Everything derives from one root::

    DeepgramError
    ├── DeepgramApiError            the server refused: HTTP status at the handshake, or an
    │   │                           ``Error`` message during start-up
    │   ├── AuthenticationError     401/403 at the handshake (never retried)
    │   └── SettingsRejected        the server answered ``Settings`` with ``Error``
    ├── SettingsError               local validation; ``path`` names the bad field (also a
    │                               ``ValueError``)
    ├── ConnectionClosed            the socket is closed
    │   ├── ConnectionClosedOK      normal close (1000, or ours)
    │   └── ConnectionClosedError   abnormal close (dropped TCP, 1011, ...); cause chained
    ├── DeepgramConnectionError     could not reach the server (DNS, refused, TLS, timeout)
    ├── ProtocolError               the server broke the protocol (e.g. no ``Welcome``)
    ├── ConcurrencyError            an API used from the wrong place (e.g. two readers)
    ├── DeepgramTimeoutError        a bounded wait ran out (also a ``TimeoutError``)
    └── MissingDependencyError      an optional extra is not installed (also an ``ImportError``)

No exception message ever contains an API key or token: they are built from values the SDK
controls, and handshake errors carry only the status and Deepgram's ``dg-error`` text.
"""

from __future__ import annotations

__all__ = [
    "DeepgramError",
    "DeepgramApiError",
    "AuthenticationError",
    "SettingsRejected",
    "SettingsError",
    "ConnectionClosed",
    "ConnectionClosedOK",
    "ConnectionClosedError",
    "DeepgramConnectionError",
    "ProtocolError",
    "ConcurrencyError",
    "DeepgramTimeoutError",
    "MissingDependencyError",
]


class DeepgramError(Exception):
    """Root of every exception this package raises on purpose."""


class DeepgramApiError(DeepgramError):
    """The Deepgram service refused a request.

    Attributes:
        status: HTTP status of a refused handshake, or ``None`` for an in-session ``Error``.
        code: Deepgram's error code (``UNPARSABLE_CLIENT_MESSAGE``, ...) when one was sent.
        description: the server's explanation.
        request_id: ``dg-request-id`` header or ``Welcome.request_id`` when known.
    """

    def __init__(
        self,
        description: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        self.description = description
        self.status = status
        self.code = code
        self.request_id = request_id
        parts = []
        if status is not None:
            parts.append(f"HTTP {status}")
        if code:
            parts.append(code)
        head = " ".join(parts)
        text = f"{head}: {description}" if head else description
        if request_id:
            text += f" (request_id {request_id})"
        super().__init__(text)

    @property
    def message(self) -> str:
        """Same as ``description`` (the seed API's name)."""
        return self.description


class AuthenticationError(DeepgramApiError):
    """The handshake was refused with 401 or 403: the key or token is missing, wrong or expired."""


class SettingsRejected(DeepgramApiError):
    """The server answered ``Settings`` with an ``Error`` instead of ``SettingsApplied``."""


class SettingsError(DeepgramError, ValueError):
    """Settings failed local validation before anything was sent.

    Attributes:
        path: JSON path of the offending field as the server would name it
            (``agent.think.functions[0].method``); ``""`` for the whole object.
        problem: what is wrong with it.
        code: the ``Error`` code the server would answer with (``UNPARSABLE_CLIENT_MESSAGE``
            for schema violations, ``INVALID_SETTINGS`` for values that parse but are invalid).
    """

    def __init__(self, path: str, problem: str, *, code: str = "UNPARSABLE_CLIENT_MESSAGE") -> None:
        self.path = path
        self.problem = problem
        self.code = code
        where = f"at '{path}'" if path else "in the settings"
        super().__init__(f"Invalid settings {where}: {problem}")


class ConnectionClosed(DeepgramError):
    """The connection is closed.

    Attributes:
        code: the WebSocket close code (``None`` when the TCP connection died with no close
            frame; 1006 is reported then).
        reason: the close reason text.
        detail: what happened, in words (the message without the code and reason).
    """

    def __init__(self, code: int | None, reason: str = "", detail: str = "") -> None:
        self.code = code
        self.reason = reason
        self.detail = detail
        text = f"connection closed (code {code}"
        text += f", reason {reason!r})" if reason else ")"
        if detail:
            text += f": {detail}"
        super().__init__(text)


class ConnectionClosedOK(ConnectionClosed):
    """The connection closed normally (code 1000, or closed by this client)."""


class ConnectionClosedError(ConnectionClosed):
    """The connection closed abnormally; ``__cause__`` holds the network error if any."""


class DeepgramConnectionError(DeepgramError, ConnectionError):
    """The server could not be reached (DNS, connection refused, TLS, handshake timeout)."""


class ProtocolError(DeepgramError):
    """The server broke the protocol (for example, no ``Welcome`` or a binary frame first)."""


class ConcurrencyError(DeepgramError, RuntimeError):
    """An API was used from the wrong place (two concurrent readers, a closed connection)."""


class DeepgramTimeoutError(DeepgramError, TimeoutError):
    """A bounded wait ran out."""


class MissingDependencyError(DeepgramError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""
