"""``deepgram-agent serve``: routes, the webhook, access control, the page's protocol, the CLI,
and running under gunicorn with two workers. All on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import re
import signal
import socket
import subprocess
import sys
from array import array
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp import web

from deepgram_agent import DeepgramClient
from deepgram_agent.cli import main
from deepgram_agent.telephony import twilio_signature
from deepgram_agent.testing import AgentEmulator, Rule, Script
from deepgram_agent.testing.phone import FakeCall
from deepgram_agent.web import app_factory, create_app, is_loopback
from tests.conftest import scaled
from tests.test_telephony import assert_agent_tone

ROOT = Path(__file__).resolve().parent.parent


@contextlib.asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = next(a[1] for a in runner.addresses if isinstance(a, tuple))
        yield f"127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def served(**options: Any) -> AsyncIterator[tuple[str, AgentEmulator]]:
    script = Script(rules=[Rule(match="", reply="Hello from the agent.")], default_transcript="hi")
    async with AgentEmulator(script=script, vad_silence=0.3) as emu:
        client = DeepgramClient(api_key="k", base_url=emu.url)
        options.setdefault("settings", {"agent": {"greeting": "Welcome."}})
        async with serving(create_app(client=client, **options)) as host:
            yield host, emu


# ---------------------------------------------------------------------------------- routes


@pytest.mark.anyio
async def test_page_assets_and_health() -> None:
    async with served() as (host, _emu), aiohttp.ClientSession() as http:
        async with http.get(f"http://{host}/") as resp:
            assert resp.status == 200
            page = await resp.text()
        assert '<script src="/static/app.js">' in page
        for name in ("app.js", "worklet.js", "style.css"):
            async with http.get(f"http://{host}/static/{name}") as resp:
                assert resp.status == 200
                body = await resp.text()
            # Everything ships in the package: no CDN, no outside URL (works offline).
            assert not re.search(r"https?://(?!\$\{)", body), name
        async with http.get(f"http://{host}/static/../pyproject.toml") as resp:
            assert resp.status == 404
        async with http.get(f"http://{host}/healthz") as resp:
            assert (await resp.json())["status"] == "ok"
        async with http.get(f"http://{host}/twilio") as resp:
            assert resp.status == 426  # a plain GET on a WebSocket route


@pytest.mark.anyio
async def test_voice_webhook_answers_connect_stream_twiml() -> None:
    async with served() as (host, _emu), aiohttp.ClientSession() as http:
        form = {"CallSid": "CA1", "From": "+15550100"}
        async with http.post(f"http://{host}/twilio/voice", data=form) as resp:
            assert resp.status == 200
            assert resp.content_type == "text/xml"
            twiml = await resp.text()
        assert f'<Connect><Stream url="ws://{host}/twilio"/></Connect>' in twiml
        headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "agent.example.test"}
        async with http.post(f"http://{host}/twilio/voice", data=form, headers=headers) as resp:
            twiml = await resp.text()
        assert '<Stream url="wss://agent.example.test/twilio"/>' in twiml


@pytest.mark.anyio
async def test_access_token_guards_page_webhook_and_streams() -> None:
    async with served(token="t0ken") as (host, emu), aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(f"ws://{host}/agent")
        assert refused.value.status == 403
        async with http.post(f"http://{host}/twilio/voice", data={"CallSid": "CA1"}) as resp:
            assert resp.status == 403
        url = f"http://{host}/twilio/voice?token=t0ken"
        async with http.post(url, data={"CallSid": "CA1"}) as resp:
            twiml = await resp.text()
        assert '<Parameter name="token" value="t0ken"/>' in twiml
        async with FakeCall(f"ws://{host}/twilio") as stranger:
            assert await stranger.wait_closed(scaled(5)) == 1008
        async with FakeCall(f"ws://{host}/twilio", custom_parameters={"token": "t0ken"}) as call:
            await call.wait_for("media")
            await call.hang_up()
        async with http.ws_connect(f"ws://{host}/agent?token=t0ken") as page:
            ready = await page.receive_json(timeout=scaled(10))
            assert ready["type"] == "bridge.ready"
    assert len(emu.sessions) == 2  # nothing spent on the refused ones


@pytest.mark.anyio
async def test_twilio_signature_and_call_tickets() -> None:
    async with served(twilio_auth_token="auth") as (host, emu), aiohttp.ClientSession() as http:
        url = f"http://{host}/twilio/voice"
        form = {"CallSid": "CA77", "AccountSid": "AC1"}
        async with http.post(url, data=form, headers={"X-Twilio-Signature": "bad"}) as resp:
            assert resp.status == 403
        signature = twilio_signature("auth", url, form)
        async with http.post(url, data=form, headers={"X-Twilio-Signature": signature}) as resp:
            assert resp.status == 200
            twiml = await resp.text()
        (ticket,) = re.findall(r'name="ticket" value="([0-9a-f]+)"', twiml)
        forged = FakeCall(
            f"ws://{host}/twilio", call_id="CA78", custom_parameters={"ticket": ticket}
        )
        async with forged:  # a ticket is good for its own call only
            assert await forged.wait_closed(scaled(5)) == 1008
        async with FakeCall(
            f"ws://{host}/twilio", call_id="CA77", custom_parameters={"ticket": ticket}
        ) as call:
            await call.wait_for("media")
            await call.hang_up()
    assert len(emu.sessions) == 1


@pytest.mark.anyio
async def test_too_many_calls_get_503() -> None:
    async with served(max_calls=1) as (host, _emu), aiohttp.ClientSession() as http:
        async with FakeCall(f"ws://{host}/twilio") as call:
            await call.wait_for("media")
            with pytest.raises(aiohttp.WSServerHandshakeError) as busy:
                await http.ws_connect(f"ws://{host}/agent")
            assert busy.value.status == 503
            await call.hang_up()


# ---------------------------------------------------------------------------------- the page


def loud(seconds: float, rate: int = 16000) -> bytes:
    n = round(seconds * rate)
    return array(
        "h", (round(16000 * math.sin(2 * math.pi * 300 * i / rate)) for i in range(n))
    ).tobytes()


@pytest.mark.anyio
async def test_browser_protocol_relays_audio_events_and_barge_in() -> None:
    """What the page does, over the page's own WebSocket (the Chromium test drives the page)."""
    async with served(settings={"agent": {}}) as (host, emu), aiohttp.ClientSession() as http:
        async with http.ws_connect(f"ws://{host}/agent") as page:
            ready = await page.receive_json(timeout=scaled(10))
            assert ready == {
                "type": "bridge.ready",
                "input": {"encoding": "linear16", "sample_rate": 16000},
                "output": {"encoding": "linear16", "sample_rate": 24000},
            }
            await page.send_bytes(b"\x00")  # half a sample: ignored, logged
            await page.send_str("{nonsense")
            await page.send_str('{"type":"surprise"}')
            speech = loud(0.4) + bytes(2 * 16000 * 4 // 10)
            for i in range(0, len(speech), 640):
                await page.send_bytes(speech[i : i + 640])
            seen: list[str] = []
            audio = 0
            while "bridge.reply_done" not in seen:
                msg = await page.receive(timeout=scaled(10))
                if msg.type is aiohttp.WSMsgType.BINARY:
                    audio += len(msg.data)
                else:
                    seen.append(msgspec.json.decode(msg.data)["type"])
            await page.send_str('{"type":"drained"}')
            await page.send_str('{"type":"stop"}')
            await page.receive(timeout=scaled(10))
        assert audio > 0 and audio % 2 == 0
        assert seen.index("UserStartedSpeaking") < seen.index("bridge.reply_start")
        assert seen.index("ConversationText") < seen.index("bridge.reply_done")
        assert "bridge.flush" in seen  # every UserStartedSpeaking is a flush for the page
        await emu.sessions[0].wait_closed(scaled(5))


# ---------------------------------------------------------------------------------- the CLI


def test_serve_refuses_other_addresses_without_a_token(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--host", "0.0.0.0", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "refusing to bind 0.0.0.0" in err and "--token" in err
    assert is_loopback("127.0.0.2") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("example.test")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEEPGRAM")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.mark.anyio
async def test_serve_command_runs_offline_with_the_emulator() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "deepgram_agent", "serve", "--port", "0",
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=_env(),
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        banner = ""
        while "access" not in banner:
            line = await asyncio.wait_for(proc.stdout.readline(), scaled(30))
            assert line, banner
            banner += line.decode()
        assert "the bundled emulator" in banner and "open, to this machine only" in banner
        (host,) = re.findall(r"listening on http://(127\.0\.0\.1:\d+)", banner)
        async with aiohttp.ClientSession() as http, http.get(f"http://{host}/") as resp:
            assert resp.status == 200
        async with FakeCall(f"ws://{host}/twilio") as call:
            await call.wait_for("mark", timeout=scaled(15))  # the emulator's greeting-free turn
            await call.hang_up()
        assert_agent_tone(bytes(call.audio))
    finally:
        proc.send_signal(signal.SIGINT)
        code = await asyncio.wait_for(proc.wait(), scaled(15))
    assert code == 0


# ---------------------------------------------------------------------------------- gunicorn


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def gunicorn_server() -> Iterator[tuple[str, int]]:
    pytest.importorskip("gunicorn")
    port = _free_port()
    env = _env() | {"DEEPGRAM_AGENT_SERVE_TOKEN": "g-token"}
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "gunicorn", "deepgram_agent.web:app_factory()",
            "-k", "aiohttp.GunicornWebWorker", "-w", "2", "--bind", f"127.0.0.1:{port}",
            "--graceful-timeout", "5",
        ],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=ROOT,
    )  # fmt: skip
    try:
        yield f"127.0.0.1:{port}", proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(scaled(20))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


