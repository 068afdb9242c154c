"""Blocking ``send_audio`` queues the frame for the loop thread instead of waiting for the write
(deepgram_agent/_outbox.py): order kept, bounded, failures reported, one stuck server stalls
only its own connection. Real sockets: the emulator for order and delivery, small hostile
servers for the failures."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import WSMsgType

from deepgram_agent import ConnectionClosed, DeepgramTimeoutError
from deepgram_agent import messages as m
from deepgram_agent._outbox import LIMIT
from deepgram_agent.testing import AgentEmulator

from .conftest import KEY, SETTINGS, client_for, scaled
from .hostile import SETTINGS as HOSTILE_SETTINGS
from .hostile import HostileServer, Peer


@pytest.fixture
def emu() -> Iterator[AgentEmulator]:
    with AgentEmulator.run_in_thread(api_key=KEY, realtime_audio=False) as emulator:
        yield emulator


def _layout(received: list[Any]) -> list[Any]:
    """The session's frames after Settings: audio runs as byte totals, JSON as its type."""
    out: list[Any] = []
    for item in received[1:]:
        if isinstance(item, int):
            if out and isinstance(out[-1], int):
                out[-1] += item
            else:
                out.append(item)
        else:
            out.append(item.get("type"))
    return out


def _until(predicate: Any, seconds: float = 10.0) -> bool:
    """Poll a condition of the SDK's internal send state (no event exists for it), bounded;
    return it."""
    deadline = time.monotonic() + scaled(seconds)
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.01)
    return bool(predicate())


def _flood_in_thread(conn: Any, size: int) -> tuple[threading.Thread, list[str]]:
    """Send ``size``-byte chunks from a daemon thread until a send raises; the list then holds
    that exception's type name."""
    ended: list[str] = []

    def flood() -> None:
        try:
            while True:
                conn.send_audio(b"\x00" * size)
        except BaseException as exc:
            ended.append(type(exc).__name__)

    thread = threading.Thread(target=flood, daemon=True)
    thread.start()
    return thread, ended


def test_audio_and_the_messages_after_it_keep_their_order(emu: AgentEmulator) -> None:
    with client_for(emu).agent.connect_sync(SETTINGS, keepalive_interval=None) as conn:
        for _ in range(50):
            conn.send_audio(b"\x01\x00" * 160)
        conn.inject_user_message("after fifty frames")
        for _ in range(10):
            conn.send_audio(b"\x02\x00" * 160)
        conn.keep_alive()
        session = emu.sessions[-1]
        emu.call(session.wait_for_received("KeepAlive", timeout=scaled(5)))
        assert _layout(session.received) == [16_000, "InjectUserMessage", 3_200, "KeepAlive"]


def test_close_writes_the_queued_audio_first(emu: AgentEmulator) -> None:
    conn = client_for(emu).agent.connect_sync(SETTINGS, keepalive_interval=None)
    for _ in range(100):
        conn.send_audio(b"\x03\x00" * 160)
    conn.close()
    session = emu.sessions[-1]
    emu.call(session.wait_closed(scaled(5)))
    assert session.audio_bytes_received == 100 * 320
    assert conn.statistics().audio_bytes_sent == 100 * 320


def test_flush_waits_for_the_writes_and_statistics_count_them(emu: AgentEmulator) -> None:
    with client_for(emu).agent.connect_sync(SETTINGS, keepalive_interval=None) as conn:
        for _ in range(20):
            conn.send_audio(b"\x04\x00" * 160)
        conn.flush(timeout=scaled(5))
        assert conn._outbox.inflight == 0
        assert conn.statistics().audio_frames_sent == 20
        assert conn.statistics().audio_bytes_sent == 20 * 320


