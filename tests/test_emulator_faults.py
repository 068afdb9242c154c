"""Emulator fault injection, each fault seen by a plain aiohttp client."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from deepgram_agent.testing import Faults
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
