"""Phone bridges end to end: fake carriers -> the serve app / a bridge -> the emulator.

Everything runs over real loopback sockets: the fake call (``deepgram_agent.testing.phone``)
speaks Twilio's or Telnyx's protocol to our bridge, which talks to the emulator.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import statistics
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp import web

from deepgram_agent import DeepgramClient
from deepgram_agent import messages as m
from deepgram_agent.presets import telephony_settings
from deepgram_agent.telephony import (
    PhoneBridge,
    PhoneCall,
    TelnyxBridge,
    TwilioBridge,
)
from deepgram_agent.testing import AgentEmulator, Rule, Script
from deepgram_agent.testing.phone import FakeCall, tone_frequency
from deepgram_agent.web import create_app
from deepgram_agent.web._app import TWILIO
from tests.conftest import scaled

pytestmark = pytest.mark.anyio

LONG_REPLY = (
    "Thanks for calling. Here is a long answer, long enough for you to talk over it "
    "in the middle of a sentence."
)


def phone_script() -> Script:
    return Script(rules=[Rule(match="", reply=LONG_REPLY)], default_transcript="hello there")


@contextlib.asynccontextmanager
async def site(app: web.Application) -> AsyncIterator[str]:
    """Serve ``app`` on 127.0.0.1; yields ``ws://127.0.0.1:PORT``."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        tcp = web.TCPSite(runner, "127.0.0.1", 0)
        await tcp.start()
        port = next(a[1] for a in runner.addresses if isinstance(a, tuple))
        yield f"ws://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def bridge_site(bridge: PhoneBridge, path: str = "/twilio") -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get(path, bridge.aiohttp_handler)
    async with site(app) as url:
        yield url + path


class Seen(list[Any]):
    """A list that can be awaited until it holds ``n`` items (for callbacks' results)."""

    def __init__(self) -> None:
        super().__init__()
        self._changed = asyncio.Event()

    def append(self, item: Any) -> None:
        super().append(item)
        self._changed.set()

    def __call__(self, *args: Any) -> None:
        self.append(args[-1])

    async def wait(self, n: int, timeout: float) -> None:
        async with asyncio.timeout(scaled(timeout)):
            while len(self) < n:
                self._changed.clear()
                await self._changed.wait()


def assert_agent_tone(audio: bytes) -> None:
    """Agent audio decodes as mu-law to the emulator's ~440 Hz tone at a quarter of full scale
    (linear16 bytes sent as mu-law would decode to noise: wrong frequency and level)."""
    freq, rms = tone_frequency(audio)
    assert 400 < freq < 490, freq
    assert 0.12 < rms < 0.24, rms


async def a_call_with_barge_in(url: str, emu: AgentEmulator) -> FakeCall:
    """Greeting, a question, a barge-in over the reply, then the caller hangs up."""
    async with FakeCall(url, timeout=scaled(20)) as call:
        await call.wait_for("mark")  # the greeting was sent in full...
        await call.wait_for("media")
        n = len(call.received)
        call.say(0.4)  # the question: loud, then silence (the emulator's VAD ends the turn)
        await call.wait_for("media", 3, after=n)  # the reply is playing
        n2 = len(call.received)
        call.say(0.3)  # the caller talks over it
        await call.wait_for("clear", after=n2)
        assert any(r.kind == "media" for r in call.received[n:n2])
        await call.hang_up()
    return call


