"""Pull mode (``async for`` reading the socket itself): the interleavings around hand-overs.

Each test pins one thing the hand-over between the reader task and the consumer must not
break: hooks that must not wait for a slow loop body, close codes under cancelled receives,
asyncio.run() ending mid-read, closes and drops from other tasks, and a random mix of reads,
timeouts and pauses that must lose and reorder nothing.
"""

from __future__ import annotations

import asyncio
import copy
import gc
import random
import weakref
from typing import Any

import pytest

from deepgram_agent import ConnectionClosedError, DeepgramTimeoutError
from deepgram_agent import messages as m
from deepgram_agent._reconnect import ReconnectPolicy
from deepgram_agent.testing import AgentEmulator, Faults, Rule, Script, ToolCall
from deepgram_agent.tools import Tools

from .conftest import KEY, SETTINGS, client_for, into_pull_mode, of, scaled, until

FAST = ReconnectPolicy(initial_delay=0.01, max_delay=0.05, jitter=0.0, max_attempts=4)


async def reading_in_pull_mode(conn: Any, seen: list[Any]) -> asyncio.Task[None]:
    """Start a task that runs one turn and keeps iterating; return it once it waits inside
    ``receive()`` with the socket (pull mode). What it reads after the turn goes to ``seen``.

    The turn and the wait that follows are one ``async for`` in one task: no loop turn passes
    between the turn's last message and the next ``receive()``, so the pull watch (which takes
    the socket back from a consumer found anywhere else) cannot slip in between. (Starting the
    task after a turn read by another task loses that race now and then on a loaded machine:
    the socket goes back to the reader task and the new task waits on the queue instead.)
    """
    turned = asyncio.Event()

    async def consume() -> None:
        await conn.inject_user_message("warm up")
        async for msg in conn:
            if turned.is_set():
                seen.append(msg)
            elif isinstance(msg, m.AgentAudioDone):
                turned.set()

    task = asyncio.create_task(consume())
    waiting = asyncio.create_task(turned.wait())
    await asyncio.wait({task, waiting}, timeout=scaled(15), return_when=asyncio.FIRST_COMPLETED)
    waiting.cancel()
    assert turned.is_set(), f"the warm-up turn did not end: {task}"
    assert conn._rx.consumer_waiting()  # suspended in receive() with the socket
    return task


def test_pull_mode_does_not_keep_the_event_loop_alive() -> None:
    """Every asyncio.run() that used pull mode must not leak its loop (and connections).

    ``_pull_watches`` is a WeakKeyDictionary keyed by the loop, but its value (_PullWatch)
    holds the loop strongly, so the entry never goes away.
    """
    loops: list[weakref.ref[asyncio.AbstractEventLoop]] = []
    conns: list[weakref.ref[Any]] = []
    with AgentEmulator.run_in_thread(api_key=KEY, realtime_audio=False) as emu:

        async def main() -> None:
            loops.append(weakref.ref(asyncio.get_running_loop()))
            async with client_for(emu).agent.connect(SETTINGS) as conn:
                conns.append(weakref.ref(conn))
                await into_pull_mode(conn)

        asyncio.run(main())
    gc.collect()
    assert conns[0]() is None, "the connection outlived its event loop"
    assert loops[0]() is None, "the event loop outlived asyncio.run()"


