"""Secrets: nothing reachable from an exception we raise holds the API key.

Error trackers, debuggers and pickling walk an exception's whole chain (``__cause__``,
``__context__``), its ``args`` and ``__dict__``, and record the ``repr`` of every local of every
frame of its traceback. A hostile (or just chatty) server may echo the key back: in the
``dg-error`` header of a refused handshake, in a close reason, in an ``Error`` description.
None of it may reach the application's exceptions, in any API.
"""

from __future__ import annotations

import pickle
import types
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web

from deepgram_agent import DeepgramError
from deepgram_agent import messages as m

from .hostile import APIS, HostileServer, Outcome, Peer, run_api

SECRET = "sk-canary-9d2f7e61a0b4"


def _echo_refusal(status: int) -> Any:
    def refuse(request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        return web.Response(
            status=status,
            text=f"bad credentials {auth}",
            headers={
                "dg-error": f"Invalid credentials: {auth} ({SECRET} is not a valid key)",
                "dg-request-id": "req-123",
                "WWW-Authenticate": f'Token realm="{auth}"',
            },
        )

    return refuse


async def never(peer: Peer) -> None:  # pragma: no cover - the upgrade is refused
    raise AssertionError("refused servers never run a script")


# ----------------------------------------------------------------------------- the walk


def _walk_exception_chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    stack = [exc]
    while stack:
        e = stack.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        for nxt in (e.__cause__, e.__context__):
            if nxt is not None:
                stack.append(nxt)
        for arg in e.args:  # an exception kept as an argument is part of the chain too
            if isinstance(arg, BaseException):
                stack.append(arg)


def _reachable(obj: Any, seen: set[int], depth: int = 0) -> Iterator[Any]:
    """Every object reachable through containers, ``__dict__`` and ``__slots__`` (not
    through tracebacks: their frames are checked by repr, as error trackers record them)."""
    if id(obj) in seen or depth > 40:
        return
    seen.add(id(obj))
    yield obj
    if isinstance(obj, str | bytes | bytearray | int | float | bool | type(None)):
        return
    if isinstance(obj, types.TracebackType | types.FrameType | types.ModuleType | type):
        return
    if isinstance(obj, dict):
        children: list[Any] = [*obj.keys(), *obj.values()]
    elif isinstance(obj, list | tuple | set | frozenset):
        children = list(obj)
    else:
        children = list(getattr(obj, "__dict__", {}).values())
        for cls in type(obj).__mro__:
            for slot in getattr(cls, "__slots__", ()):
                if hasattr(obj, slot):
                    children.append(getattr(obj, slot))
    for child in children:
        yield from _reachable(child, seen, depth + 1)


def assert_no_secret(exc: BaseException) -> int:
    """Walk ``exc`` as an error tracker would; return how many objects were checked."""
    checked = 0
    for e in _walk_exception_chain(exc):
        for text in (str(e), repr(e)):
            assert SECRET not in text, (type(e), text)
        seen: set[int] = set()
        for obj in _reachable((e.args, vars(e) if hasattr(e, "__dict__") else {}), seen):
            checked += 1
            if isinstance(obj, str | bytes | bytearray):
                data = obj if isinstance(obj, str) else bytes(obj).decode("latin-1")
                assert SECRET not in data, (type(e), obj)
            elif hasattr(obj, "__dict__") or hasattr(type(obj), "__slots__"):
                assert SECRET not in repr(obj), (type(e), type(obj))
        # Pickling (multiprocessing, caches, crash dumps) succeeds and carries no key.
        blob = pickle.dumps(e)
        assert SECRET.encode() not in blob
        assert type(pickle.loads(blob)) is type(e)
        tb = e.__traceback__
        while tb is not None:  # every local of every frame, by repr
            for name, value in tb.tb_frame.f_locals.items():
                try:
                    text = repr(value)
                except Exception:  # pragma: no cover - some repr that fails
                    continue
                assert SECRET not in text, (tb.tb_frame.f_code.co_name, name)
            tb = tb.tb_next
    return checked


def _failure_of(api: str, out: Outcome) -> BaseException | m.Error:
    """The exception raised, or the callback API's last ``Error`` event: the SDK's report of
    the failure (a server ``Error`` message before it is delivered as the server sent it)."""
    if api in ("async", "blocking"):
        assert out.error is not None
        return out.error
    errors = [e for n, e in out.items if n == "Error"]
    assert errors and out.names()[-1] == "Close", out.names()
    return errors[-1]


# ----------------------------------------------------------------------------- refusals


@pytest.mark.anyio
@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("status", [401, 403, 500])
async def test_a_refused_handshake_that_echoes_the_key_leaks_nothing(api: str, status: int) -> None:
    with HostileServer(never, refuse=_echo_refusal(status)) as srv:
        out = await run_api(api, srv.client(key=SECRET), timeout=20)
        assert srv.requests and srv.requests[0]["Authorization"] == f"Token {SECRET}"
    failure = _failure_of(api, out)
    if isinstance(failure, m.Error):  # the callback APIs: the Error and Close events
        everything = repr(out.items)
        assert SECRET not in everything
        assert "***" in failure.description  # the echo was redacted, the rest kept
        return
    assert isinstance(failure, DeepgramError)
    assert getattr(failure, "status", None) == status
    assert "***" in str(failure) and "req-123" in str(failure)
    checked = assert_no_secret(failure)
    assert checked > 3


@pytest.mark.anyio
@pytest.mark.parametrize("api", ["async", "blocking"])
async def test_a_refusal_with_a_bearer_token_leaks_nothing(api: str) -> None:
    from deepgram_agent import DeepgramClient

    with HostileServer(never, refuse=_echo_refusal(401)) as srv:
        client = DeepgramClient(access_token=SECRET, base_url=srv.url)
        out = await run_api(api, client, timeout=20)
    assert out.error is not None
    assert_no_secret(out.error)


# ----------------------------------------------------------------------------- redirects


async def record_settings(peer: Peer) -> None:
    await peer.ready()  # records the Settings if they ever come
    await peer.hold()


@pytest.mark.anyio
@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("where", ["same server", "another server"])
async def test_a_redirected_upgrade_is_not_followed_and_gets_no_settings(
    api: str, where: str
) -> None:
    # aiohttp follows redirects of the upgrade (it cannot be told not to); the Settings may
    # hold provider credentials, so a redirected socket is closed before anything is sent.
    with HostileServer(record_settings) as other:
        redirected: list[str] = []

        def redirect_once(request: web.Request) -> web.Response | None:
            if redirected:
                return None  # the second request (same server) is accepted
            target = (
                f"/v1/agent/converse?token={SECRET}"
                if where == "same server"
                else other.url.replace("ws://", "http://") + f"/v1/agent/converse?t={SECRET}"
            )
            redirected.append(target)
            return web.Response(status=302, headers={"Location": target})

        with HostileServer(record_settings, refuse=redirect_once) as srv:
            out = await run_api(api, srv.client(key=SECRET), timeout=20)
            reached = srv if where == "same server" else other
            reached.wait(lambda: bool(reached.peers) and reached.peers[0].closed_at is not None)
            assert reached.peers[0].settings is None  # no Settings went to the redirect target
        if where == "another server":
            assert other.requests[0].get("Authorization") is None  # aiohttp drops it cross-origin
    failure = _failure_of(api, out)
    if isinstance(failure, m.Error):
        assert "redirect (HTTP 302)" in failure.description
        assert SECRET not in repr(out.items)
        return
    assert getattr(failure, "status", None) == 302
    assert "redirects are not followed" in str(failure)
    assert_no_secret(failure)


# ----------------------------------------------------------------------------- echoes in-session


async def close_with_the_key(peer: Peer) -> None:
    await peer.welcome()
    auth = peer.request.headers["Authorization"]
    await peer.close(4001, f"bye {auth}".encode())


async def reject_with_the_key(peer: Peer) -> None:
    await peer.welcome()
    await peer.next_json("Settings")
    auth = peer.request.headers["Authorization"]
    await peer.send({"type": "Error", "code": "INVALID_SETTINGS", "description": f"no: {auth}"})
    await peer.close(1000)


@pytest.mark.anyio
@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("script", [close_with_the_key, reject_with_the_key])
async def test_a_server_echoing_the_key_in_session_leaks_nothing_into_errors(
    api: str, script: Any
) -> None:
    with HostileServer(script) as srv:
        out = await run_api(api, srv.client(key=SECRET), timeout=20)
    failure = _failure_of(api, out)
    if isinstance(failure, m.Error):
        assert SECRET not in failure.description and "***" in failure.description
        closes = [e for n, e in out.items if n == "Close"]
        assert SECRET not in repr(closes)
        return
    assert "***" in str(failure)
    assert_no_secret(failure)


def test_the_walk_finds_a_planted_key() -> None:
    # The checker itself must be able to fail: a key planted in __context__'s __dict__.
    inner = ValueError("x")
    inner.headers = {"Authorization": f"Token {SECRET}"}  # type: ignore[attr-defined]
    try:
        try:
            raise inner
        except ValueError:
            raise DeepgramError("outer") from None
    except DeepgramError as outer:
        with pytest.raises(AssertionError):
            assert_no_secret(outer)
