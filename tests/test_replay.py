"""Replaying a recorded session in the emulator: same frames, same order, bounded waits."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from deepgram_agent import SettingsRejected
from deepgram_agent import messages as m
from deepgram_agent.recording import read_recording
from deepgram_agent.testing import AgentEmulator, Faults
from deepgram_agent.testing._replay import (
    AUDIO,
    ClientTally,
    ExpectFrames,
    RealtimePacer,
    Recording,
    SendFrame,
    silence,
)

from .conftest import KEY, SETTINGS, client_for, scaled


def shape(items: list[Any]) -> list[str]:
    """What the client saw: message type names, audio as ``audio:<size>``."""
    return [f"audio:{len(x)}" if isinstance(x, bytes) else type(x).__name__ for x in items]


async def talk(emu: AgentEmulator, path: Path | None = None, **kw: Any) -> list[Any]:
    """One scripted exchange: audio out, one user turn, read until AgentAudioDone."""
    client = client_for(emu)
    extra: dict[str, Any] = {"record": str(path)} if path is not None else {}
    got: list[Any] = []
    async with client.agent.connect(SETTINGS, keepalive_interval=None, **extra, **kw) as conn:
        await conn.send_audio(b"\x07\x00" * 160)
        await conn.inject_user_message("replay me")
        async with asyncio.timeout(scaled(10)):
            async for msg in conn:
                got.append(msg)
                if isinstance(msg, m.AgentAudioDone):
                    break
    return got


@pytest.mark.anyio
@pytest.mark.parametrize("with_audio", [False, True])
async def test_replay_reproduces_the_recorded_stream(tmp_path: Path, with_audio: bool) -> None:
    path = tmp_path / "session.jsonl"
    async with AgentEmulator(api_key=KEY, realtime_audio=False) as emu:
        original = await talk(emu, path, record_audio=with_audio)
    assert any(isinstance(x, bytes) for x in original)
    async with AgentEmulator(api_key=KEY, replay=path, replay_timeout=scaled(5)) as emu:
        replayed = await talk(emu)
        session = emu.sessions[0]
        assert session.state.error is None
        assert session.audio_bytes_received == 320
        assert [f["type"] for f in session.received_json()] == ["Settings", "InjectUserMessage"]
    assert shape(replayed) == shape(original)
    audio_in = [x for x in replayed if isinstance(x, bytes)]
    if with_audio:
        assert audio_in == [x for x in original if isinstance(x, bytes)]
    else:
        assert all(chunk == bytes(len(chunk)) for chunk in audio_in)  # linear16 silence
    # Welcome is replayed verbatim: the recorded request id, not a fresh one.
    assert isinstance(replayed[0], m.Welcome) and isinstance(original[0], m.Welcome)
    assert replayed[0].request_id == original[0].request_id
    texts = [x for x in replayed if isinstance(x, m.ConversationText)]
    assert [t.content for t in texts] == [
        t.content for t in original if isinstance(t, m.ConversationText)
    ]


@pytest.mark.anyio
async def test_a_recorded_garbage_frame_is_replayed_verbatim_as_unhandled(
    tmp_path: Path,
) -> None:
    path = tmp_path / "garbage.jsonl"
    async with AgentEmulator(
        api_key=KEY, realtime_audio=False, faults=Faults(garbage_after=2)
    ) as emu:
        original = await talk(emu, path)
    recorded = [e["frame"] for e in read_recording(path) if e["dir"] == "in" and "frame" in e]
    assert "this is not JSON {" in recorded
    async with AgentEmulator(api_key=KEY, replay=path, replay_timeout=scaled(5)) as emu:
        replayed = await talk(emu)
    unhandled = [x for x in replayed if isinstance(x, m.Unhandled) and x.reason]
    assert len(unhandled) == 1  # (EndOfThought is Unhandled too, but well formed)
    assert unhandled[0].raw == b"this is not JSON {" and unhandled[0].reason
    assert shape(replayed) == shape(original)
    assert shape(replayed)[:3] == ["Welcome", "SettingsApplied", "Unhandled"]


@pytest.mark.anyio
async def test_a_client_that_never_sends_what_was_recorded_gets_a_bounded_timeout(
    tmp_path: Path,
) -> None:
    path = tmp_path / "session.jsonl"
    async with AgentEmulator(api_key=KEY, realtime_audio=False) as emu:
        await talk(emu, path)
    async with AgentEmulator(api_key=KEY, replay=path, replay_timeout=0.3) as emu:
        client = client_for(emu)
        loop = asyncio.get_running_loop()
        async with client.agent.connect(SETTINGS, keepalive_interval=None) as conn:
            started = loop.time()
            got: list[Any] = []
            async with asyncio.timeout(scaled(5)):
                async for msg in conn:  # never sends the recorded audio nor the injection
                    got.append(msg)
            elapsed = loop.time() - started
        err = got[-1]
        assert isinstance(err, m.Error) and err.code == "REPLAY_TIMEOUT"
        assert "audio frame(s)" in err.description and "Settings x1" in err.description
        assert shape(got) == ["Welcome", "SettingsApplied", "Error"]
        assert 0.25 <= elapsed < scaled(3)
        assert await emu.sessions[0].wait_closed(timeout=scaled(5)) == 1000


@pytest.mark.anyio
async def test_replay_still_validates_the_clients_settings_strictly(tmp_path: Path) -> None:
    path = tmp_path / "session.jsonl"
    async with AgentEmulator(api_key=KEY, realtime_audio=False) as emu:
        await talk(emu, path)
    bad = json.loads(json.dumps(SETTINGS))
    bad["audio"]["input"]["sample_rate"] = "fast"  # what a buggy client might send
    async with AgentEmulator(api_key=KEY, replay=path, replay_timeout=scaled(5)) as emu:
        async with aiohttp.ClientSession() as http:
            async with http.ws_connect(
                emu.agent_url, headers={"Authorization": f"Token {KEY}"}
            ) as ws:
                welcome = await ws.receive_json(timeout=scaled(5))
                assert welcome["type"] == "Welcome"
                await ws.send_str(json.dumps(bad))
                error = await ws.receive_json(timeout=scaled(5))
        assert error["type"] == "Error" and error["code"] != "REPLAY_TIMEOUT"
        assert "sample_rate" in error["description"]
        session = emu.sessions[0]
        assert session.settings is None
        assert session.sent_types == ["Welcome", "Error"]


@pytest.mark.anyio
async def test_a_reconnect_in_the_recording_is_a_second_session(tmp_path: Path) -> None:
    from deepgram_agent._reconnect import ReconnectPolicy

    path = tmp_path / "reconnect.jsonl"
    fast = ReconnectPolicy(initial_delay=0.01, max_delay=0.05, jitter=0.0, max_attempts=3)
    faults = lambda i: Faults(drop_after=2) if i == 0 else None  # noqa: E731
    async with AgentEmulator(api_key=KEY, realtime_audio=False, faults=faults) as emu:
        client = client_for(emu)
        async with client.agent.connect(
            SETTINGS, record=str(path), reconnect=fast, keepalive_interval=None
        ) as conn:
            async with asyncio.timeout(scaled(10)):
                async for msg in conn:
                    if isinstance(msg, m.Reconnected):
                        break
    recording = Recording.load(path)
    assert len(recording.sessions) == 2
    async with AgentEmulator(api_key=KEY, replay=recording, replay_timeout=scaled(5)) as emu:
        first = client_for(emu)
        for _ in range(2):
            async with first.agent.connect(SETTINGS, keepalive_interval=None) as conn:
                assert conn.ready
        with pytest.raises(SettingsRejected, match="REPLAY_EXHAUSTED"):
            async with first.agent.connect(SETTINGS, keepalive_interval=None):
                pass
        assert [s.sent_types for s in emu.sessions] == [
            ["Welcome", "SettingsApplied"],
            ["Welcome", "SettingsApplied"],
            ["Error"],
        ]


def test_plan_tally_pacer_and_silence_without_io() -> None:
    entries = [
        {"dir": "in", "t": 0.0, "kind": "text", "frame": '{"type":"Welcome","request_id":"r"}'},
        {"dir": "out", "t": 0.01, "kind": "text", "frame": '{"type":"Settings"}'},
        {"dir": "out", "t": 0.02, "kind": "text", "frame": '{"type":"KeepAlive"}'},
        {"dir": "out", "t": 0.03, "kind": "audio", "size": 4},
        {"dir": "out", "t": 0.04, "kind": "audio", "size": 4},
        {"dir": "in", "t": 0.5, "kind": "audio", "size": 3},
        {"dir": "in", "t": 0.6, "kind": "text", "frame": "not json"},
    ]
    (plan,) = Recording(entries).sessions
    kinds = [(type(s).__name__, s.type if isinstance(s, SendFrame) else s.key) for s in plan]
    assert kinds == [
        ("SendFrame", "Welcome"),
        ("ExpectFrames", "Settings"),
        ("ExpectFrames", AUDIO),
        ("ExpectFrames", AUDIO),
        ("SendFrame", AUDIO),
        ("SendFrame", "<raw>"),
    ]
    expect_two = plan[3]
    assert isinstance(expect_two, ExpectFrames) and expect_two.count == 2
    tally = ClientTally()
    received: list[dict[str, Any] | int] = [{"type": "Settings"}, 4]
    tally.update(received)
    assert not tally.satisfied(expect_two)
    received.append(4)
    tally.update(received)
    assert tally.satisfied(expect_two) and tally.describe() == "Settings x1, audio x2"
    pacer = RealtimePacer()
    audio, raw = plan[4], plan[5]
    assert isinstance(audio, SendFrame) and isinstance(raw, SendFrame)
    assert pacer.delay(audio, 100.0) == 0.0
    pacer.sent(audio, 100.0)
    assert pacer.delay(raw, 100.04) == pytest.approx(0.06)
    assert silence("mulaw", 2) == b"\xff\xff" and silence("linear16", 2) == b"\x00\x00"


def test_command_line_refuses_a_file_that_is_not_a_recording(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text("nope\n")
    proc = subprocess.run(
        [sys.executable, "-m", "deepgram_agent.testing", "--replay", str(bad)],
        capture_output=True,
        text=True,
        timeout=scaled(30),
        check=False,
    )
    assert proc.returncode == 2 and "cannot load recording" in proc.stderr
