"""The async core against the emulator over loopback: iteration, senders, errors, closing."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from deepgram_agent import (
    AuthenticationError,
    ConcurrencyError,
    ConnectionClosedError,
    ConnectionClosedOK,
    DeepgramApiError,
    DeepgramClient,
    DeepgramError,
    SettingsError,
    SettingsRejected,
)
from deepgram_agent import (
    messages as m,
)
from deepgram_agent.testing import AgentEmulator, Faults, Rule, Script, ToolCall

from .conftest import KEY, SETTINGS, client_for, collect_until, is_type, scaled


@pytest.mark.anyio
async def test_happy_path_async_iterator() -> None:
    async with AgentEmulator(api_key=KEY, realtime_audio=False) as emu:
        client = client_for(emu)
        async with client.agent.connect(SETTINGS) as conn:
            assert conn.request_id
            await conn.inject_user_message("Hello there")
            got = await collect_until(conn, is_type("AgentAudioDone"))
            kinds = [type(x).__name__ for x in got]
            assert kinds[0] == "Welcome" and kinds[1] == "SettingsApplied"
            texts = [x for x in got if isinstance(x, m.ConversationText)]
            assert texts[0].role == "user" and texts[0].text == "Hello there"
            assert any(t.role == "assistant" for t in texts)
            audio = [x for x in got if isinstance(x, bytes)]
            assert audio and all(len(a) > 0 for a in audio)
            # Without "experimental": true the real server sends no AgentStartedSpeaking
            # (docs/protocol.md 9.6): the assistant's text comes before its audio.
            assert "AgentStartedSpeaking" not in kinds
            first_reply = next(
                i
                for i, x in enumerate(got)
                if isinstance(x, m.ConversationText) and x.role == "assistant"
            )
            assert first_reply < kinds.index("bytes")
        assert conn.closed
        stats = conn.statistics()
        assert stats.messages_received >= 6
        assert stats.audio_frames_received == len(audio)


@pytest.mark.anyio
async def test_every_sender_reaches_the_server_as_the_right_frame() -> None:
    async with AgentEmulator(api_key=KEY, realtime_audio=False) as emu:
        async with client_for(emu).agent.connect(SETTINGS, keepalive_interval=None) as conn:
            session = await emu.wait_for_session(timeout=scaled(5))
            await conn.send_audio(b"\x00\x00" * 160)
            await conn.send_audio(b"")  # skipped: never an empty binary frame
            await conn.update_prompt("New prompt")
            await conn.update_speak({"provider": {"type": "deepgram", "model": "aura-2-luna-en"}})
            await conn.update_think(
                {"provider": {"type": "open_ai", "model": "gpt-4o"}, "prompt": "Think."}
            )
            await conn.update_listen({"provider": {"type": "deepgram", "model": "nova-3"}})
            await conn.inject_agent_message("Hi!", behavior="queue")
            await conn.keep_alive()
            await conn.send({"type": "InjectUserMessage", "content": "dict form"})
            await conn.send_raw({"type": "KeepAlive"})
            await session.wait_for_received("KeepAlive", count=2, timeout=scaled(5))
            frames = session.received_json()
            types = [f["type"] for f in frames]
            assert types == [
                "Settings",
                "UpdatePrompt",
                "UpdateSpeak",
                "UpdateThink",
                "UpdateListen",
                "InjectAgentMessage",
                "KeepAlive",
                "InjectUserMessage",
                "KeepAlive",
            ]
            assert frames[1] == {"type": "UpdatePrompt", "prompt": "New prompt"}
            assert frames[2]["speak"] == {
                "provider": {"type": "deepgram", "model": "aura-2-luna-en"}
            }
            assert frames[5] == {
                "type": "InjectAgentMessage",
                "message": "Hi!",
                "behavior": "queue",
            }
            assert frames[7] == {"type": "InjectUserMessage", "content": "dict form"}
            assert frames[0] == SETTINGS
            assert session.audio_bytes_received == 320
            assert conn.statistics().audio_frames_sent == 1


@pytest.mark.anyio
async def test_function_call_response_id_is_filled_from_the_pending_request() -> None:
    script = Script(
        rules=[
            Rule(
                match="time",
                tool_calls=[ToolCall(name="get_time", id="call_1")],
                reply="It is {result[get_time]}.",
            )
        ]
    )
    async with AgentEmulator(api_key=KEY, realtime_audio=False, script=script) as emu:
        async with client_for(emu).agent.connect(SETTINGS) as conn:
            await conn.inject_user_message("What time is it?")
            got = await collect_until(conn, is_type("FunctionCallRequest"))
            req = got[-1]
            assert isinstance(req, m.FunctionCallRequest)
            assert req.call_id == "call_1" and req.function_call is not None
            assert conn.pending_function_calls == {"call_1": "get_time"}
            await conn.send(m.FunctionCallResponse(name="get_time", content='"14:05"'))
            rest = await collect_until(conn, is_type("AgentAudioDone"))
            said = " ".join(x.content for x in rest if isinstance(x, m.ConversationText))
            assert "14:05" in said
            assert conn.pending_function_calls == {}
            session = emu.sessions[0]
            assert session.received_json("FunctionCallResponse")[0]["id"] == "call_1"
            with pytest.raises(DeepgramError, match="no pending FunctionCallRequest"):
                await conn.send_function_call_response(name="get_time", content={"t": 1})


@pytest.mark.anyio
async def test_settings_rejected_by_the_server_raises_with_code_and_description() -> None:
    async with AgentEmulator(api_key=KEY) as emu:
        raw = dict(
            SETTINGS,
            agent=dict(
                SETTINGS["agent"], listen={"provider": {"type": "deepgram", "model": "nova-3"}}
            ),
        )
        client = client_for(emu)
        # The escape hatch lets an unknown key through local validation; the server refuses it.
        from deepgram_agent.options import SettingsOptions

        opts = SettingsOptions.from_dict(raw)
        opts.extra = {"agent": {"bogus_key": 1}}
        with pytest.raises(SettingsRejected) as info:
            async with client.agent.connect(opts):
                pass
        assert info.value.code == "UNPARSABLE_CLIENT_MESSAGE"
        assert "agent.bogus_key" in info.value.description
        assert info.value.request_id


@pytest.mark.anyio
async def test_invalid_settings_fail_locally_before_any_connection() -> None:
    async with AgentEmulator(api_key=KEY) as emu:
        bad = dict(SETTINGS, agent={"listen": {"provider": "deepgram", "model": "nova-3"}})
        with pytest.raises(SettingsError) as info:
            async with client_for(emu).agent.connect(bad):
                pass
        assert info.value.path == "agent.listen.model"
        assert emu.sessions == []


@pytest.mark.anyio
async def test_wrong_key_is_an_authentication_error_without_the_key_in_it() -> None:
    async with AgentEmulator(api_key=KEY) as emu:
        client = DeepgramClient(api_key="wrong-secret-xyz", base_url=emu.url)
        with pytest.raises(AuthenticationError) as info:
            async with client.agent.connect(SETTINGS):
                pass
        assert info.value.status == 401
        assert "wrong-secret-xyz" not in str(info.value) and "wrong-secret-xyz" not in repr(
            info.value
        )
        assert "wrong-secret-xyz" not in repr(client)


@pytest.mark.anyio
async def test_missing_key_is_a_clear_error_at_connect_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DEEPGRAM_API_KEY", raising=False)
    client = DeepgramClient(base_url="ws://127.0.0.1:9")  # constructing without a key is fine
    with pytest.raises(AuthenticationError, match="DEEPGRAM_API_KEY"):
        async with client.agent.connect(SETTINGS):
            pass


@pytest.mark.anyio
async def test_refused_handshake_status_is_reported() -> None:
    async with AgentEmulator(
        api_key=KEY, faults=Faults(refuse_status=429, refuse_body="Too many sessions")
    ) as emu:
        with pytest.raises(DeepgramApiError) as info:
            async with client_for(emu).agent.connect(SETTINGS):
                pass
        assert info.value.status == 429
        assert not isinstance(info.value, AuthenticationError)
        assert "Too many sessions" in str(info.value)


@pytest.mark.anyio
async def test_abrupt_drop_raises_connection_closed_error_after_delivering_everything() -> None:
    async with AgentEmulator(api_key=KEY, realtime_audio=False, faults=Faults(drop_after=4)) as emu:
        async with client_for(emu).agent.connect(SETTINGS) as conn:
            await conn.inject_user_message("Hello")
            got: list[Any] = []
            with pytest.raises(ConnectionClosedError) as info:
                async with asyncio.timeout(scaled(10)):
                    async for msg in conn:
                        got.append(msg)
            assert info.value.code == 1006
            assert len(got) == 4  # Welcome, SettingsApplied and two more, nothing lost
            with pytest.raises(ConnectionClosedError):
                await conn.inject_user_message("too late")


@pytest.mark.anyio
async def test_server_close_with_error_code_is_abnormal() -> None:
    faults = Faults(close_after=2, close_code=1011, close_reason="internal")
    async with AgentEmulator(api_key=KEY, faults=faults) as emu:
        async with client_for(emu).agent.connect(SETTINGS) as conn:
            with pytest.raises(ConnectionClosedError) as info:
                await collect_until(conn, lambda _: False)
            assert info.value.code == 1011 and info.value.reason == "internal"


@pytest.mark.anyio
async def test_garbage_frames_become_unhandled_and_the_stream_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    faults = Faults(garbage_after=2, unknown_type_after=2, wrong_types_after=2, huge_frame_after=2)
    async with AgentEmulator(api_key=KEY, realtime_audio=False, faults=faults) as emu:
        async with client_for(emu).agent.connect(SETTINGS) as conn:
            with caplog.at_level(logging.WARNING, logger="deepgram_agent"):
                await conn.inject_user_message("still there?")
                got = await collect_until(conn, is_type("AgentAudioDone"))
            unhandled = [x for x in got if isinstance(x, m.Unhandled)]
            reasons = {(u.message_type, u.reason is None) for u in unhandled}
            assert ("", False) in reasons  # not JSON
            assert ("EmulatorSurprise", True) in reasons  # unknown type, well formed
            # A known type with fields of the wrong type still arrives as its type, repaired,
            # with the frame kept (it used to become Unhandled).
            repaired = [x for x in got if isinstance(x, m.ConversationText) and x.raw]
            assert (
                repaired
                and repaired[0].raw
                == b'{"type":"ConversationText","role":7,"content":["not","text"]}'
            )
            assert repaired[0].content == '["not","text"]' and repaired[0].role == "7"
            assert any("$.role" in r for r in repaired[0].wire_.repairs)  # type: ignore[union-attr]
            huge = [
                x for x in got if isinstance(x, m.ConversationText) and len(x.content) > 1_000_000
            ]
            assert huge, "the multi-megabyte frame was delivered"
            assert any(isinstance(x, m.ConversationText) and x.role == "assistant" for x in got)
            assert conn.statistics().unhandled_received == len(unhandled)
            assert "undecodable" in caplog.text


@pytest.mark.anyio
async def test_automatic_keepalive_prevents_the_idle_timeout() -> None:
    async with AgentEmulator(api_key=KEY, idle_timeout=0.6) as emu:
        async with client_for(emu).agent.connect(SETTINGS, keepalive_interval=0.2) as conn:
            session = await emu.wait_for_session(timeout=scaled(5))
            await session.wait_for_received("KeepAlive", count=6, timeout=scaled(10))
            assert not conn.closed
            assert conn.statistics().keepalives_sent >= 6


@pytest.mark.anyio
async def test_without_keepalive_the_server_times_the_session_out() -> None:
    async with AgentEmulator(api_key=KEY, idle_timeout=0.3) as emu:
        async with client_for(emu).agent.connect(SETTINGS, keepalive_interval=None) as conn:
            got = await collect_until(conn, is_type("Error"))
            err = got[-1]
            assert isinstance(err, m.Error) and err.code == "CLIENT_MESSAGE_TIMEOUT"
            await conn.wait_closed(timeout=scaled(5))


@pytest.mark.anyio
async def test_close_is_idempotent_and_ends_iteration_quietly() -> None:
    async with AgentEmulator(api_key=KEY) as emu:
        conn = await client_for(emu).agent.connect(SETTINGS)
        await conn.close()
        await conn.close()
        assert [type(x).__name__ async for x in conn] == ["Welcome", "SettingsApplied"]
        with pytest.raises(ConnectionClosedOK):
            await conn.recv()
        with pytest.raises(ConnectionClosedOK):
            await conn.send_audio(b"\x01\x02")


@pytest.mark.anyio
async def test_close_from_another_task_while_iterating() -> None:
    async with AgentEmulator(api_key=KEY) as emu:
        async with client_for(emu).agent.connect(SETTINGS) as conn:
            seen: list[Any] = []
            task = asyncio.create_task(conn.close())
            async with asyncio.timeout(scaled(5)):
                async for msg in conn:
                    seen.append(msg)
            await task
            assert conn.closed


@pytest.mark.anyio
async def test_two_readers_is_a_concurrency_error() -> None:
    async with AgentEmulator(api_key=KEY) as emu:
        async with client_for(emu).agent.connect(SETTINGS) as conn:
            await conn.recv()
            await conn.recv()  # Welcome, SettingsApplied consumed; now nothing waits
            first = asyncio.create_task(conn.recv())
            await asyncio.sleep(0)  # one loop turn: the first recv() is now waiting
            with pytest.raises(ConcurrencyError):
                await conn.recv()
            first.cancel()


@pytest.mark.anyio
async def test_slow_consumer_keeps_memory_bounded_and_loses_nothing() -> None:
    faults = Faults(flood_events=3000, flood_audio=3000)
    async with AgentEmulator(api_key=KEY, faults=faults) as emu:
        async with client_for(emu).agent.connect(SETTINGS, max_queue=64) as conn:
            count_text = count_audio = 0
            async with asyncio.timeout(scaled(30)):
                async for msg in conn:
                    if isinstance(msg, bytes):
                        count_audio += 1
                    elif isinstance(msg, m.ConversationText):
                        count_text += 1
                    if (count_text + count_audio) % 500 == 0:
                        await asyncio.sleep(0.001)  # a consumer slower than the server
                    if count_text == 3000 and count_audio == 3000:
                        break
            stats = conn.statistics()
            assert stats.queue_high_water <= 64
            assert (count_text, count_audio) == (3000, 3000)


@pytest.mark.anyio
async def test_fifty_concurrent_sessions_are_independent() -> None:
    async with AgentEmulator(api_key=KEY, realtime_audio=False) as emu:
        client = client_for(emu)

        async def one(i: int) -> str:
            async with client.agent.connect(SETTINGS) as conn:
                await conn.inject_user_message(f"session {i}")
                got = await collect_until(conn, is_type("AgentAudioDone"))
                users = [
                    x.content for x in got if isinstance(x, m.ConversationText) and x.role == "user"
                ]
                return users[0]

        results = await asyncio.gather(*(one(i) for i in range(50)))
        assert results == [f"session {i}" for i in range(50)]
        assert len(emu.sessions) == 50


@pytest.mark.anyio
async def test_audio_sent_before_ready_is_held_and_flushed_in_order() -> None:
    async with AgentEmulator(api_key=KEY, faults=Faults(delay_settings_applied=0.2)) as emu:
        conn = client_for(emu)._connection(SETTINGS)
        start = asyncio.create_task(conn.start())
        await conn.send_audio(b"\x01\x00" * 100)
        await conn.update_prompt("early")
        await conn.send_audio(b"\x02\x00" * 100)
        assert conn.statistics().pending_before_ready == 3
        await start
        session = await emu.wait_for_session(timeout=scaled(5))
        await session.wait_for_received("UpdatePrompt", timeout=scaled(5))
        assert session.audio_bytes_received == 400
        assert [f["type"] for f in session.received_json()] == ["Settings", "UpdatePrompt"]
        await conn.close()


def test_repr_and_client_never_show_the_key() -> None:
    client = DeepgramClient(api_key="sekrit-abc", access_token=None, base_url="ws://127.0.0.1:1")
    assert "sekrit-abc" not in repr(client)
    assert client.url == "ws://127.0.0.1:1/v1/agent/converse"
    assert (
        DeepgramClient(base_url="https://example.test").url
        == "wss://example.test/v1/agent/converse"
    )


@pytest.mark.anyio
async def test_plain_ws_to_a_remote_host_is_refused() -> None:
    client = DeepgramClient(api_key=KEY, base_url="ws://example.invalid")
    with pytest.raises(DeepgramError, match="unencrypted"):
        async with client.agent.connect(SETTINGS):
            pass


# ---- regressions found in review -------------------------------------------------------


@pytest.mark.anyio
async def test_audio_sent_while_held_data_is_flushed_never_overtakes_it() -> None:
    async with AgentEmulator(api_key=KEY, settings_applied_delay=0.05) as emu:
        conn = client_for(emu)._connection(
            SETTINGS, max_pending_audio_bytes=10**9, keepalive_interval=None
        )
        start = asyncio.create_task(conn.start())
        sizes: list[int] = []
        i = 0
        while not start.done() or i < 300:
            size = 2 * (100 + i)  # each chunk's size encodes its sequence number
            sizes.append(size)
            await conn.send_audio(b"\x00" * size)
            await asyncio.sleep(0)  # the scenario: start() progresses between the sends
            i += 1
        await start
        await conn.keep_alive()
        session = emu.sessions[0]
        await session.wait_for_received("KeepAlive", timeout=scaled(5))
        received = [f for f in session.received if isinstance(f, int)]  # audio frame sizes
        assert received == sizes
        await conn.close()


@pytest.mark.anyio
async def test_a_cancelled_close_does_not_make_the_next_close_hang() -> None:
    async with AgentEmulator(api_key=KEY, faults=Faults(flood_events=50)) as emu:
        conn = await client_for(emu).agent.connect(SETTINGS, max_queue=4)
        await emu.sessions[0].wait_for_received("Settings", timeout=scaled(5))
        first = asyncio.create_task(conn.close())
        await asyncio.sleep(0)  # the scenario: close() has begun when it is cancelled
        first.cancel()
        async with asyncio.timeout(scaled(8)):
            await conn.close()
        assert conn.closed


@pytest.mark.anyio
async def test_close_while_connecting_with_a_caller_session_leaves_no_socket() -> None:
    import aiohttp

    async with AgentEmulator(api_key=KEY, faults=Faults(delay_welcome=0.5)) as emu:
        async with aiohttp.ClientSession() as http:
            conn = client_for(emu)._connection(SETTINGS, session=http)
            start = asyncio.create_task(conn.start())
            session = await emu.wait_for_session(timeout=scaled(5))
            await conn.close()
            with pytest.raises(ConnectionClosedOK, match="while connecting"):
                await start
            await session.wait_closed(timeout=scaled(5))
            assert conn.closed and not conn.ready


@pytest.mark.anyio
async def test_reconnect_does_not_depend_on_the_app_reading_and_keeps_order() -> None:
    faults = lambda i: Faults(drop_after=30) if i == 0 else Faults(flood_events=200)  # noqa: E731
    async with AgentEmulator(api_key=KEY, realtime_audio=False, faults=faults) as emu:
        settings = dict(SETTINGS, agent=dict(SETTINGS["agent"], greeting="Hello there, friend."))
        async with client_for(emu).agent.connect(
            settings, reconnect=True, max_queue=4, open_timeout=2
        ) as conn:
            kinds: list[str] = []
            texts = 0
            async with asyncio.timeout(scaled(20)):
                async for msg in conn:
                    kinds.append(type(msg).__name__)
                    await asyncio.sleep(0.002)  # a slightly slow consumer
                    if isinstance(msg, m.ConversationText) and "Reconnecting" in kinds:
                        texts += 1
                        if texts == 200:
                            break
            assert texts == 200
            after = kinds[kinds.index("Reconnecting") :]
            assert after[:2] == ["Reconnecting", "Welcome"]
            assert after.index("SettingsApplied") < after.index("Reconnected")


def test_connection_options_are_checked_before_connecting() -> None:
    client = DeepgramClient(api_key=KEY, base_url="ws://127.0.0.1:9")  # nothing listens there
    with pytest.raises(TypeError, match="reconnect must be True, False, None or a Reconnect"):
        client.agent.connect_sync(SETTINGS, reconnect="yes")
    with pytest.raises(ValueError, match="max_queue must be at least 1"):
        client.agent.connect_sync(SETTINGS, max_queue=0)
    with pytest.raises(TypeError, match=r"unknown connection option\(s\): colour; known: "):
        client.agent.connect_sync(SETTINGS, colour="red")


@pytest.mark.anyio
async def test_localhost_is_loopback_and_reconnect_false_means_none() -> None:
    async with AgentEmulator(api_key=KEY, realtime_audio=False) as emu:
        local = DeepgramClient(api_key=KEY, base_url=f"ws://localhost:{emu.port}")
        async with local.agent.connect(SETTINGS, reconnect=False) as conn:  # ws:// allowed
            assert conn.ready and conn.options.reconnect is None