async def test_twenty_concurrent_calls_through_serve() -> None:
    async with AgentEmulator(script=phone_script(), vad_silence=0.3) as emu:
        client = DeepgramClient(api_key="emulator", base_url=emu.url)
        app = create_app({"agent": {"greeting": "Hi!"}}, client=client)
        ended = Seen()
        async with site(app) as base:
            app[TWILIO].on_end = ended.append
            url = base + "/twilio"

            async def broken() -> None:
                async with FakeCall(url) as bad:
                    await bad.send("this is not JSON {")
                    await bad.send({"event": "media", "media": {"payload": "%%% not base64"}})
                    await bad.send({"event": "surprise"})
                    await bad.send(b"\x00binary")
                    await bad.send("x" * (70 * 1024))  # over the 64 KiB frame limit
                    assert await bad.wait_closed(scaled(10)) == 1009

            results = await asyncio.wait_for(
                asyncio.gather(broken(), *(a_call_with_barge_in(url, emu) for _ in range(20))),
                scaled(90),
            )
            calls = [c for c in results if isinstance(c, FakeCall)]
            assert len(calls) == 20
            for call in calls:
                assert_agent_tone(bytes(call.audio[:8000]))
                assert call.count("clear") >= 1
                assert "reply-1" in call.echoed  # the greeting was heard in full
            # Every agent session closed: the 20 when their call sent "stop", the broken
            # caller's when the bridge closed it.
            sessions = emu.sessions
            assert len(sessions) == 21
            for session in sessions:
                await session.wait_closed(scaled(10))
            await ended.wait(21, 10)
        reasons = sorted(c.end_reason for c in ended)
        assert reasons.count("stop") == 20
        good = [c for c in ended if c.end_reason == "stop"]
        assert all(c.stats.clears >= 1 and c.gate.interruptions >= 1 for c in good)
        assert all(c.stats.marks_heard >= 1 for c in good)
        seconds = sorted(s for c in good for s in c.stats.frame_seconds)
        median, p99 = statistics.median(seconds), seconds[int(0.99 * (len(seconds) - 1))]
        print(
            f"\nbridge time per frame at 20 calls: median {median * 1e6:.0f} us, p99 {p99 * 1e6:.0f} us"
        )
        assert median < 0.005


async def test_callbacks_dtmf_playback_and_events() -> None:
    events: list[Any] = []
    started: list[PhoneCall] = []
    digits: list[str] = []
    played = Seen()

    async def on_dtmf(call: PhoneCall, digit: str) -> None:
        digits.append(digit)
        await call.conn.inject_agent_message(f"You pressed {digit}.")

    async with AgentEmulator(script=phone_script(), vad_silence=0.3) as emu:
        client = DeepgramClient(api_key="k", base_url=emu.url)
        bridge = TwilioBridge(
            client,
            telephony_settings({"agent": {"greeting": "Hello!"}}),
            on_start=started.append,
            on_event=lambda call, event: events.append(event),
            on_dtmf=on_dtmf,
            on_playback_done=played,
        )
        async with bridge_site(bridge) as url:
            async with FakeCall(url, custom_parameters={"customer": "42"}) as call:
                await call.wait_for("mark")
                await call.press("7")
                await call.wait_for("mark", 2, timeout=scaled(10))
                await played.wait(2, 10)
                await call.hang_up()
    (info,) = [c.info for c in started]
    assert info is not None and info.custom_parameters == {"customer": "42"}
    assert info.call_id == call.call_id and info.stream_id == call.stream_id
    assert digits == ["7"]
    assert [p.name for p in played] == ["reply-1", "reply-2"]
    assert not any(p.interrupted for p in played)
    texts = [e.content for e in events if isinstance(e, m.ConversationText)]
    assert texts[:2] == ["Hello!", "You pressed 7."]
    assert any(isinstance(e, bytes) for e in events)


async def test_interrupted_reply_mark_comes_back_as_interrupted() -> None:
    """The whole reply reaches the carrier at once (no real-time pacing), so when the caller
    talks over it the carrier still holds most of it: the clear drops the rest and the
    reply's mark comes back marked interrupted (the caller did not hear it all)."""
    played = Seen()
    async with AgentEmulator(script=phone_script(), realtime_audio=False, vad_silence=0.3) as emu:
        client = DeepgramClient(api_key="k", base_url=emu.url)
        bridge = TwilioBridge(
            client,
            telephony_settings({"agent": {"greeting": LONG_REPLY}}),
            on_playback_done=played,
        )
        async with bridge_site(bridge) as url, FakeCall(url) as call:
            await call.wait_for("mark")  # the whole greeting is queued at the carrier
            assert call.echoed == []  # ... and still playing
            call.say(0.3)
            await call.wait_for("clear")
            await played.wait(1, 5)
            await call.hang_up()
    assert [(p.name, p.interrupted) for p in played] == [("reply-1", True)]
    assert call.echoed == ["reply-1"]


