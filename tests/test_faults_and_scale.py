"""Proven under faults and at scale, against the emulator through the public SDK API.

Figures (peak RSS, timing, task and thread counts) are printed (run pytest with ``-s``) and
attached to each test with ``record_property``.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any

import pytest

from deepgram_agent import AgentWebSocketEvents, DeepgramError
from deepgram_agent import messages as m
from deepgram_agent._reconnect import ReconnectPolicy
from deepgram_agent.testing import AgentEmulator, Faults, Script

from .conftest import KEY, SETTINGS, client_for, scaled

# ----------------------------------------------------------------------------- slow consumer

FLOOD_EVENTS = 20_000
FLOOD_AUDIO = 4_000  # 20 ms frames of linear16 24 kHz: 960 bytes each, ~3.8 MB
MAX_QUEUE = 64
STALL = 10.0

_SLOW_CONSUMER = textwrap.dedent(
    """
    import asyncio, json, resource, sys, time
    from deepgram_agent import DeepgramClient
    from deepgram_agent import messages as m

    def peak_mib():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    async def main(url, key, settings, events, audio, max_queue, stall):
        client = DeepgramClient(api_key=key, base_url=url)
        async with client.agent.connect(settings, max_queue=max_queue) as conn:
            before = peak_mib()
            await asyncio.sleep(stall)  # the consumer stops reading; the server floods
            stalled = conn.statistics()
            text = audio_frames = audio_bytes = other = 0
            async with asyncio.timeout(120):
                async for msg in conn:
                    if isinstance(msg, bytes):
                        audio_frames += 1
                        audio_bytes += len(msg)
                    elif isinstance(msg, m.ConversationText):
                        text += 1
                    else:
                        other += 1
                    if text == events and audio_frames == audio:
                        break
            stats = conn.statistics()
            print(json.dumps({
                "rss_before_mib": round(before, 1), "rss_after_mib": round(peak_mib(), 1),
                "text": text, "audio_frames": audio_frames, "audio_bytes": audio_bytes,
                "other": other, "high_water": stats.queue_high_water,
                "queued_during_stall": stalled.queued, "max_queue": stats.max_queue,
            }))

    url, key, settings, events, audio, max_queue, stall = json.loads(sys.argv[1])
    asyncio.run(main(url, key, settings, events, audio, max_queue, stall))
    """
)


def test_a_stalled_consumer_keeps_memory_bounded_and_loses_nothing(
    record_property: Any,
) -> None:
    faults = Faults(flood_events=FLOOD_EVENTS, flood_audio=FLOOD_AUDIO)
    # idle_timeout: the flood blocks the emulator's reader, so it cannot see KeepAlive.
    with AgentEmulator.run_in_thread(
        api_key=KEY, faults=faults, realtime_audio=False, idle_timeout=120
    ) as emu:
        args = [emu.url, KEY, SETTINGS, FLOOD_EVENTS, FLOOD_AUDIO, MAX_QUEUE, STALL]
        proc = subprocess.run(
            [sys.executable, "-c", _SLOW_CONSUMER, json.dumps(args)],
            capture_output=True,
            text=True,
            timeout=scaled(120),
            check=False,
        )
    assert proc.returncode == 0, proc.stderr
    fig = json.loads(proc.stdout.strip().splitlines()[-1])
    growth = fig["rss_after_mib"] - fig["rss_before_mib"]
    print(
        f"\nslow consumer: peak RSS {fig['rss_before_mib']} MiB before the {STALL:g} s stall, "
        f"{fig['rss_after_mib']} MiB after draining (+{growth:.1f} MiB); "
        f"{fig['text']} events + {fig['audio_frames']} audio frames ({fig['audio_bytes']} B), "
        f"queue high-water {fig['high_water']}/{fig['max_queue']}, "
        f"queued at end of stall {fig['queued_during_stall']}"
    )
    for key, value in fig.items():
        record_property(key, value)
    record_property("rss_growth_mib", round(growth, 1))
    assert (fig["text"], fig["audio_frames"]) == (FLOOD_EVENTS, FLOOD_AUDIO)
    assert fig["audio_bytes"] == FLOOD_AUDIO * 960
    assert fig["high_water"] <= MAX_QUEUE == fig["max_queue"]
    assert fig["queued_during_stall"] >= MAX_QUEUE // 2  # it really was stalled and full
    assert growth < 64


# ----------------------------------------------------------------------------- 100 sessions

SESSIONS = 100
FRAME = 640  # 20 ms of linear16 at 16 kHz (SETTINGS' input)


def pattern(i: int) -> bytes:
    """A quiet (below the VAD threshold), session-specific 20 ms frame."""
    return (i + 1).to_bytes(2, "little") * (FRAME // 2)


def frames_for(i: int) -> int:
    return 100 + i % 25  # 2.0-2.5 s; distinct totals across neighbouring sessions


async def _settle(before: set[asyncio.Task[Any]], seconds: float) -> int:
    """Wait (bounded) for the tasks started since ``before`` to end; return the task count."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + scaled(seconds)
    me = asyncio.current_task()
    while (left := asyncio.all_tasks() - before - {me}) and loop.time() < deadline:
        await asyncio.wait(left, timeout=deadline - loop.time())
    return len(asyncio.all_tasks())


