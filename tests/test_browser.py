"""The bundled browser page in a real headless Chromium, with a fake microphone from a WAV file.

Chromium is driven with the DevTools protocol over its own WebSocket (aiohttp; no browser-driver
dependency). The page talks to the ``serve`` app, which talks to the emulator: the page must
send microphone audio, play the agent's audio, show the transcript and function calls, stop
playback on a barge-in and log no console errors. ``DG_UPDATE_SCREENSHOT=1`` also writes the
README's screenshot (``docs/browser.png``).

Skipped (with the reason) only when Chromium is not installed and cannot be: ``.ci/run``
installs Debian's ``chromium`` package when it is missing.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import math
import os
import shutil
import subprocess
import wave
from array import array
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from deepgram_agent.presets import telephony_settings
from deepgram_agent.web import create_app
from deepgram_agent.web._app import BROWSER
from tests.conftest import scaled

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def speech_wav(path: Path, rate: int = 48000) -> None:
    """Silence and three 'utterances' (a buzzy 150 Hz voice, syllables at 4 Hz); the third
    comes while the agent tells its long story: a barge-in."""
    timeline = [(1.0, False), (0.7, True), (3.6, False), (0.7, True), (2.4, False), (0.8, True)]
    timeline.append((6.0, False))
    samples = array("h")
    t = 0
    for seconds, loud in timeline:
        for _ in range(round(seconds * rate)):
            if loud:
                x = t / rate
                voice = sum(math.sin(2 * math.pi * 150 * k * x) / k for k in range(1, 12))
                envelope = 0.6 + 0.4 * math.sin(2 * math.pi * 4 * x)
                samples.append(round(9000 * envelope * voice / 2))
            else:
                samples.append(0)
            t += 1
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())


class DevTools:
    """A minimal Chrome DevTools Protocol client on one target's WebSocket."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.events: list[dict[str, Any]] = []
        self.changed = asyncio.Event()
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            data = msg.json()
            if "id" in data:
                fut = self.pending.pop(data["id"], None)
                if fut is not None and not fut.done():
                    fut.set_result(data)
            else:
                self.events.append(data)
                self.changed.set()

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        n = next(self.ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[n] = fut
        await self.ws.send_json({"id": n, "method": method, "params": params})
        reply = await asyncio.wait_for(fut, scaled(30))
        if "error" in reply:
            raise AssertionError(f"{method}: {reply['error']}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    async def wait_event(self, method: str) -> dict[str, Any]:
        async with asyncio.timeout(scaled(30)):
            while True:
                for event in self.events:
                    if event["method"] == method:
                        return event
                self.changed.clear()
                await self.changed.wait()

    async def evaluate(self, expression: str, timeout: float = 30) -> Any:
        """Evaluate JS in the page (a promise is awaited in the page, bounded by ``timeout``)."""
        result = await asyncio.wait_for(
            self.call(
                "Runtime.evaluate",
                expression=expression,
                awaitPromise=True,
                returnByValue=True,
                userGesture=True,
            ),
            scaled(timeout),
        )
        if "exceptionDetails" in result:
            raise AssertionError(result["exceptionDetails"])
        return result["result"].get("value")

    async def until(self, condition: str, timeout: float = 40) -> Any:
        """Wait inside the page until the JS ``condition`` is true; returns the page's stats."""
        js = (
            "new Promise((resolve) => { const check = () => { if (" + condition + ") "
            "resolve(window.dgAgent.stats); else setTimeout(check, 50); }; check(); })"
        )
        return await self.evaluate(js, timeout)

    def console_errors(self) -> list[str]:
        errors = []
        for event in self.events:
            params = event.get("params", {})
            if event["method"] == "Runtime.exceptionThrown":
                errors.append(str(params.get("exceptionDetails")))
            elif event["method"] == "Runtime.consoleAPICalled" and params.get("type") == "error":
                errors.append(str(params.get("args")))
            elif event["method"] == "Log.entryAdded" and params["entry"]["level"] == "error":
                errors.append(str(params["entry"]))
        return errors


@contextlib.asynccontextmanager
async def chromium(wav: Path, profile: Path) -> AsyncIterator[str]:
    """Start headless Chromium; yields its DevTools HTTP endpoint."""
    assert CHROMIUM is not None
    proc = await asyncio.create_subprocess_exec(
        CHROMIUM,
        "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", "--remote-debugging-port=0",
        "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}", "--autoplay-policy=no-user-gesture-required",
        "--window-size=900,700", "about:blank",
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        port_file = profile / "DevToolsActivePort"
        async with asyncio.timeout(scaled(30)):
            # Chromium writes the file when it is ready; there is nothing else to wait on.
            while not port_file.exists() or not port_file.read_text().strip():  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        port = port_file.read_text().split()[0]
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), scaled(10))
        except TimeoutError:
            proc.kill()
            await proc.wait()


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)")
async def test_browser_page_talks_to_the_agent(tmp_path: Path) -> None:
    wav = tmp_path / "speech.wav"
    speech_wav(wav)
    # No greeting: the first thing the agent says answers the first utterance.
    app = create_app(telephony_settings(), emulator=True, emulator_options={"vad_silence": 0.4})
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = next(a[1] for a in runner.addresses if isinstance(a, tuple))
        async with chromium(wav, tmp_path / "profile") as devtools, aiohttp.ClientSession() as http:
            async with http.get(f"{devtools}/json/list") as resp:
                targets = await resp.json()
            page_ws = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
            async with http.ws_connect(page_ws, max_msg_size=0) as ws:
                cdp = DevTools(ws)
                for domain in ("Runtime", "Log", "Page"):
                    await cdp.call(f"{domain}.enable")
                await cdp.call("Page.navigate", url=f"http://127.0.0.1:{port}/")
                await cdp.wait_event("Page.loadEventFired")
                await cdp.evaluate("document.getElementById('start').click(); true")

                # The page sends microphone audio and the agent answers the first utterance
                # (a function call), which the page plays and drains.
                stats = await cdp.until("window.dgAgent.stats.micChunks > 50")
                stats = await cdp.until("window.dgAgent.stats.drained >= 1")
                assert stats["audioChunks"] > 0 and stats["chunksPlayed"] > 0
                assert stats["functionLines"] >= 1
                # The second utterance starts a long story; the third interrupts it: what was
                # queued is dropped (never played) and the next reply plays again.
                stats = await cdp.until("window.dgAgent.stats.bargeIns >= 1", timeout=60)
                assert stats["flushes"] >= 1
                stats = await cdp.until("window.dgAgent.stats.drained >= 2", timeout=60)
                assert stats["chunksPlayed"] < stats["audioChunks"]
                text = await cdp.evaluate("document.getElementById('transcript').innerText")
                lines = text.splitlines()
                assert lines[:4] == [
                    "you: What's the weather in Paris?",
                    'function call get_weather({"city":"Paris"})',
                    "get_weather → sunny and 21 degrees Celsius in Paris",
                    "agent: In Paris it is sunny and 21 degrees Celsius in Paris.",
                ]
                assert "you: Tell me a long story." in lines
                story = lines.index("you: Tell me a long story.")
                barge = lines.index("(barge-in: agent audio stopped)")
                assert lines[story + 1].startswith("agent: Once upon a time")
                assert story < barge and lines[barge + 1] == "you: Hello."
                latency = await cdp.evaluate("document.getElementById('latency').textContent")
                assert latency.startswith("turn ")
                assert stats["latencies"] and all(0 < ms < 10_000 for ms in stats["latencies"])
                assert request_app_drained(app) >= 1
                shot = await cdp.call("Page.captureScreenshot", format="png")
                png = base64.b64decode(shot["data"])
                (tmp_path / "browser.png").write_bytes(png)
                if os.environ.get("DG_UPDATE_SCREENSHOT") == "1":
                    (ROOT / "docs").mkdir(exist_ok=True)
                    (ROOT / "docs" / "browser.png").write_bytes(png)
                await cdp.evaluate("document.getElementById('stop').click(); true")
                assert cdp.console_errors() == []
                cdp.reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await cdp.reader
    finally:
        await runner.cleanup()


def request_app_drained(app: web.Application) -> int:
    """How many 'drained' signals the server received from the page."""
    return app[BROWSER].drained
