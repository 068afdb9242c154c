"""Liveness: a hostile server cannot wedge a session, storm the client, or keep it from exiting.

* A silent server (TCP open, no frames, no pongs, nothing read) is detected by the WebSocket
  heartbeat within 1.5x ``ping_interval``, with a clear error, in every API.
* A server that drops every session right after ``SettingsApplied`` does not get a fresh
  session every few hundred milliseconds forever: a session only counts as healthy after
  ``ReconnectPolicy.healthy_after``, so attempts, backoff and the policy's caps run on.
* The blocking facade's shared loop thread survives user code raising ``SystemExit`` or
  ``KeyboardInterrupt`` on it; if it ever dies, every blocking connection fails at once with
  ``LoopThreadDied`` instead of hanging.
* A script that exits with ten unclosed blocking connections to a stalled server exits
  within about two seconds.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from deepgram_agent import ConnectionClosedError, ReconnectPolicy, Tools
from deepgram_agent import messages as m

from .conftest import scaled
from .hostile import APIS, KEY, SETTINGS, HostileServer, Outcome, Peer, run_api

ROOT = Path(__file__).resolve().parent.parent

# ----------------------------------------------------------------------------- silent server


async def silent_after_ready(peer: Peer) -> None:
    await peer.ready()
    peer.stop_reading()  # no pings read, so none answered; nothing sent
    await peer.hold()


def _end_error(api: str, out: Outcome) -> str:
    """The text of the error that ended the session, per API."""
    if api in ("async", "blocking"):
        assert isinstance(out.error, ConnectionClosedError), repr(out.error)
        assert out.error.code == 1006
        return str(out.error)
    errors = [e for n, e in out.items if n == "Error"]
    assert len(errors) == 1 and out.names()[-1] == "Close", out.names()
    assert errors[0].code == "CLIENT_CONNECTION_LOST"
    return str(errors[0].description)


async def _silent_session(api: str, srv: HostileServer, ping: float | None) -> tuple[str, float]:
    marks: list[float] = []
    started = time.monotonic()
    options: dict[str, Any] = {"on_ready": lambda _conn: marks.append(time.monotonic())}
    if ping is not None:
        options["ping_interval"] = ping
    out = await run_api(api, srv.client(), timeout=60, **options)
    detected = started + out.elapsed - marks[0]
    return _end_error(api, out), detected


@pytest.mark.anyio
@pytest.mark.parametrize("api", APIS)
async def test_a_silent_server_is_detected_by_the_heartbeat(api: str, record_property: Any) -> None:
    ping = 1.0
    with HostileServer(silent_after_ready, autoping=False) as srv:
        text, detected = await _silent_session(api, srv, ping)
    print(f"\nsilent server ({api}, ping_interval={ping:g} s): detected after {detected:.2f} s")
    record_property("detect_seconds", round(detected, 2))
    assert "stopped answering" in text and "ping_interval=1.0" in text, text
    assert ping <= detected < ping * 1.5 + scaled(1.0)


@pytest.mark.anyio
@pytest.mark.slow
async def test_a_silent_server_is_detected_with_the_default_ping_interval(
    record_property: Any,
) -> None:
    # All four APIs at once against one silent server: one default interval for the lot.
    import asyncio

    with HostileServer(silent_after_ready, autoping=False) as srv:
        results = await asyncio.gather(*(_silent_session(api, srv, None) for api in APIS))
    for api, (text, detected) in zip(APIS, results, strict=True):
        print(
            f"\nsilent server ({api}, default ping_interval=10 s): detected after {detected:.2f} s"
        )
        record_property(f"detect_seconds_{api}", round(detected, 2))
        assert "ping_interval=10.0" in text, text
        # aiohttp rounds timers of 5 s and more up to the next whole second.
        assert 10.0 <= detected < 17.0 + scaled(1.0)


# ----------------------------------------------------------------------------- reconnect storms


def drop_after_ready(delay: float = 0.1) -> Any:
    async def script(peer: Peer) -> None:
        await peer.ready()
        import asyncio

        await asyncio.sleep(delay)  # the server's scripted behaviour, not synchronisation
        peer.abort()

    return script


FAST = ReconnectPolicy(initial_delay=0.02, max_delay=0.2, jitter=0.0)


def _reconnecting(api: str, out: Outcome) -> list[m.Reconnecting]:
    return out.of(m.Reconnecting)


@pytest.mark.anyio
@pytest.mark.parametrize("api", APIS)
async def test_a_server_dropping_every_session_at_once_gets_no_storm(api: str) -> None:
    # Short delays (the test's, not the default's), default caps: max_attempts=5 per outage,
    # and no session lives healthy_after (5 s), so the outage never restarts.
    with HostileServer(drop_after_ready()) as srv:
        out = await run_api(api, srv.client(), timeout=30, reconnect=FAST)
        sessions = len(srv.peers)
    attempts = [r.attempt for r in _reconnecting(api, out)]
    delays = [r.delay for r in _reconnecting(api, out)]
    assert sessions == 1 + FAST.max_attempts, sessions
    assert attempts == list(range(1, FAST.max_attempts + 1)), attempts
    assert delays == sorted(delays) and delays[-1] > delays[0], delays  # backoff grows
    text = _end_error(api, out)
    assert "gave up after 5 attempt(s)" in text, text


@pytest.mark.anyio
async def test_max_total_time_holds_across_short_sessions() -> None:
    policy = ReconnectPolicy(
        initial_delay=0.01, max_delay=0.05, jitter=0.0, max_attempts=10_000, max_total_time=1.5
    )
    with HostileServer(drop_after_ready()) as srv:
        started = time.monotonic()
        out = await run_api("async", srv.client(), timeout=30, reconnect=policy)
        elapsed = time.monotonic() - started
        sessions = len(srv.peers)
    assert isinstance(out.error, ConnectionClosedError) and "gave up" in str(out.error)
    # Each session lives >= 0.1 s, so at most ~1.5 / 0.11 of them fit in max_total_time.
    assert 2 <= sessions <= 1 + 1.5 / 0.11 + 1, sessions
    assert elapsed < scaled(1.5 + 3.0)


@pytest.mark.anyio
async def test_a_session_that_lived_healthy_after_starts_a_new_outage() -> None:
    # The other side of the rule: sessions that live past healthy_after are healthy, so each
    # drop is a new outage with a fresh attempt count (a flaky but working server).
    policy = ReconnectPolicy(initial_delay=0.01, jitter=0.0, max_attempts=1, healthy_after=0.2)
    with HostileServer(drop_after_ready(0.4)) as srv:
        out = await run_api(
            "async",
            srv.client(),
            timeout=30,
            reconnect=policy,
            stop=lambda msg: isinstance(msg, m.Reconnected) and msg.request_id == "hostile-3",
        )
    assert out.error is None, out.error
    assert [r.attempt for r in out.of(m.Reconnecting)] == [1, 1, 1]


@pytest.mark.slow
@pytest.mark.anyio
async def test_sessions_opened_under_a_drop_after_ready_server_with_the_default_policy(
    record_property: Any,
) -> None:
    with HostileServer(drop_after_ready()) as srv:
        started = time.monotonic()
        out = await run_api("async", srv.client(), timeout=60, reconnect=True)
        gave_up = time.monotonic() - started
        sessions = len(srv.peers)
    print(f"\ndrop-after-ready, default policy: {sessions} sessions, gave up after {gave_up:.1f} s")
    record_property("sessions", sessions)
    record_property("gave_up_seconds", round(gave_up, 1))
    assert sessions == 6
    assert isinstance(out.error, ConnectionClosedError) and "gave up" in str(out.error)
    assert out.error.__cause__ is not None


# ----------------------------------------------------------------------------- the loop thread


def call_and_wait_for_the_answer(name: str) -> Any:
    async def script(peer: Peer) -> None:
        await peer.ready()
        await peer.send(
            {
                "type": "FunctionCallRequest",
                "functions": [
                    {"id": f"call-{name}", "name": name, "arguments": "{}", "client_side": True}
                ],
            }
        )
        answer = await peer.next_json("FunctionCallResponse")
        await peer.send({"type": "ConversationText", "role": "assistant", "content": "after"})
        await peer.send({"type": "AgentAudioDone"})
        peer.received.append({"type": "answered", "content": answer["content"]})
        await peer.drain()

    return script


@pytest.mark.parametrize("raised", [SystemExit, KeyboardInterrupt])
def test_an_async_tool_raising_systemexit_does_not_kill_the_loop_thread(
    raised: type[BaseException],
) -> None:
    from deepgram_agent.sync import loop_thread

    tools = Tools()

    @tools.tool
    async def boom() -> str:
        """Explodes."""
        raise raised("from the tool")

    with HostileServer(call_and_wait_for_the_answer("boom")) as srv:
        client = srv.client()
        lt = loop_thread()
        bystander = client.agent.connect_sync(SETTINGS)  # another blocking connection
        try:
            with client.agent.connect_sync(SETTINGS, tools=tools) as conn:
                got = []
                for msg in conn:
                    got.append(msg)
                    if isinstance(msg, m.AgentAudioDone):
                        break
            assert any(isinstance(x, m.ConversationText) and x.content == "after" for x in got)
            ((_, answer),) = srv.frames_of("FunctionCallResponse")
            content = json.loads(answer["content"])
            assert raised.__name__ in content["error"]
            assert lt.thread.is_alive() and lt.dead is None and loop_thread() is lt
            # The other connection still works.
            bystander.inject_user_message("still there?")
            srv.wait(
                lambda: any(f.get("content") == "still there?" for f in srv.peers[0].received),
                what="the bystander's message",
            )
            assert bystander.ready
            ((record,),) = [tools.calls]
            assert record.outcome == "error"
        finally:
            bystander.close()


@pytest.mark.parametrize("kind", ["async", "plain"])
def test_a_handler_raising_systemexit_in_the_callback_api_is_an_error_event(kind: str) -> None:
    # The blocking callback client: a coroutine handler runs on the SDK's loop thread, a
    # plain one on the dispatcher thread; neither may stop delivering events.
    from deepgram_agent.sync import loop_thread

    async def script(peer: Peer) -> None:
        await peer.ready()
        await peer.send({"type": "ConversationText", "role": "assistant", "content": "one"})
        await peer.send({"type": "ConversationText", "role": "assistant", "content": "two"})
        await peer.drain()

    with HostileServer(script) as srv:
        lt = loop_thread()
        conn = srv.client().agent.websocket.v("1")
        texts: list[str] = []
        errors: list[Any] = []
        done = threading.Event()

        def on_text(_client: Any, event: Any) -> None:
            texts.append(event.content)
            if event.content == "one":
                raise SystemExit("from a handler")
            done.set()

        async def on_text_async(_client: Any, event: Any) -> None:
            on_text(_client, event)

        conn.on("ConversationText", on_text_async if kind == "async" else on_text)
        conn.on("Error", lambda _c, e: errors.append(e))
        assert conn.start(SETTINGS)
        try:
            assert done.wait(scaled(10)), (texts, errors)
        finally:
            conn.finish()
    assert texts == ["one", "two"]
    assert [e.code for e in errors] == ["CLIENT_HANDLER_ERROR"]
    assert "SystemExit" in errors[0].description
    assert lt.thread.is_alive() and lt.dead is None


_LOOP_DIES = textwrap.dedent(
    """
    import json, sys, threading, time
    from deepgram_agent import DeepgramClient
    from deepgram_agent.sync import LoopThreadDied, loop_thread
    from tests.hostile import SETTINGS

    url, key = sys.argv[1:]
    client = DeepgramClient(api_key=key, base_url=url)
    reader = client.agent.connect_sync(SETTINGS)     # a thread waits in 'for msg in conn'
    sender = client.agent.connect_sync(SETTINGS, send_timeout=None, keepalive_interval=None)
    out = {}

    def read():
        t = time.monotonic()
        try:
            for _ in reader:
                pass
            out["reader"] = "ended quietly"
        except BaseException as exc:
            out["reader"] = type(exc).__name__ + ": " + str(exc)
        out["reader_after"] = time.monotonic() - t

    def send():  # to a server that stopped reading: stuck for good (send_timeout=None)
        t = time.monotonic()
        try:
            while True:
                sender.send_audio(b"\\x00" * 64000)
        except BaseException as exc:
            out["sender"] = type(exc).__name__ + ": " + str(exc)
        out["sender_after"] = time.monotonic() - t

    threads = [threading.Thread(target=read), threading.Thread(target=send)]
    for t in threads:
        t.start()
    time.sleep(1.0)  # let the sender get stuck and the reader wait
    killed = time.monotonic()
    lt = loop_thread()
    lt.loop.call_soon_threadsafe(lt.loop.stop)   # the loop thread dies
    for t in threads:
        t.join(20)
    out["joined_after_kill"] = time.monotonic() - killed
    t = time.monotonic()
    try:
        reader.inject_user_message("hello?")
        out["later_call"] = "returned"
    except LoopThreadDied as exc:
        out["later_call"] = "LoopThreadDied: " + str(exc)
    out["later_call_seconds"] = time.monotonic() - t
    fresh = client.agent.connect_sync(SETTINGS)   # a new connection gets a new loop thread
    fresh.inject_user_message("hi")
    out["fresh_ready"] = fresh.ready
    fresh.close()
    print(json.dumps(out))
    """
)


def test_if_the_loop_thread_dies_every_blocking_connection_fails_fast() -> None:
    async def script(peer: Peer) -> None:
        await peer.ready()
        if peer.index == 1:
            peer.stop_reading()
        await peer.hold()

    with HostileServer(script) as srv:
        proc = subprocess.run(
            [sys.executable, "-c", _LOOP_DIES, srv.url, KEY],
            capture_output=True,
            text=True,
            timeout=scaled(60),
            check=False,
            cwd=str(ROOT),
        )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"\nloop thread killed: {out}")
    assert out["reader"].startswith("LoopThreadDied"), out
    assert out["sender"].startswith("LoopThreadDied"), out
    assert "open a new connection" in out["reader"]
    assert out["joined_after_kill"] < scaled(2.0), out
    assert out["later_call"].startswith("LoopThreadDied") and out["later_call_seconds"] < 0.5
    assert out["fresh_ready"] is True


# ----------------------------------------------------------------------------- exiting

_TEN_UNCLOSED = textwrap.dedent(
    """
    import sys
    from deepgram_agent import DeepgramClient
    from tests.hostile import SETTINGS

    url, key = sys.argv[1:]
    client = DeepgramClient(api_key=key, base_url=url)
    conns = [client.agent.connect_sync(SETTINGS) for _ in range(10)]
    for conn in conns:
        conn.inject_user_message("hi")
    print("leaving without close", flush=True)
    """
)


def test_ten_unclosed_blocking_connections_to_a_stalled_server_exit_promptly(
    record_property: Any,
) -> None:
    async def stalled(peer: Peer) -> None:
        await peer.ready()
        await peer.next_json("InjectUserMessage")
        peer.stop_reading()  # never sees the close frame, never answers it
        await peer.hold()

    with HostileServer(stalled) as srv:
        with subprocess.Popen(
            [sys.executable, "-c", _TEN_UNCLOSED, srv.url, KEY],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=str(ROOT),
        ) as proc:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            leaving = time.monotonic()
            _, err = proc.communicate(timeout=scaled(60))
            exit_seconds = time.monotonic() - leaving
        sessions = len(srv.peers)
    assert line.strip() == "leaving without close", err
    print(f"\n10 unclosed blocking connections to a stalled server: exit took {exit_seconds:.2f} s")
    record_property("exit_seconds", round(exit_seconds, 2))
    assert proc.returncode == 0, err
    assert sessions == 10
    assert exit_seconds < 2.0 + scaled(1.5), exit_seconds
    assert "Traceback" not in err, err
