"""The emulator driven by a plain aiohttp client: handshake, validation, turns, functions, updates.

Audio, barge-in and fault injection are in test_emulator_audio.py / test_emulator_faults.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest

from deepgram_agent import messages as m
from deepgram_agent.testing import AgentEmulator, Faults, Rule, Script, ToolCall
from tests.conftest import KEY, client_for, scaled, until
from tests.conftest import SETTINGS as CLIENT_SETTINGS
from tests.wire_examples import FLUX_SETTINGS, FULL_SETTINGS, STORED_SETTINGS

pytestmark = pytest.mark.anyio

Frame = dict[str, Any] | bytes

SETTINGS: dict[str, Any] = {
    "type": "Settings",
    "audio": {
        "input": {"encoding": "linear16", "sample_rate": 16000},
        "output": {"encoding": "linear16", "sample_rate": 24000, "container": "none"},
    },
    "agent": {
        "listen": {"provider": {"type": "deepgram", "version": "v1", "model": "nova-3"}},
        "think": {
            "provider": {"type": "open_ai", "model": "gpt-4o-mini"},
            "prompt": "Be brief.",
            "functions": [
                {"name": "get_weather", "parameters": {"type": "object", "properties": {}}},
                {"name": "get_time"},
                {
                    "name": "open_ticket",
                    "endpoint": {"url": "https://crm.example.com/t", "method": "POST"},
                },
            ],
        },
        "speak": {"provider": {"type": "deepgram", "model": "aura-2-thalia-en"}},
    },
}


def settings(**agent_changes: Any) -> dict[str, Any]:
    """SETTINGS with some agent keys replaced (None removes a key)."""
    out = json.loads(json.dumps(SETTINGS))
    for key, value in agent_changes.items():
        if value is None:
            out["agent"].pop(key, None)
        else:
            out["agent"][key] = value
    return out


class Peer:
    """A thin wrapper over aiohttp's client socket that keeps every frame it received."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.frames: list[Frame] = []

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send_str(json.dumps(message))

    async def next(self, timeout: float = 5.0) -> Frame:
        msg = await self.ws.receive(timeout=scaled(timeout))
        if msg.type is aiohttp.WSMsgType.TEXT:
            frame: Frame = json.loads(msg.data)
        elif msg.type is aiohttp.WSMsgType.BINARY:
            frame = msg.data
        else:
            raise AssertionError(
                f"socket ended ({msg.type.name}, {msg.data!r}); got {kinds(self.frames)}"
            )
        self.frames.append(frame)
        return frame

    async def until(self, type_: str, timeout: float = 5.0) -> list[Frame]:
        """Frames up to and including the next JSON frame of ``type_``."""
        got: list[Frame] = []
        while True:
            frame = await self.next(timeout)
            got.append(frame)
            if isinstance(frame, dict) and frame["type"] == type_:
                return got

    async def expect_close(self, timeout: float = 5.0) -> tuple[list[Frame], int | None]:
        """Read until the socket closes; return the frames before it and the close code."""
        got: list[Frame] = []
        while True:
            msg = await self.ws.receive(timeout=scaled(timeout))
            if msg.type is aiohttp.WSMsgType.TEXT:
                got.append(json.loads(msg.data))
            elif msg.type is aiohttp.WSMsgType.BINARY:
                got.append(msg.data)
            else:
                return got, self.ws.close_code

    async def start(self, body: dict[str, Any] | None = None) -> None:
        """Expect Welcome, send Settings, expect SettingsApplied (greeting frames may follow)."""
        welcome = await self.next()
        assert isinstance(welcome, dict) and welcome["type"] == "Welcome"
        await self.send(body or SETTINGS)
        frames = await self.until("SettingsApplied")
        assert kinds(frames) == ["SettingsApplied"]


def kinds(frames: list[Frame]) -> list[str]:
    """Frame types, with each run of binary frames shown as one 'AUDIO'."""
    out: list[str] = []
    for f in frames:
        name = f["type"] if isinstance(f, dict) else "AUDIO"
        if name == "AUDIO" and out and out[-1] == "AUDIO":
            continue
        out.append(name)
    return out


def auth(key: str = "test-key") -> dict[str, str]:
    return {"Authorization": f"Token {key}"}


@asynccontextmanager
async def connect(
    emu: AgentEmulator, headers: dict[str, str] | None = None, **kwargs: Any
) -> AsyncIterator[Peer]:
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(
            emu.agent_url, headers=headers if headers is not None else auth(emu.api_key), **kwargs
        ) as ws:
            yield Peer(ws)


@asynccontextmanager
async def emulator(**kwargs: Any) -> AsyncIterator[AgentEmulator]:
    kwargs.setdefault("realtime_audio", False)
    async with AgentEmulator(**kwargs) as emu:
        yield emu