@pytest.mark.anyio
async def test_hundred_concurrent_sessions_with_audio_both_ways(record_property: Any) -> None:
    threads_before = threading.active_count()
    running_before = asyncio.all_tasks()
    tasks_before = len(running_before)
    script = Script(default_reply="Your audio arrived fine.")  # ~1.4 s of agent audio
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with AgentEmulator(api_key=KEY, script=script, idle_timeout=30) as emu:
        client = client_for(emu)

        async def one(i: int) -> tuple[int, list[str], int, int]:
            async with client.agent.connect(SETTINGS, open_timeout=scaled(30)) as conn:
                await conn.inject_user_message(f"session {i} speaking")
                users: list[str] = []
                agent_audio = 0
                done = asyncio.Event()

                async def read() -> None:
                    nonlocal agent_audio
                    async for msg in conn:
                        if isinstance(msg, bytes):
                            agent_audio += len(msg)
                        elif isinstance(msg, m.ConversationText) and msg.role == "user":
                            users.append(msg.content)
                        elif isinstance(msg, m.AgentAudioDone):
                            done.set()
                            return

                reader = asyncio.create_task(read())
                frame = pattern(i)
                t0 = loop.time()
                for k in range(frames_for(i)):  # paced in real time
                    delay = t0 + k * 0.02 - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    await conn.send_audio(frame)
                async with asyncio.timeout(scaled(60)):
                    await reader
                sent = conn.statistics().audio_bytes_sent
            return i, users, agent_audio, sent

        results = await asyncio.gather(*(one(i) for i in range(SESSIONS)))
        elapsed = loop.time() - started
        assert len(emu.sessions) == SESSIONS
        by_text: dict[int, Any] = {}
        for session in emu.sessions:
            await session.wait_closed(timeout=scaled(10))
            (inject,) = session.received_json("InjectUserMessage")
            by_text[int(inject["content"].split()[1])] = session
        assert sorted(by_text) == list(range(SESSIONS))
        for i, users, agent_audio, sent in results:
            expected = frames_for(i) * FRAME
            assert users == [f"session {i} speaking"], f"session {i} got {users}"
            assert sent == expected
            session = by_text[i]
            assert session.audio_bytes_received == expected
            assert session.state.audio_frames_in == frames_for(i)
            assert agent_audio == session.state.audio_bytes_out > 0
            assert session.state.error is None
    tasks_after = await _settle(running_before, 5)
    threads_after = threading.active_count()
    print(
        f"\n{SESSIONS} concurrent sessions with audio both ways: {elapsed:.2f} s; "
        f"asyncio tasks {tasks_before} -> {tasks_after}; threads {threads_before} -> "
        f"{threads_after}"
    )
    record_property("sessions", SESSIONS)
    record_property("seconds", round(elapsed, 2))
    record_property("tasks_before_after", f"{tasks_before}/{tasks_after}")
    record_property("threads_before_after", f"{threads_before}/{threads_after}")
    assert tasks_after == tasks_before, [t.get_name() for t in asyncio.all_tasks()]
    assert threads_after == threads_before


# ----------------------------------------------------------------------------- closing


def test_blocking_close_from_another_thread_while_iterating() -> None:
    with AgentEmulator.run_in_thread(api_key=KEY) as emu:
        client = client_for(emu)
        conn = client.agent.connect_sync(SETTINGS)
        closed_in: list[float] = []

        def closer() -> None:
            t = time.monotonic()
            conn.close()
            closed_in.append(time.monotonic() - t)

        seen: list[str] = []
        thread = threading.Thread(target=closer)
        t0 = time.monotonic()
        for msg in conn:  # ends quietly once the other thread closed it
            seen.append(type(msg).__name__)
            if isinstance(msg, m.SettingsApplied):
                thread.start()
        iterated = time.monotonic() - t0
        thread.join(scaled(10))
        assert not thread.is_alive() and closed_in and closed_in[0] < scaled(3)
        assert seen == ["Welcome", "SettingsApplied"]
        assert iterated < scaled(5) and conn.closed
        conn.close()  # idempotent