@pytest.mark.anyio
async def test_a_tool_call_behind_audio_starts_before_a_slow_consumer_reaches_it() -> None:
    """Hooks (function tools) run as frames arrive, not at the pace of the loop body.

    A loop body that plays each audio chunk (here 4 ms per item) keeps making progress, so
    _PullWatch never gives the socket back: the FunctionCallRequest waits behind every audio
    frame before it until the loop body reaches it, and the tool starts that late.
    """
    long_reply = "This is a rather long reply that keeps the agent talking for a good while."
    script = Script(
        rules=[
            Rule(match="long", reply=long_reply),
            Rule(match="tool", tool_calls=[ToolCall(name="get_time", id="call_t")], reply="ok"),
        ],
        end_of_thought=False,
    )
    settings = copy.deepcopy(SETTINGS)
    del settings["agent"]["think"]["functions"]
    tools = Tools()
    consumed: list[Any] = []
    started_at: list[int] = []

    @tools.tool
    async def get_time() -> str:
        """Current time."""
        started_at.append(len(consumed))
        return "10:30"

    async with AgentEmulator(api_key=KEY, realtime_audio=False, script=script) as emu:
        async with client_for(emu).agent.connect(settings, tools=tools) as conn:
            await into_pull_mode(conn)
            await conn.inject_user_message("long")
            await until(conn, of(bytes), consumed)  # the agent is talking
            await conn.inject_user_message("tool")
            request_at = None
            async with asyncio.timeout(scaled(20)):
                async for msg in conn:
                    consumed.append(msg)
                    if isinstance(msg, m.FunctionCallRequest):
                        request_at = len(consumed)
                    if isinstance(msg, m.AgentAudioDone) and request_at is not None:
                        break
                    await asyncio.sleep(0.004)  # e.g. playing the chunk
            assert request_at is not None and started_at
            behind = sum(1 for x in consumed[: request_at - 1] if isinstance(x, bytes))
            assert behind > 100  # the request really was behind a lot of audio
            # The tool started well before the loop body got to its request (the reader saw
            # it long before); in pull mode it starts only when the loop body gets there.
            assert started_at[0] < request_at - 50, (started_at[0], request_at)


@pytest.mark.anyio
async def test_server_close_while_recv_timeouts_keep_cancelling_keeps_its_code() -> None:
    """A recv(timeout) cancelled on the socket must not turn the server's close into 1006."""
    async with AgentEmulator(api_key=KEY, realtime_audio=False) as emu:
        conn = await client_for(emu).agent.connect(SETTINGS)
        try:
            await into_pull_mode(conn)
            session = await emu.wait_for_session()
            closer = asyncio.create_task(session.close(code=4001, reason="bye"))
            with pytest.raises(ConnectionClosedError) as info:
                async with asyncio.timeout(scaled(10)):
                    while True:
                        try:
                            await conn.recv(timeout=0.0005)
                        except DeepgramTimeoutError:
                            pass
            await closer
            assert info.value.code == 4001
            assert conn.close_code == 4001
            assert conn.close_reason == "bye"
        finally:
            await conn.close()


def test_asyncio_run_ending_while_a_task_reads_the_socket_closes_normally() -> None:
    """asyncio.run() ending cancels the consumer (inside receive) and the parked reader.

    The socket must still be closed with a proper close handshake (1000), not dropped.
    """
    with AgentEmulator.run_in_thread(api_key=KEY, realtime_audio=False) as emu:
        state: dict[str, Any] = {}

        async def main() -> None:
            conn = await client_for(emu).agent.connect(SETTINGS)
            state["conn"] = conn
            state["task"] = await reading_in_pull_mode(conn, [])
            # main returns with the connection open and a task inside receive()

        asyncio.run(main())
        session = emu.run_sync(emu.wait_for_session())
        code = emu.run_sync(session.wait_closed(scaled(5)))
        assert code == 1000
        assert state["conn"]._rx.task.done()


@pytest.mark.anyio
async def test_close_from_another_task_while_the_loop_waits_on_the_socket() -> None:
    async with AgentEmulator(api_key=KEY, realtime_audio=False) as emu:
        conn = await client_for(emu).agent.connect(SETTINGS)
        seen: list[Any] = []
        task = await reading_in_pull_mode(conn, seen)
        # close() may take up to close_timeout (5 s) on a slow server; bound it above that.
        async with asyncio.timeout(scaled(15)):
            await conn.close()
            await task  # ends quietly
        assert conn.close_code == 1000
        session = await emu.wait_for_session()
        assert await session.wait_closed(scaled(5)) == 1000
        assert seen == []


@pytest.mark.anyio
async def test_a_drop_while_the_loop_body_waits_reconnects_and_keeps_order() -> None:
    faults = lambda i: Faults(drop_after=80) if i == 0 else None  # noqa: E731
    async with AgentEmulator(api_key=KEY, realtime_audio=False, faults=faults) as emu:
        async with client_for(emu).agent.connect(SETTINGS, reconnect=FAST) as conn:
            opened = asyncio.Event()
            conn.add_open_hook(opened.set)  # only sockets opened from now on: the new one
            await into_pull_mode(conn)
            # The loop body now waits elsewhere; the session drops meanwhile.
            await conn.inject_user_message("second")
            async with asyncio.timeout(scaled(10)):
                await opened.wait()
            later: list[Any] = []
            await until(conn, of(m.Reconnected), later)
            kinds = [type(x) for x in later]
            assert kinds.count(m.Reconnecting) == 1
            assert kinds.index(m.Reconnecting) < kinds.index(m.Reconnected)
            await conn.inject_user_message("third")
            await until(conn, of(m.AgentAudioDone), later)
            users = [x.content for x in later if isinstance(x, m.ConversationText)]
            assert "third" in users