# ---------------------------------------------------------------------------------------------
# Handshake
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "protocols", "echo"),
    [
        ({"Authorization": "Token sekret"}, (), None),
        ({"Authorization": "token sekret"}, (), None),
        ({"Authorization": "Bearer sekret"}, (), None),
        ({"Authorization": "bearer sekret"}, (), None),
        ({}, ("token", "sekret"), "token"),
        ({}, ("bearer", "sekret"), "bearer"),
    ],
)
async def test_auth_forms_are_accepted(
    headers: dict[str, str], protocols: tuple[str, ...], echo: str | None
) -> None:
    async with emulator(api_key="sekret") as emu:
        async with connect(emu, headers=headers, protocols=protocols) as peer:
            welcome = await peer.next()
            assert isinstance(welcome, dict) and welcome["type"] == "Welcome"
            assert peer.ws.protocol == echo
        session = await emu.wait_for_session()
        assert session.handshake_status == 101
        assert welcome["request_id"] == session.request_id


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Token wrong"},
        {"Authorization": "Basic sekret"},
        {"Authorization": "Token "},
        {"Sec-WebSocket-Protocol": "token"},
    ],
)
async def test_bad_credentials_get_401_at_the_upgrade(headers: dict[str, str]) -> None:
    async with emulator(api_key="sekret") as emu:
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            async with connect(emu, headers=headers):
                pass
        assert info.value.status == 401
        assert info.value.headers is not None
        assert info.value.headers["dg-error"] == "Invalid credentials."
        uuid.UUID(info.value.headers["dg-request-id"])
        assert emu.sessions[0].handshake_status == 401


async def test_any_nonempty_key_is_accepted_without_api_key() -> None:
    async with emulator() as emu:
        async with connect(emu, headers=auth("your-api-key")) as peer:
            await peer.start()
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            async with connect(emu, headers={}):
                pass
        assert info.value.status == 401


@pytest.mark.parametrize("status", [401, 429, 503])
async def test_refused_handshake_fault(status: int) -> None:
    faults = Faults(refuse_status=status, refuse_body="Too many connections.")
    async with emulator(faults=lambda i: faults if i == 0 else None) as emu:
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            async with connect(emu):
                pass
        assert info.value.status == status
        assert info.value.headers is not None
        assert info.value.headers["dg-error"] == "Too many connections."
        # The second attempt (index 1) gets no fault.
        async with connect(emu) as peer:
            await peer.start()
        assert [s.handshake_status for s in emu.sessions] == [status, 101]


async def test_refusal_body_is_json_text() -> None:
    async with emulator(api_key="k") as emu:
        async with aiohttp.ClientSession() as http:
            async with http.get(emu.agent_url, headers={"Authorization": "Token nope"}) as resp:
                assert resp.status == 401
                body = await resp.json()
        assert body["err_msg"] == "Invalid credentials."
        assert body["request_id"] == resp.headers["dg-request-id"]


async def test_welcome_first_with_fresh_uuid() -> None:
    async with emulator() as emu:
        ids = []
        for _ in range(2):
            async with connect(emu) as peer:
                welcome = await peer.next()
                assert isinstance(welcome, dict)
                assert set(welcome) == {"type", "request_id"}
                assert welcome["type"] == "Welcome"
                assert uuid.UUID(welcome["request_id"]).version == 4
                ids.append(welcome["request_id"])
        assert ids[0] != ids[1]


# ---------------------------------------------------------------------------------------------
# Strict validation (docs/protocol.md 9.4) and session rules
# ---------------------------------------------------------------------------------------------

_FLAT_LISTEN = settings(listen={"provider": "deepgram", "model": "nova-3"})
_V4_FUNCTION = settings(
    think={
        "provider": {"type": "open_ai", "model": "gpt-4o-mini"},
        "functions": [
            {
                "name": "get_weather",
                "description": "Weather",
                "url": "https://api.example.com/weather",
                "method": "post",
            }
        ],
    }
)
_AGENT_TAGS = settings(tags=["a"])
_TOP_GREETING = {**SETTINGS, "greeting": "Hello"}
_AGENT_MIP = settings(mip_opt_out=True)


@pytest.mark.parametrize(
    ("body", "description"),
    [
        (_FLAT_LISTEN, "Check the agent.listen.model field"),
        (_V4_FUNCTION, "Check the agent.think.functions[0].method field"),
        (_AGENT_TAGS, "Check the agent.tags field"),
        (_TOP_GREETING, "Check the greeting field"),
        (_AGENT_MIP, "Check the agent.mip_opt_out field"),
    ],
)
async def test_recorded_settings_errors(body: dict[str, Any], description: str) -> None:
    expected = f"Error parsing client message. {description} against the API spec."
    async with emulator() as emu:
        async with connect(emu) as peer:
            await peer.next()
            await peer.send(body)
            frames, code = await peer.expect_close()
        assert frames == [
            {"type": "Error", "code": "UNPARSABLE_CLIENT_MESSAGE", "description": expected}
        ]
        assert code == 1000
        session = emu.sessions[0]
        assert session.settings is None
        assert session.received_json("Settings") == [body]


NOT_UNDERSTOOD = "Text message received from client did not match any of the formats we expect."


@pytest.mark.parametrize(
    "text",
    ['{"type": "Settings", ', "hello", '{"type": "Bogus"}', "[1, 2]", '{"no_type": 1}'],
)
@pytest.mark.parametrize("after_settings", [False, True])
async def test_malformed_or_unknown_messages(text: str, after_settings: bool) -> None:
    async with emulator() as emu:
        async with connect(emu) as peer:
            if after_settings:
                await peer.start()
            else:
                await peer.next()
            await peer.ws.send_str(text)
            frames, code = await peer.expect_close()
        assert frames == [
            {"type": "Error", "code": "UNPARSABLE_CLIENT_MESSAGE", "description": NOT_UNDERSTOOD}
        ]
        assert code == 1000


async def test_wrong_field_type_after_settings_names_the_field() -> None:
    async with emulator() as emu:
        async with connect(emu) as peer:
            await peer.start()
            await peer.send({"type": "UpdatePrompt", "prompt": 5})
            frames, code = await peer.expect_close()
        assert frames == [
            {
                "type": "Error",
                "code": "UNPARSABLE_CLIENT_MESSAGE",
                "description": "Error parsing client message. Check the prompt field against the "
                "API spec.",
            }
        ]
        assert code == 1000