def test_callback_close_from_inside_a_handler_fires_close_once() -> None:
    with AgentEmulator.run_in_thread(api_key=KEY, realtime_audio=False) as emu:
        dg = client_for(emu).agent.websocket.v("1")
        closes: list[Any] = []
        returned = threading.Event()
        took: list[float] = []

        def on_text(self: Any, event: Any) -> None:
            t = time.monotonic()
            self.close()
            took.append(time.monotonic() - t)
            returned.set()

        dg.on(AgentWebSocketEvents.ConversationText, on_text)
        dg.on(AgentWebSocketEvents.Close, lambda self, e: closes.append(e))
        assert dg.start(SETTINGS)
        dg.inject_user_message("bye")
        assert returned.wait(scaled(10))
        dg.connection.wait_closed(timeout=scaled(10))  # type: ignore[union-attr]
        dg.close()
        thread = dg._thread
        assert thread is not None
        thread.join(scaled(10))
        assert took[0] < scaled(1)
        assert len(closes) == 1, closes


@pytest.mark.anyio
async def test_close_during_connect_returns_promptly() -> None:
    async with AgentEmulator(api_key=KEY, faults=Faults(delay_settings_applied=30.0)) as emu:
        client = client_for(emu)
        loop = asyncio.get_running_loop()
        conn = client._connection(SETTINGS)
        start = asyncio.create_task(conn.start())
        session = await emu.wait_for_session(timeout=scaled(5))
        await session.wait_for_received("Settings", timeout=scaled(5))
        t = loop.time()
        async with asyncio.timeout(scaled(5)):
            await conn.close()
            (outcome,) = await asyncio.gather(start, return_exceptions=True)
        assert loop.time() - t < scaled(1)
        assert conn.closed and not conn.ready
        assert isinstance(outcome, DeepgramError), outcome  # start() fails, it does not hang


@pytest.mark.anyio
async def test_cancelling_start_during_connect_returns_promptly() -> None:
    async with AgentEmulator(api_key=KEY, faults=Faults(delay_settings_applied=30.0)) as emu:
        client = client_for(emu)
        loop = asyncio.get_running_loop()
        conn = client._connection(SETTINGS)
        start = asyncio.create_task(conn.start())
        session = await emu.wait_for_session(timeout=scaled(5))
        await session.wait_for_received("Settings", timeout=scaled(5))
        t = loop.time()
        start.cancel()
        (outcome,) = await asyncio.gather(start, return_exceptions=True)
        took = loop.time() - t
        assert isinstance(outcome, asyncio.CancelledError) and conn.closed
        assert took < scaled(1), f"cancelling start() took {took:.2f} s"


def test_callback_close_during_connect_fires_close_once() -> None:
    faults = Faults(delay_settings_applied=30.0)
    with AgentEmulator.run_in_thread(api_key=KEY, faults=faults) as emu:
        dg = client_for(emu).agent.websocket.v("1")
        closes: list[Any] = []
        dg.on(AgentWebSocketEvents.Close, lambda self, e: closes.append(e))
        outcome: list[bool] = []
        starter = threading.Thread(target=lambda: outcome.append(dg.start(SETTINGS)))
        starter.start()
        session = emu.run_sync(emu.wait_for_session(timeout=scaled(5)))
        emu.run_sync(session.wait_for_received("Settings", timeout=scaled(5)))
        t = time.monotonic()
        dg.close()
        took = time.monotonic() - t
        starter.join(scaled(10))
        assert not starter.is_alive()
        assert took < scaled(3)
        assert outcome == [False]
        thread = dg._thread
        assert thread is not None
        thread.join(scaled(10))
        assert len(closes) == 1, closes


