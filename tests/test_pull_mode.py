"""``async for`` reads the socket itself while it keeps iterating (no hop through the reader).

The reader task hands the socket to a waiting ``async for`` consumer and takes it back when the
consumer stops asking (or the socket ends). These tests pin what must not change across the
hand-overs: order, no loss, hooks that run even when nobody iterates, prompt close, cancel
safety, and one reader per connection.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from deepgram_agent import ConcurrencyError, DeepgramTimeoutError
from deepgram_agent import messages as m
from deepgram_agent.testing import AgentEmulator, Faults

from .conftest import KEY, SETTINGS, client_for, into_pull_mode, of, scaled, until


def assistant_text(msg: Any) -> bool:
    return isinstance(msg, m.ConversationText) and msg.role == "assistant"


@pytest.mark.anyio
async def test_a_flood_arrives_complete_and_in_order_without_filling_the_queue() -> None:
    faults = Faults(flood_events=3000, flood_audio=3000)
    async with AgentEmulator(api_key=KEY, faults=faults) as emu:
        async with client_for(emu).agent.connect(SETTINGS) as conn:
            texts: list[str] = []
            audio = 0
            async with asyncio.timeout(scaled(30)):
                async for msg in conn:
                    if isinstance(msg, bytes):
                        audio += 1
                    elif isinstance(msg, m.ConversationText):
                        texts.append(msg.content)
                    if audio == 3000:
                        break
            assert texts == [f"Flood event {i}." for i in range(3000)]
            stats = conn.statistics()
            assert stats.messages_received == 3002  # + Welcome, SettingsApplied
            assert stats.audio_frames_received == 3000
            # The flood starts before the loop does, so the reader queued the first part and
            # the loop then took the socket over: both paths, one order.
            assert stats.queue_high_water > 1
            assert conn.reading_directly


@pytest.mark.anyio
async def test_hooks_added_mid_flood_see_every_later_frame_on_the_direct_path() -> None:
    # The direct path decodes and counts a frame itself while nothing watches frames as a
    # whole (AgentProtocol.plain); a hook added mid-stream must switch it back at once.
    faults = Faults(flood_events=2000, flood_audio=2000)
    async with AgentEmulator(api_key=KEY, faults=faults) as emu:
        async with client_for(emu).agent.connect(SETTINGS) as conn:
            typed: list[str] = []
            every: list[Any] = []
            seen: list[Any] = []
            added_at = 0
            async with asyncio.timeout(scaled(30)):
                async for msg in conn:
                    if isinstance(msg, (bytes, m.ConversationText)):
                        seen.append(msg)
                    # once the loop reads the socket itself (the queue is empty then)
                    if not added_at and len(seen) >= 200 and conn.reading_directly:
                        added_at = len(seen)
                        conn.add_hook(m.ConversationText, lambda t: typed.append(t.content))
                        conn.add_hook(None, every.append)
                    if len(seen) == 4000:
                        break
            assert 200 <= added_at < 4000
            later = seen[added_at:]
            assert typed == [x.content for x in later if isinstance(x, m.ConversationText)]
            assert [x for x in every if isinstance(x, (bytes, m.ConversationText))] == later
            stats = conn.statistics()
            assert stats.messages_received == 2002  # + Welcome, SettingsApplied
            assert stats.audio_frames_received == 2000


@pytest.mark.anyio
async def test_hooks_run_while_the_loop_body_waits_and_nothing_is_lost() -> None:
    async with AgentEmulator(api_key=KEY, realtime_audio=False) as emu:
        async with client_for(emu).agent.connect(SETTINGS) as conn:
            hooked: list[Any] = []
            answered = asyncio.Event()

            def hook(msg: Any) -> None:
                hooked.append(msg)
                if isinstance(msg, m.AgentAudioDone):
                    answered.set()

            conn.add_hook(None, hook)
            seen: list[Any] = []
            await conn.inject_user_message("first")
            await until(conn, lambda x: isinstance(x, m.AgentAudioDone), seen)
            assert conn.reading_directly  # the loop reads the socket itself now
            hooked.clear()
            # The loop body now awaits something else; nobody asks for messages, yet the
            # hooks (function tools, history) must still see the next turn as it arrives.
            await conn.inject_user_message("second")
            async with asyncio.timeout(scaled(10)):
                await answered.wait()
            # Iterating again yields that whole turn, in the order the hooks saw it.
            later: list[Any] = []
            await until(conn, lambda x: isinstance(x, m.AgentAudioDone), later)
            assert later == hooked
            contents = [x.content for x in later if isinstance(x, m.ConversationText)]
            assert contents[0] == "second"


@pytest.mark.anyio
async def test_close_from_the_loop_body_is_prompt() -> None:
    async with AgentEmulator(api_key=KEY, realtime_audio=False) as emu:
        conn = await client_for(emu).agent.connect(SETTINGS)
        await conn.inject_user_message("hello")
        elapsed = None
        async with asyncio.timeout(scaled(10)):
            async for msg in conn:
                if assistant_text(msg):
                    assert conn.reading_directly
                    started = time.perf_counter()
                    await conn.close()
                    elapsed = time.perf_counter() - started
        assert conn.closed
        assert elapsed is not None
        # Closing waits for the reader task; a reader left parked would cost the 0.5 s
        # fallback before it is cancelled. A local close handshake takes milliseconds.
        assert elapsed < 0.45


@pytest.mark.anyio
async def test_recv_timeouts_while_reading_the_socket_lose_nothing() -> None:
    async with AgentEmulator(api_key=KEY, realtime_audio=False) as emu:
        async with client_for(emu).agent.connect(SETTINGS) as conn:
            seen: list[Any] = []
            await conn.inject_user_message("one")
            await until(conn, lambda x: isinstance(x, m.AgentAudioDone), seen)
            assert conn.reading_directly
            for _ in range(5):  # cancelled while waiting on the quiet socket
                with pytest.raises(DeepgramTimeoutError):
                    await conn.recv(timeout=0.02)
            await conn.inject_user_message("two")
            later: list[Any] = []
            await until(conn, lambda x: isinstance(x, m.AgentAudioDone), later)
            texts = [(x.role, x.content) for x in later if isinstance(x, m.ConversationText)]
            assert texts[0] == ("user", "two")
            assert any(role == "assistant" for role, _ in texts)
            assert any(isinstance(x, bytes) for x in later)
        # aiohttp takes a cancelled receive() for an abnormal close; ours was a normal one.
        assert conn.close_code == 1000


@pytest.mark.anyio
async def test_a_second_reader_while_the_first_reads_the_socket_is_refused() -> None:
    async with AgentEmulator(api_key=KEY, realtime_audio=False) as emu:
        async with client_for(emu).agent.connect(SETTINGS) as conn:
            seen: list[Any] = []
            await conn.inject_user_message("one")
            await until(conn, lambda x: isinstance(x, m.AgentAudioDone), seen)
            assert conn.reading_directly
            first = asyncio.create_task(conn.recv())
            await asyncio.sleep(0)  # one loop turn: the first recv() is now waiting
            with pytest.raises(ConcurrencyError):
                await conn.recv()
            first.cancel()
            with pytest.raises(asyncio.CancelledError):
                await first
            # The first reader's cancellation lost nothing: the stream goes on.
            await conn.inject_user_message("two")
            later: list[Any] = []
            await until(conn, lambda x: isinstance(x, m.AgentAudioDone), later)
            assert isinstance(later[0], m.ConversationText)
            assert later[0].content == "two"


@pytest.mark.anyio
async def test_an_async_for_while_another_task_waits_in_recv_is_refused() -> None:
    # recv() claims nothing, so the second reader is caught by the reading generator itself:
    # a ConcurrencyError that says what to do, not asyncio's "already running".
    async with AgentEmulator(api_key=KEY, realtime_audio=False) as emu:
        async with client_for(emu).agent.connect(SETTINGS) as conn:
            await into_pull_mode(conn)
            first = asyncio.create_task(conn.recv())
            await asyncio.sleep(0)  # one loop turn: the first recv() is now waiting

            async def second_loop() -> None:
                async for _ in conn:
                    pass

            with pytest.raises(ConcurrencyError, match="one reader"):
                await second_loop()
            await conn.inject_user_message("two")
            async with asyncio.timeout(scaled(10)):
                got = await first
            assert isinstance(got, m.ConversationText)
            assert got.content == "two"
            # The refused loop released its claim: this task may iterate now.
            later: list[Any] = []
            await until(conn, of(m.AgentAudioDone), later)
            assert later


@pytest.mark.anyio
async def test_leaving_the_loop_then_iterating_again_keeps_order() -> None:
    faults = Faults(flood_events=500)
    async with AgentEmulator(api_key=KEY, faults=faults) as emu:
        async with client_for(emu).agent.connect(SETTINGS) as conn:
            texts: list[str] = []
            async with asyncio.timeout(scaled(20)):
                while len(texts) < 500:
                    async for msg in conn:
                        if isinstance(msg, m.ConversationText):
                            texts.append(msg.content)
                            if len(texts) % 50 == 0:
                                break  # leave the loop, let the socket go back, come again
                    # The scenario: away longer than the watch period (0.05 s), so the reader
                    # task takes the socket back before the loop comes again.
                    await asyncio.sleep(0.12)
            assert texts == [f"Flood event {i}." for i in range(500)]


@pytest.mark.anyio
async def test_a_typed_hook_added_while_reading_directly_sees_every_later_message() -> None:
    # The first typed hook gives the connection its own rules table: the direct path must
    # look it up per frame, not keep the table it started with.
    async with AgentEmulator(api_key=KEY, realtime_audio=False) as emu:
        async with client_for(emu).agent.connect(SETTINGS) as conn:
            await into_pull_mode(conn)
            hooked: list[str] = []
            conn.add_hook(m.ConversationText, lambda t: hooked.append(t.content))
            seen: list[Any] = []
            await conn.inject_user_message("two")
            await until(conn, of(m.AgentAudioDone), seen)
            got = [x.content for x in seen if isinstance(x, m.ConversationText)]
            assert got[0] == "two"
            assert hooked == got


@pytest.mark.anyio
async def test_an_iterator_kept_across_another_loop_survives_a_timed_out_step() -> None:
    # Two iterators of one connection, the older one stepped last: a step cancelled inside
    # receive() must leave every live iterator working, not only the newest.
    async with AgentEmulator(api_key=KEY, realtime_audio=False) as emu:
        async with client_for(emu).agent.connect(SETTINGS) as conn:
            held = aiter(conn)
            await into_pull_mode(conn)  # another async for, then gone
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(anext(held), 0.01)
            await conn.inject_user_message("two")
            async with asyncio.timeout(scaled(10)):
                msg = await anext(held)
            assert isinstance(msg, m.ConversationText)
            assert msg.content == "two"


@pytest.mark.anyio
async def test_one_iterator_stepped_from_two_tasks_at_once_refuses_the_second_step() -> None:
    # Sharing one iterator object between tasks is refused at the second concurrent step
    # (asyncio's "already running"; a ConcurrencyError would cost every message a Python
    # frame); the first step is not disturbed and nothing is lost.
    async with AgentEmulator(api_key=KEY, realtime_audio=False) as emu:
        async with client_for(emu).agent.connect(SETTINGS) as conn:
            it = aiter(conn)
            await conn.inject_user_message("one")
            while not isinstance(await anext(it), m.AgentAudioDone):
                pass
            first = asyncio.ensure_future(anext(it))
            await asyncio.sleep(0)  # the first step now waits in receive()
            with pytest.raises(RuntimeError, match="already running"):
                await anext(it)
            await conn.inject_user_message("two")
            async with asyncio.timeout(scaled(10)):
                got = await first
            assert isinstance(got, m.ConversationText)
            assert got.content == "two"