async def test_settings_without_audio_get_the_line_format() -> None:
    async with AgentEmulator(script=phone_script()) as emu:
        client = DeepgramClient(api_key="k", base_url=emu.url)
        bridge = TwilioBridge(client, {"agent": {"greeting": "Hi there!"}})
        async with bridge_site(bridge) as url, FakeCall(url) as call:
            await call.wait_for("mark")
            await call.hang_up()
        sent = emu.sessions[0].settings
    assert sent is not None
    assert sent["audio"] == {
        "input": {"encoding": "mulaw", "sample_rate": 8000},
        "output": {"encoding": "mulaw", "sample_rate": 8000, "container": "none"},
    }
    assert_agent_tone(bytes(call.audio))


async def test_mismatched_formats_are_converted() -> None:
    pytest.importorskip("numpy")
    settings = {
        "audio": {
            "input": {"encoding": "linear16", "sample_rate": 16000},
            "output": {"encoding": "linear16", "sample_rate": 24000, "container": "none"},
        },
        "agent": {"greeting": "Converted greeting for you."},
    }
    async with AgentEmulator(script=phone_script(), vad_silence=0.3) as emu:
        client = DeepgramClient(api_key="k", base_url=emu.url)
        bridge = TwilioBridge(client, settings)
        async with bridge_site(bridge) as url, FakeCall(url) as call:
            await call.wait_for("mark")
            n = len(call.received)
            call.say(0.4)  # converted to linear16 16 kHz: the emulator's VAD still hears it
            await call.wait_for("media", after=n)
            await call.hang_up()
        session = emu.sessions[0]
    assert session.state.input_encoding == "linear16"
    assert "UserStartedSpeaking" in session.sent_types
    # 24 kHz linear16 -> 8 kHz mu-law, the same tone (after the resampler's delay: silence).
    assert_agent_tone(bytes(call.audio[1600:9600]))


async def test_mismatched_formats_fail_clearly_when_asked() -> None:
    async with AgentEmulator() as emu:
        client = DeepgramClient(api_key="k", base_url=emu.url)
        settings = {
            "audio": {"output": {"encoding": "linear16", "sample_rate": 24000}},
            "agent": {},
        }
        bridge = TwilioBridge(client, settings, mismatch="fail")
        ended: list[PhoneCall] = []
        bridge.on_end = ended.append
        async with bridge_site(bridge) as url, FakeCall(url) as call:
            assert await call.wait_closed(scaled(10)) == 1011
    (done,) = ended
    assert "agent output linear16/24000" in done.end_reason
    assert "telephony_settings" in done.end_reason
    await emu.sessions[0].wait_closed(scaled(5))


async def test_refused_and_silent_callers() -> None:
    async with AgentEmulator() as emu:
        client = DeepgramClient(api_key="k", base_url=emu.url)
        bridge = TwilioBridge(
            client,
            telephony_settings(),
            authorize=lambda info: info.custom_parameters.get("token") == "s3cret",
            start_timeout=0.5,
        )
        async with bridge_site(bridge) as url:
            async with FakeCall(url, custom_parameters={"token": "wrong"}) as refused:
                assert await refused.wait_closed(scaled(5)) == 1008
            silent = FakeCall(url)
            await silent.connect(start=False)
            try:
                assert await silent.wait_closed(scaled(5)) == 1008
            finally:
                await silent.close()
            async with FakeCall(url, custom_parameters={"token": "s3cret"}) as ok:
                await emu.wait_for_session()
                await ok.hang_up()
            # A caller that sends nothing but garbage is closed after max_bad_frames.
            async with FakeCall(url) as noisy:
                for _ in range(25):
                    with contextlib.suppress(ConnectionError):
                        await noisy.send("{not json")
                assert await noisy.wait_closed(scaled(5)) == 1008
    assert len(emu.sessions) == 1  # nothing was spent on the refused, silent or noisy callers


async def test_agent_side_failure_closes_only_that_call() -> None:
    async with AgentEmulator(api_key="right") as emu:
        bad = TwilioBridge(DeepgramClient(api_key="wrong", base_url=emu.url), telephony_settings())
        async with bridge_site(bad) as url, FakeCall(url) as call:
            assert await call.wait_closed(scaled(10)) == 1011


