"""Scripts that never call close() still exit promptly and close their sockets."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from deepgram_agent.testing import AgentEmulator

from .conftest import scaled

ASYNC_SCRIPT = """
import asyncio
from deepgram_agent import DeepgramClient

async def main():
    conn = await DeepgramClient().agent.connect({"audio": {}, "agent": {}})
    await conn.inject_user_message("hi")
    print("leaving without close")

asyncio.run(main())
"""

BLOCKING_SCRIPT = """
from deepgram_agent import DeepgramClient

conn = DeepgramClient().agent.connect_sync({"audio": {}, "agent": {}})
conn.inject_user_message("hi")
print("leaving without close")
"""


@pytest.mark.parametrize("source", [ASYNC_SCRIPT, BLOCKING_SCRIPT], ids=["async", "blocking"])
def test_script_without_close_exits_promptly_and_cleanly(source: str, tmp_path: Path) -> None:
    script = tmp_path / "noclose.py"
    script.write_text(textwrap.dedent(source))
    with AgentEmulator.run_in_thread(api_key=None, realtime_audio=True) as emu:
        env = dict(os.environ, DEEPGRAM_AGENT_URL=emu.url, DEEPGRAM_API_KEY="k")
        started = time.monotonic()
        out = subprocess.run(
            [sys.executable, str(script)],
            env=env,
            capture_output=True,
            text=True,
            timeout=scaled(30),
            check=False,
        )
        elapsed = time.monotonic() - started
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "leaving without close"
        assert out.stderr == ""  # no "Unclosed client session", no tracebacks
        assert elapsed < scaled(10)
        session = emu.sessions[0]
        emu.call(session.wait_closed(timeout=scaled(5)))
        assert session.close_code is not None


CTRL_C_SCRIPT = """
from deepgram_agent import DeepgramClient

with DeepgramClient().agent.connect_sync({"audio": {}, "agent": {}}) as conn:
    print("ready", flush=True)
    for msg in conn:
        pass
"""


def test_ctrl_c_in_the_main_thread_ends_the_session_cleanly(tmp_path: Path) -> None:
    import signal

    script = tmp_path / "ctrl_c.py"
    script.write_text(CTRL_C_SCRIPT)
    with AgentEmulator.run_in_thread(api_key=None) as emu:
        env = dict(os.environ, DEEPGRAM_AGENT_URL=emu.url, DEEPGRAM_API_KEY="k")
        with subprocess.Popen(
            [sys.executable, str(script)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ) as proc:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
            started = time.monotonic()
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=scaled(15))
            elapsed = time.monotonic() - started
        assert proc.returncode != 0 and "KeyboardInterrupt" in err
        assert elapsed < scaled(5)
        session = emu.sessions[0]
        emu.call(session.wait_closed(timeout=scaled(5)))
        assert session.close_code == 1000  # a normal close from the client, not a dropped socket