def test_callback_and_blocking_close_during_reconnect_fire_close_once() -> None:
    faults = lambda i: Faults(drop_after=2) if i == 0 else None  # noqa: E731
    slow = ReconnectPolicy(initial_delay=30.0, jitter=0.0)
    with AgentEmulator.run_in_thread(api_key=KEY, faults=faults) as emu:
        dg = client_for(emu).agent.websocket.v("1")
        closes: list[Any] = []
        reconnecting = threading.Event()
        dg.on(AgentWebSocketEvents.Reconnecting, lambda self, e: reconnecting.set())
        dg.on(AgentWebSocketEvents.Close, lambda self, e: closes.append(e))
        assert dg.start(SETTINGS, reconnect=slow)
        assert reconnecting.wait(scaled(10))
        t = time.monotonic()
        dg.close()
        took = time.monotonic() - t
        thread = dg._thread
        assert thread is not None
        thread.join(scaled(10))
        assert took < scaled(3) and len(closes) == 1, (took, closes)

    with AgentEmulator.run_in_thread(api_key=KEY, faults=faults) as emu:
        client = client_for(emu)
        conn = client.agent.connect_sync(SETTINGS, reconnect=slow)
        kinds = []
        for msg in conn:
            kinds.append(type(msg).__name__)
            if isinstance(msg, m.Reconnecting):
                break
        t = time.monotonic()
        conn.close()
        assert time.monotonic() - t < scaled(3)
        assert list(conn) == [] and conn.closed
        assert kinds == ["Welcome", "SettingsApplied", "Reconnecting"]
        assert len(emu.sessions) == 1


# ----------------------------------------------------------------------------- odd frames

ODD = Faults(garbage_after=2, unknown_type_after=2, wrong_types_after=2, huge_frame_after=2)


def _odd_sequence(items: list[Any]) -> list[str]:
    out: list[str] = []
    for x in items:
        if isinstance(x, m.Unhandled):
            out.append(f"Unhandled:{x.message_type}:{'bad' if x.reason else 'unknown'}")
        elif isinstance(x, m.ConversationText) and len(x.content) > 1_000_000:
            out.append("ConversationText:huge")
        elif isinstance(x, m.ServerMessage) and x.raw is not None:
            out.append(f"{type(x).__name__}:repaired")  # fields of the wrong type, made to fit
        else:
            out.append(type(x).__name__)
    return out


EXPECTED_ODD = [
    "Welcome",
    "SettingsApplied",
    "Unhandled::bad",
    "Unhandled:EmulatorSurprise:unknown",
    "ConversationText:repaired",
    "ConversationText:huge",
]


def test_odd_frames_in_one_session_through_the_blocking_facade() -> None:
    with AgentEmulator.run_in_thread(api_key=KEY, realtime_audio=False, faults=ODD) as emu:
        client = client_for(emu)
        with client.agent.connect_sync(SETTINGS) as conn:
            got: list[Any] = []
            for msg in conn:
                got.append(msg)
                if len(got) == len(EXPECTED_ODD):
                    break
            conn.inject_user_message("still there?")
            for msg in conn:
                got.append(msg)
                if isinstance(msg, m.AgentAudioDone):
                    break
            assert _odd_sequence(got)[: len(EXPECTED_ODD)] == EXPECTED_ODD
            rest = got[len(EXPECTED_ODD) :]
            assert any(isinstance(x, m.ConversationText) and x.role == "user" for x in rest)
            assert any(isinstance(x, bytes) for x in rest)
            bad = [x for x in got if isinstance(x, m.Unhandled) and x.reason]
            assert all(x.reason for x in bad) and len(bad) == 1
            assert conn.statistics().unhandled_received == sum(
                isinstance(x, m.Unhandled) for x in got
            )


def test_odd_frames_in_one_session_through_the_callback_api() -> None:
    with AgentEmulator.run_in_thread(api_key=KEY, realtime_audio=False, faults=ODD) as emu:
        dg = client_for(emu).agent.websocket.v("1")
        got: list[Any] = []
        done = threading.Event()
        for name in ("Welcome", "SettingsApplied", "Unhandled", "ConversationText"):
            dg.on(name, lambda self, e: got.append(e))
        dg.on(AgentWebSocketEvents.AgentAudioDone, lambda self, e: done.set())
        assert dg.start(SETTINGS)
        assert dg.inject_user_message("still there?")
        assert done.wait(scaled(15))
        dg.close()
        seq = _odd_sequence(got)
        assert seq[: len(EXPECTED_ODD)] == EXPECTED_ODD
        assert "ConversationText" in seq[len(EXPECTED_ODD) :]
        reasons = [x.reason for x in got if isinstance(x, m.Unhandled) and x.reason]
        assert len(reasons) == 1 and "JSON" in reasons[0]
        repaired = [x for x in got if isinstance(x, m.ConversationText) and x.raw]
        assert repaired and any("role" in r for r in repaired[0].wire_.repairs)  # type: ignore[union-attr]
