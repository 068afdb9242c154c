"""Errors that say what to do: async and blocking APIs mixed up, the blocking facade keeping the
core's own reason, audio of the wrong type."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import numpy as np
import pytest
from aiohttp import web

from deepgram_agent import DeepgramClient, DeepgramTimeoutError
from deepgram_agent.testing import AgentEmulator

from .conftest import client_for, scaled

KEY = "dev-errors-key"
SETTINGS = {"audio": {"input": {"encoding": "linear16", "sample_rate": 16000}}, "agent": {}}


@pytest.mark.anyio
async def test_with_on_the_async_connect_says_which_form_to_use() -> None:
    async with AgentEmulator(api_key=KEY) as emu:
        request: Any = client_for(emu).agent.connect(SETTINGS)
        with pytest.raises(TypeError, match=r"async with client\.agent\.connect") as info:
            with request:
                pass
        assert "connect_sync" in str(info.value)
        async with client_for(emu).agent.connect(SETTINGS) as conn:
            with pytest.raises(TypeError, match="async for msg in conn") as info:
                for _ in conn:  # type: ignore[attr-defined]
                    pass
            assert "connect_sync" in str(info.value)


def test_async_forms_on_a_blocking_connection_say_which_form_to_use() -> None:
    with AgentEmulator.run_in_thread(api_key=KEY) as emu:
        conn: Any = client_for(emu).agent.connect_sync(SETTINGS)
        try:

            async def misuse() -> None:
                with pytest.raises(TypeError, match="do not await it"):
                    await conn
                with pytest.raises(TypeError, match="for msg in conn"):
                    async for _ in conn:
                        pass
                with pytest.raises(TypeError, match="connect_sync"):
                    async with conn:
                        pass

            asyncio.run(misuse())
        finally:
            conn.close()


def _silent_after_upgrade() -> web.Application:
    """A server that upgrades and then never says Welcome."""

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for _ in ws:
            pass
        return ws

    app = web.Application()
    app.router.add_get("/v1/agent/converse", handler)
    return app


def test_the_blocking_facade_keeps_the_cores_reason_for_a_timeout() -> None:
    async def serve(started: asyncio.Future[str], stop: asyncio.Event) -> None:
        runner = web.AppRunner(_silent_after_upgrade())
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        started.set_result(f"ws://127.0.0.1:{port}")
        await stop.wait()
        await runner.cleanup()

    import threading

    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    started: asyncio.Future[str] = loop.create_future()
    thread = threading.Thread(target=loop.run_until_complete, args=(serve(started, stop),))
    thread.start()
    try:
        url = asyncio.run_coroutine_threadsafe(asyncio.wait_for(started, 10), loop).result()
        with pytest.raises(DeepgramTimeoutError) as info:
            DeepgramClient(api_key=KEY, base_url=url).agent.connect_sync(SETTINGS, open_timeout=0.5)
        text = str(info.value)
        assert "did not become ready within 0.5 s" in text
        assert "no Welcome" in text and "raise open_timeout" in text
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(scaled(10))
        loop.close()


@pytest.mark.anyio
async def test_send_audio_takes_bytes_and_int16_arrays_and_names_anything_else() -> None:
    async with AgentEmulator(api_key=KEY) as emu:
        async with client_for(emu).agent.connect(SETTINGS) as conn:
            samples = (np.sin(np.linspace(0, 20, 320)) * 1000).astype("<i2")
            await conn.send_audio(samples)  # a C-contiguous int16 array is unambiguous
            await conn.send_audio(memoryview(samples.tobytes()))
            await conn.send_audio(bytearray(b"\x00\x01" * 10))
            session = await emu.wait_for_session()
            expected = 640 + 640 + 20
            # A KeepAlive sent after the audio arrives after it: once the emulator has it, it
            # has all the audio (frames are read in order).
            keepalives = len(session.received_json("KeepAlive"))
            await conn.keep_alive()
            await session.wait_for_received("KeepAlive", keepalives + 1, timeout=scaled(5))
            assert session.audio_bytes_received == expected
            for bad, named in [
                ("text", "str"),
                (3200, "int"),
                (None, "NoneType"),
                (samples.astype(np.float32), "float32"),
                (samples[::2], "not C-contiguous"),
            ]:
                with pytest.raises(TypeError, match=named):
                    await conn.send_audio(bad)


def test_classic_send_audio_before_start_says_why(caplog: pytest.LogCaptureFixture) -> None:
    dg = DeepgramClient(api_key=KEY, base_url="ws://127.0.0.1:9").agent.websocket.v("1")
    with caplog.at_level(logging.DEBUG, logger="deepgram_agent"):
        assert dg.send_audio(b"\x00\x00") is False
    assert "start()" in caplog.text
