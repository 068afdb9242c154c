"""Misuse gets a clear error, never corruption, in every API.

* Two threads (or two tasks) reading one connection: the second gets ``ConcurrencyError`` at
  once, the first loses nothing, nobody spins.
* No raw dependency exception escapes ``connect()``/``start()``: a server that closes right
  after ``Welcome`` (or never upgrades, or hangs up mid-handshake) gives our errors; the
  callback ``start()`` returns False after ``Error`` and ``Close`` events, never raises.
* A key with a trailing newline (or any character no HTTP header can carry), or such a
  character in ``extra_headers``, gives a clear error naming it, not aiohttp's "header
  injection" text, and never the secret.
* ``send_audio`` with something that is not audio raises ``TypeError`` naming what it got
  (the classic callback clients return False and log it, as the v4 SDK did); nothing is sent.
* A function call re-asked by a resumed session with the same id is answered once, on the
  new session.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

import pytest
from aiohttp import web

from deepgram_agent import (
    AuthenticationError,
    ConcurrencyError,
    ConnectionClosedError,
    DeepgramApiError,
    DeepgramClient,
    DeepgramConnectionError,
    DeepgramError,
    ReconnectPolicy,
    Tools,
)
from deepgram_agent import messages as m

from .conftest import scaled
from .hostile import APIS, SETTINGS, HostileServer, Peer, run_api

# ----------------------------------------------------------------------------- two readers

N = 50


def numbered(*, pause_after: int | None = None) -> Any:
    """Sends ConversationText 0..N-1 once the client says "go" (pausing after
    ``pause_after`` until it says "more"), then closes normally."""

    async def script(peer: Peer) -> None:
        await peer.ready()
        await peer.next_json("InjectUserMessage")
        for i in range(N):
            if i == pause_after:
                await peer.next_json("InjectUserMessage")
            await peer.send({"type": "ConversationText", "role": "assistant", "content": str(i)})
        await peer.close(1000)

    return script


def _texts(items: list[Any]) -> list[str]:
    return [x.content for x in items if isinstance(x, m.ConversationText)]


def test_two_threads_iterating_one_blocking_connection() -> None:
    with HostileServer(numbered(pause_after=N // 2)) as srv:
        conn = srv.client().agent.connect_sync(SETTINGS)
        first: list[Any] = []
        halfway = threading.Event()
        failure: list[BaseException] = []

        def read() -> None:
            try:
                for msg in conn:
                    first.append(msg)
                    if _texts(first) == [str(i) for i in range(N // 2)]:
                        halfway.set()
            except BaseException as exc:  # pragma: no cover - reported below
                failure.append(exc)

        reader = threading.Thread(target=read, name="first-reader", daemon=True)
        reader.start()
        conn.inject_user_message("go")
        assert halfway.wait(scaled(10))
        # The first reader now waits for more. A second thread cannot read, at once.
        errors: list[str] = []

        def second() -> None:
            started = time.monotonic()
            for attempt in (lambda: next(iter(conn)), lambda: conn.recv(timeout=5)):
                try:
                    attempt()
                except ConcurrencyError as exc:
                    errors.append(f"{time.monotonic() - started:.3f} {exc}")

        other = threading.Thread(target=second, name="second-reader", daemon=True)
        other.start()
        other.join(scaled(5))
        assert len(errors) == 2, errors
        assert all(float(e.split()[0]) < 0.5 for e in errors), errors
        assert "first-reader" in errors[0]
        # Nobody spins while the first reader waits.
        cpu = time.process_time()
        wall = time.monotonic()
        halfway.clear()
        threading.Event().wait(1.0)  # measure CPU over an idle second (not synchronisation)
        used = time.process_time() - cpu
        print(
            f"\nCPU while one reader waits: {used * 1000:.0f} ms in {time.monotonic() - wall:.1f} s"
        )
        assert used < 0.25
        conn.inject_user_message("more")
        reader.join(scaled(10))
        assert not reader.is_alive() and not failure, failure
        conn.close()
    assert _texts(first) == [str(i) for i in range(N)]  # the first reader lost nothing


@pytest.mark.anyio
async def test_two_tasks_iterating_one_async_connection() -> None:
    with HostileServer(numbered(pause_after=N // 2)) as srv:
        async with srv.client().agent.connect(SETTINGS) as conn:
            first: list[Any] = []
            halfway = asyncio.Event()

            async def read() -> None:
                async for msg in conn:
                    first.append(msg)
                    if len(_texts(first)) == N // 2:
                        halfway.set()

            reader = asyncio.create_task(read(), name="first-reader")
            await conn.inject_user_message("go")
            async with asyncio.timeout(scaled(10)):
                await halfway.wait()

            async def second_loop() -> None:
                async for _ in conn:
                    pass

            with pytest.raises(ConcurrencyError, match="first-reader"):
                await asyncio.wait_for(second_loop(), 1.0)
            with pytest.raises(ConcurrencyError):
                await asyncio.wait_for(conn.recv(), 1.0)
            await conn.inject_user_message("more")
            async with asyncio.timeout(scaled(10)):
                await reader
    assert _texts(first) == [str(i) for i in range(N)]


@pytest.mark.anyio
async def test_recv_from_a_second_task_while_one_iterates_with_messages_waiting() -> None:
    # The queue holds messages (the first reader is busy in its loop body): a recv() from
    # another task must not take one of them.
    with HostileServer(numbered()) as srv:
        async with srv.client().agent.connect(SETTINGS) as conn:
            first: list[Any] = []
            busy = asyncio.Event()
            go_on = asyncio.Event()

            async def read() -> None:
                async for msg in conn:
                    first.append(msg)
                    if _texts(first) == ["0"]:
                        busy.set()
                        await go_on.wait()  # busy: the rest queues up meanwhile

            reader = asyncio.create_task(read(), name="first-reader")
            await conn.inject_user_message("go")
            async with asyncio.timeout(scaled(10)):
                await busy.wait()
                await conn.wait_closed()  # the server sent the rest and closed: all queued
            assert conn.statistics().queued == N - 1
            with pytest.raises(ConcurrencyError):
                await conn.recv(timeout=1.0)
            go_on.set()
            async with asyncio.timeout(scaled(10)):
                await reader
    assert _texts(first) == [str(i) for i in range(N)]


# ----------------------------------------------------------------------------- failed opens


async def close_after_welcome(peer: Peer) -> None:
    await peer.welcome()
    await peer.close(1000)


async def abort_after_welcome(peer: Peer) -> None:
    await peer.welcome()
    peer.abort()


async def close_1011_after_settings(peer: Peer) -> None:
    await peer.welcome()
    await peer.next_json("Settings")
    await peer.close(1011, b"internal error")


async def abort_before_welcome(peer: Peer) -> None:
    peer.abort()


OPENS: dict[str, tuple[Any, Any, type[DeepgramError]]] = {
    "close 1000 after Welcome": (close_after_welcome, None, ConnectionClosedError),
    "TCP reset after Welcome": (abort_after_welcome, None, ConnectionClosedError),
    "close 1011 after Settings": (close_1011_after_settings, None, ConnectionClosedError),
    "TCP reset before Welcome": (abort_before_welcome, None, ConnectionClosedError),
    "200 instead of the upgrade": (
        abort_before_welcome,
        lambda _r: web.Response(status=200, text="hello"),
        DeepgramApiError,
    ),
    "101 with a wrong accept key": (
        abort_before_welcome,
        lambda _r: web.Response(
            status=101,
            headers={"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Accept": "x"},
        ),
        DeepgramApiError,
    ),
    "hang up mid-handshake": (
        abort_before_welcome,
        lambda r: (r.transport.abort() if r.transport else None) or web.Response(status=500),
        DeepgramConnectionError,
    ),
}


@pytest.mark.anyio
@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("case", list(OPENS))
async def test_a_failed_open_raises_our_error_or_returns_false(api: str, case: str) -> None:
    script, refuse, expected = OPENS[case]
    with HostileServer(script, refuse=refuse) as srv:
        out = await run_api(api, srv.client(), timeout=30, open_timeout=5)
    assert not out.started
    if api in ("async", "blocking"):
        err = out.error
        assert isinstance(err, expected), repr(err)
        assert type(err).__module__ == "deepgram_agent.exceptions"
        if isinstance(err, ConnectionClosedError):  # the reader saw it, or the Settings write
            assert "before sending" in str(err) or "send failed" in str(err), str(err)
    else:
        names = out.names()
        assert names[-1] == "Close" and names.count("Close") == 1, names
        errors = [e for n, e in out.items if n == "Error"]
        assert len(errors) == 1, names
        assert names.index("Error") < names.index("Close")
        assert errors[0].code.startswith("CLIENT_"), errors[0]


# ----------------------------------------------------------------------------- bad credentials

BAD_SECRETS = {
    "trailing newline": ("abc123\n", "U+000A", "at the end"),
    "carriage return inside": ("abc\r123", "U+000D", "at position 4"),
    "a tab": ("abc\t123", "U+0009", "at position 4"),
    "not Latin-1": ("abc\u2713", "U+2713", "CHECK MARK"),
}


@pytest.mark.anyio
@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("case", list(BAD_SECRETS))
async def test_a_key_with_a_bad_character_is_a_clear_error_naming_it(api: str, case: str) -> None:
    secret, char, where = BAD_SECRETS[case]
    with HostileServer(close_after_welcome) as srv:
        out = await run_api(api, srv.client(key=secret), timeout=20)
        assert not srv.requests  # nothing was sent
    if api in ("async", "blocking"):
        assert isinstance(out.error, AuthenticationError), repr(out.error)
        text = str(out.error)
    else:
        errors = [e for n, e in out.items if n == "Error"]
        assert [n for n, _ in out.items] == ["Error", "Close"]
        assert errors[0].code == "CLIENT_AUTHENTICATION_FAILED"
        text = errors[0].description
    assert char in text and where in text and "strip" in text, text
    assert "injection" not in text.lower()
    assert secret.strip() not in text


def test_a_token_and_an_environment_key_with_a_newline_are_named_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DEEPGRAM_API_KEY", "from-env\n")
    with pytest.raises(AuthenticationError, match=r"API key.*U\+000A.*at the end"):
        DeepgramClient(base_url="ws://127.0.0.1:9").agent.connect_sync(SETTINGS)
    client = DeepgramClient(access_token="jwt.jwt.jwt\r\n", base_url="ws://127.0.0.1:9")
    with pytest.raises(AuthenticationError, match=r"access token.*U\+000D"):
        client.agent.connect_sync(SETTINGS)


@pytest.mark.anyio
@pytest.mark.parametrize("api", APIS)
async def test_a_bad_character_in_extra_headers_is_a_clear_error(api: str) -> None:
    with HostileServer(close_after_welcome) as srv:
        out = await run_api(
            api, srv.client(), timeout=20, extra_headers={"X-Trace": "abc\ndef-secret"}
        )
        assert not srv.requests
    if api in ("async", "blocking"):
        assert isinstance(out.error, ValueError), repr(out.error)
        text = str(out.error)
    else:
        errors = [e for n, e in out.items if n == "Error"]
        assert [n for n, _ in out.items] == ["Error", "Close"], out.names()
        text = errors[0].description
    assert "X-Trace" in text and "U+000A" in text, text
    assert "def-secret" not in text and "injection" not in text.lower()


# ----------------------------------------------------------------------------- send_audio types

NOT_AUDIO: list[Any] = [3200, None, "hello", 1.5, [1, 2, 3], {"audio": b"x"}]


async def count_audio(peer: Peer) -> None:
    await peer.ready()
    await peer.drain()


@pytest.mark.anyio
@pytest.mark.parametrize("reconnect", [False, True], ids=["plain", "reconnect"])
async def test_send_audio_with_something_else_is_a_type_error_async(reconnect: bool) -> None:
    with HostileServer(count_audio) as srv:
        async with srv.client().agent.connect(SETTINGS, reconnect=reconnect) as conn:
            for value in NOT_AUDIO:
                with pytest.raises(TypeError, match=type(value).__name__):
                    await conn.send_audio(value)
            await conn.send_audio(b"\x00\x01")  # the connection is fine
            await conn.send(m.KeepAlive())
        srv.wait(lambda: srv.peers[0].closed_at is not None)
        peer = srv.peers[0]
    assert (peer.audio_frames, peer.audio_bytes) == (1, 2)


def test_send_audio_with_something_else_is_a_type_error_blocking() -> None:
    with HostileServer(count_audio) as srv:
        with srv.client().agent.connect_sync(SETTINGS) as conn:
            for value in NOT_AUDIO:
                with pytest.raises(TypeError, match=type(value).__name__):
                    conn.send_audio(value)
            conn.send_audio(b"\x00\x01")
        srv.wait(lambda: srv.peers[0].closed_at is not None)
        peer = srv.peers[0]
    assert (peer.audio_frames, peer.audio_bytes) == (1, 2)


@pytest.mark.anyio
@pytest.mark.parametrize("api", ["callbacks", "async_callbacks"])
async def test_send_audio_with_something_else_returns_false_in_the_callback_api(
    api: str, caplog: pytest.LogCaptureFixture
) -> None:
    # v4 semantics for the classic clients: False and an ERROR log line naming the type;
    # nothing is sent and no Error event is emitted (nothing happened on the wire).
    results: list[tuple[Any, bool]] = []

    async def exercise(conn: Any) -> None:
        for value in NOT_AUDIO:
            # send() takes a str or a dict as a message (v4): those are not misuse there.
            methods = [conn.send_audio] + ([] if isinstance(value, str | dict) else [conn.send])
            for method in methods:
                outcome = method(value)
                if asyncio.iscoroutine(outcome):
                    outcome = await outcome
                results.append((value, outcome))
        ok = conn.send_audio(b"\x00\x01")
        if asyncio.iscoroutine(ok):
            ok = await ok
        results.append((b"\x00\x01", ok))
        done = conn.finish()
        if asyncio.iscoroutine(done):
            await done

    def exercise_blocking(conn: Any) -> None:
        asyncio.run(exercise(conn))

    with caplog.at_level(logging.ERROR, logger="deepgram_agent"):
        with HostileServer(count_audio) as srv:
            out = await run_api(
                api,
                srv.client(),
                on_ready=exercise if api == "async_callbacks" else exercise_blocking,
            )
            srv.wait(lambda: srv.peers[0].closed_at is not None)
            peer = srv.peers[0]
    assert [ok for _, ok in results] == [False] * (len(results) - 1) + [True]
    assert len(results) == 2 * len(NOT_AUDIO) - 2 + 1
    assert "Error" not in out.names()
    assert (peer.audio_frames, peer.audio_bytes) == (1, 2)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for value in NOT_AUDIO:
        if value is not None:
            assert type(value).__name__ in logged
    assert "got None" in logged


# ----------------------------------------------------------------------------- re-asked calls


def re_asked_call(started: threading.Event, gate: threading.Event) -> Any:
    request = {
        "type": "FunctionCallRequest",
        "functions": [{"id": "call-7", "name": "slow", "arguments": "{}", "client_side": True}],
    }

    async def script(peer: Peer) -> None:
        await peer.ready()
        await peer.send(request)
        if peer.index == 0:
            # The tool is running on the client: drop the session under it.
            await asyncio.to_thread(started.wait, scaled(10))
            peer.abort()
            return
        # The resumed session asked again, same id (above): let the tool finish now.
        gate.set()
        await peer.next_json("FunctionCallResponse")
        await peer.send({"type": "AgentAudioDone"})
        await peer.drain()

    return script


@pytest.mark.anyio
@pytest.mark.parametrize("api", APIS)
async def test_a_call_re_asked_by_a_resumed_session_is_answered_once_on_it(api: str) -> None:
    started = threading.Event()
    gate = threading.Event()
    tools = Tools()

    @tools.tool
    def slow() -> str:
        """Takes a while."""
        started.set()
        gate.wait(scaled(10))
        return "done"

    with HostileServer(re_asked_call(started, gate)) as srv:
        out = await run_api(
            api,
            srv.client(),
            tools=tools,
            reconnect=ReconnectPolicy(initial_delay=0.05, jitter=0.0),
            stop=lambda msg: isinstance(msg, m.AgentAudioDone),
        )
        srv.wait(lambda: len(srv.peers) == 2 and srv.peers[1].closed_at is not None)
        answers = srv.frames_of("FunctionCallResponse")
    assert out.error is None, out.error
    assert len(answers) == 1, answers
    index, answer = answers[0]
    assert index == 1 and answer["id"] == "call-7"
    assert answer["content"] == "done"
    # The tool ran once (the re-ask reached the still running call) or twice (it finished
    # during the outage: that answer was stale and never sent; the re-ask ran it again).
    assert 1 <= len(tools.calls) <= 2 and tools.calls[-1].outcome == "ok"
