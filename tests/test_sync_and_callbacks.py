"""The blocking facade and the seed's callback API, against the emulator over loopback."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deepgram_agent import (
    AgentWebSocketClient,
    AgentWebSocketEvents,
    AsyncAgentWebSocketClient,
    CloseResponse,
    ConnectionClosedError,
    DeepgramClient,
    ErrorResponse,
    OpenResponse,
)
from deepgram_agent import (
    messages as m,
)
from deepgram_agent.recording import read_recording
from deepgram_agent.testing import AgentEmulator, Faults, Rule, Script, ToolCall

from .conftest import KEY, SETTINGS, client_for, scaled


@pytest.fixture
def emu() -> Iterator[AgentEmulator]:
    script = Script(
        rules=[
            Rule(
                match="time",
                tool_calls=[ToolCall(name="get_time")],
                reply="It is {result[get_time]}.",
            )
        ]
    )
    with AgentEmulator.run_in_thread(api_key=KEY, realtime_audio=False, script=script) as emulator:
        yield emulator


def threads_named(prefix: str) -> int:
    return sum(1 for t in threading.enumerate() if t.name.startswith(prefix))


def test_blocking_iterator_happy_path(emu: AgentEmulator) -> None:
    client = client_for(emu)
    with client.agent.connect_sync(SETTINGS) as conn:
        conn.inject_user_message("Hello")
        kinds: list[str] = []
        for msg in conn:
            kinds.append(type(msg).__name__)
            if isinstance(msg, m.AgentAudioDone):
                break
        assert kinds[:2] == ["Welcome", "SettingsApplied"]
        assert "bytes" in kinds and "ConversationText" in kinds
        with pytest.raises(TimeoutError):
            conn.recv(timeout=0.05)
    assert conn.closed


def test_a_full_queue_makes_the_reader_wait_for_the_blocking_consumer(tmp_path: Path) -> None:
    """Back-pressure of the blocking facade: with ``max_queue`` messages waiting for the
    consumer thread, the reader task suspends in ``ThreadQueue.put`` (it stops reading the
    socket) and resumes when the consumer drains the queue; nothing is lost or reordered."""
    max_queue = 4
    script = Script(default_reply="A long answer. " * 20)  # a few hundred audio frames
    record = tmp_path / "session.jsonl"
    with AgentEmulator.run_in_thread(api_key=KEY, realtime_audio=False, script=script) as emu:
        client = client_for(emu)
        with client.agent.connect_sync(SETTINGS, max_queue=max_queue, record=str(record)) as conn:
            full = threading.Event()
            held: list[Any] = []

            def hook(item: Any) -> None:  # on the SDK's loop thread, before the item is queued
                if not full.is_set() and conn.core.statistics().queued >= max_queue:
                    held.append(item)  # the queue is full: the reader must wait to queue this
                    full.set()

            conn.core.add_hook(None, hook)  # only a tuple swap; nothing arrives before the turn
            conn.inject_user_message("go on")
            assert full.wait(scaled(10)), "the queue never filled"
            received_then = conn.statistics().messages_received
            got: list[Any] = []
            for msg in conn:  # the consumer thread drains; the reader resumes
                got.append(msg)
                if isinstance(msg, m.AgentAudioDone):
                    break
            stats = conn.statistics()
        assert stats.queue_high_water <= max_queue
        assert stats.messages_received > received_then + max_queue  # it went on after waiting
        assert any(x is held[0] for x in got)  # the message the reader held was delivered
    # What the consumer got is exactly what the reader read from the socket, in order (the
    # recording is written by the reader as it reads; frames after AgentAudioDone may follow).
    inbound = [e for e in read_recording(record) if e.get("dir") == "in"]
    wire = [e["size"] if e["kind"] == "audio" else json.loads(e["frame"])["type"] for e in inbound]
    delivered = [len(x) if isinstance(x, bytes) else x.type for x in got]
    assert wire[: len(delivered)] == delivered
    assert sum(isinstance(x, bytes) for x in got) > 10 * max_queue


def test_blocking_connections_share_one_loop_thread_and_leak_none(emu: AgentEmulator) -> None:
    client = client_for(emu)
    first = client.agent.connect_sync(SETTINGS)
    first.close()
    before = threading.active_count()
    conns = [client.agent.connect_sync(SETTINGS) for _ in range(10)]
    assert threads_named("deepgram-agent-loop") == 1
    for c in conns:
        c.close()
        c.close()  # idempotent
    assert threading.active_count() == before


def test_sends_are_safe_from_other_threads(emu: AgentEmulator) -> None:
    client = client_for(emu)
    with client.agent.connect_sync(SETTINGS, keepalive_interval=None) as conn:
        chunk = b"\x00\x00" * 160
        workers = [
            threading.Thread(target=lambda: [conn.send_audio(chunk) for _ in range(25)])
            for _ in range(4)
        ]
        for w in workers:
            w.start()
        for w in workers:
            w.join(scaled(10))
        conn.keep_alive()
        session = emu.sessions[-1]
        emu.call(session.wait_for_received("KeepAlive", timeout=scaled(5)))
        assert session.audio_bytes_received == 100 * len(chunk)


def test_blocking_drop_raises(emu: AgentEmulator) -> None:
    with AgentEmulator.run_in_thread(api_key=KEY, faults=Faults(drop_after=2)) as dropping:
        client = client_for(dropping)
        with client.agent.connect_sync(SETTINGS) as conn, pytest.raises(ConnectionClosedError):
            for _ in conn:
                pass


def test_callback_api_seed_style(emu: AgentEmulator) -> None:
    client = client_for(emu)
    dg = client.agent.websocket.v("1")
    assert isinstance(dg, AgentWebSocketClient)
    seen: list[tuple[str, Any]] = []
    done = threading.Event()
    handler_threads: set[str] = set()

    def on_open(self: Any, open_event: Any, **kwargs: Any) -> None:
        seen.append(("Open", open_event))

    def on_welcome(self: Any, welcome: Any, **kwargs: Any) -> None:
        assert self is dg
        seen.append(("Welcome", welcome.message))

    def on_text(self: Any, text_event: Any, **kwargs: Any) -> None:
        handler_threads.add(threading.current_thread().name)
        seen.append(("Text", f"{text_event.role}: {text_event.text}"))

    def on_audio(self: Any, audio_data: bytes, **kwargs: Any) -> None:
        seen.append(("Audio", len(audio_data)))

    def on_done(self: Any, *, event: Any) -> None:  # keyword-only style
        seen.append(("Done", event.type))
        done.set()

    def on_close(self: Any, close: Any, **kwargs: Any) -> None:
        seen.append(("Close", close))

    dg.on(AgentWebSocketEvents.Open, on_open)
    dg.on(AgentWebSocketEvents.Welcome, on_welcome)
    dg.on(AgentWebSocketEvents.ConversationText, on_text)
    dg.on(AgentWebSocketEvents.AudioData, on_audio)
    dg.on(AgentWebSocketEvents.AgentAudioDone, on_done)
    dg.on(AgentWebSocketEvents.Close, on_close)
    assert dg.start(SETTINGS) is True
    assert [k for k, _ in seen[:2]] == ["Open", "Welcome"]
    assert isinstance(seen[0][1], OpenResponse)
    assert dg.inject_user_message("Hi") is True
    assert done.wait(scaled(10))
    assert dg.close() is True
    assert dg.close() is True
    kinds = [k for k, _ in seen]
    assert "Text" in kinds and "Audio" in kinds
    assert kinds.count("Close") == 1 and kinds[-1] == "Close"
    assert isinstance(seen[-1][1], CloseResponse)
    assert handler_threads == {"deepgram-agent-handlers"}
    assert ("Text", "user: Hi") in seen


def test_callback_function_call_seed_style_and_failing_handler(emu: AgentEmulator) -> None:
    client = client_for(emu)
    dg = client.agent.websocket.v("1")
    errors: list[Any] = []
    replies: list[str] = []
    finished = threading.Event()

    def on_request(self: Any, request: Any, **kwargs: Any) -> None:
        from deepgram_agent import FunctionCallResponse

        assert request.function_call.name == "get_time"
        assert isinstance(request.function_call.arguments, dict)
        self.send_function_call_response(
            FunctionCallResponse(name=request.function_call.name, result="noon")
        )

    def on_text(self: Any, text: Any, **kwargs: Any) -> None:
        if text.role == "assistant":
            replies.append(text.text)
        raise RuntimeError("handler bug")

    def on_error(self: Any, error: Any, **kwargs: Any) -> None:
        errors.append(error)

    dg.on(AgentWebSocketEvents.FunctionCallRequest, on_request)
    dg.on(AgentWebSocketEvents.ConversationText, on_text)
    dg.on(AgentWebSocketEvents.Error, on_error)
    dg.on(AgentWebSocketEvents.AgentAudioDone, lambda self, e: finished.set())
    assert dg.start(SETTINGS)
    dg.inject_user_message("what time is it")
    assert finished.wait(scaled(10))
    dg.close()
    assert any("noon" in r for r in replies)
    assert errors and all(isinstance(e, ErrorResponse) for e in errors)
    assert errors[0].code == "CLIENT_HANDLER_ERROR" and "handler bug" in errors[0].description


def test_callback_start_failure_returns_false_with_error_and_close() -> None:
    with AgentEmulator.run_in_thread(api_key=KEY) as emu:
        client = DeepgramClient(api_key="not-the-key", base_url=emu.url)
        dg = client.agent.websocket.v("1")
        events: list[str] = []
        dg.on(AgentWebSocketEvents.Error, lambda self, e: events.append(f"Error:{e.description}"))
        dg.on(AgentWebSocketEvents.Close, lambda self, e: events.append("Close"))
        assert dg.start(SETTINGS) is False
        assert events[-1] == "Close" and events[0].startswith("Error:")
        assert "not-the-key" not in " ".join(events)
        assert dg.send_audio(b"\x00\x01") is False


def test_close_from_inside_a_handler(emu: AgentEmulator) -> None:
    client = client_for(emu)
    dg = client.agent.websocket.v("1")
    closed = threading.Event()
    dg.on(AgentWebSocketEvents.ConversationText, lambda self, e: self.close())
    dg.on(AgentWebSocketEvents.Close, lambda self, e: closed.set())
    assert dg.start(SETTINGS)
    dg.inject_user_message("bye")
    assert closed.wait(scaled(10))
    assert not dg.is_connected()


@pytest.mark.anyio
async def test_async_callback_client() -> None:
    async with AgentEmulator(api_key=KEY, realtime_audio=False) as emu:
        client = client_for(emu)
        dg = client.agent.asyncwebsocket.v("1")
        assert isinstance(dg, AsyncAgentWebSocketClient)
        import asyncio

        done = asyncio.Event()
        seen: list[str] = []

        async def on_text(self: Any, text: Any, **kwargs: Any) -> None:
            await asyncio.sleep(0)  # an async handler that really awaits
            seen.append(text.role)

        def on_done(self: Any, event: Any) -> None:
            done.set()

        dg.on(AgentWebSocketEvents.ConversationText, on_text)
        dg.on(AgentWebSocketEvents.AgentAudioDone, on_done)
        dg.on(AgentWebSocketEvents.Close, lambda self, e: seen.append("Close"))
        assert await dg.start(SETTINGS)
        assert await dg.inject_user_message("hello")
        async with asyncio.timeout(scaled(10)):
            await done.wait()
        assert await dg.close()
        assert seen[0] == "user" and "assistant" in seen and seen[-1] == "Close"


def test_events_enum_has_seed_and_newer_names() -> None:
    for name in (
        "Open",
        "Close",
        "AudioData",
        "Welcome",
        "SettingsApplied",
        "ConversationText",
        "UserStartedSpeaking",
        "AgentThinking",
        "FunctionCallRequest",
        "AgentStartedSpeaking",
        "AgentAudioDone",
        "Error",
        "Unhandled",
        "Settings",
        "UpdatePrompt",
        "UpdateSpeak",
        "InjectAgentMessage",
        "InjectUserMessage",
        "InjectionRefused",
        "PromptUpdated",
        "SpeakUpdated",
        "Warning",
        "History",
        "FunctionCallCancelled",
        "LatencyReport",
    ):
        assert getattr(AgentWebSocketEvents, name) == name
    assert AgentWebSocketEvents.AgentKeepAlive == "KeepAlive"
    with pytest.raises(ValueError, match="unknown event"):
        AgentWebSocketClient(DeepgramClient(api_key=KEY)).on("Nope", lambda *a: None)


EXPECTED_FRAMES = [
    "UpdatePrompt",
    "UpdateSpeak",
    "UpdateThink",
    "UpdateListen",
    "InjectAgentMessage",
    "InjectUserMessage",
    "KeepAlive",
    "ForceEndTurn",
    "InjectUserMessage",
    "KeepAlive",
]


def _seed_senders_payloads() -> dict[str, Any]:
    from deepgram_agent import (
        InjectAgentMessageOptions,
        InjectUserMessageOptions,
        Speak,
        UpdatePromptOptions,
        UpdateSpeakOptions,
    )

    return {
        "prompt": UpdatePromptOptions(prompt="Be a pirate."),
        "speak": UpdateSpeakOptions(speak=Speak(model="aura-luna-en")),
        "think": {"provider": {"type": "open_ai", "model": "gpt-4o"}, "prompt": "Think."},
        "listen": {"provider": {"type": "deepgram", "model": "nova-3"}},
        "agent": InjectAgentMessageOptions(text="Switching modes."),
        "user": InjectUserMessageOptions(text="I like pirates."),
    }


def test_every_sender_of_the_blocking_callback_client(emu: AgentEmulator) -> None:
    dg = client_for(emu).agent.websocket.v("1")
    errors: list[Any] = []
    dg.on(AgentWebSocketEvents.Error, lambda self, e: errors.append(e))
    assert dg.send_audio(b"\x00\x00") is False  # not started: False plus an Error event
    assert errors[-1].code == "CLIENT_NOT_STARTED"
    assert dg.start(SETTINGS, keepalive_interval=None)
    p = _seed_senders_payloads()
    assert dg.update_prompt(p["prompt"])
    assert dg.update_speak_options(p["speak"])
    assert dg.update_think(p["think"])
    assert dg.update_listen(p["listen"])
    assert dg.inject_agent_message(p["agent"])
    assert dg.inject_user_message(p["user"])
    assert dg.keep_alive()
    assert dg.force_end_turn()
    assert dg.send({"type": "InjectUserMessage", "content": "as a dict"})
    assert dg.send_raw('{"type":"KeepAlive"}')
    assert dg.send_audio(b"\x01\x00" * 80)
    # the same settings again: nothing changed, nothing to send (tests/test_classic_v4.py
    # covers send_settings() with changes)
    assert dg.send_settings(SETTINGS) is True
    session = emu.sessions[-1]
    emu.call(session.wait_for_received("KeepAlive", count=2, timeout=scaled(5)))
    types = [f["type"] for f in session.received_json()][1:]
    assert types == EXPECTED_FRAMES
    assert session.received_json("UpdateSpeak")[0]["speak"]["provider"]["model"] == "aura-luna-en"
    # blocking send_audio returns once the chunk is queued, not written (see sync.py)
    assert emu.call(session.wait_for_audio(160, timeout=scaled(5))) == 160
    assert dg.close()
    assert dg.send_audio(b"\x00\x00") is False  # closed: False plus an Error event
    assert errors[-1].code == "CLIENT_CONNECTION_CLOSED"
    # a wrong type is False (and logged), as in the classic SDK; nothing is sent
    assert dg.send_audio("not bytes") is False  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_every_sender_of_the_async_callback_client() -> None:
    async with AgentEmulator(api_key=KEY, realtime_audio=False) as emulator:
        dg = client_for(emulator).agent.asyncwebsocket.v("1")
        errors: list[Any] = []
        dg.on(AgentWebSocketEvents.Error, lambda self, e: errors.append(e))
        assert await dg.keep_alive() is False
        assert await dg.start(SETTINGS, keepalive_interval=None)
        assert await dg.is_connected()
        p = _seed_senders_payloads()
        assert await dg.update_prompt(p["prompt"])
        assert await dg.update_speak_options(p["speak"])
        assert await dg.update_think(p["think"])
        assert await dg.update_listen(p["listen"])
        assert await dg.inject_agent_message(p["agent"])
        assert await dg.inject_user_message(p["user"])
        assert await dg.keep_alive()
        assert await dg.force_end_turn()
        assert await dg.send({"type": "InjectUserMessage", "content": "as a dict"})
        assert await dg.send_raw({"type": "KeepAlive"})
        assert await dg.send_audio(b"\x01\x00" * 80)
        assert await dg.send_settings(SETTINGS) is True  # unchanged: nothing to send
        session = emulator.sessions[-1]
        await session.wait_for_received("KeepAlive", count=2, timeout=scaled(5))
        assert [f["type"] for f in session.received_json()][1:] == EXPECTED_FRAMES
        assert await dg.close()
        assert not await dg.is_connected()
        assert await dg.inject_user_message("late") is False
        assert errors[-1].code == "CLIENT_CONNECTION_CLOSED"


def test_every_sender_of_the_blocking_facade(emu: AgentEmulator) -> None:
    client = client_for(emu)
    with client.agent.connect_sync(SETTINGS, keepalive_interval=None) as conn:
        p = _seed_senders_payloads()
        conn.send(p["prompt"])
        conn.update_speak(p["speak"])
        conn.update_think(p["think"])
        conn.update_listen(p["listen"])
        conn.send(p["agent"])
        conn.send(p["user"])
        conn.keep_alive()
        conn.force_end_turn()
        conn.inject_user_message("as a dict")
        conn.send_raw({"type": "KeepAlive"})
        conn.send_audio(b"\x01\x00" * 80)
        assert conn.request_id and not conn.closed
        session = emu.sessions[-1]
        emu.call(session.wait_for_received("KeepAlive", count=2, timeout=scaled(5)))
        assert [f["type"] for f in session.received_json()][1:] == EXPECTED_FRAMES
        assert conn.statistics().audio_bytes_sent == 160
    assert conn.closed and conn.close_code is not None


def test_the_blocking_facade_mirrors_the_async_connection(emu: AgentEmulator) -> None:
    from deepgram_agent import ConnectionClosedOK
    from deepgram_agent import sync as blocking

    conn = blocking.connect(client_for(emu), SETTINGS, keepalive_interval=None)
    with conn:
        assert repr(conn).startswith("<SyncAgentConnection ") and KEY not in repr(conn)
        assert conn.input_format == ("linear16", 16000)
        assert conn.output_format == ("linear16", 24000)
        assert conn.pending_function_calls == {}
        assert isinstance(next(conn), m.Welcome)  # __next__ on the connection itself
        assert isinstance(conn.recv(timeout=scaled(5)), m.SettingsApplied)
        conn.update_prompt("Be brief.")
        conn.inject_agent_message("One moment.", behavior="queue")
        conn.inject_user_message("what time is it")
        request = conn.recv(timeout=scaled(5))
        while not isinstance(request, m.FunctionCallRequest):
            request = conn.recv(timeout=scaled(5))
        assert conn.pending_function_calls == {request.functions[0].id: "get_time"}
        conn.send_function_call_response(name="get_time", content="noon")
        session = emu.sessions[-1]
        (answer,) = emu.call(session.wait_for_received("FunctionCallResponse", timeout=scaled(5)))
        assert answer["id"] == request.functions[0].id and answer["content"] == "noon"
        assert session.received_json("UpdatePrompt") == [
            {"type": "UpdatePrompt", "prompt": "Be brief."}
        ]
        assert session.received_json("InjectAgentMessage")[0]["behavior"] == "queue"
    assert conn.closed and conn.close_reason == ""
    with pytest.raises(ConnectionClosedOK):
        while True:
            conn.recv(timeout=scaled(5))
