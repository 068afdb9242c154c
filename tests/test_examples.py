"""Every example under examples/ runs against the emulator and prints what it should."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from deepgram_agent.testing import AgentEmulator, Rule, Script, ToolCall

from .conftest import scaled

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


@pytest.fixture(scope="module")
def emu() -> Iterator[AgentEmulator]:
    script = Script(
        rules=[
            Rule(
                match="weather",
                tool_calls=[ToolCall(name="get_weather", arguments={"location": "Paris"})],
                reply="It is {result[get_weather]} right now.",
            )
        ]
    )
    # api_key=None: accept any key, as the seed's examples hard-code "your-api-key".
    with AgentEmulator.run_in_thread(api_key=None, realtime_audio=False, script=script) as emulator:
        yield emulator


def run_example(path: Path, url: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["DEEPGRAM_AGENT_URL"] = url
    env.pop("DEEPGRAM_API_KEY", None)
    env["PYTHONUNBUFFERED"] = "1"
    return subprocess.run(
        [sys.executable, str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=scaled(timeout),
        cwd=str(ROOT),
        check=False,
    )


def test_every_example_file_is_covered() -> None:
    covered = {
        "seed/basic_agent.py",
        "seed/function_calling.py",
        "seed/dynamic_updates.py",
        "seed/multi_agent_async.py",
        "seed/error_handling.py",
    } | EXTRA_EXAMPLES
    found = {str(p.relative_to(EXAMPLES)) for p in EXAMPLES.rglob("*.py")}
    assert found == covered


EXTRA_EXAMPLES: set[str] = {"function_tools.py"}


def test_seed_basic_agent(emu: AgentEmulator) -> None:
    out = run_example(EXAMPLES / "seed/basic_agent.py", emu.url)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "Agent connection opened"
    assert lines[1].startswith("Agent welcome: ") and "request_id" in lines[1]
    assert "Agent connection started" in lines
    assert "Agent error" not in out.stdout
    # interim_results / vad_events have no place on the v1 wire: one warning says so.
    assert out.stderr.count("DeepgramAgentWarning") == 1
    assert "interim_results" in out.stderr and "vad_events" in out.stderr


def test_seed_function_calling(emu: AgentEmulator) -> None:
    before = len(emu.sessions)
    out = run_example(EXAMPLES / "seed/function_calling.py", emu.url)
    assert out.returncode == 0, out.stderr
    assert "Function call: get_weather" in out.stdout
    assert "Arguments: {'location': 'Paris'}" in out.stdout
    assert "user: What's the weather like in Paris?" in out.stdout
    assert '"temperature": 72' in out.stdout  # the reply used the function's result
    session = emu.sessions[before]
    response = session.received_json("FunctionCallResponse")[0]
    assert response["name"] == "get_weather" and response["id"]


def test_seed_dynamic_updates(emu: AgentEmulator) -> None:
    before = len(emu.sessions)
    out = run_example(EXAMPLES / "seed/dynamic_updates.py", emu.url, timeout=30)
    assert out.returncode == 0, out.stderr
    session = emu.sessions[before]
    types = [f["type"] for f in session.received_json()]
    assert types[:5] == [
        "Settings",
        "UpdatePrompt",
        "UpdateSpeak",
        "InjectAgentMessage",
        "InjectUserMessage",
    ]
    speak = session.received_json("UpdateSpeak")[0]
    assert speak["speak"] == {"provider": {"type": "deepgram", "model": "aura-luna-en"}}
    inject = session.received_json("InjectAgentMessage")[0]
    assert inject["message"].startswith("I just switched to storytelling mode!")
    assert session.received_json("InjectUserMessage")[0]["content"].startswith("The user mentioned")


def test_seed_multi_agent_async(emu: AgentEmulator) -> None:
    before = len(emu.sessions)
    out = run_example(EXAMPLES / "seed/multi_agent_async.py", emu.url)
    assert out.returncode == 0, out.stderr
    sessions = emu.sessions[before:]
    prompts = [s.received_json("Settings")[0]["agent"]["think"]["prompt"] for s in sessions]
    assert [p.split(":")[0] for p in prompts] == [
        "Agent Moderator",
        "Agent Expert1",
        "Agent Expert2",
    ]


def test_seed_error_handling(emu: AgentEmulator) -> None:
    out = run_example(EXAMPLES / "seed/error_handling.py", emu.url)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines() == ["Agent started successfully"]


def test_seed_error_handling_reports_authentication_errors() -> None:
    with AgentEmulator.run_in_thread(api_key="only-this-key") as strict:
        out = run_example(EXAMPLES / "seed/error_handling.py", strict.url)
    assert out.returncode == 0, out.stderr
    assert "Agent error:" in out.stdout
    assert "Failed to start agent connection" in out.stdout
    assert "your-api-key" not in out.stdout + out.stderr
