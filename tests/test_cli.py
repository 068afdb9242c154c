"""The ``deepgram-agent`` CLI against the embedded emulator (real loopback sockets)."""

from __future__ import annotations

import json
import logging
import os
import queue
import re
import signal
import subprocess
import sys
import threading
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
        # The emulator answers at once but reports made-up server figures: they say so.
        find(
            stamp + rf"latency turn {turn} \(.*\): client \d+ ms \(user turn sent -> first "
            r"agent audio\) \| simulated server figures \(emulator\): total 350 ms "
            r"\(ttt 250 ms, tts 100 ms\)$"
        )
    assert "turn 1 latency    client" in out and "server 350 ms (simulated)" in out
    assert "skipped" not in out  # the bundled emulator's script calls get_weather
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


# ---------------------------------------------------------------------------------- helpers
# The tests below run the CLI as a subprocess, as a user does, against an emulator in this
# process (so they can see what the server saw) or the bundled one.


class Live:
    """A running ``deepgram-agent`` process whose output is read line by line in threads."""

    def __init__(self, command: list[str], *, env: dict[str, str], cwd: Path) -> None:
        self.proc = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env,
            cwd=cwd,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.out: list[str] = []
        self.err: list[str] = []
        self._threads = [
            threading.Thread(target=self._read_out, daemon=True),
            threading.Thread(target=self._read_err, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _read_out(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.out.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        self.err.extend(self.proc.stderr)

    def wait_for_line(self, text: str, timeout: float) -> str:
        """The first (further) stdout line containing ``text``; fails on exit or timeout."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.kill()
                raise AssertionError(
                    f"no line with {text!r} within {timeout} s: {self.text}"
                ) from None
            if line is None:
                self.finish(timeout=scaled(10))
                raise AssertionError(f"exited before printing {text!r}: {self.text}")
            if text in line:
                return line

    def interrupt(self, timeout: float) -> float:
        """Send SIGINT (what Ctrl-C does); return the seconds until the process was gone."""
        started = time.monotonic()
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"still running {timeout} s after SIGINT: {self.text}") from None
        return time.monotonic() - started

    def finish(self, timeout: float) -> int:
        """Wait for the exit and the end of the output; the exit status."""
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"did not exit within {timeout} s: {self.text}") from None
        for thread in self._threads:
            thread.join(timeout)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    @property
    def stdout(self) -> str:
        return "".join(self.out)

    @property
    def stderr(self) -> str:
        return "".join(self.err)

    @property
    def text(self) -> str:
        return f"\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}"


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "deepgram_agent", *args]


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli(*args),
        env=env if env is not None else clean_env(),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=scaled(timeout),
        stdin=subprocess.DEVNULL,
        check=False,
    )


def keyed_env(**extra: str) -> dict[str, str]:
    return {**clean_env(), "DEEPGRAM_API_KEY": "sk-test-key-0123456789abcdef", **extra}


#: Runs the CLI with a stand-in for the sounddevice module (the first argument names it).
DEVICE_WRAPPER = """
import sys
import types

import deepgram_agent.audio


class PortAudioError(Exception):
    \"\"\"sounddevice's own exception class has this name and base.\"\"\"


def no_device(*args, **kwargs):
    # What sounddevice raises when PortAudio has no default device (device index -1).
    raise PortAudioError("Error querying device -1")


class IdleStream:
    # A device stream that opens and never delivers a block (a silent microphone).

    def __init__(self, **kwargs):
        self.kwargs = kwargs

    def start(self):
        pass

    def stop(self):
        pass

    def close(self):
        pass


kind = sys.argv[1]
fake = types.ModuleType("sounddevice")
if kind == "working":
    fake.RawInputStream = fake.RawOutputStream = IdleStream
else:
    fake.PortAudioError = PortAudioError
    fake.RawInputStream = fake.RawOutputStream = no_device
    if kind == "no-device":
        fake.query_devices = no_device
deepgram_agent.audio.load_sounddevice = lambda: fake

from deepgram_agent.cli import main

sys.exit(main(sys.argv[2:]))
"""


def talk_command(device: str, *args: str) -> list[str]:
    return [sys.executable, "-c", DEVICE_WRAPPER, device, "talk", *args]


# ---------------------------------------------------------------------------------- Ctrl-C


def assert_wav_has_the_audio_so_far(path: Path, live: Live) -> None:
    """A complete WAV file (sizes in the header patched) with the audio the CLI reported."""
    with wave.open(str(path)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 24000)
        frames = wav.getnframes()
    assert frames > 0, live.text
    assert path.stat().st_size == 44 + 2 * frames  # header sizes match the data
    said = re.search(r"interrupted: session closed; (\d+\.\d\d) s of agent audio", live.stdout)
    assert said, live.text
    assert float(said.group(1)) == pytest.approx(frames / 24000, abs=0.01)


@pytest.mark.parametrize("command", ["demo", "run"])
def test_ctrl_c_closes_the_session_keeps_the_wav_and_exits_130(
    command: str, tmp_path: Path
) -> None:
    out = tmp_path / "agent.wav"
    args = [command, "--out", str(out)]
    if command == "run":
        args.insert(1, str(speech_wav(tmp_path / "in.wav")))
    with AgentEmulator.run_in_thread() as emu:
        live = Live(cli(*args, "--url", emu.url), env=keyed_env(), cwd=tmp_path)
        try:
            # The first latency line is printed when the first agent audio arrives: the
            # session is live and the WAV file has audio in it.
            live.wait_for_line("latency turn 1", timeout=scaled(30))
            elapsed = live.interrupt(timeout=scaled(10))
        finally:
            live.kill()
        assert live.finish(timeout=scaled(10)) == 130, live.text
        assert elapsed < scaled(1.0), f"took {elapsed:.2f} s to stop"
        assert emu.call(emu.sessions[-1].wait_closed(scaled(5))) == 1000
    assert "(no " not in live.stdout  # the old "(no reply ... going on)" lie
    assert "Summary" not in live.stdout and "Traceback" not in live.stderr
    assert_wav_has_the_audio_so_far(out, live)


def test_ctrl_c_ends_talk_with_130_and_a_normal_close(tmp_path: Path) -> None:
    with AgentEmulator.run_in_thread() as emu:
        live = Live(talk_command("working", "--url", emu.url), env=keyed_env(), cwd=tmp_path)
        try:
            live.wait_for_line("talk now", timeout=scaled(30))
            elapsed = live.interrupt(timeout=scaled(10))
        finally:
            live.kill()
        assert live.finish(timeout=scaled(10)) == 130, live.text
        assert elapsed < scaled(1.0), f"took {elapsed:.2f} s to stop"
        assert emu.call(emu.sessions[-1].wait_closed(scaled(5))) == 1000
    assert "interrupted" in live.stdout and "Traceback" not in live.stderr


def test_ctrl_c_stops_emulate_promptly(tmp_path: Path) -> None:
    from deepgram_agent import ConnectionClosedError, DeepgramClient
    from deepgram_agent import messages as msgs

    live = Live(cli("emulate", "--port", "0", "--fast-audio"), env=clean_env(), cwd=tmp_path)
    try:
        url = live.wait_for_line("ws://127.0.0.1:", timeout=scaled(30)).strip()
        client = DeepgramClient(api_key="anything", base_url=url)
        with client.agent.connect_sync({"audio": {}, "agent": {}}) as conn:
            conn.inject_user_message("ping")
            for msg in conn:
                if isinstance(msg, msgs.AgentAudioDone):
                    break
            elapsed = live.interrupt(timeout=scaled(10))
            # The emulator said goodbye to its client: 1001, "going away".
            with pytest.raises(ConnectionClosedError) as closed:
                for _ in conn:
                    pass
            assert closed.value.code == 1001
    finally:
        live.kill()
    # Ctrl-C is how a server is stopped: success, as `python -m http.server` does.
    assert live.finish(timeout=scaled(10)) == 0, live.text
    assert elapsed < scaled(1.0), f"took {elapsed:.2f} s to stop"
    assert "Traceback" not in live.stderr


# ---------------------------------------------------------------------------------- --version


def test_version() -> None:
    from importlib.metadata import version

    import deepgram_agent

    out = run_cli("--version")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"deepgram-agent {deepgram_agent.__version__}"
    assert deepgram_agent.__version__ == version("deepgram-agent")


# ---------------------------------------------------------------------------------- targets


def test_a_url_without_a_key_is_refused_with_the_reason(tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "in.wav", tone("linear16", 16000, 0.1))
    with AgentEmulator.run_in_thread() as emu:
        url = emu.url
        flag = run_cli("demo", "--url", url, cwd=tmp_path)
        env_var = run_cli("run", str(wav), env={**clean_env(), "DEEPGRAM_AGENT_URL": url})
        assert emu.sessions == []  # neither went anywhere else, nor ran the bundled emulator
    assert flag.returncode == env_var.returncode == 3
    assert f"--url {url} needs a key, but DEEPGRAM_API_KEY is not set" in flag.stderr
    assert f"DEEPGRAM_AGENT_URL={url} needs a key" in env_var.stderr
    assert "connecting" not in flag.stdout + env_var.stdout
    assert not (tmp_path / "agent_demo.wav").exists()


def test_a_url_from_the_environment_is_used(tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "in.wav", tone("linear16", 16000, 0.2))
    with AgentEmulator.run_in_thread(api_key="sk-test-key-0123456789abcdef") as emu:
        out = run_cli(
            "run", str(wav), "--fast", "--out", str(tmp_path / "o.wav"),
            env=keyed_env(DEEPGRAM_AGENT_URL=emu.url),
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert f"connecting to {emu.url}" in out.stdout
        assert len(emu.sessions) == 1 and emu.sessions[0].handshake_status == 101


def test_emulator_flag_wins_over_the_environment_and_says_so(tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "in.wav", tone("linear16", 16000, 0.2))
    with AgentEmulator.run_in_thread() as emu:
        url = emu.url
        out = run_cli(
            "run", str(wav), "--fast", "--emulator", "--out", str(tmp_path / "o.wav"),
            env=keyed_env(DEEPGRAM_AGENT_URL=url),
        )  # fmt: skip
        assert emu.sessions == []
    assert out.returncode == 0, out.stderr
    assert "connecting to emulator at ws://127.0.0.1:" in out.stdout
    assert f"note: DEEPGRAM_AGENT_URL ({url}) is ignored: --emulator" in out.stderr


def test_unusable_urls_are_refused_before_connecting(tmp_path: Path) -> None:
    bad_scheme = run_cli("demo", "--url", "ftp://example.com", env=keyed_env(), cwd=tmp_path)
    assert bad_scheme.returncode == 2
    assert "--url ftp://example.com: unsupported URL scheme 'ftp'" in bad_scheme.stderr
    empty = run_cli("demo", "--url", " ", env=keyed_env(), cwd=tmp_path)
    assert empty.returncode == 2 and "--url is empty" in empty.stderr
    both = run_cli("demo", "--url", "ws://127.0.0.1:1", "--emulator", cwd=tmp_path)
    assert both.returncode == 2
    assert "argument --emulator: not allowed with argument --url" in both.stderr


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["validate", "--settings", "a.json", "b.json"], "unrecognized arguments: --settings"),
        (["validate", "s.json", "--url", "ws://x"], "unrecognized arguments: --url"),
        (["emulate", "--settings", "s.json"], "unrecognized arguments: --settings"),
        (["emulate", "--url", "ws://x"], "unrecognized arguments: --url"),
        (["emulate", "--json"], "unrecognized arguments: --json"),
        (["demo", "--fast"], "unrecognized arguments: --fast"),
        (["demo", "--script", "s.json"], "unrecognized arguments: --script"),
        (["talk", "--out", "x.wav"], "unrecognized arguments: --out"),
    ],
)
def test_options_a_command_does_not_take_are_errors(args: list[str], complaint: str) -> None:
    out = run_cli(*args)
    assert out.returncode == 2
    assert complaint in out.stderr
    assert f"usage: deepgram-agent {args[0]}" in out.stderr


def test_run_script_with_a_remote_server_is_an_error(tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "in.wav", tone("linear16", 16000, 0.1))
    script = tmp_path / "script.json"
    script.write_text("{}")
    with AgentEmulator.run_in_thread() as emu:
        out = run_cli("run", str(wav), "--script", str(script), "--url", emu.url, env=keyed_env())
        assert emu.sessions == []
    assert out.returncode == 2
    assert "--script drives the bundled emulator" in out.stderr


# ---------------------------------------------------------------------------------- talk devices


@pytest.mark.parametrize("device", ["no-device", "cannot-open"])
def test_talk_without_a_usable_device_exits_6(device: str, tmp_path: Path) -> None:
    with AgentEmulator.run_in_thread() as emu:
        out = subprocess.run(
            talk_command(device, "--url", emu.url),
            env=keyed_env(),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=scaled(60),
            check=False,
        )
        if device == "no-device":
            assert emu.sessions == []  # found out before connecting
        else:  # the device fails only when its stream opens: the session ends normally
            assert emu.call(emu.sessions[0].wait_closed(scaled(5))) == 1000
    assert out.returncode == 6, out.stderr
    assert "Traceback" not in out.stderr
    assert (
        "error: no usable audio device (PortAudioError: Error querying device -1). Connect a "
        "microphone and speakers"
    ) in out.stderr


def test_talk_without_the_audio_library_exits_6(tmp_path: Path) -> None:
    # What load_sounddevice raises when the extra or PortAudio is missing.
    wrapper = DEVICE_WRAPPER.replace(
        "deepgram_agent.audio.load_sounddevice = lambda: fake",
        "from deepgram_agent.exceptions import MissingDependencyError\n"
        "def missing():\n"
        "    raise MissingDependencyError('audio devices need the audio extra')\n"
        "deepgram_agent.audio.load_sounddevice = missing",
    )
    out = subprocess.run(
        [sys.executable, "-c", wrapper, "none", "talk", "--emulator"],
        env=clean_env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=scaled(60),
        check=False,
    )
    assert out.returncode == 6, out.stderr
    assert "error: audio devices need the audio extra" in out.stderr


def test_help_documents_every_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    from deepgram_agent.cli import EXIT_CODES

    with pytest.raises(SystemExit):
        main(["talk", "--help"])
    out = capsys.readouterr().out
    assert "6  audio unavailable" in out and "7  an audio encoding" in out
    assert "130  interrupted by Ctrl-C" in out
    readme = (REPO / "README.md").read_text()
    for code in EXIT_CODES:
        assert re.search(rf"^\| {code} +\|", readme, re.MULTILINE), f"exit code {code} in README"


# ---------------------------------------------------------------------------------- demo notes


@pytest.mark.slow
def test_demo_against_a_plain_emulator_says_the_function_step_was_skipped(
    tmp_path: Path,
) -> None:
    # The README's Quick start: a plain emulator, DEEPGRAM_AGENT_URL and any key exported.
    with AgentEmulator.run_in_thread() as emu:
        url = emu.url
        out = run_cli("demo", env=keyed_env(DEEPGRAM_AGENT_URL=url), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert (
        "(function-call step skipped: the agent answered without calling get_weather; "
        f"{url} looks like a plain emulator (python -m deepgram_agent.testing): it has no "
        "LLM and its default script calls no function."
    ) in out.stdout
    assert "function call get_weather" not in out.stdout
    assert "simulated server figures (emulator): total 350 ms" in out.stdout


def test_latency_from_a_remote_server_is_not_called_simulated() -> None:
    import io

    from deepgram_agent import messages as msgs
    from deepgram_agent.cli import Printer, Session

    lines = io.StringIO()
    session = Session(Printer(as_json=False, stream=lines), conn=None, simulated=False)
    session.user_turn_sent("question")
    session.handle(msgs.AgentStartedSpeaking(total_latency=0.9, tts_latency=0.3, ttt_latency=0.6))
    session.handle(b"\x00\x00")
    assert (
        lines.getvalue()
        .rstrip()
        .endswith(
            "(user turn sent -> first agent audio) | server total 900 ms (ttt 600 ms, tts 300 ms)"
        )
    )
    assert session.turns[0]["server_simulated"] is False


# ---------------------------------------------------------------------------------- encodings


def settings_with(**audio: dict[str, Any]) -> dict[str, Any]:
    data = default_settings()
    for side, fields in audio.items():
        data["audio"][side].update(fields)
    return data


@pytest.mark.parametrize(
    ("command", "audio", "message"),
    [
        ("run", {"input": {"encoding": "opus"}}, "run cannot send 'opus' audio"),
        ("run", {"input": {"encoding": "flac"}}, "run cannot send 'flac' audio"),
        ("run", {"output": {"encoding": "mp3"}}, "run cannot decode 'mp3' agent audio"),
        ("demo", {"output": {"encoding": "aac"}}, "demo cannot decode 'aac' agent audio"),
        ("talk", {"input": {"encoding": "opus"}}, "talk cannot send 'opus' audio"),
        ("talk", {"output": {"encoding": "flac"}}, "talk cannot decode 'flac' agent audio"),
    ],
)
def test_encodings_the_cli_cannot_handle_exit_7_before_connecting(
    command: str, audio: dict[str, dict[str, str]], message: str, tmp_path: Path
) -> None:
    settings = tmp_path / "s.json"
    settings.write_text(json.dumps(settings_with(**audio)))
    args = [command, "--settings", str(settings)]
    if command == "run":
        args.insert(1, str(write_wav(tmp_path / "in.wav", tone("linear16", 16000, 0.1))))
    with AgentEmulator.run_in_thread() as emu:
        out = run_cli(*args, "--url", emu.url, env=keyed_env(), cwd=tmp_path)
        assert emu.sessions == []
    assert out.returncode == 7, out.stderr
    assert f"error: {message}" in out.stderr and "Traceback" not in out.stderr
    # validate does not object: the server takes these encodings.
    assert run_cli("validate", str(settings)).returncode == 0


def test_an_encoding_the_server_does_not_know_is_never_a_traceback(tmp_path: Path) -> None:
    settings = tmp_path / "s.json"
    settings.write_text(json.dumps(settings_with(input={"encoding": "pcm16"})))
    wav = write_wav(tmp_path / "in.wav", tone("linear16", 16000, 0.1))
    out = run_cli("run", str(wav), "--settings", str(settings), "--emulator", cwd=tmp_path)
    # 2 once local validation names the accepted encodings, 7 until then.
    assert out.returncode in (2, 7), out.stderr
    assert "pcm16" in out.stderr and "Traceback" not in out.stderr


def test_mulaw_settings_run_end_to_end(tmp_path: Path) -> None:
    settings = tmp_path / "s.json"
    settings.write_text(
        json.dumps(
            settings_with(
                input={"encoding": "mulaw", "sample_rate": 8000},
                output={"encoding": "mulaw", "sample_rate": 8000},
            )
        )
    )
    wav = write_wav(tmp_path / "in.wav", tone("linear16", 8000, 0.4), rate=8000)
    out_wav = tmp_path / "o.wav"
    out = run_cli(
        "run", str(wav), "--fast", "--settings", str(settings), "--out", str(out_wav),
        cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    with wave.open(str(out_wav)) as reply:
        assert (reply.getframerate(), reply.getsampwidth()) == (8000, 2)
        assert reply.getnframes() > 0


# ---------------------------------------------------------------------------------- logging


def test_v_logs_debug_lines_without_the_key(tmp_path: Path) -> None:
    key = "sk-test-key-0123456789abcdef"
    wav = write_wav(tmp_path / "in.wav", tone("linear16", 16000, 0.2))
    with AgentEmulator.run_in_thread() as emu:
        quiet = run_cli("run", str(wav), "--fast", "--url", emu.url, env=keyed_env(), cwd=tmp_path)
        loud = run_cli(
            "run", str(wav), "--fast", "--url", emu.url, "-v", env=keyed_env(), cwd=tmp_path
        )
    assert quiet.returncode == loud.returncode == 0, loud.stderr
    assert " DEBUG deepgram_agent" not in quiet.stderr
    assert re.search(r"^\S+ \S+ DEBUG deepgram_agent[.\w]*: ", loud.stderr, re.MULTILINE)
    assert key not in loud.stdout + loud.stderr


def test_cli_logging_levels_and_redaction() -> None:
    import io

    from deepgram_agent.cli import TRACE, cli_logging

    key = "sk-live-0123456789abcdef0123"
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    root = logging.getLogger("deepgram_agent")
    before = (root.level, list(root.handlers))
    wire = logging.getLogger("deepgram_agent.wire")
    for verbosity, shown, hidden in [
        (0, ["WARNING"], ["DEBUG", "TRACE"]),
        (1, ["WARNING", "DEBUG"], ["TRACE"]),
        (2, ["WARNING", "DEBUG", "TRACE"], []),
    ]:
        stream = io.StringIO()
        with cli_logging(verbosity, secrets=[key], stream=stream):
            wire.warning("warning line")
            wire.debug("debug line: %s", {"authorization": f"Token {key}"})
            wire.log(TRACE, "trace line: 320 bytes of audio")
        text = stream.getvalue()
        for level in shown:
            assert f" {level} deepgram_agent.wire: " in text, (verbosity, text)
        for level in hidden:
            assert f" {level} " not in text, (verbosity, text)
        assert key not in text
    assert (root.level, root.handlers) == before  # restored for the next command

    # Credentials in the Token/Bearer forms are masked even when the CLI does not know them.
    stream = io.StringIO()
    with cli_logging(1, stream=stream):
        wire.debug("header Authorization: Bearer %s", jwt)
        wire.debug("subprotocol token, %s", key)
    text = stream.getvalue()
    assert jwt not in text and key not in text
    assert "Bearer ***" in text and "token, ***" in text
    # A known secret is masked anywhere, tracebacks included.
    stream = io.StringIO()
    with cli_logging(1, secrets=[key], stream=stream):
        try:
            raise ValueError(f"bad key {key}")
        except ValueError:
            wire.exception("failed")
    text = stream.getvalue()
    assert key not in text and "ValueError: bad key ***" in text


# ---------------------------------------------------------------------------------- emulate docs


def test_emulate_help_documents_the_api_key(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["emulate", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--api-key" in out
    assert "Without --api-key any non-empty key is accepted; with --api-key K only K is" in out
    assert "gets HTTP 401" in out


@pytest.mark.anyio
async def test_emulate_api_key_refuses_other_keys(tmp_path: Path) -> None:
    from deepgram_agent import AuthenticationError, DeepgramClient

    live = Live(
        cli("emulate", "--port", "0", "--api-key", "the-only-key"), env=clean_env(), cwd=tmp_path
    )
    try:
        url = live.wait_for_line("ws://", timeout=scaled(30)).strip()
        settings = {"audio": {}, "agent": {}}
        with pytest.raises(AuthenticationError):
            async with DeepgramClient(api_key="another-key", base_url=url).agent.connect(settings):
                pass
        async with DeepgramClient(api_key="the-only-key", base_url=url).agent.connect(settings):
            pass
    finally:
        live.interrupt(timeout=scaled(10))
    assert live.finish(timeout=scaled(10)) == 0


def test_run_refuses_audio_it_cannot_send_and_json_mode_reports_it_as_an_event(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stereo = tmp_path / "stereo.wav"
    with wave.open(str(stereo), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(bytes(6400))
    assert main(["run", str(stereo), "--emulator"]) == 2
    assert "2 channels; the agent needs mono audio" in capsys.readouterr().err
    not_wav = tmp_path / "notes.wav"
    not_wav.write_text("this is not a WAV file")
    assert main(["run", str(not_wav), "--emulator", "--json"]) == 2
    fatal = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert fatal[-1]["event"] == "fatal" and fatal[-1]["kind"] == "usage"


def test_emulate_with_a_script_that_is_not_json_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "script.json"
    bad.write_text("{not json")
    assert main(["emulate", "--port", "0", "--script", str(bad)]) == 2
    assert "cannot load script" in capsys.readouterr().err


def test_the_cli_module_runs_as_a_script() -> None:
    out = run_cli_module("--version")
    assert out.returncode == 0 and out.stdout.startswith("deepgram-agent ")


def run_cli_module(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deepgram_agent.cli", *args],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=scaled(60),
        stdin=subprocess.DEVNULL,
        check=False,
    )
