"""Garbage in: no frame a hostile server sends can end, wedge or flood a session.

Every undecodable text frame (invalid UTF-8 inside a JSON string, JSON nested thousands deep,
an unknown field nested deep inside a known message, an empty frame, random bytes) becomes an
``Unhandled`` with its reason and the stream goes on, in every API; the warning about them is
rate limited; a frame over ``max_message_size`` ends the session with close code 1009 naming
the size and the limit, and one of exactly the limit is accepted; a ``FunctionCallRequest``
whose ``arguments`` are deep or huge is answered once with an error result.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import textwrap
from collections.abc import Callable
from typing import Any

import pytest

from deepgram_agent import ConnectionClosedError, Tools
from deepgram_agent import messages as m
from deepgram_agent._codec import decode_server
from deepgram_agent._protocol import AgentProtocol

from .conftest import scaled
from .hostile import APIS, KEY, HostileServer, Outcome, Peer, nest, run_api

# ----------------------------------------------------------------------------- the frames


def _call_request(arguments: Any, *, call_id: str = "call-1", name: str = "lookup") -> bytes:
    item = {"id": call_id, "name": name, "client_side": True}
    body = json.dumps({"type": "FunctionCallRequest", "functions": [{**item, "arguments": 0}]})
    text = arguments if isinstance(arguments, str) and arguments.startswith("@raw:") else None
    if text is not None:  # splice raw JSON (too deep for json.dumps) in place of the 0
        return body.replace('"arguments": 0', '"arguments": ' + text[5:]).encode()
    return body.replace('"arguments": 0', '"arguments": ' + json.dumps(arguments)).encode()


#: Text frames no decoder may raise on, each with a name for the report.
GARBAGE: dict[str, bytes] = {
    "invalid UTF-8 inside a string": b'{"type":"ConversationText","role":"user","content":"\xff\xfe"}',
    "invalid UTF-8 in a key": b'{"type":"ConversationText","\xc3\x28":1}',
    "lone surrogate escape": b'{"type":"ConversationText","role":"user","content":"\\ud800"}',
    "objects nested 1,000 deep": nest(1000).encode(),
    "arrays nested 100,000 deep": b"[" * 100_000 + b"]" * 100_000,
    "unclosed nesting 50,000 deep": b'{"a":' * 50_000,
    "unknown field nested 5,000 deep in a known message": (
        '{"type":"ConversationText","role":"user","content":"x","extra":' + nest(5000) + "}"
    ).encode(),
    "unknown field nested 5,000 deep inside a list item": _call_request("{}").replace(
        b'"client_side": true', b'"client_side": true, "odd": ' + b"[" * 5000 + b"]" * 5000
    ),
    "arguments as an object nested 990 deep": _call_request("@raw:" + nest(990)),
    "arguments as an object nested 5,000 deep": _call_request("@raw:" + nest(5000)),
    "empty frame": b"",
    "not JSON": b"\x00\x01\x02 definitely not json",
    "a bare number": b"42",
    "truncated known message": b'{"type":"ConversationText","role":"user","conte',
    "type is not a string": b'{"type":{"a":1}}',
    "huge number": b'{"type":"ConversationText","role":"user","content":1' + b"0" * 5000 + b"}",
}


def _at_stack_depth(depth: int, fn: Callable[[], Any]) -> Any:
    if depth <= 0:
        return fn()
    return _at_stack_depth(depth - 1, fn)


@pytest.mark.parametrize("stack", [0, 1, 2, 300, 600, 850])
def test_decode_server_never_raises_whatever_the_bytes_and_the_stack(stack: int) -> None:
    # The decoder runs in the reader task, or in the consumer's own task in pull mode, or in a
    # deeply nested app: "never raises" must hold however much of the stack is already used.
    rng = random.Random(1234 + stack)
    frames = dict(GARBAGE)
    # Every depth up to just past the recursion limit: the frames that decode but cannot be
    # re-encoded (arguments kept as JSON text) sit in a window a few levels wide.
    for depth in range(0, 1011, 1 if stack == 0 else 3):
        frames[f"arguments object {depth}"] = _call_request("@raw:" + nest(depth))
        frames[f"arguments array {depth}"] = _call_request("@raw:" + "[" * depth + "]" * depth)
        frames[f"History response {depth}"] = (
            '{"type":"History","function_calls":[{"id":"c","name":"f","client_side":true,'
            '"arguments":"{}","response":' + nest(depth) + "}]}"
        ).encode()
    for i in range(300):
        frames[f"random {i}"] = rng.randbytes(rng.randrange(0, 64))
        valid = b'{"type":"ConversationText","role":"assistant","content":"hello"}'
        cut = rng.randrange(len(valid))
        frames[f"mutated {i}"] = valid[:cut] + rng.randbytes(rng.randrange(1, 4)) + valid[cut + 1 :]
    proto = AgentProtocol(b"{}")
    for name, frame in frames.items():
        try:
            item = _at_stack_depth(stack, lambda f=frame: decode_server(f))
            fast = _at_stack_depth(stack, lambda f=frame: proto.receive_text(f))
        except BaseException as exc:  # pragma: no cover - the failure this test looks for
            raise AssertionError(f"{name!r} (stack {stack}) raised {exc!r}") from exc
        for got in (item, fast):  # (one stack frame apart: near the limit they may differ)
            if isinstance(got, m.Unhandled):
                assert got.raw == frame
                if name in GARBAGE:
                    assert got.reason, name  # the reason is given
            else:
                assert isinstance(got, m.ServerMessage), (name, got)
    assert proto.messages_received == len(frames)


# ----------------------------------------------------------------------------- in a session

AFTER = {"type": "ConversationText", "role": "assistant", "content": "still here"}
SESSION_GARBAGE = [
    GARBAGE["invalid UTF-8 inside a string"],
    GARBAGE["objects nested 1,000 deep"],
    GARBAGE["arrays nested 100,000 deep"],
    GARBAGE["unknown field nested 5,000 deep in a known message"],
    GARBAGE["arguments as an object nested 990 deep"],
    GARBAGE["arguments as an object nested 5,000 deep"],
    GARBAGE["empty frame"],
    GARBAGE["not JSON"],
    # Around the recursion limit, whatever the reader's stack depth: some of these decode but
    # cannot be re-encoded (arguments kept as JSON text).
    *(_call_request("@raw:" + nest(depth)) for depth in range(900, 1011)),
]


def garbage_then_close(*, wait_for_go: bool) -> Any:
    async def script(peer: Peer) -> None:
        await peer.ready()
        if wait_for_go:  # the consumer is waiting in its loop: pull mode reads the garbage
            await peer.next_json("InjectUserMessage")
        for frame in SESSION_GARBAGE:
            await peer.send_text(frame)
        await peer.send(AFTER)
        await peer.close(1000)

    return script


def _delivered(api: str, out: Outcome) -> list[Any]:
    """What reached the app between SettingsApplied and the end, per API."""
    if api in ("async", "blocking"):
        return [i for i in out.items if not isinstance(i, m.Welcome | m.SettingsApplied)]
    skip = {"Open", "Welcome", "SettingsApplied", "Close"}
    return [payload for name, payload in out.items if name not in skip]


def _check_garbage_session(api: str, out: Outcome) -> None:
    assert out.error is None, repr(out.error)
    got = _delivered(api, out)
    # One item per frame, in order; every undecodable one an Unhandled with its reason.
    assert len(got) == len(SESSION_GARBAGE) + 1, [type(x).__name__ for x in got]
    for frame, item in zip(SESSION_GARBAGE, got, strict=False):
        if isinstance(item, m.Unhandled):
            assert item.raw == frame and item.reason
        else:  # a near-miss the lenient decoder could fit (e.g. arguments kept as JSON text)
            assert isinstance(item, m.FunctionCallRequest | m.ConversationText), item
    assert isinstance(got[-1], m.ConversationText) and got[-1].content == "still here"
    if api.endswith("callbacks"):
        assert out.names()[-1] == "Close"
        assert "Error" not in out.names()


@pytest.mark.anyio
@pytest.mark.parametrize("api", APIS)
async def test_garbage_frames_never_end_the_session(api: str) -> None:
    with HostileServer(garbage_then_close(wait_for_go=False)) as srv:
        out = await run_api(api, srv.client())
        assert len(srv.peers) == 1
    _check_garbage_session(api, out)


@pytest.mark.anyio
@pytest.mark.parametrize("api", ["async", "blocking"])
async def test_garbage_read_in_pull_mode_and_with_reconnect_on(api: str) -> None:
    # The consumer waits in its loop when the garbage arrives (async: pull mode, the loop reads
    # the socket itself); reconnect is on: a bad frame must not look like a dropped session.
    directly: list[bool] = []

    def go(conn: Any) -> Any:
        return conn.inject_user_message("go")

    def watch(msg: Any) -> bool:
        if api == "async" and hasattr(watch, "conn"):
            directly.append(watch.conn.reading_directly)  # type: ignore[attr-defined]
        return False

    def go_and_watch(conn: Any) -> Any:
        watch.conn = conn  # type: ignore[attr-defined]
        return go(conn)

    with HostileServer(garbage_then_close(wait_for_go=True)) as srv:
        out = await run_api(api, srv.client(), on_ready=go_and_watch, stop=watch, reconnect=True)
        assert len(srv.peers) == 1  # one session: nothing reconnected
        assert not srv.script_errors
    _check_garbage_session(api, out)
    if api == "async":
        assert any(directly), "the garbage was never read in pull mode"


# ----------------------------------------------------------------------------- the warning


_FLOOD_CLIENT = textwrap.dedent(
    """
    import asyncio, json, sys
    from deepgram_agent import DeepgramClient
    from deepgram_agent import messages as m
    from tests.hostile import SETTINGS

    async def main(url, key):
        client = DeepgramClient(api_key=key, base_url=url)
        unhandled = 0
        async with client.agent.connect(SETTINGS) as conn:
            async for msg in conn:
                if isinstance(msg, m.Unhandled):
                    unhandled += 1
            stats = conn.statistics()
        print(json.dumps({"unhandled": unhandled, "counted": stats.unhandled_received}))

    asyncio.run(main(*sys.argv[1:]))
    """
)

FLOOD = 100_000


def test_a_hundred_thousand_garbage_frames_log_a_few_lines_and_a_count(
    record_property: Any,
) -> None:
    frame = GARBAGE["invalid UTF-8 inside a string"]

    async def script(peer: Peer) -> None:
        await peer.ready()
        for _ in range(FLOOD):
            await peer.send_text(frame)
        await peer.close(1000)

    with HostileServer(script) as srv:
        proc = subprocess.run(
            [sys.executable, "-c", _FLOOD_CLIENT, srv.url, KEY],
            capture_output=True,
            text=True,
            timeout=scaled(180),
            check=False,
            cwd=str(_repo_root()),
        )
    assert proc.returncode == 0, proc.stderr[-2000:]
    fig = json.loads(proc.stdout.strip().splitlines()[-1])
    assert fig == {"unhandled": FLOOD, "counted": FLOOD}
    lines = proc.stderr.splitlines()
    print(f"\n{FLOOD} garbage frames: {len(proc.stderr)} bytes, {len(lines)} lines of stderr")
    record_property("stderr_bytes", len(proc.stderr))
    record_property("stderr_lines", len(lines))
    assert len(lines) <= 10, proc.stderr
    assert len(proc.stderr) < 4096
    # The suppressed ones are not silently lost: a summary line gives their count.
    assert any(f"{FLOOD - 5} more undecodable frames" in line for line in lines), proc.stderr


def _repo_root() -> Any:
    from pathlib import Path

    return Path(__file__).resolve().parent.parent


# ----------------------------------------------------------------------------- max_message_size

LIMIT = 64 * 1024


def _padded_text(size: int) -> bytes:
    head = b'{"type":"ConversationText","role":"assistant","content":"'
    tail = b'"}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


def at_and_over_the_limit(binary: bool) -> Any:
    async def script(peer: Peer) -> None:
        await peer.ready()
        if binary:
            await peer.send_binary(b"\x01" * LIMIT)
            await peer.send_binary(b"\x02" * (LIMIT + 1))
        else:
            await peer.send_text(_padded_text(LIMIT))
            await peer.send_text(_padded_text(LIMIT + 1))
        await peer.send(AFTER)  # never delivered: the session ended
        await peer.hold()

    return script


@pytest.mark.anyio
@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
async def test_a_frame_of_exactly_the_limit_is_accepted_and_one_more_byte_is_1009(
    api: str, binary: bool
) -> None:
    with HostileServer(at_and_over_the_limit(binary)) as srv:
        out = await run_api(api, srv.client(), max_message_size=LIMIT)
    if api in ("async", "blocking"):
        err = out.error
        got = _delivered(api, out)
    else:
        errors = [e for n, e in out.items if n == "Error"]
        assert len(errors) == 1 and out.names()[-1] == "Close", out.names()
        assert errors[0].code == "CLIENT_CONNECTION_LOST"
        close = out.items[-1][1]
        assert close.code == 1009
        err = ConnectionClosedError(1009, "", errors[0].description)
        got = [p for n, p in out.items if n in ("ConversationText", "AudioData")]
    assert len(got) == 1  # the frame of exactly LIMIT bytes, and nothing after the big one
    if binary:
        assert got[0] == b"\x01" * LIMIT
    else:
        assert isinstance(got[0], m.ConversationText) and len(got[0].content) > LIMIT - 100
    assert isinstance(err, ConnectionClosedError), repr(err)
    assert err.code == 1009
    text = str(err)
    assert "max_message_size" in text
    assert f"{LIMIT + 1} bytes" in text and f"({LIMIT} bytes)" in text, text


# ----------------------------------------------------------------------------- tool arguments

DEEP_ARGUMENTS = nest(10_000)  # a JSON *string* holding JSON nested 10,000 deep
HUGE_ARGUMENTS = json.dumps({"order_id": "x" * 2_000_000})


def ask_and_wait_for_the_answer(arguments: Any) -> Any:
    async def script(peer: Peer) -> None:
        await peer.ready()
        await peer.send_text(_call_request(arguments, call_id="call-evil"))
        await peer.next_json("FunctionCallResponse")
        # Exactly once: anything else the client sends before closing is recorded too.
        await peer.send({"type": "AgentAudioDone"})
        await peer.drain()

    return script


CASES = {
    "deep": DEEP_ARGUMENTS,
    "huge": HUGE_ARGUMENTS,
    "object nested 900 deep": "@raw:" + nest(900),
}


@pytest.mark.anyio
@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("case", list(CASES))
async def test_deep_or_huge_tool_arguments_are_answered_once_with_an_error(
    api: str, case: str
) -> None:
    tools = Tools()
    ran: list[Any] = []

    @tools.tool
    def lookup(order_id: str) -> str:
        """Look an order up."""
        ran.append(order_id)
        return "found"

    with HostileServer(ask_and_wait_for_the_answer(CASES[case])) as srv:
        out = await run_api(
            api,
            srv.client(),
            tools=tools,
            stop=lambda msg: isinstance(msg, m.AgentAudioDone),
        )
        srv.wait(lambda: srv.peers[0].closed_at is not None, what="the client closing")
        answers = srv.frames_of("FunctionCallResponse")
    assert out.error is None, out.error
    assert not ran  # never called with what could not be decoded
    assert len(answers) == 1, answers
    _, answer = answers[0]
    assert answer["id"] == "call-evil" and answer["name"] == "lookup"
    content = json.loads(answer["content"])
    assert "error" in content and "lookup" in content["error"]
    (record,) = tools.calls
    assert record.id == "call-evil" and record.outcome == "invalid_arguments"
    assert record.error and record.raw_arguments


@pytest.mark.anyio
@pytest.mark.parametrize("api", APIS)
async def test_a_frame_over_the_limit_before_ready_fails_connect_with_1009(api: str) -> None:
    async def script(peer: Peer) -> None:
        await peer.welcome()
        await peer.next_json("Settings")
        await peer.send_binary(b"\x00" * (LIMIT + 10))
        await peer.hold()

    with HostileServer(script) as srv:
        out = await run_api(api, srv.client(), max_message_size=LIMIT)
    if api in ("async", "blocking"):
        assert not out.started
        err = out.error
        assert isinstance(err, ConnectionClosedError), repr(err)
        assert err.code == 1009
        text = str(err)
        assert "before sending SettingsApplied" in text
    else:
        assert out.started is False
        errors = [e for n, e in out.items if n == "Error"]
        assert len(errors) == 1 and out.names()[-1] == "Close", out.names()
        assert out.items[-1][1].code == 1009
        text = errors[0].description
    assert f"{LIMIT + 10} bytes" in text and f"max_message_size ({LIMIT} bytes)" in text, text
