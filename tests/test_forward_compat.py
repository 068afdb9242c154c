"""When the API is newer than this SDK: validate=False sends the Settings exactly as given, in
every API, and the server (not our checks) decides."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest

from deepgram_agent import (
    AgentWebSocketEvents,
    DeepgramClient,
    SettingsError,
    SettingsRejected,
)
from deepgram_agent.testing import AgentEmulator

from .conftest import client_for, scaled

KEY = "forward-key"

#: Settings with a key and a provider type this SDK does not know (as if Deepgram had added them
#: after this release).
NEWER: dict[str, Any] = {
    "audio": {"input": {"encoding": "linear16", "sample_rate": 16000}},
    "agent": {
        "think": {
            "provider": {"type": "x_ai", "model": "grok-9", "temperature": 0.3},
            "prompt": "Be brief.",
            "reasoning_budget": 512,
        },
        "greeting": "Hi!",
    },
}


def test_the_local_check_names_the_way_around_it() -> None:
    client = DeepgramClient(api_key=KEY, base_url="ws://127.0.0.1:9")
    with pytest.raises(SettingsError) as info:
        client.agent.connect_sync(NEWER, open_timeout=1)
    assert "validate=False" in str(info.value)
    assert info.value.path.startswith("agent.think")


@pytest.mark.anyio
async def test_async_connect_sends_the_settings_verbatim() -> None:
    async with AgentEmulator(api_key=KEY, strict=False, realtime_audio=False) as emu:
        async with client_for(emu).agent.connect(NEWER, validate=False) as conn:
            session = await emu.wait_for_session(timeout=scaled(5))
            assert session.settings == {"type": "Settings", **NEWER}
            assert conn.settings_wire == {"type": "Settings", **NEWER}
            # The typed view keeps what it can model (the audio formats, the greeting).
            assert conn.input_format == ("linear16", 16000)
        sent = emu.sessions[0].received_json("Settings")[0]
        assert json.dumps(sent, sort_keys=True) == json.dumps(
            {"type": "Settings", **NEWER}, sort_keys=True
        )


@pytest.mark.anyio
async def test_the_server_still_decides_and_its_error_is_settings_rejected() -> None:
    async with AgentEmulator(api_key=KEY, realtime_audio=False) as emu:  # strict, as the server
        with pytest.raises(SettingsRejected) as info:
            async with client_for(emu).agent.connect(NEWER, validate=False):
                pass
        assert info.value.code == "UNPARSABLE_CLIENT_MESSAGE"
        assert "agent.think" in str(info.value)


def test_blocking_connect_sends_the_settings_verbatim() -> None:
    with AgentEmulator.run_in_thread(api_key=KEY, strict=False, realtime_audio=False) as emu:
        with client_for(emu).agent.connect_sync(NEWER, validate=False) as conn:
            assert conn.ready
        assert emu.sessions[0].received_json("Settings")[0] == {"type": "Settings", **NEWER}


def test_classic_callback_client_sends_the_settings_verbatim() -> None:
    with AgentEmulator.run_in_thread(api_key=KEY, strict=False, realtime_audio=False) as emu:
        dg = client_for(emu).agent.websocket.v("1")
        assert dg.start(json.dumps(NEWER), validate=False)
        dg.close()
        assert emu.sessions[0].received_json("Settings")[0] == {"type": "Settings", **NEWER}


def test_classic_callback_client_reports_the_servers_refusal_as_events() -> None:
    with AgentEmulator.run_in_thread(api_key=KEY, realtime_audio=False) as emu:
        dg = client_for(emu).agent.websocket.v("1")
        seen: list[str] = []
        closed = threading.Event()
        dg.on(AgentWebSocketEvents.Error, lambda self, error, **kw: seen.append(error.code))
        dg.on(AgentWebSocketEvents.Close, lambda self, close, **kw: closed.set())
        assert dg.start(NEWER, validate=False) is False
        assert closed.wait(scaled(5))
        assert seen == ["UNPARSABLE_CLIENT_MESSAGE"]


@pytest.mark.anyio
async def test_async_classic_client_sends_the_settings_verbatim() -> None:
    async with AgentEmulator(api_key=KEY, strict=False, realtime_audio=False) as emu:
        dg = client_for(emu).agent.asyncwebsocket.v("1")
        texts: list[str] = []
        done = asyncio.Event()

        def on_text(self: Any, text: Any, **kwargs: Any) -> None:
            texts.append(text.content)
            done.set()

        dg.on(AgentWebSocketEvents.ConversationText, on_text)
        assert await dg.start(NEWER, validate=False)
        async with asyncio.timeout(scaled(5)):
            await done.wait()
        await dg.close()
        assert texts[0] == "Hi!"
        assert emu.sessions[0].received_json("Settings")[0] == {"type": "Settings", **NEWER}
