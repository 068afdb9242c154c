"""Shared test configuration: anyio on asyncio in debug mode, timeouts scaled for slow CI."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest

#: Multiply every unavoidable timeout by this (set DG_TEST_TIMEOUT_FACTOR on a slow machine).
TIMEOUT_FACTOR = float(os.environ.get("DG_TEST_TIMEOUT_FACTOR", "1"))


def scaled(seconds: float) -> float:
    """A timeout scaled for the machine the tests run on."""
    return seconds * TIMEOUT_FACTOR


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
