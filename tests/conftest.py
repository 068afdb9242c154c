"""Shared test configuration and helpers.

Configuration: anyio on asyncio in debug mode; timeouts scaled for slow CI
(``DG_TEST_TIMEOUT_FACTOR``); library logger state restored after every test.

Helpers every test file uses (import them from here, do not redefine them):

- :data:`KEY`, :data:`SETTINGS`: an API key for emulators and a complete wire-style Settings.
- :func:`client_for`: a :class:`DeepgramClient` pointed at an emulator, with its key.
- :func:`until`, :func:`collect_until`: read an async connection until a message matches,
  bounded by a scaled timeout, failing (never hanging) when the stream ends first.
- :func:`of`, :func:`is_type`: the predicates they take, by class or by wire ``type``.
- :func:`scaled`: a timeout multiplied by ``DG_TEST_TIMEOUT_FACTOR``.
- :func:`into_pull_mode`: run one turn so that ``async for`` reads the socket itself.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from deepgram_agent import DeepgramClient
from deepgram_agent import messages as m
from deepgram_agent.testing import AgentEmulator

#: Multiply every unavoidable timeout by this (set DG_TEST_TIMEOUT_FACTOR on a slow machine).
TIMEOUT_FACTOR = float(os.environ.get("DG_TEST_TIMEOUT_FACTOR", "1"))


def scaled(seconds: float) -> float:
    """A timeout scaled for the machine the tests run on."""
    return seconds * TIMEOUT_FACTOR


#: The smallest complete Settings (linear16 in at 16 kHz, out at 24 kHz, no function).
PLAIN_SETTINGS: dict[str, Any] = {
    "type": "Settings",
    "audio": {
        "input": {"encoding": "linear16", "sample_rate": 16000},
        "output": {"encoding": "linear16", "sample_rate": 24000, "container": "none"},
    },
    "agent": {
        "listen": {"provider": {"type": "deepgram", "model": "nova-3"}},
        "think": {"provider": {"type": "open_ai", "model": "gpt-4o-mini"}, "prompt": "Be brief."},
        "speak": {"provider": {"type": "deepgram", "model": "aura-2-thalia-en"}},
    },
}

#: A complete wire-style Settings message (linear16 in at 16 kHz, out at 24 kHz, one function):
#: PLAIN_SETTINGS plus one client-side function.
SETTINGS: dict[str, Any] = copy.deepcopy(PLAIN_SETTINGS)
SETTINGS["agent"]["think"]["functions"] = [
    {
        "name": "get_time",
        "description": "Current time",
        "parameters": {"type": "object", "properties": {}},
    }
]

#: The API key the tests give their emulators (never a real key).
KEY = "test-key-123"


def client_for(emu: AgentEmulator, **options: Any) -> DeepgramClient:
    """A client for ``emu``: its URL and the key it accepts; ``options`` go to the client.

    ``emu.api_key`` is the key the emulator was given (or one it accepts when it takes any).
    """
    return DeepgramClient(api_key=emu.api_key, base_url=emu.url, **options)


Predicate = Callable[[Any], bool]


def of(cls: type | tuple[type, ...]) -> Predicate:
    """A predicate: the message is an instance of ``cls`` (e.g. ``of(m.AgentAudioDone)``)."""
    return lambda msg: isinstance(msg, cls)


def is_type(name: str) -> Predicate:
    """A predicate: the message's wire ``type`` is ``name`` (binary audio never matches)."""
    return lambda msg: getattr(msg, "type", None) == name


async def until(
    conn: Any, predicate: Predicate, seen: list[Any] | None = None, *, seconds: float = 15
) -> Any:
    """Iterate ``conn`` (``async for``) until a message satisfies ``predicate``; return it.

    Args:
        conn: an async connection (anything ``async for`` yields messages from).
        predicate: called with each message, audio frames (``bytes``) included.
        seen: when given, every message read is appended to it, the matching one included
            (so a test can check what came before, or go on from where this stopped).
        seconds: the bound, scaled with :func:`scaled`.

    Raises:
        AssertionError: the stream ended (without an exception) before a message matched.
        TimeoutError: nothing matched within the bound.
    """
    read: list[Any] = seen if seen is not None else []
    start = len(read)
    async with asyncio.timeout(scaled(seconds)):
        async for msg in conn:
            read.append(msg)
            if predicate(msg):
                return msg
    kinds = [type(x).__name__ for x in read[start:]]
    raise AssertionError(
        f"the stream ended before the expected message; read {len(kinds)}: {kinds[-10:]}"
    )


async def into_pull_mode(conn: Any) -> None:
    """Run one turn so that ``async for`` has taken the socket over (pull mode)."""
    await conn.inject_user_message("warm up")
    await until(conn, of(m.AgentAudioDone), [])
    assert conn.reading_directly


async def collect_until(conn: Any, predicate: Predicate, *, seconds: float = 15) -> list[Any]:
    """The messages :func:`until` reads: up to and including the first that matches."""
    seen: list[Any] = []
    await until(conn, predicate, seen, seconds=seconds)
    return seen


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, bool]]:
    return ("asyncio", {"debug": True})


@pytest.fixture(autouse=True)
def _restore_library_logging() -> Iterator[None]:
    """Undo handlers and levels a test (e.g. an in-process ``cli.main(["-v", ...])``) left on the
    ``deepgram_agent`` loggers: a handler bound to a closed capture stream would fail on the next
    log line from an emulator thread."""
    names = ("deepgram_agent", "deepgram_agent.emulator")
    saved = {n: (list(logging.getLogger(n).handlers), logging.getLogger(n).level) for n in names}
    yield
    for name, (handlers, level) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.setLevel(level)