@pytest.mark.parametrize(
    ("first", "code", "description"),
    [
        (
            {"type": "KeepAlive"},
            "NON_SETTINGS_MESSAGE_BEFORE_SETTINGS",
            "Received KeepAlive before Settings.",
        ),
        (
            {"type": "InjectUserMessage", "content": "hi"},
            "NON_SETTINGS_MESSAGE_BEFORE_SETTINGS",
            "Received InjectUserMessage before Settings.",  # the live server's exact text
        ),
        (
            b"\x00\x01" * 160,
            "BINARY_MESSAGE_BEFORE_SETTINGS",
            "Received binary message before Settings.",
        ),
    ],
)
async def test_non_settings_first(
    first: dict[str, Any] | bytes, code: str, description: str
) -> None:
    async with emulator() as emu:
        async with connect(emu) as peer:
            await peer.next()
            if isinstance(first, bytes):
                await peer.ws.send_bytes(first)
            else:
                await peer.send(first)
            frames, close_code = await peer.expect_close()
        assert frames == [{"type": "Error", "code": code, "description": description}]
        assert close_code == 1000


async def test_second_settings_is_refused() -> None:
    async with emulator() as emu:
        async with connect(emu) as peer:
            await peer.start()
            await peer.send(SETTINGS)
            frames, code = await peer.expect_close()
        assert kinds(frames) == ["Error"]
        assert isinstance(frames[0], dict) and frames[0]["code"] == "SETTINGS_ALREADY_APPLIED"
        assert code == 1000
        assert emu.sessions[0].settings == SETTINGS


async def test_settings_sent_before_welcome_is_read_works() -> None:
    async with emulator() as emu:
        async with connect(emu) as peer:
            await peer.send(SETTINGS)
            frames = await peer.until("SettingsApplied")
        assert kinds(frames) == ["Welcome", "SettingsApplied"]


async def test_invalid_agent_id() -> None:
    async with emulator() as emu:
        async with connect(emu) as peer:
            await peer.next()
            await peer.send({"type": "Settings", "audio": {}, "agent": "not-a-uuid"})
            frames, code = await peer.expect_close()
        assert isinstance(frames[0], dict) and frames[0]["code"] == "INVALID_AGENT_ID"
        assert code == 1000


@pytest.mark.parametrize("text", [FULL_SETTINGS, FLUX_SETTINGS, STORED_SETTINGS])
async def test_protocol_settings_examples_are_accepted(text: str) -> None:
    body = json.loads(text)
    async with emulator() as emu:
        async with connect(emu) as peer:
            await peer.start(body)
        session = emu.sessions[0]
        assert session.settings == body
        assert session.state.error is None


async def test_state_reflects_settings() -> None:
    async with emulator() as emu:
        async with connect(emu) as peer:
            await peer.start(json.loads(FULL_SETTINGS))
            await peer.until("AgentAudioDone")  # the greeting
        st = emu.sessions[0].state
        assert st.prompt == "You are Acme's phone assistant. Keep answers under two sentences."
        assert st.speak_model == "aura-2-thalia-en"
        assert st.think_model == "gpt-4.1-mini"
        assert st.listen_model == "nova-3"
        assert set(st.functions) == {"lookup_order", "open_ticket"}
        assert (st.input_encoding, st.input_sample_rate) == ("linear16", 16000)
        assert st.history[:3] == json.loads(FULL_SETTINGS)["agent"]["context"]["messages"]
        assert st.history[3] == {
            "type": "History",
            "role": "assistant",
            "content": "Hi, this is Acme support.",
        }


# ---------------------------------------------------------------------------------------------
# Idle timeout
# ---------------------------------------------------------------------------------------------


IDLE_TEXT = (
    "We waited too long for a websocket message. Please ensure that you're sending binary "
    "messages containing user speech."
)


async def test_idle_timeout_sends_error_and_closes() -> None:
    async with emulator(idle_timeout=0.3) as emu:
        async with connect(emu) as peer:
            await peer.start()
            frames, code = await peer.expect_close()
        # The live server's exact text (docs/protocol.md 9.6).
        assert frames == [
            {"type": "Error", "code": "CLIENT_MESSAGE_TIMEOUT", "description": IDLE_TEXT}
        ]
        assert code == 1000


async def test_idle_timeout_before_settings() -> None:
    async with emulator(idle_timeout=0.2) as emu:
        async with connect(emu) as peer:
            frames, _code = await peer.expect_close()
        assert kinds(frames) == ["Welcome", "Error"]
        error = frames[1]
        assert isinstance(error, dict) and error["code"] == "CLIENT_MESSAGE_TIMEOUT"
        assert "'Settings' message at the beginning of the session" in error["description"]


async def test_keepalive_resets_idle_timer() -> None:
    loop = asyncio.get_running_loop()
    async with emulator(idle_timeout=0.5) as emu:
        async with connect(emu) as peer:
            await peer.start()
            end = loop.time() + 1.2
            while loop.time() < end:  # well past the idle timeout, kept alive
                await peer.send({"type": "KeepAlive"})
                await asyncio.sleep(0.1)  # the scenario: keepalives paced in real time
            await peer.send({"type": "InjectUserMessage", "content": "still there?"})
            frames = await peer.until("AgentAudioDone")
        assert "Error" not in kinds(frames)
        session = emu.sessions[0]
        assert session.state.error is None
        assert len(session.received_json("KeepAlive")) >= 10


# ---------------------------------------------------------------------------------------------
# Scripted turns
# ---------------------------------------------------------------------------------------------


