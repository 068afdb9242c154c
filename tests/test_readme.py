"""Every Python block of README.md runs against the emulator; the test command matches CI."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from deepgram_agent.testing import AgentEmulator

from .conftest import scaled

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.S)


@pytest.fixture(scope="module")
def emu() -> Iterator[AgentEmulator]:
    with AgentEmulator.run_in_thread(api_key=None, realtime_audio=False) as emulator:
        yield emulator


def test_readme_has_the_examples() -> None:
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_python_block_runs(index: int, emu: AgentEmulator, tmp_path: Path) -> None:
    script = tmp_path / f"readme_block_{index}.py"
    script.write_text(BLOCKS[index])
    env = dict(os.environ, DEEPGRAM_AGENT_URL=emu.url, DEEPGRAM_API_KEY="readme-key")
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
    if "inject_user_message" in BLOCKS[index]:
        assert "user: " in out.stdout or "nine to five" in out.stdout


def test_readme_test_command_is_what_ci_runs() -> None:
    commands = re.findall(r"```bash\n(.*?)```", README, flags=re.S)
    test_cmd = next(c.strip() for c in commands if "pytest" in c)
    ci = (ROOT / ".ci" / "run").read_text()
    assert test_cmd in ci
