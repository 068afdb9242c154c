"""Emulator fault injection, each fault seen by a plain aiohttp client."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from deepgram_agent.testing import AgentEmulator, Faults
from tests.conftest import scaled
from tests.test_emulator import SETTINGS, connect, emulator, kinds

pytestmark = pytest.mark.anyio


async def test_drop_after_n_frames_without_close_frame() -> None:
    async with emulator(faults=Faults(drop_after=2)) as emu:
        async with connect(emu) as peer:
            await peer.start()  # Welcome (1), SettingsApplied (2), then the TCP drop
            msg = await peer.ws.receive(timeout=scaled(5))
            assert msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
            assert peer.ws.close_code in (None, 1006)
        session = emu.sessions[0]
        await session.wait_closed()
        assert session.close_code is None


async def test_close_after_n_frames_with_code_and_reason() -> None:
    async with emulator(
        faults=Faults(close_after=1, close_code=4001, close_reason="go away")
    ) as emu:
        async with connect(emu) as peer:
            await peer.next()
            msg = await peer.ws.receive(timeout=scaled(5))
            assert msg.type is aiohttp.WSMsgType.CLOSE
            assert (msg.data, msg.extra) == (4001, "go away")
        assert await emu.sessions[0].wait_closed() == 4001


@pytest.mark.parametrize(
    ("fault", "check"),
    [
        ("garbage_after", lambda text: text == "this is not JSON {"),
        ("unknown_type_after", lambda text: json.loads(text)["type"] == "EmulatorSurprise"),
        ("wrong_types_after", lambda text: json.loads(text)["role"] == 7),
    ],
)
async def test_odd_text_frames(fault: str, check: object) -> None:
    async with emulator(faults=Faults(**{fault: 1})) as emu:
        async with connect(emu) as peer:
            welcome = await peer.ws.receive(timeout=scaled(5))
            assert json.loads(welcome.data)["type"] == "Welcome"
            odd = await peer.ws.receive(timeout=scaled(5))
            assert odd.type is aiohttp.WSMsgType.TEXT
            assert callable(check) and check(odd.data)
            # The session carries on normally afterwards.
            await peer.send(SETTINGS)
            assert kinds(await peer.until("SettingsApplied")) == ["SettingsApplied"]


async def test_huge_frame() -> None:
    size = 5 * 1024 * 1024
    faults = Faults(huge_frame_after=2, huge_frame_bytes=size)
    async with emulator(faults=faults) as emu:
        async with connect(emu, max_msg_size=0) as peer:
            await peer.start()
            msg = await peer.ws.receive(timeout=scaled(10))
            assert msg.type is aiohttp.WSMsgType.TEXT
            assert len(msg.data) == size
            assert json.loads(msg.data)["type"] == "ConversationText"
        # A client with aiohttp's default 4 MiB limit fails on it.
        async with connect(emu) as peer:
            await peer.start()
            msg = await peer.ws.receive(timeout=scaled(10))
            assert msg.type is aiohttp.WSMsgType.ERROR


@pytest.mark.parametrize("which", ["delay_welcome", "delay_settings_applied"])
async def test_delays(which: str) -> None:
    loop = asyncio.get_running_loop()
    async with emulator(faults=Faults(**{which: 0.3})) as emu:
        t0 = loop.time()
        async with connect(emu) as peer:
            await peer.start()
            elapsed = loop.time() - t0
    assert elapsed >= 0.3


async def test_stall() -> None:
    loop = asyncio.get_running_loop()
    async with emulator(faults=Faults(stall_after=2, stall_for=0.4)) as emu:
        async with connect(emu) as peer:
            await peer.start()
            t0 = loop.time()
            await peer.send({"type": "InjectUserMessage", "content": "are you there?"})
            frames = await peer.until("ConversationText")
            assert loop.time() - t0 >= 0.3
            assert frames[-1]["content"] == "are you there?"
            assert emu.sessions[0].state.error is None


@pytest.mark.parametrize(
    "faults",
    [
        Faults(delay_welcome=60),
        Faults(delay_settings_applied=60),
        Faults(stall_after=1, stall_for=60),
    ],
    ids=["delay_welcome", "delay_settings_applied", "stall"],
)
async def test_closing_the_emulator_ends_a_session_asleep_in_a_delay_at_once(
    faults: Faults,
) -> None:
    """A session asleep in a fault's delay reads nothing, so only its own end can wake it.

    Closing the emulator used to wait out two close timeouts (4 s) before cancelling it.
    """
    loop = asyncio.get_running_loop()
    # With a long close timeout the old behaviour (two close timeouts, then a cancel) cannot
    # pass for prompt, however loaded the machine.
    emu = AgentEmulator(faults=faults, realtime_audio=False, close_timeout=scaled(10))
    await emu.start()
    try:
        async with connect(emu) as peer:

            async def close_code() -> int:
                while (msg := await peer.ws.receive()).type is not aiohttp.WSMsgType.CLOSE:
                    assert msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY)
                return int(msg.data)

            reader = asyncio.create_task(close_code())  # answers the emulator's close frame
            await peer.send(SETTINGS)
            session = await emu.wait_for_session(timeout=scaled(5))
            if faults.delay_settings_applied:
                await session.wait_for_received("Settings", timeout=scaled(5))
            t0 = loop.time()
            await emu.aclose()
            took = loop.time() - t0
            assert took < scaled(5), f"closing the emulator took {took:.2f} s"
            async with asyncio.timeout(scaled(5)):
                assert await reader == 1001
            assert session.closed.is_set() and session.close_code == 1001
            assert "SettingsApplied" not in session.sent_types
    finally:
        await emu.aclose()


async def test_flood() -> None:
    async with emulator(faults=Faults(flood_events=200, flood_audio=100)) as emu:
        async with connect(emu) as peer:
            await peer.start()
            frames = [await peer.next() for _ in range(300)]
    assert sum(isinstance(f, dict) and f["type"] == "ConversationText" for f in frames) == 200
    assert [len(f) for f in frames if isinstance(f, bytes)] == [960] * 100
    assert emu.sessions[0].state.frames_out == 302


async def test_faults_callable_gets_the_session_index() -> None:
    seen: list[int] = []

    def plan(index: int) -> Faults | None:
        seen.append(index)
        return Faults(close_after=1, close_code=4002) if index == 1 else None

    async with emulator(faults=plan) as emu:
        async with connect(emu) as first, connect(emu) as second:
            await first.start()
            msg = await second.ws.receive(timeout=scaled(5))
            assert json.loads(msg.data)["type"] == "Welcome"
            closing = await second.ws.receive(timeout=scaled(5))
            assert (closing.type, closing.data) == (aiohttp.WSMsgType.CLOSE, 4002)
            await first.send({"type": "KeepAlive"})
            await emu.sessions[0].wait_for_received("KeepAlive")
            assert not emu.sessions[0].closed.is_set()
    assert seen == [0, 1]


# ---------------------------------------------------------------------------------------------
# Faults issue 13 asked for: invalid UTF-8, deep nesting, stop reading, silence, drop after ready
# ---------------------------------------------------------------------------------------------


async def test_invalid_utf8_inside_a_json_string() -> None:
    async with emulator(faults=Faults(invalid_utf8_after=2)) as emu:
        async with connect(emu, decode_text=False) as peer:
            welcome = await peer.ws.receive(timeout=scaled(5))
            assert json.loads(welcome.data)["type"] == "Welcome"
            await peer.send(SETTINGS)
            applied = await peer.ws.receive(timeout=scaled(5))
            assert json.loads(applied.data) == {"type": "SettingsApplied"}
            odd = await peer.ws.receive(timeout=scaled(5))
            assert odd.type is aiohttp.WSMsgType.TEXT and isinstance(odd.data, bytes)
            with pytest.raises(UnicodeDecodeError):
                odd.data.decode("utf-8")
            assert odd.data.startswith(b'{"type":"ConversationText","role":"assistant","content":"')
            # The session carries on.
            await peer.send({"type": "InjectUserMessage", "content": "still there?"})
            reply = await peer.ws.receive(timeout=scaled(5))
            assert json.loads(reply.data)["content"] == "still there?"
        assert emu.sessions[0].state.error is None


async def test_a_default_aiohttp_client_refuses_that_frame() -> None:
    # What a client that lets aiohttp decode text sees: the socket fails (1007).
    async with emulator(faults=Faults(invalid_utf8_after=1)) as emu:
        async with connect(emu) as peer:
            await peer.ws.receive(timeout=scaled(5))  # Welcome
            msg = await peer.ws.receive(timeout=scaled(5))
            assert msg.type is aiohttp.WSMsgType.ERROR
            assert peer.ws.close_code == 1007


@pytest.mark.parametrize("depth", [1100, 5000])
async def test_deeply_nested_json(depth: int) -> None:
    faults = Faults(deep_nesting_after=2, deep_nesting_depth=depth)
    async with emulator(faults=faults) as emu:
        async with connect(emu) as peer:
            await peer.start()
            odd = await peer.ws.receive(timeout=scaled(5))
            assert odd.type is aiohttp.WSMsgType.TEXT
            assert odd.data.count("[") == depth and odd.data.count("]") == depth
            with pytest.raises(RecursionError):
                json.loads(odd.data)  # a recursive decoder gives up on it
            await peer.send({"type": "KeepAlive"})
            await emu.sessions[0].wait_for_received("KeepAlive")
        assert emu.sessions[0].state.error is None
    with pytest.raises(ValueError, match="deep_nesting_depth"):
        Faults(deep_nesting_depth=0)


async def test_stop_reading_backs_up_the_clients_sends() -> None:
    chunk = b"\x00" * (256 * 1024)
    cap = 256 * 1024 * 1024  # far more than any loopback TCP buffer
    sent = 0
    blocked = False
    async with emulator(faults=Faults(stop_reading_after=2)) as emu:
        async with connect(emu) as peer:
            await peer.start()  # Welcome (1), SettingsApplied (2): then nothing is read
            session = emu.sessions[0]
            while sent < cap:
                try:
                    await asyncio.wait_for(peer.ws.send_bytes(chunk), scaled(1.0))
                except TimeoutError:
                    blocked = True
                    break
                sent += len(chunk)
            read_by_server = session.state.audio_bytes_in
            # The server never times the client out while it does not read.
            assert session.state.error is None and not session.closed.is_set()
            await session.close()  # cannot finish a closing handshake: drops TCP, bounded
            assert session.closed.is_set()
    assert blocked, f"{sent} bytes went out without the send ever blocking"
    assert read_by_server < sent
    assert read_by_server <= 256 * 1024  # at most what was buffered before the stop


async def test_silent_server_answers_no_pings() -> None:
    loop = asyncio.get_running_loop()
    async with emulator(faults=Faults(silent_after=2)) as emu:
        # Without a heartbeat the client just waits: no frame ever comes.
        async with connect(emu) as peer:
            await peer.start()
            await peer.send({"type": "InjectUserMessage", "content": "hello?"})
            with pytest.raises(TimeoutError):
                await peer.ws.receive(timeout=0.3)
            session = emu.sessions[0]
            assert session.state.error is None and not session.closed.is_set()
        # A client heartbeat notices: the ping gets no pong.
        async with connect(emu, heartbeat=0.2) as peer:
            await peer.start()
            t0 = loop.time()
            msg = await peer.ws.receive(timeout=scaled(5))
            assert msg.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSED)
            assert isinstance(peer.ws.exception(), aiohttp.ServerTimeoutError)
            assert loop.time() - t0 < scaled(3)
        t1 = loop.time()
    assert loop.time() - t1 < scaled(3)  # shutting the emulator down is still bounded


async def test_pings_are_answered_until_the_silence() -> None:
    # silent_after turns automatic pongs off; the session answers pings itself until then.
    async with emulator(faults=Faults(silent_after=1000)) as emu:
        async with connect(emu, heartbeat=0.1) as peer:
            await peer.start()
            await peer.send({"type": "InjectUserMessage", "content": "ping me"})
            frames = await peer.until("AgentAudioDone", timeout=5)
            assert "ConversationText" in kinds(frames)
            assert not peer.ws.closed and peer.ws.exception() is None


async def test_drop_after_ready_kills_every_session_shortly_after_settings_applied() -> None:
    loop = asyncio.get_running_loop()
    async with emulator(faults=Faults(drop_after_ready=0.1)) as emu:
        for i in range(3):
            async with connect(emu) as peer:
                # From before Settings: the emulator's timer starts later (when it sends
                # SettingsApplied), so the lower bound holds however late this task runs.
                t0 = loop.time()
                await peer.start()
                msg = await peer.ws.receive(timeout=scaled(5))
                lived = loop.time() - t0
                assert msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
                assert peer.ws.close_code in (None, 1006)
                assert 0.09 <= lived < scaled(3)  # 0.1 s, less a timer firing a hair early
            assert await emu.sessions[i].wait_closed() is None  # no close frame: a TCP drop
    with pytest.raises(ValueError, match="drop_after_ready"):
        Faults(drop_after_ready=-1)
