"""Emulator audio: VAD turns, barge-in, ForceEndTurn, output formats and pacing."""

from __future__ import annotations

import asyncio
import math
import struct
import warnings
from array import array
from typing import Any

import pytest

from deepgram_agent.testing import Rule, Script, ToolCall
from deepgram_agent.testing._audio import (
    alaw_decode,
    alaw_encode,
    mulaw_decode,
    mulaw_encode,
)
from tests.test_emulator import Peer, connect, emulator, kinds, settings

pytestmark = pytest.mark.anyio


def sine(seconds: float, rate: int = 16000, amplitude: float = 0.5) -> bytes:
    n = round(seconds * rate)
    samples = array(
        "h", (round(amplitude * 32767 * math.sin(2 * math.pi * 300 * i / rate)) for i in range(n))
    )
    return samples.tobytes()


def silence(seconds: float, rate: int = 16000) -> bytes:
    return b"\x00\x00" * round(seconds * rate)


async def stream(peer: Peer, audio: bytes, chunk: int = 640) -> None:
    for i in range(0, len(audio), chunk):
        await peer.ws.send_bytes(audio[i : i + chunk])


def texts(frames: list[Any], role: str) -> list[str]:
    return [
        f["content"]
        for f in frames
        if isinstance(f, dict) and f["type"] == "ConversationText" and f["role"] == role
    ]


async def test_audio_turn_via_vad() -> None:
    script = Script(
        transcripts=["book a table for two"], rules=[Rule(match="table", reply="Done.")]
    )
    async with emulator(script=script, vad_silence=0.3) as emu:
        async with connect(emu) as peer:
            await peer.start()
            await stream(peer, silence(0.2) + sine(0.3))
            assert kinds(await peer.until("UserStartedSpeaking")) == ["UserStartedSpeaking"]
            await stream(peer, silence(0.4))
            frames = await peer.until("AgentAudioDone")
        session = emu.sessions[0]
    assert kinds(frames)[:3] == ["ConversationText", "History", "ConversationText"]
    assert texts(frames, "user") == ["book a table for two"]
    assert texts(frames, "assistant") == ["Done."]
    assert frames[-2]["type"] == "LatencyReport" and "stt_latency" in frames[-2]
    assert session.state.audio_bytes_in == len(silence(0.2) + sine(0.3) + silence(0.4))
    assert session.script.transcripts == []


async def test_mulaw_input_vad_and_default_transcript() -> None:
    body = settings()
    body["audio"] = {"input": {"encoding": "mulaw", "sample_rate": 8000}}
    loud = mulaw_encode(array("h", sine(0.2, rate=8000)))
    quiet = mulaw_encode(array("h", silence(0.4, rate=8000)))
    async with emulator(script=Script(default_transcript="hi")) as emu:
        async with connect(emu) as peer:
            await peer.start(body)
            await stream(peer, loud + quiet, chunk=160)
            frames = await peer.until("AgentAudioDone")
    assert kinds(frames)[0] == "UserStartedSpeaking"
    assert texts(frames, "user") == ["hi"]


async def until_audio(peer: Peer) -> None:
    """Read until the first agent audio frame (the reliable "agent is talking" signal)."""
    while not isinstance(await peer.next(), bytes):
        pass


async def test_barge_in_stops_agent_audio_at_once_then_agent_audio_done() -> None:
    long_text = "Let me tell you a very long story about the sea. " * 3
    script = Script(rules=[Rule(match="story", reply=long_text)], transcripts=["stop"])
    async with emulator(script=script, realtime_audio=True) as emu:
        async with connect(emu) as peer:
            await peer.start()
            await peer.send({"type": "InjectUserMessage", "content": "tell me a story"})
            await until_audio(peer)
            for _ in range(3):
                assert isinstance(await peer.next(), bytes)
            await stream(peer, sine(0.1))
            await peer.until("UserStartedSpeaking")
            session = emu.sessions[0]
            sent_at_barge_in = session.state.audio_bytes_out
            # docs/protocol.md 8: the cut speech's AgentAudioDone follows shortly (default 20 ms).
            done = await peer.until("AgentAudioDone")
            await stream(peer, silence(0.4))
            after = await peer.until("ConversationText")
    # Nothing of the old reply after UserStartedSpeaking but its AgentAudioDone: no audio.
    assert done == [{"type": "AgentAudioDone"}]
    assert after == [
        {
            "type": "ConversationText",
            "role": "user",
            "content": "stop",
            "conversational_behavior": "default",
        }
    ]
    full = len(long_text.strip()) * 0.06 * 48000
    assert sent_at_barge_in < full / 2


async def test_barge_in_cancels_pending_function_calls() -> None:
    script = Script(rules=[Rule(match="weather", tool_calls=[ToolCall(name="get_weather")])])
    async with emulator(script=script) as emu:
        async with connect(emu) as peer:
            await peer.start()
            await peer.send({"type": "InjectUserMessage", "content": "weather"})
            request = (await peer.until("FunctionCallRequest"))[-1]
            await stream(peer, sine(0.1))
            frames = await peer.until("FunctionCallCancelled")
            # A late response for the cancelled id is ignored.
            call_id = request["functions"][0]["id"]
            await peer.send(
                {
                    "type": "FunctionCallResponse",
                    "id": call_id,
                    "name": "get_weather",
                    "content": "x",
                }
            )
            await emu.sessions[0].wait_for_received("FunctionCallResponse")
    assert kinds(frames) == ["UserStartedSpeaking", "FunctionCallCancelled"]
    assert frames[1]["functions"] == [{"id": call_id, "name": "get_weather"}]
    assert emu.sessions[0].state.pending_calls == {}
    assert emu.sessions[0].state.error is None


