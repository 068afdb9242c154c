"""Regressions for problems found in review of options, tools and the emulator."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from deepgram_agent import (
    DeepgramClient,
    Listen,
    SettingsError,
    SettingsOptions,
    Speak,
)
from deepgram_agent import (
    messages as m,
)
from deepgram_agent._validate import check_client_message
from deepgram_agent.options import DeepgramAgentWarning
from deepgram_agent.testing import AgentEmulator, Rule, Script, ToolCall
from deepgram_agent.tools import Tools

from .conftest import scaled
from .test_connection import KEY, SETTINGS


async def until(conn: Any, predicate: Any) -> Any:
    async with asyncio.timeout(scaled(15)):
        async for msg in conn:
            if predicate(msg):
                return msg
    raise AssertionError("the stream ended first")


@pytest.mark.anyio
async def test_emulator_idle_timeout_applies_again_once_a_call_is_answered() -> None:
    script = Script(rules=[Rule(match="time", tool_calls=[ToolCall(name="get_time")], reply="ok")])
    async with AgentEmulator(
        api_key=KEY,
        script=script,
        realtime_audio=False,
        idle_timeout=0.5,
        function_response_timeout=20,
    ) as emu:
        client = DeepgramClient(api_key=KEY, base_url=emu.url)
        async with client.agent.connect(SETTINGS, keepalive_interval=None) as conn:
            await conn.inject_user_message("what time is it")
            await until(conn, lambda x: isinstance(x, m.FunctionCallRequest))
            await conn.send_function_call_response(name="get_time", content="noon")
            answered = time.monotonic()
            err = await until(conn, lambda x: isinstance(x, m.Error))
            assert err.code == "CLIENT_MESSAGE_TIMEOUT"
            assert time.monotonic() - answered < scaled(5)  # idle_timeout, not the 20 s


@pytest.mark.anyio
async def test_a_tool_leaking_its_own_cancelled_error_still_gets_an_answer() -> None:
    tools = Tools(timeout=5)

    @tools.tool
    async def get_time() -> str:
        """Current time."""
        helper = asyncio.ensure_future(asyncio.sleep(10))
        helper.cancel()
        await helper  # raises CancelledError inside the tool, not a cancellation of the call
        return "never"

    script = Script(rules=[Rule(match="time", tool_calls=[ToolCall(name="get_time")], reply="ok")])
    settings = {
        "audio": {},
        "agent": {"think": {"provider": {"type": "open_ai", "model": "gpt-4o"}}},
    }
    async with AgentEmulator(api_key=KEY, script=script, realtime_audio=False) as emu:
        client = DeepgramClient(api_key=KEY, base_url=emu.url)
        async with client.agent.connect(settings, tools=tools) as conn:
            await conn.inject_user_message("what time is it")
            await until(conn, lambda x: isinstance(x, m.AgentAudioDone))
            (response,) = emu.sessions[0].received_json("FunctionCallResponse")
            assert "error" in response["content"] and "CancelledError" in response["content"]
            assert tools.calls[0].outcome == "error"


def test_inject_agent_message_forms_the_server_rejects_fail_locally() -> None:
    # behavior is an open enum (issue 14): the client warns and sends it; the server decides.
    bad = {"type": "InjectAgentMessage", "message": "x", "behavior": "Queue"}
    with pytest.warns(DeepgramAgentWarning, match="did you mean 'queue'"):
        msg = check_client_message(bad)
    assert isinstance(msg, m.InjectAgentMessage) and msg.behavior == "Queue"
    with pytest.raises(SettingsError) as info:
        check_client_message(bad, as_server=True)  # the emulator answers as today's server
    assert info.value.path == "behavior"
    with pytest.raises(SettingsError, match="needs message"):
        check_client_message({"type": "InjectAgentMessage"})
    with pytest.raises(SettingsError, match="needs message"):
        check_client_message({"type": "InjectAgentMessage", "is_dynamic": False})
    check_client_message({"type": "InjectAgentMessage", "is_dynamic": True, "behavior": "queue"})
    check_client_message({"type": "InjectAgentMessage", "message": "x", "behavior": "interrupt"})


@pytest.mark.anyio
async def test_unknown_behavior_warns_locally_and_the_server_decides() -> None:
    async with AgentEmulator(api_key=KEY, realtime_audio=False) as emu:
        client = DeepgramClient(api_key=KEY, base_url=emu.url)
        async with client.agent.connect(SETTINGS) as conn:
            with pytest.warns(DeepgramAgentWarning, match="did you mean 'queue'"):
                await conn.inject_agent_message("One moment.", behavior="Queue")
            error = await until(conn, lambda x: isinstance(x, m.Error))
            assert error.code == "UNPARSABLE_CLIENT_MESSAGE"
            assert "behavior" in error.description
        sent = emu.sessions[0].received_json("InjectAgentMessage")
        assert sent == [
            {"type": "InjectAgentMessage", "message": "One moment.", "behavior": "Queue"}
        ]


def test_listen_and_speak_inside_an_agent_dict_set_the_audio_format() -> None:
    opts = SettingsOptions(
        agent={
            "listen": Listen(model="nova-3", encoding="mulaw", sample_rate=8000),
            "speak": Speak(model="aura-2-thalia-en", encoding="mulaw"),
        }
    )
    audio = opts.to_dict()["audio"]
    assert audio["input"] == {"encoding": "mulaw", "sample_rate": 8000}
    assert audio["output"] == {"encoding": "mulaw", "sample_rate": 8000, "container": "none"}
