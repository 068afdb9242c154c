"""Memory is bounded in every phase, whatever a hostile server or a careless app does.

* Before ``SettingsApplied``: a server that floods binary frames instead of answering
  ``Settings`` cannot grow the client past ``max_queue`` frames; ``connect()`` fails with the
  ``open_timeout`` error instead.
* The send path: on a server that stopped reading, a send waits at most ``send_timeout``, then
  raises ``DeepgramTimeoutError`` and the connection is closed as failed; cancelling one send
  never corrupts the next (no bare ``CancelledError``, no send that "succeeds" into an unbounded
  buffer); the callback API returns False instead of raising.

The clients run in subprocesses so their peak RSS (``VmHWM``) is theirs alone; figures are
printed (run with ``-s``) and attached with ``record_property``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from deepgram_agent import ConnectionClosedError, DeepgramTimeoutError

from .conftest import scaled
from .hostile import KEY, SETTINGS, HostileServer, Peer

ROOT = Path(__file__).resolve().parent.parent
FLOOD_SECONDS = 4.0

# The client side of every memory test: one API, one behaviour, figures as JSON on stdout.
_CLIENT = textwrap.dedent(
    """
    import asyncio, json, resource, sys, threading, time
    from deepgram_agent import DeepgramClient
    from tests.hostile import SETTINGS

    def peak_mib():
        # VmHWM, not ru_maxrss: Linux keeps ru_maxrss across execve, so a child of a big
        # pytest process would report the parent's peak.
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        raise RuntimeError("no VmHWM")

    def rss_mib():  # the resident set right now (the peak so far may be an import's)
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize() / 2**20

    args = json.loads(sys.argv[1])
    client = DeepgramClient(api_key=args["key"], base_url=args["url"])
    opts = args["options"]
    api, mode, seconds = args["api"], args["mode"], args["seconds"]
    fig = {"errors": {}, "sent_ok": 0, "false": 0}
    chunk = b"\\x01\\x02" * 1600  # 100 ms of linear16 16 kHz

    def count(exc):
        name = type(exc).__name__
        fig["errors"][name] = fig["errors"].get(name, 0) + 1
        fig.setdefault("first_error", f"{name}: {exc}")
        fig.setdefault("first_error_after", round(time.monotonic() - t0, 2))

    # ---------------------------------------------------------------- before ready
    async def flood_async():
        try:
            await client.agent.connect(SETTINGS, **opts)
        except Exception as exc:
            count(exc)

    def flood_blocking():
        try:
            client.agent.connect_sync(SETTINGS, **opts)
        except Exception as exc:
            count(exc)

    async def reflood_async():
        # The first socket drops once ready; the resumed one floods before SettingsApplied
        # while the app does not read.
        from deepgram_agent import ReconnectPolicy
        frames = 0
        try:
            policy = ReconnectPolicy(**opts.pop("reconnect"))
            async with client.agent.connect(SETTINGS, reconnect=policy, **opts) as conn:
                await asyncio.sleep(seconds)
                async for msg in conn:
                    frames += isinstance(msg, bytes)
        except Exception as exc:
            count(exc)
        fig["audio_frames"] = frames

    def flood_callbacks():
        conn = client.agent.websocket.v("1")
        events = []
        conn.on("Error", lambda c, e: events.append(e.description))
        fig["started"] = conn.start(SETTINGS, **opts)
        fig["error_events"] = events

    # ---------------------------------------------------------------- sending
    async def send_async(conn):
        while time.monotonic() - t0 < seconds:
            try:
                if mode == "cancel":  # the app gives every send 0.1 s
                    await asyncio.wait_for(conn.send_audio(chunk), 0.1)
                else:
                    await conn.send_audio(chunk)
                fig["sent_ok"] += 1
            except BaseException as exc:
                if type(exc) is asyncio.CancelledError:
                    fig["bare_cancelled"] = fig.get("bare_cancelled", 0) + 1
                count(exc)
                await asyncio.sleep(0.001)

    async def main_async():
        async with client.agent.connect(SETTINGS, **opts) as conn:
            fig["baseline_mib"], fig["baseline_peak_mib"] = rss_mib(), peak_mib()
            await send_async(conn)
            fig["closed"] = conn.closed

    def main_blocking():
        with client.agent.connect_sync(SETTINGS, **opts) as conn:
            fig["baseline_mib"], fig["baseline_peak_mib"] = rss_mib(), peak_mib()
            while time.monotonic() - t0 < seconds:
                try:
                    conn.send_audio(chunk)
                    fig["sent_ok"] += 1
                except BaseException as exc:
                    if "Cancelled" in type(exc).__name__:
                        fig["bare_cancelled"] = fig.get("bare_cancelled", 0) + 1
                    count(exc)
                    time.sleep(0.001)
            fig["closed"] = conn.closed

    def main_callbacks():
        conn = client.agent.websocket.v("1")
        events = []
        conn.on("Error", lambda c, e: events.append(e.code))
        assert conn.start(SETTINGS, **opts)
        fig["baseline_mib"], fig["baseline_peak_mib"] = rss_mib(), peak_mib()
        while time.monotonic() - t0 < seconds:
            try:
                if conn.send_audio(chunk):
                    fig["sent_ok"] += 1
                else:
                    fig["false"] += 1
                    time.sleep(0.001)
            except BaseException as exc:
                count(exc)
        fig["error_events"] = sorted(set(events))
        fig["closed"] = not conn.is_connected()
        conn.finish()

    fig["start_mib"] = rss_mib()
    t0 = time.monotonic()
    target = {
        ("flood", "async"): lambda: asyncio.run(flood_async()),
        ("flood", "blocking"): flood_blocking,
        ("flood", "callbacks"): flood_callbacks,
        ("reflood", "async"): lambda: asyncio.run(reflood_async()),
        ("send", "async"): lambda: asyncio.run(main_async()),
        ("send", "blocking"): main_blocking,
        ("send", "callbacks"): main_callbacks,
    }[(args["phase"], api)]
    target()
    fig["elapsed"] = round(time.monotonic() - t0, 2)
    fig["peak_mib"] = round(peak_mib(), 1)
    print(json.dumps(fig))
    """
)


def run_client(url: str, **args: Any) -> dict[str, Any]:
    payload = json.dumps({"url": url, "key": KEY, **args})
    proc = subprocess.run(
        [sys.executable, "-c", _CLIENT, payload],
        capture_output=True,
        text=True,
        timeout=scaled(90),
        check=False,
        cwd=str(ROOT),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    fig: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    fig["stderr"] = proc.stderr
    return fig


# ----------------------------------------------------------------------------- before ready


def binary_flood_before_ready(frame_size: int, sent: list[int], *, resumed: bool = False) -> Any:
    async def script(peer: Peer) -> None:
        if resumed and peer.index == 0:  # the first session drops once ready
            await peer.ready()
            peer.abort()
            return
        await peer.welcome()
        await peer.next_json("Settings")
        frame = b"\x07" * frame_size
        # Never SettingsApplied: binary as fast as the client takes it, for FLOOD_SECONDS.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(FLOOD_SECONDS):
                while True:
                    await peer.send_binary(frame)
                    sent[0] += frame_size
        await peer.hold()

    return script


@pytest.mark.parametrize(
    ("api", "frame_size"),
    [("async", 960), ("async", 65536), ("blocking", 65536), ("callbacks", 65536)],
)
def test_a_binary_flood_before_ready_is_bounded_and_connect_fails_clearly(
    api: str, frame_size: int, record_property: Any
) -> None:
    sent = [0]
    max_queue = 1024  # the default
    with HostileServer(binary_flood_before_ready(frame_size, sent)) as srv:
        fig = run_client(
            srv.url,
            api=api,
            phase="flood",
            mode="",
            seconds=0,
            options={"open_timeout": FLOOD_SECONDS},
        )
    growth = fig["peak_mib"] - fig["start_mib"]
    print(
        f"\nbinary flood before ready ({api}, {frame_size} B frames, {FLOOD_SECONDS:g} s, "
        f"max_queue={max_queue}): server sent {sent[0] / 2**20:.1f} MiB; client peak RSS "
        f"{fig['peak_mib']} MiB (+{growth:.1f} MiB over {fig['start_mib']:.1f}); "
        f"connect failed after {fig.get('first_error_after', fig['elapsed'])} s"
    )
    record_property("server_sent_mib", round(sent[0] / 2**20, 1))
    record_property("client_peak_rss_mib", fig["peak_mib"])
    record_property("client_rss_growth_mib", round(growth, 1))
    if api == "callbacks":
        # Its dispatcher thread consumes (and drops: no handler) the audio while start() waits.
        assert fig["started"] is False
        (error,) = fig["error_events"]
        text = error
    else:
        assert fig["errors"] == {"DeepgramTimeoutError": 1}, fig
        text = fig["first_error"]
        # The flood stalls once the queue is full: TCP pushes back on the server.
        assert sent[0] < max_queue * frame_size + 64 * 2**20
    assert "no SettingsApplied" in text and "open_timeout" in text, text
    # Bounded by max_queue frames (plus socket buffers and the interpreter's own noise).
    assert growth < max_queue * frame_size / 2**20 + 40, fig


# ----------------------------------------------------------------------------- the send path


async def stop_reading_after_ready(peer: Peer) -> None:
    await peer.ready()
    peer.stop_reading()
    await peer.hold()


SEND_SECONDS = 4.0


@pytest.mark.parametrize(
    ("api", "mode"),
    [("async", "plain"), ("async", "cancel"), ("blocking", "plain"), ("callbacks", "plain")],
)
def test_sending_to_a_server_that_stopped_reading_is_bounded_in_time_and_memory(
    api: str, mode: str, record_property: Any
) -> None:
    with HostileServer(stop_reading_after_ready) as srv:
        fig = run_client(
            srv.url,
            api=api,
            phase="send",
            mode=mode,
            seconds=SEND_SECONDS,
            options={"send_timeout": 1.0, "keepalive_interval": None},
        )
    growth = fig["peak_mib"] - fig["baseline_mib"]
    print(
        f"\nsending to a server that stopped reading ({api}/{mode}, send_timeout=1 s, "
        f"{SEND_SECONDS:g} s): {fig['sent_ok']} sends went out, then {fig['errors']} "
        f"{'False x' + str(fig['false']) if api == 'callbacks' else ''}; first error after "
        f"{fig.get('first_error_after')} s; peak RSS {fig['peak_mib']} MiB (it was "
        f"{fig['baseline_peak_mib']:.1f} MiB before sending, with {fig['baseline_mib']:.1f} MiB "
        "resident then)"
    )
    record_property("rss_growth_mib", round(growth, 1))
    record_property("sent_ok", fig["sent_ok"])
    assert "bare_cancelled" not in fig, fig
    assert fig["closed"] is True  # closed as failed
    assert growth < 40, fig
    if api == "callbacks":
        assert fig["errors"] == {}, fig  # never raises
        assert fig["false"] > 0
        assert "CLIENT_TIMEOUT" in fig["error_events"], fig
    else:
        names = set(fig["errors"])
        assert "DeepgramTimeoutError" in names, fig
        # After the failure every send says the connection is closed; nothing else escapes.
        assert names <= {"DeepgramTimeoutError", "ConnectionClosedError", "TimeoutError"}, fig
        assert fig["errors"].get("ConnectionClosedError", 0) > 0, fig
        if mode == "plain":
            assert fig["first_error"].startswith("DeepgramTimeoutError")
            assert "send_timeout" in fig["first_error"]
        # The stuck send is detected after send_timeout, whatever the app's own timeouts.
        assert fig["first_error_after"] < scaled(3.0) or mode == "cancel"


# ----------------------------------------------------------------------------- in process


@pytest.mark.anyio
async def test_a_cancelled_send_never_corrupts_the_next_one() -> None:
    # Many sends queue behind one stuck write; cancelling some of them must leave the others
    # (and every later send) with our errors only, never a bare CancelledError.
    with HostileServer(stop_reading_after_ready) as srv:
        client = srv.client()
        async with client.agent.connect(
            SETTINGS, send_timeout=1.0, keepalive_interval=None
        ) as conn:
            chunk = b"\x00" * 32_000
            with pytest.raises(DeepgramTimeoutError, match="send_timeout"):
                async with asyncio.timeout(scaled(10)):
                    while True:  # until the socket buffers are full and a send is stuck
                        await conn.send_audio(chunk)
            assert conn.closed or await _closed_soon(conn)
            # Every later send fails at once, with our error.
            for _ in range(3):
                with pytest.raises(ConnectionClosedError, match="send_timeout"):
                    await asyncio.wait_for(conn.send_audio(chunk), scaled(2))

        # Concurrent senders behind one stuck write, some cancelled.
        async with client.agent.connect(
            SETTINGS, send_timeout=1.5, keepalive_interval=None
        ) as conn:
            async with asyncio.timeout(scaled(10)):
                while True:  # fill the buffers until a send has to wait
                    task = asyncio.ensure_future(conn.send_audio(chunk))
                    done, _ = await asyncio.wait({task}, timeout=0.2)
                    if not done:
                        break
                    task.result()
            waiters = [asyncio.ensure_future(conn.send_audio(chunk)) for _ in range(6)]
            await asyncio.sleep(0)
            for w in waiters[::2]:
                w.cancel()
            results = await asyncio.gather(task, *waiters, return_exceptions=True)
            for i, result in enumerate(results):
                if i and (i - 1) % 2 == 0:
                    assert isinstance(result, asyncio.CancelledError)  # the ones we cancelled
                else:
                    assert isinstance(result, DeepgramTimeoutError | ConnectionClosedError), (
                        i,
                        repr(result),
                    )
            assert await _closed_soon(conn)


async def _closed_soon(conn: Any) -> bool:
    await conn.wait_closed(scaled(5))
    return bool(conn.closed)


@pytest.mark.slow
def test_a_blocking_send_cut_by_the_facade_bound_leaves_the_next_send_sound() -> None:
    # send_timeout=None: only the blocking facade's own bound ends a stuck send (it cancels
    # the send on the loop thread). The next send must be stuck the same way and fail the
    # same way: never "succeed" into a buffer, never raise a bare CancelledError.
    with HostileServer(stop_reading_after_ready) as srv:
        conn = srv.client().agent.connect_sync(
            SETTINGS, send_timeout=None, close_timeout=0.2, keepalive_interval=None
        )
        try:
            chunk = b"\x00" * 64_000
            outcomes: list[str] = []

            def sender() -> None:
                while len(outcomes) < 2:
                    try:
                        conn.send_audio(chunk)
                    except BaseException as exc:
                        outcomes.append(f"{type(exc).__name__}: {exc}")

            thread = threading.Thread(target=sender, daemon=True)
            started = time.monotonic()
            thread.start()
            thread.join(scaled(60))
            assert not thread.is_alive()
            elapsed = time.monotonic() - started
            assert len(outcomes) == 2
            for outcome in outcomes:
                assert outcome.startswith("DeepgramTimeoutError"), outcomes
            print(f"\ntwo facade-bounded sends failed in {elapsed:.1f} s: {outcomes}")
            assert not conn.closed  # send_timeout=None: the app chose to wait; still open
        finally:
            conn.close(timeout=scaled(5))


def test_a_binary_flood_during_a_reconnect_handshake_is_bounded_too(record_property: Any) -> None:
    sent = [0]
    frame_size = 65536
    with HostileServer(binary_flood_before_ready(frame_size, sent, resumed=True)) as srv:
        fig = run_client(
            srv.url,
            api="async",
            phase="reflood",
            mode="",
            seconds=FLOOD_SECONDS + 1,
            options={
                "open_timeout": FLOOD_SECONDS,
                "reconnect": {"initial_delay": 0.01, "jitter": 0.0, "max_attempts": 1},
            },
        )
    growth = fig["peak_mib"] - fig["start_mib"]
    print(
        f"\nbinary flood during a reconnect handshake ({frame_size} B frames): server sent "
        f"{sent[0] / 2**20:.1f} MiB; client peak RSS {fig['peak_mib']} MiB (+{growth:.1f} MiB); "
        f"{fig['audio_frames']} frames delivered, then {fig['first_error']}"
    )
    record_property("client_rss_growth_mib", round(growth, 1))
    assert fig["errors"] == {"ConnectionClosedError": 1}, fig
    assert "gave up after 1 attempt" in fig["first_error"]
    assert "no SettingsApplied" in fig["first_error"]
    assert 0 < fig["audio_frames"] <= 1024  # what arrived is delivered, bounded by max_queue
    assert growth < 1024 * frame_size / 2**20 + 40, fig
