"""Reconnect with context, proven against the emulator's fault injection."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import msgspec
import pytest

from deepgram_agent import (
    AgentWebSocketEvents,
    ConnectionClosedError,
    DeepgramTimeoutError,
)
from deepgram_agent import (
    messages as m,
)
from deepgram_agent._reconnect import ConversationHistory, ReconnectPolicy
from deepgram_agent.testing import AgentEmulator, Faults, Rule, Script, ToolCall

from .conftest import KEY, SETTINGS, client_for, of, scaled, until

FAST = ReconnectPolicy(initial_delay=0.01, max_delay=0.05, jitter=0.0, max_attempts=4)


@pytest.mark.anyio
async def test_three_drops_mid_reply_resume_with_history_each_time() -> None:
    drops = 3
    faults = lambda i: Faults(drop_after=9) if i < drops else None  # noqa: E731
    async with AgentEmulator(api_key=KEY, realtime_audio=False, faults=faults) as emu:
        async with client_for(emu).agent.connect(SETTINGS, reconnect=FAST) as conn:
            seen: list[Any] = []
            for turn in range(drops):
                await conn.inject_user_message(f"turn {turn}")
                done = await until(conn, of(m.Reconnected), seen)
                assert done.attempt == 1 and done.request_id
            await conn.inject_user_message("final turn")
            await until(conn, of(m.AgentAudioDone), seen)
            assert conn.statistics().reconnects == drops
            assert sum(isinstance(x, m.Reconnecting) for x in seen) == drops
            assert len(emu.sessions) == drops + 1
            # Each new session was given the conversation so far, and no greeting.
            for k in range(1, drops + 1):
                sent = emu.sessions[k].settings
                assert sent is not None
                history = sent["agent"]["context"]["messages"]
                users = [h["content"] for h in history if h.get("role") == "user"]
                assert users == [f"turn {j}" for j in range(k)]
                assert "greeting" not in sent["agent"]
            said = [
                x.content for x in seen if isinstance(x, m.ConversationText) and x.role == "user"
            ]
            assert said == ["turn 0", "turn 1", "turn 2", "final turn"]


@pytest.mark.anyio
async def test_greeting_is_not_repeated_and_context_keeps_prior_messages() -> None:
    faults = lambda i: Faults(drop_after=6) if i == 0 else None  # noqa: E731
    prior = [{"type": "History", "role": "user", "content": "earlier question"}]
    settings = dict(
        SETTINGS, agent=dict(SETTINGS["agent"], greeting="Hello!", context={"messages": prior})
    )
    async with AgentEmulator(api_key=KEY, realtime_audio=False, faults=faults) as emu:
        async with client_for(emu).agent.connect(settings, reconnect=FAST) as conn:
            seen: list[Any] = []
            await until(conn, of(m.Reconnected), seen)
            resent = emu.sessions[1].settings
            assert resent is not None and "greeting" not in resent["agent"]
            messages = resent["agent"]["context"]["messages"]
            assert messages[0] == prior[0]
            assert {"type": "History", "role": "assistant", "content": "Hello!"} in messages
            assert emu.sessions[0].settings is not None
            assert emu.sessions[0].settings["agent"]["greeting"] == "Hello!"


@pytest.mark.anyio
async def test_audio_and_messages_sent_during_the_outage_arrive_in_order() -> None:
    faults = lambda i: Faults(drop_after=2) if i == 0 else None  # noqa: E731
    policy = ReconnectPolicy(initial_delay=0.3, jitter=0.0, max_attempts=3)
    async with AgentEmulator(api_key=KEY, realtime_audio=False, faults=faults) as emu:
        async with client_for(emu).agent.connect(SETTINGS, reconnect=policy) as conn:
            seen: list[Any] = []
            await until(conn, of(m.Reconnecting), seen)
            chunk = b"\x00\x00" * 320
            for _ in range(10):
                await conn.send_audio(chunk)
            await conn.update_prompt("sent while offline")
            await conn.keep_alive()
            assert conn.statistics().pending_before_ready == 12
            await until(conn, of(m.Reconnected), seen)
            session = emu.sessions[1]
            await session.wait_for_received("KeepAlive", timeout=scaled(5))
            types = [f["type"] for f in session.received_json()]
            assert types[:3] == ["Settings", "UpdatePrompt", "KeepAlive"]
            assert session.audio_bytes_received == 10 * len(chunk)
            assert session.state.prompt == "sent while offline"


@pytest.mark.anyio
async def test_outage_audio_is_bounded_and_drops_are_counted() -> None:
    faults = lambda i: Faults(drop_after=2) if i == 0 else None  # noqa: E731
    # 0.01 s of 16 kHz linear16 = 320 bytes kept at most.
    policy = ReconnectPolicy(initial_delay=0.3, jitter=0.0, buffer_seconds=0.01)
    async with AgentEmulator(api_key=KEY, realtime_audio=False, faults=faults) as emu:
        async with client_for(emu).agent.connect(SETTINGS, reconnect=policy) as conn:
            seen: list[Any] = []
            await until(conn, of(m.Reconnecting), seen)
            for i in range(5):
                await conn.send_audio(bytes([i]) * 160)
            assert conn.statistics().dropped_before_ready == 3
            await until(conn, of(m.Reconnected), seen)
            await conn.keep_alive()
            session = emu.sessions[1]
            await session.wait_for_received("KeepAlive", timeout=scaled(5))
            assert session.audio_bytes_received == 320


@pytest.mark.anyio
async def test_giving_up_lists_what_was_not_sent() -> None:
    faults = lambda i: Faults(drop_after=2) if i == 0 else Faults(refuse_status=503)  # noqa: E731
    policy = ReconnectPolicy(initial_delay=0.05, jitter=0.0, max_attempts=2)
    async with AgentEmulator(api_key=KEY, faults=faults) as emu:
        async with client_for(emu).agent.connect(SETTINGS, reconnect=policy) as conn:
            seen: list[Any] = []
            await until(conn, of(m.Reconnecting), seen)
            await conn.update_prompt("never delivered")
            await conn.send_audio(b"\x01\x00" * 50)
            with pytest.raises(ConnectionClosedError) as info:
                await until(conn, lambda _: False, seen)
            assert "gave up after 2 attempt(s)" in str(info.value)
            assert "UpdatePrompt" in str(info.value) and info.value.unsent == ["UpdatePrompt"]  # type: ignore[attr-defined]
            assert sum(isinstance(x, m.Reconnecting) for x in seen) == 2
            with pytest.raises(ConnectionClosedError):
                await conn.update_prompt("after giving up")


@pytest.mark.anyio
async def test_never_reconnects_after_an_authentication_failure() -> None:
    faults = lambda i: Faults(drop_after=2) if i == 0 else Faults(refuse_status=401)  # noqa: E731
    async with AgentEmulator(api_key=KEY, faults=faults) as emu:
        async with client_for(emu).agent.connect(SETTINGS, reconnect=FAST) as conn:
            seen: list[Any] = []
            with pytest.raises(ConnectionClosedError) as info:
                await until(conn, lambda _: False, seen)
            assert "gave up after 1 attempt(s)" in str(info.value)
            assert info.value.__cause__ is not None and "401" in str(info.value.__cause__)
            assert len(emu.sessions) == 2


@pytest.mark.anyio
async def test_server_going_away_error_reconnects_even_on_a_normal_close() -> None:
    async with AgentEmulator(api_key=KEY) as emu:
        async with client_for(emu).agent.connect(SETTINGS, reconnect=FAST) as conn:
            session = await emu.wait_for_session(timeout=scaled(5))
            seen: list[Any] = []
            await until(conn, of(m.SettingsApplied), seen)
            await session.send(m.Error(code="SERVER_GOING_AWAY", description="draining"))
            await session.close(1000)
            err = await until(conn, of(m.Error), seen)
            assert err.code == "SERVER_GOING_AWAY"
            await until(conn, of(m.Reconnected), seen)
            assert len(emu.sessions) == 2


@pytest.mark.anyio
async def test_idle_timeout_does_not_reconnect_unless_asked() -> None:
    async with AgentEmulator(api_key=KEY, idle_timeout=0.2) as emu:
        async with client_for(emu).agent.connect(
            SETTINGS, reconnect=FAST, keepalive_interval=None
        ) as conn:
            kinds = [type(x).__name__ async for x in conn]
            assert kinds[-1] == "Error" and "Reconnecting" not in kinds
            assert len(emu.sessions) == 1


@pytest.mark.anyio
async def test_pending_call_of_the_dead_session_is_never_answered_on_the_new_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    script = Script(
        rules=[Rule(match="time", tool_calls=[ToolCall(name="get_time", id="call_old")])]
    )
    # Frames: Welcome, SettingsApplied, ConversationText, History, FunctionCallRequest (5th):
    # then the drop (no EndOfThought without "experimental": true, as on the real server).
    faults = lambda i: Faults(drop_after=5) if i == 0 else None  # noqa: E731
    async with AgentEmulator(
        api_key=KEY, realtime_audio=False, script=script, faults=faults
    ) as emu:
        async with client_for(emu).agent.connect(SETTINGS, reconnect=FAST) as conn:
            await conn.inject_user_message("what time is it")
            seen: list[Any] = []
            req = await until(conn, of(m.FunctionCallRequest), seen)
            assert req.call_id == "call_old"
            await until(conn, of(m.Reconnected), seen)
            assert conn.pending_function_calls == {}
            with caplog.at_level(logging.WARNING, logger="deepgram_agent"):
                await conn.send_function_call_response(
                    id="call_old", name="get_time", content="noon"
                )
            await conn.keep_alive()
            await emu.sessions[1].wait_for_received("KeepAlive", timeout=scaled(5))
            assert emu.sessions[1].received_json("FunctionCallResponse") == []
            assert conn.statistics().stale_responses_dropped == 1
            assert "replaced" in caplog.text


@pytest.mark.anyio
async def test_close_during_reconnect_returns_promptly_and_ends_quietly() -> None:
    faults = lambda i: Faults(drop_after=2) if i == 0 else None  # noqa: E731
    slow = ReconnectPolicy(initial_delay=30.0, jitter=0.0)
    async with AgentEmulator(api_key=KEY, faults=faults) as emu:
        conn = await client_for(emu).agent.connect(SETTINGS, reconnect=slow)
        seen: list[Any] = []
        await until(conn, of(m.Reconnecting), seen)
        async with asyncio.timeout(scaled(3)):
            await conn.close()
        rest = [x async for x in conn]
        assert rest == []
        assert conn.closed and len(emu.sessions) == 1


def test_callback_api_sees_reconnect_events_and_one_close() -> None:
    faults = lambda i: Faults(drop_after=2) if i == 0 else None  # noqa: E731
    with AgentEmulator.run_in_thread(api_key=KEY, faults=faults) as emu:
        dg = client_for(emu).agent.websocket.v("1")
        events: list[str] = []
        back = threading.Event()
        dg.on(
            AgentWebSocketEvents.Reconnecting,
            lambda self, e: events.append(f"Reconnecting {e.attempt}"),
        )
        dg.on(
            AgentWebSocketEvents.Reconnected,
            lambda self, e: (events.append("Reconnected"), back.set()),
        )
        dg.on(AgentWebSocketEvents.Close, lambda self, e: events.append("Close"))
        assert dg.start(SETTINGS, reconnect=FAST)
        assert back.wait(scaled(10))
        dg.close()
        assert events == ["Reconnecting 1", "Reconnected", "Close"]


def test_recorder_prefers_history_and_falls_back_to_conversation_text() -> None:
    rec = ConversationHistory()
    rec.on_conversation_text(m.ConversationText(role="user", content="hi"))
    assert list(rec.items) == [{"type": "History", "role": "user", "content": "hi"}]
    rec.on_history(m.History(role="user", content="hi"))
    rec.on_conversation_text(m.ConversationText(role="assistant", content="ignored now"))
    rec.on_history(
        m.History(
            function_calls=[
                m.HistoryFunctionCallItem(
                    id="c1", name="f", arguments="{}", response="1", client_side=True
                )
            ]
        )
    )
    assert list(rec.items) == [
        {"type": "History", "role": "user", "content": "hi"},
        {
            "type": "History",
            "function_calls": [
                {"id": "c1", "name": "f", "client_side": True, "arguments": "{}", "response": "1"}
            ],
        },
    ]
    out = rec.resume_settings({"type": "Settings", "audio": {}, "agent": {"greeting": "x"}})
    assert out["agent"] == {"context": {"messages": list(rec.items)}}
    assert (
        rec.resume_settings({"type": "Settings", "audio": {}, "agent": "uuid"})["agent"] == "uuid"
    )


def test_policy_backoff_is_bounded_with_jitter() -> None:
    import random

    p = ReconnectPolicy(initial_delay=0.5, multiplier=2, max_delay=3, jitter=0.2)
    rng = random.Random(7)
    delays = [p.delay(i, rng) for i in range(1, 7)]
    assert 0.4 <= delays[0] <= 0.6 and 0.8 <= delays[1] <= 1.2
    assert all(d <= 3 * 1.2 for d in delays)
    assert not p.reconnects_after("CLIENT_MESSAGE_TIMEOUT")
    assert ReconnectPolicy(on_idle_timeout=True).reconnects_after("CLIENT_MESSAGE_TIMEOUT")
    assert p.reconnects_after("SERVER_GOING_AWAY") and not p.reconnects_after("INVALID_SETTINGS")


@pytest.mark.anyio
async def test_unacknowledged_injection_is_sent_again_exactly_once() -> None:
    # The server drops right after SettingsApplied: an injection sent then is either written to
    # the dying socket (never acknowledged, so sent again) or held; either way the new session
    # gets it exactly once and answers it.
    faults = lambda i: Faults(drop_after=2) if i == 0 else None  # noqa: E731
    async with AgentEmulator(api_key=KEY, realtime_audio=False, faults=faults) as emu:
        async with client_for(emu).agent.connect(SETTINGS, reconnect=FAST) as conn:
            await conn.inject_user_message("did you get this?")
            seen: list[Any] = []
            back = await until(conn, of(m.Reconnected), seen)
            reply = await until(
                conn, lambda x: isinstance(x, m.ConversationText) and x.role == "user", seen
            )
            assert reply.content == "did you get this?"
            injected = emu.sessions[1].received_json("InjectUserMessage")
            assert [i["content"] for i in injected] == ["did you get this?"]
            assert back.resent in ([], ["InjectUserMessage"])


@pytest.mark.anyio
async def test_runtime_updates_survive_a_reconnect() -> None:
    faults = lambda i: Faults(drop_after=4) if i == 0 else None  # noqa: E731
    async with AgentEmulator(api_key=KEY, realtime_audio=False, faults=faults) as emu:
        async with client_for(emu).agent.connect(SETTINGS, reconnect=FAST) as conn:
            await conn.update_prompt("You are a pirate.")
            await conn.update_speak({"provider": {"type": "deepgram", "model": "aura-2-luna-en"}})
            seen: list[Any] = []
            await until(conn, of(m.Reconnected), seen)
            resumed = emu.sessions[1].settings
            assert resumed is not None
            assert resumed["agent"]["think"]["prompt"] == "You are a pirate."
            assert resumed["agent"]["speak"] == {
                "provider": {"type": "deepgram", "model": "aura-2-luna-en"}
            }
            assert emu.sessions[1].state.prompt == "You are a pirate."


def test_history_applies_every_kind_of_update_and_tracks_agent_injections() -> None:
    rec = ConversationHistory()
    rec.on_update(m.UpdatePrompt(prompt="Be terse."))
    think = {"provider": {"type": "open_ai", "model": "gpt-4o"}, "prompt": "Be a pirate."}
    rec.on_update(m.UpdateThink(think=msgspec.convert(think, m.ThinkSettings)))
    listen = {"provider": {"type": "deepgram", "model": "nova-3"}}
    rec.on_update(m.UpdateListen(listen=msgspec.convert(listen, m.ListenSettings)))
    settings = {"type": "Settings", "audio": {}, "agent": {"think": {"prompt": "old"}}}
    agent = rec.resume_settings(settings)["agent"]
    assert agent["think"] == think  # the full replacement carries its own prompt
    assert agent["listen"] == listen

    rec.on_sent_injection(b"not json {")  # not an injection we can track: ignored
    rec.on_sent_injection(b'{"type":"InjectAgentMessage","message":"One moment."}')
    rec.on_sent_injection(b'{"type":"InjectUserMessage","content":"hello"}')
    rec.on_sent_injection(b'{"type":"InjectAgentMessage","message":"Still there?"}')
    rec.ack_refused(m.InjectionRefused(message="busy"))  # answers the oldest agent injection
    assert [text for _, text, _ in rec.unacked] == ["hello", "Still there?"]
    rec.ack_text(m.ConversationText(role="assistant", content="Still there? "))
    assert rec.take_unacked() == [b'{"type":"InjectUserMessage","content":"hello"}']
    assert not rec.unacked

    rec.on_conversation_text(
        m.ConversationText(role="assistant", content="filler", conversational_behavior="filler")
    )
    assert not rec.items  # a filler line is not part of the conversation to replay
    call = m.HistoryFunctionCallItem(
        id="c1", name="f", arguments="{}", response="1", thought_signature="sig"
    )
    rec.on_history(m.History(function_calls=[call]))
    assert rec.items[-1]["function_calls"][0]["thought_signature"] == "sig"
    assert rec.items[-1]["function_calls"][0]["client_side"] is True  # omitted: ours


@pytest.mark.anyio
@pytest.mark.parametrize("reconnect", [None, FAST], ids=["socket", "resuming"])
async def test_both_connection_kinds_offer_the_same_surface(
    reconnect: ReconnectPolicy | None, caplog: pytest.LogCaptureFixture
) -> None:
    async with AgentEmulator(api_key=KEY, realtime_audio=False) as emu:
        conn = await client_for(emu).agent.connect(SETTINGS, reconnect=reconnect)
        closed: list[Any] = []
        try:
            kind = "ResumingConnection" if reconnect else "SocketConnection"
            assert repr(conn).startswith(f"<{kind} ") and KEY not in repr(conn)
            assert conn.url == emu.agent_url and conn.ready
            assert conn.request_id == emu.sessions[0].request_id
            if reconnect is not None:
                assert conn.policy is FAST
            hooked: list[Any] = []
            conn.add_hook(None, hooked.append)
            conn.add_open_hook(lambda: 1 / 0)  # raises: logged, the session goes on

            def bad_close_hook(error: BaseException | None) -> None:
                raise RuntimeError("close hook bug")

            conn.add_close_hook(bad_close_hook)
            conn.add_close_hook(closed.append)
            await conn.send_raw({"type": "KeepAlive"})
            await conn.send_raw('{"type":"KeepAlive"}')
            await conn.send_raw(bytearray(b'{"type":"KeepAlive"}'))
            with pytest.raises(
                TypeError, match=r"send_raw\(\) takes a dict, str or bytes, not int"
            ):
                await conn.send_raw(5)  # type: ignore[arg-type]
            await conn.send_audio(b"")  # nothing to send
            await emu.sessions[0].wait_for_received("KeepAlive", 3, timeout=scaled(5))
            await conn.inject_user_message("hello")
            await until(conn, of(m.AgentAudioDone))
            assert any(isinstance(x, bytes) for x in hooked)
            assert any(isinstance(x, m.AgentAudioDone) for x in hooked)
            with pytest.raises(DeepgramTimeoutError, match="still open after"):
                await conn.wait_closed(0.01)
            waiter = asyncio.create_task(conn.wait_closed(scaled(5)))
        finally:
            await conn.close()
        await waiter  # woken by the close
        await conn.wait_closed(scaled(5))  # closed already: returns at once
        assert closed == [None] and not conn.ready and "closed" in repr(conn)
    assert "a close hook raised" in caplog.text