@pytest.mark.anyio
async def test_two_gunicorn_workers(gunicorn_server: tuple[str, int]) -> None:
    host, master = gunicorn_server
    async with aiohttp.ClientSession() as http:
        async with asyncio.timeout(scaled(60)):
            while True:  # gunicorn gives no readiness signal: poll the health route
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"http://{host}/healthz") as resp:
                        if resp.status == 200:
                            break
                await asyncio.sleep(0.2)
    assert len(_children(master)) == 2  # gunicorn's master runs two aiohttp workers
    params = {"token": "g-token"}
    calls = [FakeCall(f"ws://{host}/twilio", custom_parameters=params) for _ in range(6)]
    async with contextlib.AsyncExitStack() as stack:
        for call in calls:
            await stack.enter_async_context(call)
        await asyncio.gather(*(c.wait_for("media", timeout=scaled(20)) for c in calls))
        await asyncio.gather(*(c.hang_up() for c in calls))
    for call in calls:
        assert_agent_tone(bytes(call.audio))


def test_readme_documents_the_tested_gunicorn_command() -> None:
    readme = (ROOT / "README.md").read_text()
    tested = "gunicorn 'deepgram_agent.web:app_factory()' -k aiohttp.GunicornWebWorker -w 2"
    assert tested in readme


