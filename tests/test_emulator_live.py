"""The emulator behaves as live captures show (docs/protocol.md 9.6), driven by a plain aiohttp client:
experimental gating, AgentAudioDone after a barge-in, split LatencyReports, the within-turn order
variations of ``Quirks`` (selected or seeded), exact texts, close echo, logging."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
from typing import Any

import aiohttp
import pytest

from deepgram_agent.testing import AgentEmulator, Quirks, Rule, Script, ToolCall
from tests.conftest import scaled
from tests.test_emulator import SETTINGS, Frame, Peer, auth, connect, emulator, kinds, settings
from tests.test_emulator_audio import silence, sine, stream, until_audio

pytestmark = pytest.mark.anyio

EXPERIMENTAL = {**SETTINGS, "experimental": True}


def json_frames(frames: list[Frame]) -> list[dict[str, Any]]:
    return [f for f in frames if isinstance(f, dict)]


def latency_reports(frames: list[Frame]) -> list[dict[str, Any]]:
    return [f for f in json_frames(frames) if f["type"] == "LatencyReport"]


async def answer(peer: Peer, request: Frame, content: str = "ok") -> None:
    assert isinstance(request, dict) and request["type"] == "FunctionCallRequest"
    for entry in request["functions"]:
        await peer.send(
            {
                "type": "FunctionCallResponse",
                "id": entry["id"],
                "name": entry["name"],
                "content": content,
            }
        )


def weather(**rule: Any) -> Script:
    return Script(
        rules=[
            Rule(
                match="weather",
                tool_calls=[ToolCall(name="get_weather")],
                reply="It is {result[get_weather]}.",
                **rule,
            )
        ]
    )


# ---------------------------------------------------------------------------------------------
# "experimental" gates AgentStartedSpeaking, EndOfThought and AgentThinking
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("experimental", [False, True])
async def test_experimental_gates_three_messages(experimental: bool) -> None:
    script = Script(thinking="Hmm.")
    body = EXPERIMENTAL if experimental else SETTINGS
    async with emulator(script=script) as emu:
        async with connect(emu) as peer:
            await peer.start(body)
            await peer.send({"type": "InjectUserMessage", "content": "hi"})
            frames = await peer.until("AgentAudioDone")
    gated = {"AgentStartedSpeaking", "EndOfThought", "AgentThinking"}
    seen = gated & set(kinds(frames))
    assert seen == (gated if experimental else set())
    assert emu.sessions[0].state.experimental is experimental


# ---------------------------------------------------------------------------------------------
# AgentAudioDone after a barge-in
# ---------------------------------------------------------------------------------------------

LONG = "Let me tell you a very long story about the sea and the ships on it. " * 3


async def barge_in(quirks: Quirks) -> tuple[list[Frame], float, AgentEmulator]:
    """Start a long reply, talk over it; return the frames after UserStartedSpeaking (until
    the next turn's user text) and the seconds from UserStartedSpeaking to AgentAudioDone."""
    loop = asyncio.get_running_loop()
    script = Script(rules=[Rule(match="story", reply=LONG)], transcripts=["stop"])
    async with emulator(script=script, realtime_audio=True, quirks=quirks) as emu:
        async with connect(emu) as peer:
            await peer.start()
            await peer.send({"type": "InjectUserMessage", "content": "a story please"})
            await until_audio(peer)
            await stream(peer, sine(0.1))
            await peer.until("UserStartedSpeaking")
            t0 = loop.time()
            got: list[Frame] = []
            waited = -1.0
            if quirks.audio_done_after_barge_in is not None:
                got = await peer.until("AgentAudioDone")
                waited = loop.time() - t0
            await stream(peer, silence(0.4))
            got += await peer.until("ConversationText")
    return got, waited, emu


async def test_agent_audio_done_follows_a_barge_in_after_the_set_delay() -> None:
    got, waited, _emu = await barge_in(Quirks(audio_done_after_barge_in=0.3))
    assert kinds(got) == ["AgentAudioDone", "ConversationText"]
    assert waited >= 0.15  # 0.3 s on the server; the margin is the delivery of the barge-in


async def test_agent_audio_done_range_is_drawn_per_barge_in() -> None:
    got, waited, _emu = await barge_in(Quirks(audio_done_after_barge_in=(0.01, 0.18)))
    assert kinds(got) == ["AgentAudioDone", "ConversationText"]
    assert waited >= 0.0


async def test_agent_audio_done_can_be_left_out_after_a_barge_in() -> None:
    got, _waited, emu = await barge_in(Quirks(audio_done_after_barge_in=None))
    assert got == [
        {
            "type": "ConversationText",
            "role": "user",
            "content": "stop",
            "conversational_behavior": "default",
        }
    ]
    assert "AgentAudioDone" not in emu.sessions[0].sent_types[-3:]


async def test_no_agent_audio_done_when_the_agent_was_not_talking() -> None:
    async with emulator(script=weather()) as emu:
        async with connect(emu) as peer:
            await peer.start()
            await peer.send({"type": "InjectUserMessage", "content": "weather"})
            await peer.until("FunctionCallRequest")  # thinking, not talking
            await stream(peer, sine(0.1))
            frames = await peer.until("FunctionCallCancelled")
            await peer.send({"type": "KeepAlive"})
            await emu.sessions[0].wait_for_received("KeepAlive")
    assert kinds(frames) == ["UserStartedSpeaking", "FunctionCallCancelled"]
    assert "AgentAudioDone" not in emu.sessions[0].sent_types


# ---------------------------------------------------------------------------------------------
# LatencyReport: one message (default) or one field per message
# ---------------------------------------------------------------------------------------------


async def test_combined_latency_report_is_the_default() -> None:
    async with emulator() as emu:
        async with connect(emu) as peer:
            await peer.start()
            await peer.send({"type": "InjectUserMessage", "content": "hi"})
            frames = await peer.until("AgentAudioDone")
    (report,) = latency_reports(frames)
    assert set(report) == {
        "type",
        "ttt_token_latency",
        "ttt_text_latency",
        "tts_latency",
        "total_latency",
    }
    assert kinds(frames)[-2:] == ["LatencyReport", "AgentAudioDone"]


async def test_split_latency_reports_one_field_per_message() -> None:
    async with emulator(script=weather(), quirks=Quirks(latency_report="split")) as emu:
        async with connect(emu) as peer:
            await peer.start()
            await peer.send({"type": "InjectUserMessage", "content": "weather"})
            before = await peer.until("FunctionCallRequest")
            await answer(peer, before[-1], "sunny")
            after = await peer.until("AgentAudioDone")
    frames = before + after
    reports = latency_reports(frames)
    assert all(len(r) == 2 for r in reports), reports  # "type" and one figure
    assert [next(k for k in r if k != "type") for r in reports] == [
        "ttt_token_latency",  # the "LLM" starts
        "ttt_tool_latency",  # right after the first FunctionCallRequest
        "ttt_text_latency",  # before the first assistant text
        "tts_latency",  # after the first audio frame
        "total_latency",
    ]
    order = kinds(frames)
    assert order.index("FunctionCallRequest") < order.index("ConversationText", 2)
    assert order[-1] == "AgentAudioDone" and order[-2] != "LatencyReport"


async def test_split_mode_reports_stt_latency_every_quarter_second_of_user_audio() -> None:
    async with emulator(quirks=Quirks(latency_report="split")) as emu:
        async with connect(emu) as peer:
            await peer.start()
            await stream(peer, silence(1.0))  # 16 kHz linear16: 4 x 0.25 s
            frames = [await peer.next() for _ in range(4)]
            await peer.send({"type": "KeepAlive"})
            await emu.sessions[0].wait_for_received("KeepAlive")
    script_stt = Script().latency["stt_latency"]
    assert frames == [{"type": "LatencyReport", "stt_latency": script_stt}] * 4
    assert emu.sessions[0].sent_types.count("LatencyReport") == 4


async def test_no_stt_reports_in_the_default_mode() -> None:
    async with emulator() as emu:
        async with connect(emu) as peer:
            await peer.start()
            await stream(peer, silence(1.0))
            await peer.send({"type": "KeepAlive"})
            await emu.sessions[0].wait_for_received("KeepAlive")
    assert "LatencyReport" not in emu.sessions[0].sent_types


# ---------------------------------------------------------------------------------------------
# Order variations within a turn
# ---------------------------------------------------------------------------------------------


async def test_assistant_text_before_the_function_call() -> None:
    quirks = Quirks(text_before_function_call=1.0)
    async with emulator(script=weather(), quirks=quirks) as emu:
        async with connect(emu) as peer:
            await peer.start()
            await peer.send({"type": "InjectUserMessage", "content": "weather?"})
            before = await peer.until("FunctionCallRequest")
            await answer(peer, before[-1], "dry")
            after = await peer.until("AgentAudioDone")
    assert kinds(before) == [
        "ConversationText",
        "History",
        "ConversationText",
        "History",
        "AUDIO",
        "AgentAudioDone",
        "FunctionCallRequest",
    ]
    assert json_frames(before)[2]["content"] == "Let me check that."
    assert [f.get("content") for f in json_frames(after) if f["type"] == "ConversationText"] == [
        "It is dry."
    ]


async def test_late_function_history_comes_after_the_next_assistant_text() -> None:
    async with emulator(script=weather(), quirks=Quirks(late_function_history=1.0)) as emu:
        async with connect(emu) as peer:
            await peer.start()
            await peer.send({"type": "InjectUserMessage", "content": "weather?"})
            request = (await peer.until("FunctionCallRequest"))[-1]
            await answer(peer, request, "dry")
            after = await peer.until("AgentAudioDone")
    assert kinds(after)[:4] == ["ConversationText", "History", "History", "AUDIO"]
    text_history, call_history = json_frames(after)[1:3]
    assert text_history == {"type": "History", "role": "assistant", "content": "It is dry."}
    assert call_history["function_calls"][0]["response"] == "dry"
    # The session's history is in the order the client saw.
    assert [("function_calls" in h) for h in emu.sessions[0].state.history] == [
        False,
        False,
        True,
    ]


BOTH = Script(
    rules=[
        Rule(
            match="both",
            tool_calls=[
                [ToolCall(name="get_weather"), ToolCall(name="get_time")],
                ToolCall(name="get_time"),
            ],
            reply="Done.",
        )
    ]
)


async def two_requests(quirks: Quirks) -> list[Frame]:
    async with emulator(script=BOTH, quirks=quirks) as emu:
        async with connect(emu) as peer:
            await peer.start()
            await peer.send({"type": "InjectUserMessage", "content": "both"})
            frames = await peer.until("FunctionCallRequest")
            await answer(peer, frames[-1])
            more = await peer.until("FunctionCallRequest")
            await answer(peer, more[-1])
            return frames + more + await peer.until("AgentAudioDone")


async def test_batched_function_history_reports_every_call_once_at_the_end() -> None:
    frames = await two_requests(Quirks(batched_function_history=1.0))
    order = kinds(frames)
    assert order[:5] == [
        "ConversationText",
        "History",
        "FunctionCallRequest",
        "FunctionCallRequest",  # no History between the two requests
        "History",
    ]
    batched = json_frames(frames)[4]
    assert [c["name"] for c in batched["function_calls"]] == ["get_weather", "get_time", "get_time"]


async def test_batched_and_late_history_together() -> None:
    frames = await two_requests(Quirks(batched_function_history=1.0, late_function_history=1.0))
    assert kinds(frames)[:7] == [
        "ConversationText",
        "History",
        "FunctionCallRequest",
        "FunctionCallRequest",
        "ConversationText",
        "History",
        "History",
    ]


async def test_default_order_has_one_history_per_request() -> None:
    frames = await two_requests(Quirks())
    assert kinds(frames)[:6] == [
        "ConversationText",
        "History",
        "FunctionCallRequest",
        "History",
        "FunctionCallRequest",
        "History",
    ]


async def test_history_can_mark_client_side_calls_server_side() -> None:
    async with emulator(script=weather(), quirks=Quirks(history_client_side_false=1.0)) as emu:
        async with connect(emu) as peer:
            await peer.start()
            await peer.send({"type": "InjectUserMessage", "content": "weather"})
            request = (await peer.until("FunctionCallRequest"))[-1]
            await answer(peer, request, "dry")
            history = (await peer.until("History"))[-1]
    assert isinstance(request, dict) and request["functions"][0]["client_side"] is True
    assert isinstance(history, dict) and history["function_calls"][0]["client_side"] is False


async def test_a_barge_in_can_void_calls_without_function_call_cancelled() -> None:
    async with emulator(script=weather(), quirks=Quirks(silent_cancel=1.0)) as emu:
        async with connect(emu) as peer:
            await peer.start()
            await peer.send({"type": "InjectUserMessage", "content": "weather"})
            request = (await peer.until("FunctionCallRequest"))[-1]
            await stream(peer, sine(0.1))
            await peer.until("UserStartedSpeaking")
            await answer(peer, request, "late")  # ignored: the call is void
            await peer.send({"type": "KeepAlive"})
            await emu.sessions[0].wait_for_received("KeepAlive")
        session = emu.sessions[0]
    assert "FunctionCallCancelled" not in session.sent_types
    assert session.state.pending_calls == {} and session.state.error is None


async def conversation(quirks: Quirks) -> list[str]:
    """Three tool turns; the sequence of message types the client saw."""
    async with emulator(script=BOTH, quirks=quirks) as emu:
        async with connect(emu) as peer:
            await peer.start()
            seen: list[Frame] = []
            for _ in range(3):
                await peer.send({"type": "InjectUserMessage", "content": "both"})
                for _ in range(2):
                    frames = await peer.until("FunctionCallRequest")
                    seen += frames
                    await answer(peer, frames[-1])
                # A preamble (and its AgentAudioDone) comes before the first request.
                seen += await peer.until("AgentAudioDone")
    return kinds(seen)


async def test_realistic_mode_is_repeatable_with_a_seed() -> None:
    first = await conversation(Quirks.realistic(seed=11))
    again = await conversation(Quirks.realistic(seed=11))
    assert first == again
    # Something actually varied compared with the documented order.
    assert first != await conversation(Quirks())


def test_quirks_reject_nonsense() -> None:
    with pytest.raises(ValueError, match="probability"):
        Quirks(late_function_history=2)
    with pytest.raises(ValueError, match="latency_report"):
        Quirks(latency_report="sometimes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="audio_done_after_barge_in"):
        Quirks(audio_done_after_barge_in=(0.2, 0.1))
    with pytest.raises(ValueError, match="stt_report_interval"):
        Quirks(stt_report_interval=0)
    realistic = Quirks.realistic()
    assert realistic.latency_report == "split" and realistic.seed is None
    assert realistic.audio_done_after_barge_in == (0.01, 0.18)
    assert Quirks(seed=3).rng(1).random() == Quirks(seed=3).rng(1).random()
    assert Quirks(seed=3).rng(1).random() != Quirks(seed=3).rng(2).random()


# ---------------------------------------------------------------------------------------------
# SLOW_THINK_REQUEST
# ---------------------------------------------------------------------------------------------


async def test_slow_think_warnings_with_the_servers_text() -> None:
    script = Script(rules=[Rule(match="hard", reply="Got it.", delay=0.35)])
    async with emulator(script=script, slow_think_interval=0.1) as emu:
        async with connect(emu) as peer:
            await peer.start()
            await peer.send({"type": "InjectUserMessage", "content": "a hard one"})
            frames = await peer.until("AgentAudioDone")
    warnings = [f for f in json_frames(frames) if f["type"] == "Warning"]
    assert warnings == [
        {
            "type": "Warning",
            "code": "SLOW_THINK_REQUEST",
            "description": f"We have now waited {n} seconds for a think response.",
        }
        for n in ("0.1", "0.2", "0.3")
    ]
    order = kinds(frames)
    assert order.index("Warning") > order.index("History") and order.count("Warning") == 3


def test_slow_think_interval_and_script_delay_from_json() -> None:
    with pytest.raises(ValueError, match="slow_think_interval"):
        AgentEmulator(slow_think_interval=0)
    script = Script.from_json(
        json.dumps(
            {
                "rules": [{"match": "x", "delay": 6.5}],
                "preamble": "One sec.",
                "end_of_thought": True,
            }
        )
    )
    assert script.rules[0].delay == 6.5 and script.preamble == "One sec."
    assert script.copy().preamble == "One sec."


# ---------------------------------------------------------------------------------------------
# Close code and reason echoed
# ---------------------------------------------------------------------------------------------


async def test_client_close_code_and_reason_are_echoed() -> None:
    async with emulator() as emu:
        async with connect(emu, autoclose=False) as peer:
            await peer.start()
            payload = (4005).to_bytes(2, "big") + b"user hung up"
            await peer.ws.send_frame(payload, aiohttp.WSMsgType.CLOSE)
            msg = await peer.ws.receive(timeout=scaled(5))
        assert (msg.type, msg.data, msg.extra) == (aiohttp.WSMsgType.CLOSE, 4005, "user hung up")
        assert await emu.sessions[0].wait_closed() == 4005


async def test_normal_client_close_gets_1000_back() -> None:
    async with emulator() as emu:
        async with connect(emu) as peer:
            await peer.start()
            await peer.ws.close(code=1000, message=b"bye")
            assert peer.ws.close_code == 1000
        assert await emu.sessions[0].wait_closed() == 1000


async def test_a_close_without_status_is_answered_without_status() -> None:
    async with emulator() as emu:
        async with connect(emu, autoclose=False) as peer:
            await peer.start()
            await peer.ws.send_frame(b"", aiohttp.WSMsgType.CLOSE)
            msg = await peer.ws.receive(timeout=scaled(5))
        assert msg.type is aiohttp.WSMsgType.CLOSE and msg.data == 0  # an empty close frame
        assert await emu.sessions[0].wait_closed() == 1005  # "no status" (docs/protocol.md 9.6)


# ---------------------------------------------------------------------------------------------
# Logging: deepgram_agent.emulator
# ---------------------------------------------------------------------------------------------


async def test_emulator_logs_handshakes_settings_and_closes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    key, wrong = "sekret-key-123", "wrong-key-456"
    caplog.set_level(logging.DEBUG, logger="deepgram_agent.emulator")
    async with emulator(api_key=key) as emu:
        with pytest.raises(aiohttp.WSServerHandshakeError):
            async with connect(emu, headers=auth(wrong)):
                pass
        with pytest.raises(aiohttp.WSServerHandshakeError):
            async with connect(emu, headers={}):
                pass
        async with connect(emu, headers=auth(key)) as peer:
            await peer.next()
            bad = settings(think={"provider": {"type": "open_ai", "model": "x"}, "promt": "x"})
            await peer.send(bad)
            await peer.expect_close()
        async with connect(emu, headers=auth(key)) as peer:
            await peer.start()
            await peer.ws.close(code=4000, message=b"done here")
        await emu.sessions[3].wait_closed()
    records = [r for r in caplog.records if r.name == "deepgram_agent.emulator"]
    text = "\n".join(r.getMessage() for r in records)
    assert "session #0: handshake refused with HTTP 401 (the key is not accepted)" in text
    assert "session #1: handshake refused with HTTP 401 (no credential offered)" in text
    assert "session #2: WebSocket open (token credential in the Authorization header)" in text
    assert "session #2: Settings rejected: agent.think.promt: unknown field 'promt'" in text
    assert "did you mean 'prompt'?" in text
    assert "session #2: sends Error UNPARSABLE_CLIENT_MESSAGE" in text
    assert (
        "session #3: Settings accepted: input linear16/16000 Hz, output linear16/24000 Hz" in text
    )
    assert "session #3: closed by the client, reason 'done here', echoed (close code 4000)" in text
    assert "session #3: <- Settings (" in text and "session #3: -> SettingsApplied (" in text
    assert key not in caplog.text and wrong not in caplog.text
    assert {r.levelno for r in records} <= {logging.DEBUG, logging.INFO}
    for r in records:  # lazy %-formatting: arguments are never pre-formatted into msg
        assert r.args or "%" not in r.msg


async def test_settings_secrets_never_reach_the_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="deepgram_agent.emulator")
    body = settings(
        think={
            "provider": {"type": "open_ai", "model": "x"},
            "endpoint": {
                "url": "https://llm.example",
                "headers": {"authorization": "Bearer s3cr3t"},
            },
        }
    )
    body["agent"]["think"]["endpoint"]["headerz"] = {"authorization": "Bearer s3cr3t"}
    async with emulator() as emu:
        async with connect(emu) as peer:
            await peer.next()
            await peer.send(body)
            await peer.expect_close()
    assert "s3cr3t" not in caplog.text
    assert "Settings rejected: agent.think.endpoint.headerz" in caplog.text


def test_emulate_verbose_logs_to_stderr_without_the_key() -> None:
    key = "cli-sekret-789"
    proc = subprocess.Popen(
        [sys.executable, "-m", "deepgram_agent", "emulate", "--fast-audio", "--api-key", key, "-v"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("ws://127.0.0.1:")

        async def talk() -> None:
            async with aiohttp.ClientSession() as http:
                with pytest.raises(aiohttp.WSServerHandshakeError):
                    async with http.ws_connect(url + "/v1/agent/converse", headers=auth("nope")):
                        pass
                async with http.ws_connect(url + "/v1/agent/converse", headers=auth(key)) as ws:
                    peer = Peer(ws)
                    await peer.start()
                    await ws.close(code=1000, message=b"bye")

        asyncio.run(talk())
    finally:
        proc.terminate()
        _out, err = proc.communicate(timeout=scaled(10))
    assert "handshake refused with HTTP 401" in err
    assert "Settings accepted" in err
    assert "closed by the client, reason 'bye', echoed (close code 1000)" in err
    assert key not in err and "nope" not in err


async def test_update_listen_takes_language_hint_too() -> None:
    flux = {"type": "deepgram", "version": "v2", "model": "flux-general-multi"}
    async with emulator() as emu:
        async with connect(emu) as peer:
            await peer.start(settings(listen={"provider": {**flux, "language_hints": ["en"]}}))
            await peer.send(
                {"type": "UpdateListen", "listen": {"provider": {**flux, "language_hint": "fr"}}}
            )
            await peer.until("ListenUpdated")
        state = emu.sessions[0].state
    assert state.listen == {"provider": {**flux, "language_hints": ["fr"]}}


def test_module_command_line_realistic_lenient_and_verbose() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "deepgram_agent.testing",
            "--fast-audio",
            "--realistic",
            "--seed",
            "3",
            "--accept-any-settings",
            "-v",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()

        async def talk() -> list[str]:
            async with aiohttp.ClientSession() as http:
                async with http.ws_connect(url + "/v1/agent/converse", headers=auth("k")) as ws:
                    peer = Peer(ws)
                    await peer.start({"type": "Settings", "from_the_future": True})
                    await peer.send({"type": "InjectUserMessage", "content": "hi"})
                    return kinds(await peer.until("AgentAudioDone"))

        turn = asyncio.run(talk())
    finally:
        proc.terminate()
        _out, err = proc.communicate(timeout=scaled(10))
    assert turn.count("LatencyReport") == 4  # --realistic: split reports
    assert "Settings accepted unchecked (strict=False)" in err