async def test_scripted_turn_order() -> None:
    script = Script(
        rules=[Rule(match="HOURS", reply="We open at nine. We close at five!", thinking="Hours.")]
    )
    async with emulator(script=script) as emu:
        async with connect(emu) as peer:
            await peer.start({**SETTINGS, "experimental": True})
            await peer.send({"type": "InjectUserMessage", "content": "What are your hours?"})
            frames = await peer.until("AgentAudioDone")
    assert kinds(frames) == [
        "ConversationText",
        "History",
        "EndOfThought",
        "AgentThinking",
        "ConversationText",
        "History",
        "AgentStartedSpeaking",
        "AUDIO",
        "ConversationText",
        "History",
        "AUDIO",
        "LatencyReport",
        "AgentAudioDone",
    ]
    json_frames = [f for f in frames if isinstance(f, dict)]
    assert json_frames[0] == {
        "type": "ConversationText",
        "role": "user",
        "content": "What are your hours?",
        "conversational_behavior": "default",
    }
    assert json_frames[1] == {"type": "History", "role": "user", "content": "What are your hours?"}
    assert json_frames[2] == {"type": "EndOfThought"}
    assert json_frames[3] == {"type": "AgentThinking", "content": "Hours."}
    assert [f["content"] for f in json_frames if f["type"] == "ConversationText"][1:] == [
        "We open at nine.",
        "We close at five!",
    ]
    started = json_frames[6]
    assert started["type"] == "AgentStartedSpeaking"
    assert started["total_latency"] == pytest.approx(
        started["tts_latency"] + started["ttt_latency"]
    )
    # ~60 ms of linear16/24 kHz audio per character, in 960-byte (20 ms) frames.
    audio = [f for f in frames if isinstance(f, bytes)]
    total_chars = len("We open at nine.") + len("We close at five!")
    assert sum(len(a) for a in audio) == pytest.approx(total_chars * 0.06 * 48000, abs=4)
    assert all(len(a) == 960 for a in audio[:-1])


async def test_without_experimental_no_started_speaking_end_of_thought_or_thinking() -> None:
    # docs/protocol.md 9.6: in ~870 live frames without "experimental": true, none of the three.
    script = Script(
        rules=[Rule(match="HOURS", reply="We open at nine. We close at five!", thinking="Hours.")]
    )
    async with emulator(script=script) as emu:
        async with connect(emu) as peer:
            await peer.start()
            await peer.send({"type": "InjectUserMessage", "content": "What are your hours?"})
            frames = await peer.until("AgentAudioDone")
    assert kinds(frames) == [
        "ConversationText",
        "History",
        "ConversationText",
        "History",
        "AUDIO",
        "ConversationText",
        "History",
        "AUDIO",
        "LatencyReport",
        "AgentAudioDone",
    ]
    assert emu.sessions[0].state.experimental is False


async def test_default_reply_echoes_and_history_flag_off() -> None:
    body = {**SETTINGS, "flags": {"history": False}}
    async with emulator(script=Script(end_of_thought=False)) as emu:
        async with connect(emu) as peer:
            await peer.start(body)
            await peer.send({"type": "InjectUserMessage", "content": "ping"})
            frames = await peer.until("AgentAudioDone")
    assert "History" not in kinds(frames)
    assert "EndOfThought" not in kinds(frames)
    texts = [
        f["content"] for f in frames if isinstance(f, dict) and f["type"] == "ConversationText"
    ]
    assert texts == ["ping", "You said: ping"]


async def test_regex_rule_and_callable_reply() -> None:
    script = Script(
        rules=[
            Rule(match=r"order (\d+)", regex=True, reply="Order {match[1]} shipped."),
            Rule(match="count", reply=lambda ctx: f"{len(ctx.text)} characters."),
        ]
    )
    async with emulator(script=script) as emu:
        async with connect(emu) as peer:
            await peer.start()
            await peer.send({"type": "InjectUserMessage", "content": "Where is ORDER 4417?"})
            first = await peer.until("AgentAudioDone")
            await peer.send({"type": "InjectUserMessage", "content": "count me"})
            second = await peer.until("AgentAudioDone")

    def replies(frames: list[Frame]) -> list[str]:
        return [
            f["content"]
            for f in frames
            if isinstance(f, dict) and f["type"] == "ConversationText" and f["role"] == "assistant"
        ]

    assert replies(first) == ["Order 4417 shipped."]
    assert replies(second) == ["8 characters."]


async def test_script_from_json() -> None:
    script = Script.from_json(
        json.dumps(
            {
                "rules": [
                    {
                        "match": "weather",
                        "tool_calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}}],
                        "reply": "Weather: {result[get_weather]}",
                    }
                ],
                "default_reply": "Default.",
                "transcripts": ["one"],
            }
        )
    )
    assert script.rules[0].requests()[0][0].arguments_text() == '{"city":"Oslo"}'
    assert script.transcripts == ["one"]
    with pytest.raises(ValueError, match="unknown key"):
        Script.from_json('{"rulez": []}')


# ---------------------------------------------------------------------------------------------
# Function calls
# ---------------------------------------------------------------------------------------------


def _weather_script() -> Script:
    return Script(
        rules=[
            Rule(
                match="weather",
                tool_calls=[ToolCall(name="get_weather", arguments={"city": "Paris"})],
                reply="Forecast: {result[get_weather]}.",
            )
        ]
    )