@pytest.mark.anyio
async def test_hand_overs_timeouts_and_pauses_mixed_lose_and_reorder_nothing() -> None:
    """Every way of leaving and re-entering the socket, interleaved with a live stream.

    The hooks see every frame once, in arrival order, whoever reads the socket; the consumer
    must get exactly that sequence.
    """
    rng = random.Random(7)
    async with AgentEmulator(api_key=KEY, realtime_audio=False) as emu:
        async with client_for(emu).agent.connect(SETTINGS) as conn:
            hooked: list[Any] = []
            conn.add_hook(None, hooked.append)
            queued_before = conn.statistics().queued  # Welcome, SettingsApplied: not hooked here
            consumed: list[Any] = []
            pulled = 0
            turns = 6
            await conn.inject_user_message("turn 0")
            async with asyncio.timeout(scaled(30)):
                while sum(isinstance(x, m.AgentAudioDone) for x in consumed) < turns:
                    pulled += conn.reading_directly
                    step = rng.random()
                    if step < 0.3:
                        try:
                            msg = await conn.recv(timeout=rng.choice([0, 0.0001, 0.001]))
                        except DeepgramTimeoutError:
                            continue
                    elif step < 0.32:
                        await asyncio.sleep(0.06)  # long enough for _PullWatch to take it back
                        continue
                    elif step < 0.35:
                        task = asyncio.create_task(conn.recv())
                        await asyncio.sleep(0)  # the scenario: a recv() cancelled as it starts
                        task.cancel()
                        try:
                            msg = await task
                        except asyncio.CancelledError:
                            continue
                    else:
                        msg = await conn.__anext__()
                    consumed.append(msg)
                    if isinstance(msg, m.AgentAudioDone):
                        done = sum(isinstance(x, m.AgentAudioDone) for x in consumed)
                        if done < turns:
                            await conn.inject_user_message(f"turn {done}")
            assert consumed[queued_before:] == hooked[: len(consumed) - queued_before]
            users = [x.content for x in consumed if isinstance(x, m.ConversationText)]
            assert [u for u in users if u.startswith("turn")] == [f"turn {i}" for i in range(6)]
            assert sum(isinstance(x, bytes) for x in consumed) > 200
            assert pulled > 50  # the loop really did read the socket itself, often


@pytest.mark.anyio
async def test_one_iterator_kept_across_timed_out_steps_loses_and_reorders_nothing() -> None:
    """``anext(it)`` under a timeout on one iterator: a step cancelled inside ``receive()``
    ends that step only; the same iterator goes on from where it was."""
    async with AgentEmulator(api_key=KEY, realtime_audio=False) as emu:
        async with client_for(emu).agent.connect(SETTINGS) as conn:
            hooked: list[Any] = []
            conn.add_hook(None, hooked.append)
            held = aiter(conn)
            consumed: list[Any] = []
            async with asyncio.timeout(scaled(30)):
                for turn in range(4):
                    await conn.inject_user_message(f"turn {turn}")
                    while True:
                        msg = await anext(held)
                        consumed.append(msg)
                        if isinstance(msg, m.AgentAudioDone):
                            break
                    # The agent is done: nothing comes, so this step times out in receive()
                    # (the turn was read in pull mode: the loop above never left the socket).
                    assert conn.reading_directly
                    with pytest.raises(TimeoutError):
                        await asyncio.wait_for(anext(held), 0.01)
            assert consumed[2:] == hooked  # everything after Welcome, SettingsApplied, in order
            users = [x.content for x in consumed if isinstance(x, m.ConversationText)]
            assert [u for u in users if u.startswith("turn")] == [f"turn {i}" for i in range(4)]