def test_app_factory_requires_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "DEEPGRAM_AGENT_SERVE_TOKEN",
        "TWILIO_AUTH_TOKEN",
        "DEEPGRAM_AGENT_SERVE_INSECURE",
    ):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(RuntimeError, match="DEEPGRAM_AGENT_SERVE_TOKEN"):
        app_factory()
    monkeypatch.setenv("DEEPGRAM_AGENT_SERVE_INSECURE", "1")
    assert isinstance(app_factory(), web.Application)


@pytest.mark.anyio
async def test_the_page_socket_refuses_what_it_cannot_serve() -> None:
    """A plain request, an agent session that fails, Settings the page cannot play, and a page
    that sends nothing but garbage: each gets a clear refusal, never a hang."""
    from deepgram_agent.presets import browser_settings
    from deepgram_agent.web._browser import BrowserBridge

    async with AgentEmulator(api_key="right", realtime_audio=False) as emu:
        good = DeepgramClient(api_key="right", base_url=emu.url)
        bridges = {
            "/wrong-key": BrowserBridge(
                DeepgramClient(api_key="wrong", base_url=emu.url), browser_settings
            ),
            "/mulaw": BrowserBridge(
                good,
                lambda: {
                    "audio": {
                        "input": {"encoding": "mulaw", "sample_rate": 8000},
                        "output": {"encoding": "mulaw", "sample_rate": 8000, "container": "none"},
                    },
                    "agent": {},
                },
            ),
            "/strict": BrowserBridge(good, browser_settings, max_bad_frames=2),
        }
        app = web.Application()
        for path, bridge in bridges.items():
            app.router.add_get(path, bridge.handle)
        async with serving(app) as host, aiohttp.ClientSession() as http:
            async with http.get(f"http://{host}/strict") as resp:
                assert resp.status == 426  # not a WebSocket upgrade
            for path, says in [("/wrong-key", "401"), ("/mulaw", "needs linear16")]:
                async with http.ws_connect(f"ws://{host}{path}") as page:
                    error = await page.receive_json(timeout=scaled(10))
                    assert error["type"] == "bridge.error" and says in error["message"]
                    closing = await page.receive(timeout=scaled(10))
                    assert closing.type is aiohttp.WSMsgType.CLOSE and closing.data == 1011
            async with http.ws_connect(f"ws://{host}/strict") as page:
                assert (await page.receive_json(timeout=scaled(10)))["type"] == "bridge.ready"
                for junk in ("{nonsense", '{"type":"surprise"}', "[]"):
                    await page.send_str(junk)
                while (msg := await page.receive(timeout=scaled(10))).type is not (
                    aiohttp.WSMsgType.CLOSE
                ):
                    assert msg.type is aiohttp.WSMsgType.TEXT  # events until the close
                assert msg.data == 1008