async def test_function_call_round_trip() -> None:
    async with emulator(script=_weather_script()) as emu:
        async with connect(emu) as peer:
            await peer.start()
            await peer.send({"type": "InjectUserMessage", "content": "What's the weather?"})
            before = await peer.until("FunctionCallRequest")
            request = before[-1]
            assert isinstance(request, dict)
            (call,) = request["functions"]
            assert call["name"] == "get_weather"
            assert call["client_side"] is True
            assert json.loads(call["arguments"]) == {"city": "Paris"}
            session = emu.sessions[0]
            assert session.state.pending_calls == {call["id"]: "get_weather"}
            # An unknown id is ignored; the call stays pending.
            await peer.send(
                {"type": "FunctionCallResponse", "id": "nope", "name": "x", "content": "?"}
            )
            await peer.send(
                {
                    "type": "FunctionCallResponse",
                    "id": call["id"],
                    "name": "get_weather",
                    "content": "sunny",
                }
            )
            after = await peer.until("AgentAudioDone")
    assert kinds(before) == ["ConversationText", "History", "FunctionCallRequest"]
    assert kinds(after)[:4] == ["History", "ConversationText", "History", "AUDIO"]
    assert after[0] == {
        "type": "History",
        "function_calls": [
            {
                "id": call["id"],
                "name": "get_weather",
                "client_side": True,
                "arguments": call["arguments"],
                "response": "sunny",
            }
        ],
    }
    assert isinstance(after[1], dict) and after[1]["content"] == "Forecast: sunny."
    latency = after[-2]
    assert isinstance(latency, dict) and "ttt_tool_latency" in latency
    assert emu.sessions[0].state.pending_calls == {}


async def test_several_entries_in_one_request_and_sequential_requests() -> None:
    script = Script(
        rules=[
            Rule(
                match="both",
                tool_calls=[
                    [ToolCall(name="get_weather"), ToolCall(name="get_time", id="call_fixed")],
                    ToolCall(name="get_time"),
                ],
                reply="{result[get_weather]} at {result[get_time]}",
            )
        ]
    )
    async with emulator(script=script) as emu:
        async with connect(emu) as peer:
            await peer.start()
            await peer.send({"type": "InjectUserMessage", "content": "both please"})
            first = (await peer.until("FunctionCallRequest"))[-1]
            assert isinstance(first, dict)
            assert [f["name"] for f in first["functions"]] == ["get_weather", "get_time"]
            assert first["functions"][1]["id"] == "call_fixed"
            # Answer in reverse order: the server waits for both.
            for entry, content in reversed(
                list(zip(first["functions"], ["rain", "noon"], strict=True))
            ):
                await peer.send(
                    {
                        "type": "FunctionCallResponse",
                        "id": entry["id"],
                        "name": entry["name"],
                        "content": content,
                    }
                )
            frames = await peer.until("FunctionCallRequest")
            assert kinds(frames) == ["History", "FunctionCallRequest"]
            history, second = frames
            assert isinstance(history, dict) and isinstance(second, dict)
            assert [c["response"] for c in history["function_calls"]] == ["rain", "noon"]
            (entry,) = second["functions"]
            await peer.send(
                {
                    "type": "FunctionCallResponse",
                    "id": entry["id"],
                    "name": "get_time",
                    "content": "one",
                }
            )
            rest = await peer.until("AgentAudioDone")
    replies = [
        f["content"]
        for f in rest
        if isinstance(f, dict) and f["type"] == "ConversationText" and f["role"] == "assistant"
    ]
    assert replies == ["rain at one"]


async def test_server_side_function() -> None:
    script = Script(
        rules=[
            Rule(
                match="ticket",
                tool_calls=[ToolCall(name="open_ticket", result='{"ticket":"SUP-1"}')],
                reply="Ticket {result[open_ticket]} opened.",
            )
        ]
    )
    async with emulator(script=script) as emu:
        async with connect(emu) as peer:
            await peer.start()
            await peer.send({"type": "InjectUserMessage", "content": "open a ticket"})
            frames = await peer.until("AgentAudioDone")
    assert kinds(frames)[2:6] == [
        "FunctionCallRequest",
        "FunctionCallResponse",
        "History",
        "ConversationText",
    ]
    request, response, history = frames[2:5]
    assert isinstance(request, dict) and isinstance(response, dict) and isinstance(history, dict)
    assert request["functions"][0]["client_side"] is False
    assert response == {
        "type": "FunctionCallResponse",
        "id": request["functions"][0]["id"],
        "name": "open_ticket",
        "content": '{"ticket":"SUP-1"}',
    }
    assert history["function_calls"][0]["client_side"] is False
    assert emu.sessions[0].received_json("FunctionCallResponse") == []


async def test_undeclared_function_is_fatal() -> None:
    script = Script(rules=[Rule(match="", tool_calls=[ToolCall(name="launch_rockets")])])
    async with emulator(script=script) as emu:
        async with connect(emu) as peer:
            await peer.start()
            await peer.send({"type": "InjectUserMessage", "content": "go"})
            frames, code = await peer.expect_close()
    assert kinds(frames) == ["ConversationText", "History", "Error"]
    error = frames[-1]
    assert isinstance(error, dict) and error["code"] == "NON_EXISTENT_FUNCTION_CALLED"
    assert "launch_rockets" in error["description"]
    assert code == 1000


