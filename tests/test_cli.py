"""The ``deepgram-agent`` CLI against the embedded emulator (real loopback sockets)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import wave
from pathlib import Path
from typing import Any

import pytest

from deepgram_agent._validate import all_settings_problems
from deepgram_agent.cli import default_settings, main
from deepgram_agent.testing import AgentEmulator, Faults
from deepgram_agent.testing._audio import tone
from tests.conftest import scaled

REPO = Path(__file__).resolve().parent.parent


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEEPGRAM_")}
    env["PYTHONPATH"] = str(REPO)
    env["NO_COLOR"] = "1"
    return env


def write_wav(path: Path, audio: bytes, rate: int = 16000) -> Path:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(audio)
    return path


def speech_wav(path: Path) -> Path:
    """Two loud 'utterances' separated by silence (the emulator's VAD hears two turns)."""
    return write_wav(
        path,
        tone("linear16", 16000, 0.4) + bytes(2 * 16000) + tone("linear16", 16000, 0.4),
    )


# ---------------------------------------------------------------------------------- demo


@pytest.mark.slow
def test_demo_runs_on_a_fresh_machine(tmp_path: Path) -> None:
    # The README's command is `pip install -e . && deepgram-agent demo`: run the installed
    # console script when there is one (CI installs the package), else the module.
    script = Path(sys.executable).parent / "deepgram-agent"
    command = (
        [str(script), "demo"]
        if script.exists()
        else [sys.executable, "-m", "deepgram_agent", "demo"]
    )
    started = time.monotonic()
    proc = subprocess.run(
        command,
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=scaled(60),
        stdin=subprocess.DEVNULL,
    )
    elapsed = time.monotonic() - started
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert elapsed < 30
    lines = out.splitlines()
    stamp = r"^\[\s*\d+\.\d\ds\] "

    def find(pattern: str) -> str:
        hits = [line for line in lines if re.search(pattern, line)]
        assert hits, f"no line matching {pattern!r} in:\n{out}"
        return hits[0]

    find(stamp + r"agent: Hello!")
    find(stamp + r"user: What's the weather in Paris\?")
    find(
        stamp + r'function call get_weather\(\{"city": "Paris"\}\) -> '
        r"sunny and 21 degrees Celsius \[ok"
    )
    find(stamp + r"agent: In Paris it is sunny and 21 degrees Celsius\.")
    find(stamp + r"prompt updated")
    find(stamp + r"user: Tell me a long story about the sea\.")
    find(stamp + r"barge-in: user started speaking while the agent was talking")
    find(stamp + r"user: Sorry to interrupt: that's enough, thanks!")
    for turn in (1, 2, 3):
        find(
            stamp + rf"latency turn {turn} \(.*\): client \d+ ms \(user turn sent -> first "
            r"agent audio\) \| server total 350 ms \(ttt 250 ms, tts 100 ms\)"
        )
    # The story was cut: its last sentence was never spoken.
    assert "storm" not in out
    assert lines.index(find("barge-in")) < lines.index(find("user: Sorry to interrupt"))
    # The WAV file: the output format of the Settings sent, as long as the summary says.
    summary = find(r"agent audio\s+\d+\.\d\d s \(linear16 24000 Hz\) -> agent_demo\.wav")
    seconds = float(re.search(r"(\d+\.\d\d) s", summary).group(1))  # type: ignore[union-attr]
    with wave.open(str(tmp_path / "agent_demo.wav")) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 24000)
        duration = wav.getnframes() / wav.getframerate()
    assert duration == pytest.approx(seconds, abs=0.01)
    assert 2.0 < duration < 10.0
    assert "barge-ins         1" in out


# ---------------------------------------------------------------------------------- run