def test_frames_from_many_threads_all_arrive(emu: AgentEmulator) -> None:
    with client_for(emu).agent.connect_sync(SETTINGS, keepalive_interval=None) as conn:

        def send(k: int) -> None:
            for _ in range(200):
                conn.send_audio(bytes([k]) * 320)

        threads = [threading.Thread(target=send, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(scaled(30))
        conn.flush(timeout=scaled(10))
        session = emu.sessions[-1]
        assert emu.call(session.wait_for_audio(4 * 200 * 320, timeout=scaled(10))) == 256_000


async def _stop_reading(peer: Peer) -> None:
    await peer.ready()
    peer.stop_reading()
    await peer.hold()


async def _read_everything(peer: Peer) -> None:
    await peer.ready()
    await peer.drain()


def test_a_stalled_server_stalls_only_its_own_connection() -> None:
    # Both connections share the SDK's one loop thread and its one send pump: the stalled
    # one fills its queue and its sender waits (bounded), the other's frames keep flowing.
    with HostileServer(_stop_reading) as stalled, HostileServer(_read_everything) as healthy:
        stuck = stalled.client().agent.connect_sync(
            HOSTILE_SETTINGS, send_timeout=None, keepalive_interval=None, close_timeout=0.5
        )
        live = healthy.client().agent.connect_sync(HOSTILE_SETTINGS, keepalive_interval=None)
        try:
            flooder, outcome = _flood_in_thread(stuck, 16_000)
            # the stalled connection's queue fills up to its bound, and no further
            assert _until(lambda: stuck._outbox.pending >= LIMIT - 16_000)
            started = time.monotonic()
            for _ in range(100):
                live.send_audio(b"\x05\x00" * 160)
            live.flush(timeout=scaled(5))
            took = time.monotonic() - started
            healthy.wait(lambda: healthy.peers[0].audio_bytes == 100 * 320, what="the audio")
            assert took < scaled(5)
            assert stuck._outbox.pending <= LIMIT
            flooder.join(scaled(30))  # the facade's bound ends the stalled sender's wait
            assert outcome == ["DeepgramTimeoutError"]
        finally:
            stuck.close(timeout=scaled(5))
            live.close(timeout=scaled(5))
        assert stuck.closed and live.closed


def test_a_full_queue_waits_then_times_out_with_a_reason() -> None:
    with HostileServer(_stop_reading) as srv:
        conn = srv.client().agent.connect_sync(
            HOSTILE_SETTINGS, send_timeout=None, keepalive_interval=None, close_timeout=0.2
        )
        try:
            with pytest.raises(DeepgramTimeoutError) as info:
                while True:
                    conn.send_audio(b"\x00" * 32_000)
            assert "has not taken" in str(info.value) or "did not finish" in str(info.value)
            assert not conn.closed  # send_timeout=None: the app chose to wait
        finally:
            conn.close(timeout=scaled(5))


async def _close_after_some_audio(peer: Peer) -> None:
    await peer.ready()
    while peer.audio_bytes < 3_200:
        msg = await peer.socket.receive()
        if isinstance(msg.data, bytes):
            peer.audio_bytes += len(msg.data)
    await peer.close(1011, b"server went away")


def test_a_write_that_failed_is_reported_by_the_next_send() -> None:
    with HostileServer(_close_after_some_audio) as srv:
        conn = srv.client().agent.connect_sync(HOSTILE_SETTINGS, keepalive_interval=None)
        errors: list[BaseException] = []
        deadline = time.monotonic() + scaled(10)
        while time.monotonic() < deadline:
            try:
                conn.send_audio(b"\x06\x00" * 160)
            except BaseException as exc:
                errors.append(exc)
                break
            time.sleep(0.002)
        assert errors, "no send reported the closed connection"
        assert isinstance(errors[0], ConnectionClosed), repr(errors[0])
        with pytest.raises(ConnectionClosed):
            conn.send_audio(b"\x06\x00" * 160)  # and every send after it
        with pytest.raises(ConnectionClosed):
            conn.inject_user_message("too late")
        conn.close()


def test_a_write_held_up_by_the_server_finishes_and_its_backlog_follows_in_order() -> None:
    # The server stops reading for a while: writes suspend in TCP flow control, the frames
    # and the message behind them queue on that connection, and all of it goes out, in order,
    # once the server reads again.
    order: list[Any] = []
    resumed = threading.Event()
    resume: dict[str, asyncio.Event] = {}

    async def pause_then_read(peer: Peer) -> None:
        resume["event"] = asyncio.Event()
        await peer.ready()
        peer.stop_reading()
        await resume["event"].wait()
        transport = peer.request.transport
        assert transport is not None
        transport.resume_reading()
        while True:
            msg = await peer.socket.receive()
            if msg.type is WSMsgType.BINARY:
                peer.audio_bytes += len(msg.data)
                if order and isinstance(order[-1], int):
                    order[-1] += len(msg.data)
                else:
                    order.append(len(msg.data))
            elif msg.type is WSMsgType.TEXT:
                order.append(json.loads(msg.data)["type"])
            else:
                break
            peer.server._notify()

    with HostileServer(pause_then_read) as srv:
        conn = srv.client().agent.connect_sync(
            HOSTILE_SETTINGS, send_timeout=None, keepalive_interval=None
        )
        try:
            got: list[str] = []
            before = [0]

            def sender() -> None:
                # until a write waits for the server (or the server reads again)
                while not conn._outbox.busy and not resumed.is_set():
                    conn.send_audio(b"\x07" * 32_000)
                    before[0] += 32_000
                conn.inject_user_message("behind the audio")
                got.append("injected")
                for _ in range(4):
                    conn.send_audio(b"\x08" * 8_000)
                conn.flush(timeout=scaled(20))
                got.append("flushed")

            thread = threading.Thread(target=sender, daemon=True)
            thread.start()
            # a write of the sender's waits for the server
            assert _until(lambda: conn._outbox.busy)
            resumed.set()
            srv._loop.call_soon_threadsafe(resume["event"].set)
            thread.join(scaled(30))
            assert got == ["injected", "flushed"]
            total = before[0] + 4 * 8_000
            srv.wait(lambda: srv.peers[0].audio_bytes == total, what="all the audio")
            assert order == [before[0], "InjectUserMessage", 4 * 8_000]
            assert conn.statistics().audio_bytes_sent == total
        finally:
            conn.close(timeout=scaled(5))


def test_a_message_queued_behind_a_write_that_fails_gets_the_error() -> None:
    with HostileServer(_stop_reading) as srv:
        conn = srv.client().agent.connect_sync(
            HOSTILE_SETTINGS, send_timeout=1.0, keepalive_interval=None, close_timeout=0.2
        )
        outcome: list[str] = []

        def sender() -> None:
            try:
                while not conn._outbox.busy:
                    conn.send_audio(b"\x00" * 32_000)
                conn.inject_user_message("never written")
                outcome.append("sent")
            except BaseException as exc:
                outcome.append(type(exc).__name__)

        thread = threading.Thread(target=sender, daemon=True)
        started = time.monotonic()
        thread.start()
        thread.join(scaled(30))
        assert outcome and outcome[0] in ("DeepgramTimeoutError", "ConnectionClosedError")
        assert time.monotonic() - started < scaled(15)
        conn.wait_closed(scaled(5))  # send_timeout failed the connection
        with pytest.raises(ConnectionClosed):
            conn.send_audio(b"\x00" * 320)
        conn.close()


def test_an_invalid_message_behind_audio_raises_as_it_would_alone(emu: AgentEmulator) -> None:
    with client_for(emu).agent.connect_sync(SETTINGS, keepalive_interval=None) as conn:
        with pytest.raises(Exception) as alone:
            conn.send({"type": "UpdatePrompt", "prompt": 42})
        for _ in range(50):
            conn.send_audio(b"\x09\x00" * 160)
        with pytest.raises(type(alone.value)) as behind:
            conn.send({"type": "UpdatePrompt", "prompt": 42})
        assert str(behind.value) == str(alone.value)
        conn.keep_alive()  # the connection goes on
        session = emu.sessions[-1]
        emu.call(session.wait_for_received("KeepAlive", timeout=scaled(5)))
        assert _layout(session.received) == [16_000, "KeepAlive"]


def test_a_short_close_bound_still_closes_a_connection_with_a_stuck_write() -> None:
    with HostileServer(_stop_reading) as srv:
        conn = srv.client().agent.connect_sync(
            HOSTILE_SETTINGS, send_timeout=None, keepalive_interval=None
        )
        thread, ended = _flood_in_thread(conn, 32_000)
        assert _until(lambda: conn._outbox.busy)  # a write waits for the server
        started = time.monotonic()
        conn.close(timeout=1.0)  # shorter than close_timeout (5 s)
        assert time.monotonic() - started < scaled(3)
        conn.wait_closed(scaled(10))  # the close went ahead although the drain did not finish
        assert conn.closed
        thread.join(scaled(10))  # the sender waiting for room is told, not left waiting
        assert ended and ended[0] in ("ConnectionClosedOK", "ConnectionClosedError"), ended


async def _stall_first_session_then_read(peer: Peer) -> None:
    await peer.ready()
    if peer.index == 0:
        peer.stop_reading()
        await peer.hold()
    else:
        await peer.drain()


def test_with_reconnect_a_failed_write_is_reported_once_and_sending_goes_on() -> None:
    # send_timeout fails the first socket; the resuming connection opens another. The error
    # is the next send's, once: sends after the reconnect go out.
    with HostileServer(_stall_first_session_then_read) as srv:
        conn = srv.client().agent.connect_sync(
            HOSTILE_SETTINGS,
            reconnect=True,
            send_timeout=1.0,
            keepalive_interval=None,
            close_timeout=0.5,
        )
        try:
            failed: BaseException | None = None
            deadline = time.monotonic() + scaled(20)
            while failed is None and time.monotonic() < deadline:
                try:
                    conn.send_audio(b"\x00" * 16_000)
                except DeepgramTimeoutError as exc:
                    failed = exc
            assert failed is not None
            for msg in conn:
                if isinstance(msg, m.Reconnected):
                    break
            for _ in range(3):
                conn.send_audio(b"\x01\x00" * 160)
            conn.inject_user_message("after the reconnect")
            conn.flush(timeout=scaled(5))
            srv.wait(lambda: len(srv.peers) == 2 and srv.peers[1].audio_bytes >= 960, what="audio")
            srv.wait(
                lambda: any(f.get("type") == "InjectUserMessage" for f in srv.peers[1].received),
                what="the injected message",
            )
        finally:
            conn.close(timeout=scaled(5))