async def test_unanswered_function_call_times_out(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="deepgram_agent.emulator"):
        async with emulator(script=_weather_script(), function_response_timeout=0.3) as emu:
            async with connect(emu) as peer:
                await peer.start()
                await peer.send({"type": "InjectUserMessage", "content": "weather"})
                await peer.until("FunctionCallRequest")
                frames, code = await peer.expect_close()
    # The server has one text for client silence (docs/protocol.md 9.6); the log names the call.
    assert frames == [{"type": "Error", "code": "CLIENT_MESSAGE_TIMEOUT", "description": IDLE_TEXT}]
    assert code == 1000
    assert "no FunctionCallResponse within 0.3 s for: get_weather" in caplog.text


async def test_pending_call_suspends_idle_timeout() -> None:
    async with emulator(
        script=_weather_script(), idle_timeout=0.2, function_response_timeout=0.6
    ) as emu:
        async with connect(emu) as peer:
            await peer.start()
            await peer.send({"type": "InjectUserMessage", "content": "weather"})
            await peer.until("FunctionCallRequest")
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            frames, _ = await peer.expect_close()
            assert loop.time() - t0 >= 0.4
    assert isinstance(frames[0], dict) and frames[0]["code"] == "CLIENT_MESSAGE_TIMEOUT"


@pytest.mark.anyio
async def test_emulator_idle_timeout_applies_again_once_a_call_is_answered() -> None:
    """Answering a function call re-arms the idle timeout.

    Broke: answering (or cancelling) a call did not wake the emulator's watchdog, so it kept
    waiting function_response_timeout (60 s by default) and hid clients whose keepalives were
    broken.
    """
    script = Script(rules=[Rule(match="time", tool_calls=[ToolCall(name="get_time")], reply="ok")])
    async with AgentEmulator(
        api_key=KEY,
        script=script,
        realtime_audio=False,
        idle_timeout=0.5,
        function_response_timeout=20,
    ) as emu:
        client = client_for(emu)
        async with client.agent.connect(CLIENT_SETTINGS, keepalive_interval=None) as conn:
            await conn.inject_user_message("what time is it")
            await until(conn, lambda x: isinstance(x, m.FunctionCallRequest))
            await conn.send_function_call_response(name="get_time", content="noon")
            answered = time.monotonic()
            err = await until(conn, lambda x: isinstance(x, m.Error))
            assert err.code == "CLIENT_MESSAGE_TIMEOUT"
            assert time.monotonic() - answered < scaled(5)  # idle_timeout, not the 20 s


async def test_new_user_message_cancels_pending_call() -> None:
    async with emulator(script=_weather_script()) as emu:
        async with connect(emu) as peer:
            await peer.start()
            await peer.send({"type": "InjectUserMessage", "content": "weather"})
            request = (await peer.until("FunctionCallRequest"))[-1]
            assert isinstance(request, dict)
            await peer.send({"type": "InjectUserMessage", "content": "never mind"})
            frames = await peer.until("AgentAudioDone")
    assert frames[0] == {
        "type": "FunctionCallCancelled",
        "functions": [{"id": request["functions"][0]["id"], "name": "get_weather"}],
    }
    assert kinds(frames)[1] == "ConversationText"


# ---------------------------------------------------------------------------------------------
# Greeting, runtime updates, injections
# ---------------------------------------------------------------------------------------------


async def test_greeting() -> None:
    async with emulator() as emu:
        async with connect(emu) as peer:
            await peer.start(settings(greeting="Hello! How can I help?"))
            frames = await peer.until("AgentAudioDone")
    assert kinds(frames) == [
        "ConversationText",
        "History",
        "AUDIO",
        "ConversationText",
        "History",
        "AUDIO",
        "AgentAudioDone",
    ]
    assert frames[0] == {
        "type": "ConversationText",
        "role": "assistant",
        "content": "Hello!",
        "conversational_behavior": "default",
    }


async def test_runtime_updates_are_acknowledged_and_visible() -> None:
    new_speak = {"provider": {"type": "deepgram", "model": "aura-2-luna-en"}}
    new_think = {
        "provider": {"type": "anthropic", "model": "claude-haiku-4-5"},
        "prompt": "Billing specialist.",
        "functions": [{"name": "issue_refund"}],
    }
    new_listen = {"provider": {"type": "deepgram", "version": "v1", "model": "nova-2"}}
    async with emulator() as emu:
        async with connect(emu) as peer:
            await peer.start()
            session = emu.sessions[0]
            await peer.send({"type": "UpdatePrompt", "prompt": "Be terse."})
            assert kinds(await peer.until("PromptUpdated")) == ["PromptUpdated"]
            assert session.state.prompt == "Be terse."
            await peer.send({"type": "UpdateSpeak", "speak": new_speak})
            assert kinds(await peer.until("SpeakUpdated")) == ["SpeakUpdated"]
            assert session.state.speak_model == "aura-2-luna-en"
            await peer.send({"type": "UpdateListen", "listen": new_listen})
            assert kinds(await peer.until("ListenUpdated")) == ["ListenUpdated"]
            assert session.state.listen_model == "nova-2"
            await peer.send({"type": "UpdateThink", "think": new_think})
            assert kinds(await peer.until("ThinkUpdated")) == ["ThinkUpdated"]
            assert session.state.think_model == "claude-haiku-4-5"
            assert session.state.prompt == "Billing specialist."
            assert set(session.state.functions) == {"issue_refund"}
            await peer.send(
                {
                    "type": "UpdateThink_Live",
                    "think_live": {"provider": {"type": "deepgram", "version": "v1"}},
                }
            )
            assert kinds(await peer.until("ThinkLiveUpdated")) == ["ThinkLiveUpdated"]
            await session.wait_for_received("UpdateThink_Live")
        assert [m["type"] for m in session.received_json()] == [
            "Settings",
            "UpdatePrompt",
            "UpdateSpeak",
            "UpdateListen",
            "UpdateThink",
            "UpdateThink_Live",
        ]