async def test_inject_agent_message_refused_while_user_speaks() -> None:
    async with emulator() as emu:
        async with connect(emu) as peer:
            await peer.start()
            await stream(peer, sine(0.1))
            await peer.until("UserStartedSpeaking")
            for behavior in ("default", "queue"):
                await peer.send(
                    {"type": "InjectAgentMessage", "message": "Hi", "behavior": behavior}
                )
                assert await peer.until("InjectionRefused") == [
                    {"type": "InjectionRefused", "message": "User is currently speaking."}
                ]


async def test_force_end_turn_without_flux_warns_but_ends_the_turn() -> None:
    async with emulator(script=Script(transcripts=["pushed"])) as emu:
        async with connect(emu) as peer:
            await peer.start()
            await stream(peer, sine(0.1))
            await peer.until("UserStartedSpeaking")
            await peer.send({"type": "ForceEndTurn"})
            frames = await peer.until("ConversationText")
    assert kinds(frames) == ["Warning", "ConversationText"]
    assert frames[0]["code"] == "FORCE_END_TURN_UNSUPPORTED"
    assert frames[1]["content"] == "pushed"


async def test_force_end_turn_with_flux() -> None:
    body = settings(
        listen={"provider": {"type": "deepgram", "version": "v2", "model": "flux-general-en"}}
    )
    async with emulator(script=Script(transcripts=["pushed"])) as emu:
        async with connect(emu) as peer:
            await peer.start(body)
            await peer.send({"type": "ForceEndTurn"})  # no turn in progress: a no-op
            await stream(peer, sine(0.1))
            await peer.until("UserStartedSpeaking")
            await peer.send({"type": "ForceEndTurn"})
            frames = await peer.until("ConversationText")
    assert kinds(frames) == ["ConversationText"]
    assert frames[0]["content"] == "pushed"


@pytest.mark.parametrize(
    ("encoding", "rate", "frame_bytes", "bytes_per_second"),
    [
        ("mulaw", 8000, 160, 8000),
        ("alaw", 8000, 160, 8000),
        ("linear16", 16000, 640, 32000),
        ("linear16", 24000, 960, 48000),
        ("linear16", 48000, 1920, 96000),
    ],
)
async def test_output_format(
    encoding: str, rate: int, frame_bytes: int, bytes_per_second: int
) -> None:
    body = settings()
    body["audio"]["output"] = {"encoding": encoding, "sample_rate": rate}
    reply = "Fifty characters of reply text, exactly like this."
    assert len(reply) == 50
    async with emulator(script=Script(default_reply=reply)) as emu:
        async with connect(emu) as peer:
            await peer.start(body)
            await peer.send({"type": "InjectUserMessage", "content": "x"})
            frames = await peer.until("AgentAudioDone")
    audio = [f for f in frames if isinstance(f, bytes)]
    total = b"".join(audio)
    assert len(total) == round(50 * 0.060 * bytes_per_second)  # 3 s of audio
    assert {len(a) for a in audio[:-1]} == {frame_bytes}
    if encoding == "mulaw":
        samples = mulaw_decode(total)
    elif encoding == "alaw":
        samples = alaw_decode(total)
    else:
        samples = array("h")
        samples.frombytes(total)
    rms = math.sqrt(sum(s * s for s in samples) / len(samples)) / 32768
    assert 0.1 < rms < 0.3  # a real tone, not silence or noise at full scale


async def test_wav_container_starts_with_a_header() -> None:
    body = settings()
    body["audio"]["output"] = {"encoding": "linear16", "sample_rate": 16000, "container": "wav"}
    async with emulator(script=Script(default_reply="Hello.")) as emu:
        async with connect(emu) as peer:
            await peer.start(body)
            await peer.send({"type": "InjectUserMessage", "content": "x"})
            frames = await peer.until("AgentAudioDone")
    audio = [f for f in frames if isinstance(f, bytes)]
    header = audio[0]
    assert header[:4] == b"RIFF" and header[8:12] == b"WAVE" and len(header) == 44
    (rate,) = struct.unpack_from("<I", header, 24)
    (data_len,) = struct.unpack_from("<I", header, 40)
    assert rate == 16000
    assert data_len == sum(len(a) for a in audio[1:]) == round(6 * 0.06 * 32000)


async def test_realtime_pacing() -> None:
    loop = asyncio.get_running_loop()
    async with emulator(script=Script(default_reply="Ten chars."), realtime_audio=True) as emu:
        async with connect(emu) as peer:
            await peer.start()
            await peer.send({"type": "InjectUserMessage", "content": "x"})
            await peer.until("History")  # the user's
            await peer.until("History")  # the agent's, just before its audio
            t0 = loop.time()
            await peer.until("AgentAudioDone")
            elapsed = loop.time() - t0
    assert elapsed >= 0.6 - 0.02 - 0.05  # 0.6 s of audio; the last 20 ms frame is not waited for


def test_g711_matches_reference() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        audioop = pytest.importorskip("audioop")
    samples = array("h", range(-32768, 32768, 7))
    assert mulaw_encode(samples) == audioop.lin2ulaw(samples.tobytes(), 2)
    assert alaw_encode(samples) == audioop.lin2alaw(samples.tobytes(), 2)
    every = bytes(range(256))
    assert mulaw_decode(every).tobytes() == audioop.ulaw2lin(every, 2)
    assert alaw_decode(every).tobytes() == audioop.alaw2lin(every, 2)
