"""Recording a session to JSON lines: order, verbatim frames, audio sizes, no credentials."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import pytest

from deepgram_agent import DeepgramClient
from deepgram_agent import messages as m
from deepgram_agent.recording import read_recording, redact_settings
from deepgram_agent.testing import AgentEmulator

from .conftest import KEY, SETTINGS, scaled

SECRET_KEY = "rec-key-5be1d0"
SERVER_FN = {
    "name": "open_ticket",
    "description": "Create a ticket.",
    "parameters": {"type": "object", "properties": {}},
    "endpoint": {
        "url": "https://crm.example/t",
        "method": "POST",
        "headers": {"authorization": "Bearer crm-secret"},
    },
}


@pytest.mark.anyio
@pytest.mark.parametrize("with_audio", [False, True])
async def test_a_recorded_session_keeps_every_frame_in_order(
    tmp_path: Path, with_audio: bool
) -> None:
    path = tmp_path / "session.jsonl"
    settings: dict[str, Any] = dict(SETTINGS)
    settings["agent"] = dict(
        SETTINGS["agent"], think=dict(SETTINGS["agent"]["think"], functions=[SERVER_FN])
    )
    async with AgentEmulator(api_key=SECRET_KEY, realtime_audio=False) as emu:
        client = DeepgramClient(api_key=SECRET_KEY, base_url=emu.url)
        async with client.agent.connect(
            settings, record=str(path), record_audio=with_audio
        ) as conn:
            await conn.send_audio(b"\x01\x02" * 80)
            await conn.inject_user_message("record me")
            got: list[Any] = []
            async with asyncio.timeout(scaled(10)):
                async for msg in conn:
                    got.append(msg)
                    if isinstance(msg, m.AgentAudioDone):
                        break
    text = path.read_text()
    assert SECRET_KEY not in text and "crm-secret" not in text
    entries = read_recording(path)
    assert [e["dir"] for e in entries[:3]] == ["in", "out", "in"]
    frames = [e for e in entries if e["kind"] == "text"]
    assert '"type":"Welcome"' in frames[0]["frame"]
    sent_settings = frames[1]["frame"]
    assert '"type":"Settings"' in sent_settings and '"authorization":"***"' in sent_settings
    assert redact_settings({"headers": {"a": "b"}, "x": [{"credentials": {"k": "v"}}]}) == {
        "headers": {"a": "***"},
        "x": [{"credentials": {"k": "***"}}],
    }
    audio_in = [e for e in entries if e["kind"] == "audio" and e["dir"] == "in"]
    assert len(audio_in) == sum(isinstance(x, bytes) for x in got)
    audio_out = [e for e in entries if e["kind"] == "audio" and e["dir"] == "out"]
    assert [e["size"] for e in audio_out] == [160]
    if with_audio:
        assert base64.b64decode(audio_out[0]["data"]) == b"\x01\x02" * 80
    else:
        assert "data" not in audio_out[0]
    times = [e["t"] for e in entries]
    assert times == sorted(times)
    inbound_types = [e["frame"] for e in entries if e["dir"] == "in" and e["kind"] == "text"]
    assert len(inbound_types) == sum(not isinstance(x, bytes) for x in got)


def test_read_recording_rejects_garbage(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"recording": 1}\nnot json\n')
    with pytest.raises(ValueError, match="not a JSON line"):
        read_recording(bad)
    bad.write_text('{"recording": 1}\n{"dir": "sideways"}\n')
    with pytest.raises(ValueError, match="not a recording entry"):
        read_recording(bad)


def test_the_blocking_facade_records_audio_both_ways_held_audio_included(
    tmp_path: Path,
) -> None:
    """Audio read by the reader task (the blocking facade never reads in pull mode) and audio
    held until SettingsApplied and then flushed are recorded like any other frame."""
    path = tmp_path / "blocking.jsonl"
    with AgentEmulator.run_in_thread(api_key=KEY, realtime_audio=False) as emu:
        client = DeepgramClient(api_key=KEY, base_url=emu.url)
        with client.agent.connect_sync(SETTINGS, record=str(path), record_audio=True) as conn:
            conn.inject_user_message("hello")
            for msg in conn:
                if isinstance(msg, m.AgentAudioDone):
                    break
    entries = read_recording(path)
    assert any(e["dir"] == "in" and e["kind"] == "audio" and e.get("data") for e in entries)


@pytest.mark.anyio
async def test_audio_held_until_ready_is_recorded_when_it_is_sent(tmp_path: Path) -> None:
    path = tmp_path / "held.jsonl"
    async with AgentEmulator(api_key=KEY, settings_applied_delay=0.05) as emu:
        conn = DeepgramClient(api_key=KEY, base_url=emu.url)._connection(
            SETTINGS, record=str(path), keepalive_interval=None
        )
        start = asyncio.create_task(conn.start())
        await conn.send_audio(b"\x01\x00" * 160)  # before SettingsApplied: held, then flushed
        await start
        await conn.keep_alive()
        await emu.sessions[0].wait_for_received("KeepAlive", timeout=scaled(5))
        await conn.close()
    out = [e for e in read_recording(path) if e["dir"] == "out"]
    kinds = [e["kind"] if e["kind"] == "audio" else json.loads(e["frame"])["type"] for e in out]
    assert kinds == ["Settings", "audio", "KeepAlive"]
    assert out[1]["size"] == 320