async def test_inject_agent_message_when_idle() -> None:
    async with emulator() as emu:
        async with connect(emu) as peer:
            await peer.start()
            await peer.send({"type": "InjectAgentMessage", "message": "Still there?"})
            frames = await peer.until("AgentAudioDone")
    assert kinds(frames) == ["ConversationText", "History", "AUDIO", "AgentAudioDone"]


async def test_inject_agent_message_refused_while_agent_busy_then_queue_and_interrupt() -> None:
    async with emulator(script=_weather_script()) as emu:
        async with connect(emu) as peer:
            await peer.start()
            await peer.send({"type": "InjectUserMessage", "content": "weather"})
            request = (await peer.until("FunctionCallRequest"))[-1]
            assert isinstance(request, dict)
            await peer.send({"type": "InjectAgentMessage", "message": "Hello?"})
            refused = await peer.until("InjectionRefused")
            assert refused == [
                {"type": "InjectionRefused", "message": "Agent is currently speaking."}
            ]
            # queue: spoken after the current reply.
            await peer.send(
                {"type": "InjectAgentMessage", "message": "Queued line.", "behavior": "queue"}
            )
            cid = request["functions"][0]["id"]
            await peer.send(
                {"type": "FunctionCallResponse", "id": cid, "name": "get_weather", "content": "dry"}
            )
            frames = await peer.until("AgentAudioDone")
            queued = await peer.until("AgentAudioDone")
            assert [f["content"] for f in queued if isinstance(f, dict) and "content" in f] == [
                "Queued line.",
                "Queued line.",
            ]
            assert "Queued line." not in json.dumps([f for f in frames if isinstance(f, dict)])
            # interrupt: voids a pending call and speaks at once.
            await peer.send({"type": "InjectUserMessage", "content": "weather"})
            await peer.until("FunctionCallRequest")
            await peer.send(
                {"type": "InjectAgentMessage", "message": "Sorry!", "behavior": "interrupt"}
            )
            frames = await peer.until("AgentAudioDone")
    assert kinds(frames) == [
        "FunctionCallCancelled",
        "ConversationText",
        "History",
        "AUDIO",
        "AgentAudioDone",
    ]


async def test_inject_agent_message_bad_behavior_and_dynamic_form() -> None:
    async with emulator(script=Script(filler="Hang on.")) as emu:
        async with connect(emu) as peer:
            await peer.start()
            await peer.send({"type": "InjectAgentMessage", "is_dynamic": True})
            frames = await peer.until("AgentAudioDone")
            assert frames[0] == {
                "type": "ConversationText",
                "role": "assistant",
                "content": "Hang on.",
                "conversational_behavior": "filler",
            }
            await peer.send({"type": "InjectAgentMessage", "message": "x", "behavior": "shout"})
            frames, code = await peer.expect_close()
    assert isinstance(frames[0], dict) and frames[0]["code"] == "UNPARSABLE_CLIENT_MESSAGE"
    assert "behavior" in frames[0]["description"]
    assert code == 1000


# ---------------------------------------------------------------------------------------------
# Sessions, shutdown, threads, CLI
# ---------------------------------------------------------------------------------------------


async def test_two_concurrent_sessions_are_independent() -> None:
    script = Script(rules=[Rule(match="a", reply="Alpha.", once=True)])
    async with emulator(script=script) as emu:
        async with connect(emu) as one, connect(emu) as two:
            await one.start()
            await two.start()
            await one.send({"type": "InjectUserMessage", "content": "a"})
            await two.send({"type": "UpdatePrompt", "prompt": "Two."})
            await two.until("PromptUpdated")
            await two.ws.send_str("garbage")
            _, code = await two.expect_close()
            assert code == 1000
            frames = await one.until("AgentAudioDone")
            # The once-rule is per session: session two's copy is untouched.
            assert len(emu.sessions[1].script.rules) == 1
            await one.send({"type": "InjectUserMessage", "content": "a"})
            again = await one.until("AgentAudioDone")
        s1, s2 = emu.sessions
        assert s1.request_id != s2.request_id
        assert s1.state.prompt == "Be brief." and s2.state.prompt == "Two."
        assert s1.state.error is None and s2.state.error is not None
        assert s1.state.turns == 2
    texts = [
        f["content"]
        for f in frames + again
        if isinstance(f, dict) and f["type"] == "ConversationText"
    ]
    assert texts == ["a", "Alpha.", "a", "You said: a"]


async def test_counters() -> None:
    async with emulator() as emu:
        async with connect(emu) as peer:
            await peer.start()
            await peer.ws.send_bytes(b"\x00" * 640)
            await peer.send({"type": "KeepAlive"})
            session = emu.sessions[0]
            await session.wait_for_received("KeepAlive")
        await session.wait_closed()
        st = session.state
        assert (st.frames_in, st.json_in, st.audio_frames_in, st.audio_bytes_in) == (3, 2, 1, 640)
        assert session.received[1] == 640
        assert st.frames_out == 2 and st.json_out == 2
        assert st.bytes_out == sum(
            len(json.dumps(f, separators=(",", ":"))) for f in peer.frames if isinstance(f, dict)
        )
        assert session.close_code == 1000


async def test_wait_for_received_is_bounded() -> None:
    from deepgram_agent.exceptions import DeepgramTimeoutError

    async with emulator() as emu:
        async with connect(emu) as peer:
            await peer.start()
            session = await emu.wait_for_session()
            with pytest.raises(DeepgramTimeoutError, match="KeepAlive"):
                await session.wait_for_received("KeepAlive", timeout=0.05)
        with pytest.raises(DeepgramTimeoutError):
            await emu.wait_for_session(index=5, timeout=0.05)


