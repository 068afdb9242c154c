"""The API key never appears in logs (any logger, DEBUG), exceptions or reprs."""

from __future__ import annotations

import asyncio
import logging
import traceback
from typing import Any

import pytest

from deepgram_agent import AuthenticationError, DeepgramClient
from deepgram_agent import messages as m
from deepgram_agent.testing import AgentEmulator, Faults

from .conftest import SETTINGS, scaled

CANARY = "dg-canary-7f3a9c1e5b"


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:
            text += "".join(traceback.format_exception(*record.exc_info))
        self.lines.append(text)


@pytest.mark.anyio
async def test_a_whole_session_with_debug_logging_never_shows_the_key() -> None:
    capture = _Capture()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    for name in (
        "aiohttp",
        "aiohttp.client",
        "aiohttp.access",
        "aiohttp.server",
        "aiohttp.websocket",
        "asyncio",
        "deepgram_agent",
    ):
        logging.getLogger(name).setLevel(logging.DEBUG)
    seen: list[str] = []
    try:
        async with AgentEmulator(
            api_key=CANARY, realtime_audio=False, faults=Faults(garbage_after=3)
        ) as emu:
            client = DeepgramClient(api_key=CANARY, base_url=emu.url)
            seen.append(repr(client))
            async with client.agent.connect(SETTINGS) as conn:
                seen.append(repr(conn))
                await conn.inject_user_message("hello")
                async with asyncio.timeout(scaled(10)):
                    async for msg in conn:
                        seen.append(repr(msg))
                        if isinstance(msg, m.AgentAudioDone):
                            break
                seen.append(repr(conn.statistics()))
            bad = DeepgramClient(api_key=CANARY + "-wrong", base_url=emu.url)
            with pytest.raises(AuthenticationError) as info:
                await bad.agent.connect(SETTINGS)
            seen.append(str(info.value))
            seen.append(repr(info.value))
            seen.append("".join(traceback.format_exception(info.value)))
    finally:
        root.removeHandler(capture)
        root.setLevel(old_level)
    everything = "\n".join(capture.lines + seen)
    assert capture.lines, "debug logging captured nothing; the test would prove nothing"
    assert CANARY not in everything


def test_client_repr_hides_both_kinds_of_credential() -> None:
    rep = repr(DeepgramClient(api_key=CANARY, access_token=CANARY + "jwt"))
    assert CANARY not in rep and "***" in rep
    c: Any = DeepgramClient(access_token="tok-" + CANARY)
    credentials = c._credentials()
    assert credentials.header().startswith("Bearer ")
    assert CANARY not in repr(credentials) and CANARY not in str(credentials)