async def test_telnyx_call() -> None:
    async with AgentEmulator(script=phone_script(), vad_silence=0.3) as emu:
        client = DeepgramClient(api_key="k", base_url=emu.url)
        digits: list[str] = []
        bridge = TelnyxBridge(
            client,
            telephony_settings({"agent": {"greeting": "Hello from Telnyx."}}),
            on_dtmf=lambda call, d: digits.append(d),
        )
        async with bridge_site(bridge, "/telnyx") as url:
            async with FakeCall(
                url, carrier="telnyx", custom_parameters={"client_state": "abc"}
            ) as call:
                await call.wait_for("mark")
                await call.press("#")
                n = len(call.received)
                call.say(0.4)
                await call.wait_for("media", 3, after=n)
                call.say(0.3)
                await call.wait_for("clear", after=n)
                await call.hang_up()
    first = call.received[0].frame
    assert "streamSid" not in first and first["event"] == "media"
    assert_agent_tone(bytes(call.audio[:4000]))
    assert digits == ["#"]
    await emu.sessions[0].wait_closed(scaled(5))


async def test_framework_free_pair_and_hang_up_from_the_app() -> None:
    """``bridge.run(receive_text, send_text)`` over asyncio queues: no web framework at all."""
    inbound: asyncio.Queue[str | None] = asyncio.Queue()
    outbound: list[str] = []
    got_media = asyncio.Event()

    async def send(text: str) -> None:
        outbound.append(text)
        if '"media"' in text:
            got_media.set()

    async def close(code: int, reason: str) -> None:
        await inbound.put(None)

    async with AgentEmulator(script=phone_script()) as emu:
        client = DeepgramClient(api_key="k", base_url=emu.url)
        bridge = TwilioBridge(client, telephony_settings({"agent": {"greeting": "Hi!"}}))
        call = FakeCall("ws://unused")  # only to build a realistic start frame
        await inbound.put('{"event":"connected","protocol":"Call","version":"1.0.0"}')
        await inbound.put(msgspec.json.encode(call._start()).decode())
        task = asyncio.create_task(bridge.run(inbound.get, send, close))
        await asyncio.wait_for(got_media.wait(), scaled(10))
        (active,) = bridge.calls
        await active.hang_up()
        finished = await asyncio.wait_for(task, scaled(10))
    assert finished.end_reason in ("caller closed", "agent closed")
    assert finished.ended
    await emu.sessions[0].wait_closed(scaled(5))


async def test_asgi_endpoint_under_uvicorn() -> None:
    uvicorn = pytest.importorskip("uvicorn")
    async with AgentEmulator(script=phone_script()) as emu:
        client = DeepgramClient(api_key="k", base_url=emu.url)
        bridge = TwilioBridge(client, telephony_settings({"agent": {"greeting": "Hi via ASGI."}}))
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        config = uvicorn.Config(bridge.asgi(), log_level="warning", lifespan="on")
        server = uvicorn.Server(config)
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://127.0.0.1:{port}/") as resp:
                    assert resp.status == 426
            async with FakeCall(f"ws://127.0.0.1:{port}/twilio") as call:
                await call.wait_for("mark")
                await call.hang_up()
            assert_agent_tone(bytes(call.audio))
            await emu.sessions[0].wait_closed(scaled(5))
            # A caller that sends a binary frame, then drops without a stop frame.
            dropper = FakeCall(f"ws://127.0.0.1:{port}/twilio")
            await dropper.connect()
            try:
                await dropper.wait_for("mark")
                await dropper.send(b"\x00\x01")  # the bridge logs it and goes on
                await dropper.wait_for("media", 2)
            finally:
                await dropper.close()  # no stop frame: a websocket.disconnect
            await emu.sessions[1].wait_closed(scaled(5))
        finally:
            server.should_exit = True
            await asyncio.wait_for(serving, scaled(10))