async def test_shutdown_closes_sessions_promptly() -> None:
    loop = asyncio.get_running_loop()
    emu = AgentEmulator(realtime_audio=False)
    await emu.start()
    try:
        async with connect(emu) as peer:
            await peer.start()
            t0 = loop.time()
            closing = asyncio.create_task(emu.aclose())
            frames, code = await peer.expect_close()
            await closing
            assert loop.time() - t0 < scaled(2.0)
        assert frames == [] and code == 1001
        assert emu.sessions[0].closed.is_set()
    finally:
        await emu.aclose()


def test_run_in_thread_and_cli_module() -> None:
    import subprocess
    import sys

    with AgentEmulator.run_in_thread(api_key="k", realtime_audio=False) as emu:
        assert emu.url.startswith("ws://127.0.0.1:")

        async def talk() -> list[str]:
            async with aiohttp.ClientSession() as http:
                async with http.ws_connect(emu.agent_url, headers=auth("k")) as ws:
                    peer = Peer(ws)
                    await peer.start()
                    await peer.send({"type": "InjectUserMessage", "content": "hi"})
                    return kinds(await peer.until("AgentAudioDone"))

        turn = asyncio.run(talk())
        assert "AUDIO" in turn and "AgentStartedSpeaking" not in turn
        session = emu.run_sync(emu.wait_for_session(0))
        assert emu.run_sync(session.wait_for_received("InjectUserMessage"))[0]["content"] == "hi"

    with subprocess.Popen(
        [sys.executable, "-m", "deepgram_agent.testing", "--fast-audio", "--api-key", "cli"],
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            url = proc.stdout.readline().strip()
            assert url.startswith("ws://127.0.0.1:")

            async def hello() -> str:
                async with aiohttp.ClientSession() as http:
                    async with http.ws_connect(
                        url + "/v1/agent/converse", headers=auth("cli")
                    ) as ws:
                        frame = await Peer(ws).next()
                        assert isinstance(frame, dict)
                        return str(frame["type"])

            assert asyncio.run(hello()) == "Welcome"
            proc.terminate()
            assert proc.wait(timeout=scaled(10)) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


async def test_the_emulator_object_refuses_misuse_clearly() -> None:
    with pytest.raises(ValueError, match="api_key must be a non-empty string"):
        AgentEmulator(api_key="")
    with pytest.raises(ValueError, match="replay_timeout must be a positive number"):
        AgentEmulator(replay_timeout=0)
    emu = AgentEmulator(api_key="k")
    assert repr(emu) == "<AgentEmulator not started sessions=0>"
    with pytest.raises(RuntimeError, match="the emulator is not running"):
        _ = emu.url
    with pytest.raises(RuntimeError, match="run_in_thread"):
        emu.run_sync(asyncio.sleep(0))
    async with emu:
        assert repr(emu) == f"<AgentEmulator {emu.url} sessions=0>"
        with pytest.raises(RuntimeError, match="already running"):
            await emu.start()
        with pytest.raises(OSError):  # the port is taken: nothing is left half started
            await AgentEmulator(port=emu.port).start()
        # A plain HTTP request (no WebSocket upgrade) with a valid key: 400, as the server.
        async with aiohttp.ClientSession() as http:
            async with http.get(emu.agent_url, headers=auth("k")) as resp:
                assert resp.status == 400
                assert "upgrade" in (await resp.text()).lower()
        assert emu.sessions[0].handshake_status == 400


async def test_a_session_pushes_raw_frames_and_its_wait_is_bounded() -> None:
    from deepgram_agent.exceptions import DeepgramTimeoutError

    async with emulator(api_key="test-key") as emu:
        async with connect(emu) as peer:
            await peer.start()
            session = emu.sessions[0]
            assert repr(session).startswith("<EmulatorSession #0 active request_id=")
            with pytest.raises(DeepgramTimeoutError):
                await session.wait_closed(0.01)  # still open
            await session.send('{"type":"Surprise","from":"the test"}')
            await session.send(b"\x01\x02")
            assert await peer.next() == {"type": "Surprise", "from": "the test"}
            assert await peer.next() == b"\x01\x02"


def test_a_script_from_json_takes_every_key_and_templates_never_fail() -> None:
    import re

    from deepgram_agent.testing import TurnContext

    script = Script.from_json(
        json.dumps(
            {
                "rules": [
                    {
                        "match": "weather",
                        "tool_calls": [{"name": "get_weather", "result": {"sky": "clear"}}],
                        "reply": "It is {result[get_weather]}.",
                    }
                ],
                "default_transcript": None,
                "filler": "Let me check.",
                "preamble": "Well,",
                "latency": {"think": 0.25},
            }
        )
    )
    assert script.rules[0].tool_calls[0].result == '{"sky":"clear"}'
    assert script.default_transcript is None
    assert (script.filler, script.preamble, script.latency["think"]) == (
        "Let me check.",
        "Well,",
        0.25,
    )
    with pytest.raises(ValueError, match="a script must be a JSON object"):
        Script.from_json("[]")
    match = re.search(r"(\w+) (\w+)", "hello there")
    ctx = TurnContext(text="hello there", match=match)
    assert script.render("{match[1]}/{match[2]}/{match[7]}/{args[x]}", ctx) == "hello/there//"
    assert script.render("{0} {unclosed", ctx) == "{0} {unclosed"  # broken: sent as is
