"""Phone bridge figures: time added per audio frame at N concurrent calls, memory per call.

    python benchmarks/phone_bridge.py [--calls 20] [--seconds 8]

1. Latency (one process: emulator, bridge and fake callers on one event loop, the pessimistic
   case): for every agent audio frame, the time from the bridge receiving it from the agent
   session to the fake caller receiving the ``media`` frame (the bridge's work, the extra
   WebSocket hop and the event loop's queueing under the load of every call), and the
   bridge's own processing time per frame in both directions (``CallStatistics``).
2. Memory: ``deepgram-agent serve`` in its own process, pointed at the emulator; its resident
   memory with N calls in progress minus its memory after one call, divided by N.

Calls run at real-time pace with speech, silence and a barge-in, like the tests.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from aiohttp import web

from deepgram_agent import DeepgramClient
from deepgram_agent.audio import BargeIn, BargeInAction
from deepgram_agent.presets import telephony_settings
from deepgram_agent.telephony import PhoneCall, TwilioBridge
from deepgram_agent.testing import AgentEmulator, FakeCall, Rule, Script

REPLY = "Thanks for calling. " * 12


def script() -> Script:
    return Script(rules=[Rule(match="", reply=REPLY)], default_transcript="hello there")


async def caller(url: str, seconds: float, **kw: Any) -> FakeCall:
    async with FakeCall(url, timeout=60, **kw) as call:
        await call.wait_for("media")
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        n = 0
        while loop.time() < end:
            n = len(call.received)
            call.say(0.4)
            await call.wait_for("media", 5, after=n)
            call.say(0.3)  # barge in
            await call.wait_for("clear", after=n)
        await call.hang_up()
    return call


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1)))]


async def latency(calls: int, seconds: float) -> None:
    arrived: dict[str, list[float]] = defaultdict(list)
    mirrors: dict[str, BargeIn] = defaultdict(BargeIn)
    finished: list[PhoneCall] = []

    def on_event(call: PhoneCall, event: Any) -> None:
        # The same rules on the same events in the same order tell which frames the bridge
        # sends on (the others are dropped after a barge-in): those pair one to one with the
        # caller's media frames.
        assert call.info is not None
        action = mirrors[call.info.call_id].handle(event)
        if isinstance(event, bytes) and action is not BargeInAction.DROP:
            arrived[call.info.call_id].append(time.monotonic())

    async with AgentEmulator(script=script(), vad_silence=0.3) as emu:
        client = DeepgramClient(api_key="k", base_url=emu.url)
        bridge = TwilioBridge(
            client,
            telephony_settings({"agent": {"greeting": "Hello!"}}),
            on_event=on_event,
            on_end=finished.append,
        )
        app = web.Application()
        app.router.add_get("/twilio", bridge.aiohttp_handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        port = runner.addresses[0][1]
        t0 = time.perf_counter()
        done = await asyncio.gather(
            *(caller(f"ws://127.0.0.1:{port}/twilio", seconds) for _ in range(calls))
        )
        wall = time.perf_counter() - t0
        await runner.cleanup()
    hops: list[float] = []
    for call in done:
        got = [r.at for r in call.received if r.kind == "media"]
        sent = arrived[call.call_id]
        assert len(got) <= len(sent)
        hops += [b - a for a, b in zip(sent, got, strict=False)]
    inside = [s for c in finished for s in c.stats.frame_seconds]
    frames = sum(c.stats.agent_frames + c.stats.caller_frames for c in finished)
    print(f"{calls} concurrent calls, {wall:.1f} s, {frames} audio frames through the bridge")
    print(
        f"  agent frame -> caller (bridge + one WebSocket hop + loop queueing): "
        f"median {statistics.median(hops) * 1000:.2f} ms, p99 {pct(hops, 0.99) * 1000:.2f} ms "
        f"({len(hops)} frames)"
    )
    print(
        f"  bridge processing per frame (both directions): "
        f"median {statistics.median(inside) * 1e6:.0f} us, p99 {pct(inside, 0.99) * 1e6:.0f} us"
    )


def rss_kib(pid: int) -> int:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", text).group(1))  # type: ignore[union-attr]


async def memory(calls: int, seconds: float) -> None:
    async with AgentEmulator(script=script(), vad_silence=0.3) as emu:
        env = dict(os.environ, DEEPGRAM_API_KEY="k", DEEPGRAM_AGENT_URL=emu.url)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "deepgram_agent", "serve", "--port", "0",
            stdout=asyncio.subprocess.PIPE, env=env,
        )  # fmt: skip
        assert proc.stdout is not None
        banner = (await proc.stdout.readline()).decode()
        host = re.findall(r"http://(127\.0\.0\.1:\d+)", banner)[0]
        url = f"ws://{host}/twilio"
        await caller(url, 1.0)  # warm up: imports, tables, pools
        base = rss_kib(proc.pid)
        peak = 0
        tasks = [asyncio.create_task(caller(url, seconds)) for _ in range(calls)]
        while not all(t.done() for t in tasks):
            await asyncio.sleep(0.25)
            peak = max(peak, rss_kib(proc.pid))
        await asyncio.gather(*tasks)
        proc.terminate()
        await proc.wait()
    print(
        f"  memory of the serve process: {base / 1024:.1f} MiB after one call, "
        f"{peak / 1024:.1f} MiB at {calls} calls: {(peak - base) / calls:.0f} KiB per call"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()
    asyncio.run(latency(1, args.seconds))
    asyncio.run(latency(args.calls, args.seconds))
    asyncio.run(memory(args.calls, args.seconds))


if __name__ == "__main__":
    main()