def test_run_streams_a_wav_and_saves_the_reply(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DEEPGRAM_API_KEY", raising=False)
    script = tmp_path / "script.json"
    script.write_text(
        json.dumps(
            {
                "transcripts": ["what time is it", "thank you"],
                "rules": [{"match": "time", "reply": "It is noon."}],
            }
        )
    )
    wav = speech_wav(tmp_path / "in.wav")
    out = tmp_path / "reply.wav"
    code = main(["run", str(wav), "--fast", "--script", str(script), "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 0, text
    transcript = [
        line.split("] ", 1)[1]
        for line in text.splitlines()
        if re.search(r"\] (user|agent): ", line)
    ]
    assert transcript == [
        "user: what time is it",
        "agent: It is noon.",
        "user: thank you",
        "agent: You said: thank you",
    ]
    with wave.open(str(out)) as reply:
        assert (reply.getframerate(), reply.getsampwidth(), reply.getnchannels()) == (24000, 2, 1)
        # 60 ms of emulated speech per character of both replies.
        expected = (len("It is noon.") + len("You said: thank you")) * 0.06
        assert reply.getnframes() / 24000 == pytest.approx(expected, abs=0.05)


def test_run_json_events(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DEEPGRAM_API_KEY", raising=False)
    script = tmp_path / "script.json"
    script.write_text(json.dumps({"transcripts": ["hello there"]}))
    wav = write_wav(tmp_path / "in.wav", tone("linear16", 16000, 0.3))
    code = main(
        [
            "run",
            str(wav),
            "--fast",
            "--json",
            "--script",
            str(script),
            "--out",
            str(tmp_path / "o.wav"),
        ]
    )
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 0
    texts = [(e["role"], e["text"]) for e in events if e["event"] in ("user", "agent")]
    assert texts == [("user", "hello there"), ("agent", "You said: hello there")]
    assert events[-1]["event"] == "saved"


def test_run_missing_file_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", str(tmp_path / "nope.wav")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_run_rate_mismatch_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wav = write_wav(tmp_path / "in.wav", tone("linear16", 8000, 0.1), rate=8000)
    settings = tmp_path / "s.json"
    settings.write_text(json.dumps(default_settings(input_rate=16000)))
    assert main(["run", str(wav), "--settings", str(settings), "--emulator"]) == 2
    assert "8000 Hz" in capsys.readouterr().err


# ---------------------------------------------------------------------------------- exit codes


def test_wrong_key_exits_3_and_never_prints_it(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "sk-wrong-secret-value-123"
    monkeypatch.setenv("DEEPGRAM_API_KEY", secret)
    wav = write_wav(tmp_path / "in.wav", tone("linear16", 16000, 0.1))
    with AgentEmulator.run_in_thread(api_key="the-right-key") as emu:
        code = main(["run", str(wav), "--fast", "-v", "--url", emu.url])
    captured = capfd.readouterr()
    assert code == 3, captured.err
    assert secret not in captured.out + captured.err


def test_settings_rejected_exits_4(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEEPGRAM_API_KEY", "any")
    wav = write_wav(tmp_path / "in.wav", tone("linear16", 16000, 0.1))
    with AgentEmulator.run_in_thread(faults=Faults(refuse_status=503)) as emu:
        code = main(["run", str(wav), "--fast", "--url", emu.url])
    assert code in (4, 5)  # a 503 handshake refusal is a server error, not a network failure
    assert code == 4, capsys.readouterr().err


def test_unreachable_server_exits_5(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEEPGRAM_API_KEY", "any")
    wav = write_wav(tmp_path / "in.wav", tone("linear16", 16000, 0.1))
    assert main(["run", str(wav), "--fast", "--url", "ws://127.0.0.1:1"]) == 5
    assert "error:" in capsys.readouterr().err


# ---------------------------------------------------------------------------------- validate


def validate(tmp_path: Path, data: Any, *extra: str) -> int:
    path = tmp_path / "settings.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return main(["validate", str(path), *extra])


def test_validate_good_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert validate(tmp_path, default_settings()) == 0
    assert "valid Settings" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (lambda d: d["audio"]["input"].update(sample_rate="fast"), "audio.input.sample_rate"),
        (lambda d: d["agent"]["speak"].update(provider={"model": "x"}), "agent.speak.provider"),
        (lambda d: d["agent"]["think"].update(surprise=1), "agent.think"),
    ],
)
def test_validate_bad_file_names_the_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mutate: Any, path: str
) -> None:
    data = default_settings()
    mutate(data)
    assert validate(tmp_path, data) == 1
    out = capsys.readouterr().out
    assert re.search(rf"^  {re.escape(path)}[.\w]*: ", out, re.MULTILINE), out


def test_validate_json_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = default_settings()
    data["audio"]["input"]["sample_rate"] = "fast"
    assert validate(tmp_path, data, "--json") == 1
    event = json.loads(capsys.readouterr().out)
    assert event["event"] == "invalid"
    assert event["path"] == "audio.input.sample_rate"


def three_mistakes() -> dict[str, Any]:
    data = default_settings()
    data["agent"]["listen"] = {"model": "nova-3"}  # the flat listen shape
    data["agent"]["think"]["functions"] = [
        {
            "name": "lookup",
            "description": "Look something up.",
            "parameters": {"type": "object", "properties": {}},
            "url": "https://example.com/lookup",  # belongs in "endpoint"
            "method": "post",
        }
    ]
    data["audio"]["input"]["sample_rate"] = "16000"
    return data


MISTAKE_PATHS = (
    "agent.listen.model",
    "agent.think.functions[0].method",
    "audio.input.sample_rate",
)


def test_validate_reports_every_independent_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert validate(tmp_path, three_mistakes()) == 1
    out = capsys.readouterr().out
    reported = re.findall(r"^  (\S+): .* \[(\w+)\]$", out, re.MULTILINE)
    paths = [path for path, _ in reported]
    for path in MISTAKE_PATHS:
        assert path in paths, out
    assert paths[0] == "agent.listen.model"  # the one the server would name comes first
    assert all(code == "UNPARSABLE_CLIENT_MESSAGE" for _, code in reported)
    assert len(paths) == len(set(paths)) == 4  # the function's url is reported too


def test_validate_json_lists_every_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert validate(tmp_path, three_mistakes(), "--json") == 1
    event = json.loads(capsys.readouterr().out)
    assert event["event"] == "invalid"
    assert event["path"] == "agent.listen.model"
    paths = [problem["path"] for problem in event["problems"]]
    assert set(MISTAKE_PATHS) <= set(paths)
    assert all(set(problem) == {"path", "problem", "code"} for problem in event["problems"])
    assert validate(tmp_path, default_settings(), "--json") == 0
    assert json.loads(capsys.readouterr().out)["problems"] == []


def test_all_settings_problems_directly() -> None:
    assert all_settings_problems(default_settings()) == []
    paths = [e.path for e in all_settings_problems(three_mistakes())]
    assert set(MISTAKE_PATHS) <= set(paths)
    assert len(all_settings_problems(three_mistakes(), limit=2)) == 2
    # A missing required field is reported once and filled in, so later problems still show.
    data = default_settings()
    del data["audio"]["input"]["encoding"]
    data["agent"]["think"]["surprise"] = 1
    paths = [e.path for e in all_settings_problems(data)]
    assert paths == ["agent.think.surprise", "audio.input.encoding"]
    assert [e.path for e in all_settings_problems([1])] == [""]


def test_validate_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert validate(tmp_path, "{not json") == 2
    assert "not valid JSON" in capsys.readouterr().err
    assert validate(tmp_path, "[1, 2]") == 2
    assert main(["validate", str(tmp_path / "missing.json")]) == 2
    assert "cannot read" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["validate"])
    assert exc.value.code == 2


def test_help_documents_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for code in ("3  authentication", "4  the server", "5  network"):
        assert code in out


# ---------------------------------------------------------------------------------- talk


@pytest.mark.anyio
async def test_talk_with_a_fake_device_and_clean_cancel(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio
    import io

    from deepgram_agent.cli import Printer, build_parser, cmd_talk
    from tests.test_audio import FakeSoundDevice, nonzero_samples

    monkeypatch.delenv("DEEPGRAM_API_KEY", raising=False)
    args = build_parser().parse_args(["talk", "--emulator"])

    class Output(io.StringIO):
        """The printer's stream; wakes the test on every write."""

        changed = asyncio.Event()

        def write(self, text: str) -> int:
            self.changed.set()
            return super().write(text)

    out = Output()
    printer = Printer(as_json=False, stream=out)
    dev = FakeSoundDevice()
    task = asyncio.create_task(cmd_talk(args, printer, device=dev))

    async def until_printed(text: str) -> None:
        async with asyncio.timeout(scaled(10)):
            while text not in out.getvalue():
                assert not task.done(), out.getvalue()
                out.changed.clear()
                await out.changed.wait()

    await until_printed("talk now")
    speaker, mic = dev.streams
    assert (speaker.kind, mic.kind) == ("output", "input")
    loud = tone("linear16", 16000, 0.02)
    for _ in range(20):
        mic.push(loud)
    for _ in range(25):
        mic.push(bytes(640))
    await until_printed("agent: You said: Hello.")
    await until_printed("(agent audio done)")
    # The whole reply is queued in the player now: the speaker plays it.
    played = sum(nonzero_samples(speaker.pull()) for _ in range(10))
    assert played > 0
    task.cancel()  # what Ctrl-C does to asyncio.run's main task
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, scaled(5))
    assert speaker.closed and mic.closed
    assert "user: Hello." in out.getvalue()


def test_connection_lost_mid_session_exits_5(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEEPGRAM_API_KEY", "any")
    wav = write_wav(tmp_path / "in.wav", tone("linear16", 16000, 0.2))
    with AgentEmulator.run_in_thread(faults=Faults(drop_after=3)) as emu:
        code = main(["run", str(wav), "--fast", "--url", emu.url, "--out", str(tmp_path / "o.wav")])
    assert code == 5, capsys.readouterr().err


def test_unwritable_out_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DEEPGRAM_API_KEY", raising=False)
    wav = write_wav(tmp_path / "in.wav", tone("linear16", 16000, 0.1))
    out = tmp_path / "no" / "such" / "dir" / "o.wav"
    assert main(["run", str(wav), "--fast", "--out", str(out)]) == 2
    assert "cannot write" in capsys.readouterr().err


# ---------------------------------------------------------------------------------- emulate


def test_emulate_serves_other_programs_and_rejects_a_bad_recording(tmp_path: Path) -> None:
    from deepgram_agent import DeepgramClient
    from deepgram_agent import messages as m

    command = [sys.executable, "-m", "deepgram_agent", "emulate", "--port", "0", "--fast-audio"]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env()
    ) as proc:
        try:
            assert proc.stdout is not None
            url = proc.stdout.readline().strip()
            assert url.startswith("ws://127.0.0.1:")
            client = DeepgramClient(api_key="anything", base_url=url)
            said: list[str] = []
            with client.agent.connect_sync({"audio": {}, "agent": {}}) as conn:
                conn.inject_user_message("ping")
                for msg in conn:
                    if isinstance(msg, m.ConversationText):
                        said.append(msg.content)
                    if isinstance(msg, m.AgentAudioDone):
                        break
            assert said[0] == "ping" and "ping" in said[1]
        finally:
            proc.terminate()
            proc.communicate(timeout=scaled(10))
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not a recording\n")
    out = subprocess.run(
        [sys.executable, "-m", "deepgram_agent", "emulate", "--replay", str(bad)],
        capture_output=True,
        text=True,
        timeout=scaled(30),
        env=clean_env(),
        check=False,
    )
    assert out.returncode == 2 and "cannot load recording" in out.stderr
