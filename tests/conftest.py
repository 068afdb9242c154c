"""Shared test configuration: anyio on asyncio in debug mode, timeouts scaled for slow CI."""

from __future__ import annotations

import os

import pytest

#: Multiply every unavoidable timeout by this (set DG_TEST_TIMEOUT_FACTOR on a slow machine).
TIMEOUT_FACTOR = float(os.environ.get("DG_TEST_TIMEOUT_FACTOR", "1"))


def scaled(seconds: float) -> float:
    """A timeout scaled for the machine the tests run on."""
    return seconds * TIMEOUT_FACTOR


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, bool]]:
    return ("asyncio", {"debug": True})
