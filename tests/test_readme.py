"""Every Python block of README.md runs against the emulator; the test command matches CI."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deepgram_agent.testing import AgentEmulator, Faults

from .conftest import scaled

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.S)


@pytest.fixture(scope="module")
def emu() -> Iterator[AgentEmulator]:
    with AgentEmulator.run_in_thread(api_key=None, realtime_audio=False) as emulator:
        yield emulator


def _drop_first_session(i: int) -> Faults | None:
    return Faults(drop_after=6) if i == 0 else None


#: What each README block must print, by a marker found in the block. A block may need an
#: emulator of its own (e.g. one that drops the connection, to show reconnecting).
EXPECTED: dict[str, tuple[dict[str, Any], list[str]]] = {
    "DeepgramClientOptions(": ({}, ["user: Hello from v4!", "assistant: You said: Hello from v4!"]),
    "ReconnectPolicy(": ({"faults": _drop_first_session}, ["connection lost", "back after"]),
    "TwilioBridge(": (
        {},
        ["call CA", "caller heard reply 1 (interrupted: False)", "caller pressed 5"],
    ),
    "tools=tools": ({}, ["user: What's the weather in Paris?"]),
    "AgentEmulator(script=script": ({}, ["We are open nine to five."]),
    "Quirks.realistic(": ({}, ["4 LatencyReport messages in one turn"]),
    "connect_sync(": ({}, ["user: What can you do?", "assistant: "]),
    "websocket.v(": ({}, ["user: Tell me a joke", "assistant: You said: Tell me a joke"]),
    "received {audio} bytes": ({}, ["user: Hello!", "assistant: ", "bytes of agent audio"]),
}


def expectations(block: str) -> tuple[dict[str, Any], list[str]]:
    for marker, expected in EXPECTED.items():
        if marker in block:
            return expected
    raise AssertionError(f"README block without expectations: {block[:120]!r}")


def test_readme_has_the_examples() -> None:
    assert len(BLOCKS) >= 6
    for block in BLOCKS:
        expectations(block)


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_python_block_runs(index: int, emu: AgentEmulator, tmp_path: Path) -> None:
    block = BLOCKS[index]
    emulator_kwargs, expected = expectations(block)
    script = tmp_path / f"readme_block_{index}.py"
    script.write_text(block)
    with contextlib.ExitStack() as stack:
        target = emu
        if emulator_kwargs:
            target = stack.enter_context(
                AgentEmulator.run_in_thread(api_key=None, realtime_audio=False, **emulator_kwargs)
            )
        env = dict(os.environ, DEEPGRAM_AGENT_URL=target.url, DEEPGRAM_API_KEY="readme-key")
        out = subprocess.run(
            [sys.executable, str(script)],
            env=env,
            capture_output=True,
            text=True,
            timeout=scaled(60),
            cwd=str(tmp_path),
            check=False,
        )
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    assert "readme-key" not in out.stdout + out.stderr
    for text in expected:
        assert text in out.stdout, (text, out.stdout)


def test_readme_demo_command_is_the_one_the_cli_test_runs() -> None:
    commands = [c.strip() for c in re.findall(r"```bash\n(.*?)```", README, flags=re.S)]
    assert "pip install -e . && deepgram-agent demo" in commands
    # tests/test_cli.py::test_demo_runs_on_a_fresh_machine runs `deepgram-agent demo` in a clean
    # environment; CI's install step is the first half of the command.
    assert "deepgram-agent demo" in (ROOT / "tests" / "test_cli.py").read_text()


def test_readme_test_command_is_what_ci_runs() -> None:
    commands = re.findall(r"```bash\n(.*?)```", README, flags=re.S)
    test_cmd = next(c.strip() for c in commands if "pytest" in c)
    ci = (ROOT / ".ci" / "run").read_text()
    assert test_cmd in ci