async def test_callers_that_break_the_protocol_before_and_after_start() -> None:
    """A carrier that hangs up before ``start``, stops before it, sends binary frames or a
    second ``start``, outbound or empty media and marks that are not ours: every call ends
    with a reason (no agent session is opened before ``start``) and nothing crashes."""
    async with AgentEmulator(script=phone_script()) as emu:
        client = DeepgramClient(api_key="k", base_url=emu.url)
        ended, started = Seen(), Seen()

        async def settings_for(info: Any) -> dict[str, Any]:  # an async settings source
            return telephony_settings()

        async def allow(info: Any) -> bool:  # an async authorize
            return True

        bridge = TwilioBridge(
            client,
            settings_for,
            authorize=allow,
            on_start=started,
            on_end=ended,
            max_bad_frames=3,
            reconnect=False,
        )
        assert repr(bridge) == "<PhoneBridge twilio calls=0>"
        with pytest.raises(ValueError, match="mismatch must be 'convert' or 'fail'"):
            TwilioBridge(client, telephony_settings(), mismatch="guess")  # type: ignore[arg-type]
        async with bridge_site(bridge) as url:
            early = FakeCall(url)
            await early.connect(start=False)
            await early.close()  # hangs up before the stream started
            await ended.wait(1, 10)
            assert ended[-1].end_reason == "caller closed before the stream started"

            stopper = FakeCall(url)
            await stopper.connect(start=False)
            try:
                await stopper.send(stopper._stop())
                await ended.wait(2, 10)
                assert ended[-1].end_reason == "stop before start"
            finally:
                await stopper.close()

            binary = FakeCall(url)
            await binary.connect(start=False)
            try:
                for _ in range(4):
                    with contextlib.suppress(ConnectionError):
                        await binary.send(b"\x00\x01")
                assert await binary.wait_closed(scaled(5)) == 1008
            finally:
                await binary.close()
            assert len(emu.sessions) == 0  # nothing spent before a start

            async with FakeCall(url, realtime=False) as call:
                await started.wait(1, 10)
                (active,) = bridge.calls
                assert repr(active).startswith("<PhoneCall #") and call.call_id in repr(active)
                assert "CallStatistics(" in repr(active.stats)
                outbound = call._media(b"\xff" * 160)
                outbound["media"]["track"] = "outbound"
                await call.send(outbound)  # ignored: not the caller's audio
                empty = call._media(b"")
                await call.send(empty)  # ignored: no audio
                await call.send(call._envelope({"event": "mark", "mark": {"name": "not-ours"}}))
                for _ in range(4):  # one more than max_bad_frames
                    await call.send(call._start())  # a second start is an invalid frame
                assert await call.wait_closed(scaled(5)) == 1008
            await ended.wait(4, 10)
            assert ended[-1].stats.bad_frames > 3


async def test_a_carrier_frame_over_the_socket_limit_closes_the_call_with_1009(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with AgentEmulator(script=phone_script()) as emu:
        client = DeepgramClient(api_key="k", base_url=emu.url)
        bridge = TwilioBridge(client, telephony_settings(), max_frame_bytes=100)
        async with bridge_site(bridge) as url:
            call = FakeCall(url)
            await call.connect(start=False)  # connected is small enough; then far too much
            try:
                await call.send("x" * 1000)  # over aiohttp's hard cap (4 x max_frame_bytes)
                assert await call.wait_closed(scaled(5)) == 1009
            finally:
                await call.close()
    assert "carrier socket error" in caplog.text


async def test_the_fake_call_api_for_users_own_tests() -> None:
    from deepgram_agent.exceptions import DeepgramTimeoutError

    with pytest.raises(ValueError, match="carrier must be 'twilio' or 'telnyx'"):
        FakeCall("ws://127.0.0.1:9", carrier="sip")  # type: ignore[arg-type]
    idle = FakeCall("ws://127.0.0.1:9")
    assert repr(idle).startswith("<FakeCall twilio CA") and "received=0" in repr(idle)
    with pytest.raises(RuntimeError, match="not connected"):
        await idle.send({"event": "connected"})
    with pytest.raises(aiohttp.ClientError):
        await idle.connect()  # nothing listens there; the HTTP session is closed again
    async with AgentEmulator(script=phone_script()) as emu:
        client = DeepgramClient(api_key="k", base_url=emu.url)
        bridge = TwilioBridge(client, telephony_settings({"agent": {"greeting": "Hello."}}))
        async with bridge_site(bridge) as url, FakeCall(url, timeout=scaled(20)) as call:
            marks = await call.wait_heard(1)  # the greeting played to its end
            assert len(marks) == 1 and call.count("mark") >= 1
            call.say(0.1)
            await call.wait_said()
            with pytest.raises(DeepgramTimeoutError, match="expected 1 'nothing'"):
                await call.wait_for("nothing", timeout=0.05)
            with pytest.raises(DeepgramTimeoutError, match="still open"):
                await call.wait_closed(0.05)
            with pytest.raises(DeepgramTimeoutError, match="marks"):
                await call.wait_heard(99, timeout=0.05)
