"""AgentProtocol, the sans-I/O session rules: plain synchronous tests, no sockets, no loop."""

from __future__ import annotations

import json
import logging
import random
from typing import Any

import msgspec
import pytest

from deepgram_agent import SettingsRejected
from deepgram_agent import messages as m
from deepgram_agent._codec import encode
from deepgram_agent._protocol import (
    AgentProtocol,
    PendingCalls,
    Phase,
    client_order_error,
)
from deepgram_agent.exceptions import SettingsError

SETTINGS = {
    "type": "Settings",
    "audio": {"input": {"encoding": "linear16", "sample_rate": 16000}},
    "agent": {
        "think": {
            "provider": {"type": "open_ai", "model": "gpt-4o-mini"},
            "endpoint": {"url": "https://llm.example/v1", "headers": {"authorization": "sk-x"}},
        }
    },
}
FRAME = encode(SETTINGS)


def frame(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


def ready_protocol(**kwargs: Any) -> AgentProtocol:
    proto = AgentProtocol(FRAME, **kwargs)
    proto.connection_made()
    proto.receive_text(frame(type="Welcome", request_id="r-1"))
    proto.settings_sent()
    proto.receive_text(frame(type="SettingsApplied"))
    assert proto.phase is Phase.READY
    return proto


# ------------------------------------------------------------------------------ the handshake


def test_phases_of_a_session_in_order_and_each_change_reported_once() -> None:
    proto = AgentProtocol(FRAME)
    seen: list[Phase] = []
    proto.on_phase = seen.append
    assert proto.phase is Phase.CONNECTING and not proto.ready
    proto.connection_made()
    welcome = proto.receive_text(frame(type="Welcome", request_id="req-7"))
    assert isinstance(welcome, m.Welcome) and proto.request_id == "req-7"
    assert proto.settings_frame == FRAME
    proto.settings_sent()  # the same phase again: not reported twice
    applied = proto.receive_text(frame(type="SettingsApplied"))
    assert proto.ready and isinstance(applied, m.SettingsApplied)
    assert applied.settings == SETTINGS  # the seed API's SettingsAppliedResponse.settings
    proto.connection_lost()
    assert seen == [Phase.AWAITING_WELCOME, Phase.AWAITING_APPLIED, Phase.READY, Phase.CLOSED]
    assert proto.messages_sent == 1 and proto.messages_received == 2


def test_an_error_before_settings_applied_rejects_the_settings() -> None:
    proto = AgentProtocol(FRAME)
    proto.connection_made()
    proto.receive_text(frame(type="Welcome", request_id="req-9"))
    proto.settings_sent()
    proto.receive_text(
        frame(type="Error", code="UNPARSABLE_CLIENT_MESSAGE", description="Check agent.x.")
    )
    assert proto.phase is Phase.REJECTED
    assert isinstance(proto.rejection, SettingsRejected)
    assert proto.rejection.code == "UNPARSABLE_CLIENT_MESSAGE"
    assert proto.rejection.request_id == "req-9"
    assert "Check agent.x." in str(proto.rejection)
    # A late SettingsApplied does not undo the rejection.
    proto.receive_text(frame(type="SettingsApplied"))
    assert proto.phase is Phase.REJECTED


def test_an_error_after_ready_is_remembered_not_a_rejection() -> None:
    proto = ready_protocol()
    proto.receive_text(frame(type="Error", code="SERVER_GOING_AWAY", description="bye"))
    assert proto.phase is Phase.READY and proto.rejection is None
    assert proto.last_error is not None and proto.last_error.code == "SERVER_GOING_AWAY"


def test_close_frame_is_recorded() -> None:
    proto = ready_protocol()
    proto.receive_close(1011, "oops")
    assert (proto.close_code, proto.close_reason) == (1011, "oops")


# ------------------------------------------------------------------------------ frames out


def test_settings_cannot_be_prepared_a_second_time() -> None:
    proto = ready_protocol()
    with pytest.raises(SettingsError, match="only be sent once"):
        proto.prepare(msgspec.convert(SETTINGS, m.Settings))


def test_a_response_without_id_answers_the_oldest_pending_call_of_its_name() -> None:
    proto = ready_protocol()
    proto.receive_text(
        encode(
            m.FunctionCallRequest(
                functions=[
                    m.FunctionCallRequestItem(id="a1", name="lookup", client_side=True),
                    m.FunctionCallRequestItem(id="b1", name="other", client_side=True),
                    m.FunctionCallRequestItem(id="s1", name="server", client_side=False),
                ]
            )
        )
    )
    proto.receive_text(
        frame(type="FunctionCallRequest", functions=[{"id": "a2", "name": "lookup"}])
    )  # client_side omitted: possibly ours
    assert proto.pending.as_dict() == {"a1": "lookup", "b1": "other", "a2": "lookup"}
    sent = proto.prepare(m.FunctionCallResponse(name="lookup", result='{"ok":1}'))
    assert json.loads(sent or b"") == {
        "type": "FunctionCallResponse",
        "name": "lookup",
        "content": '{"ok":1}',
        "id": "a1",
    }
    assert list(proto.pending.as_dict()) == ["b1", "a2"]
    proto.prepare(m.FunctionCallResponse(id="a2", name="lookup", content="x"))
    assert list(proto.pending.as_dict()) == ["b1"]
    with pytest.raises(
        SettingsError, match=r"no pending FunctionCallRequest for function 'lookup'"
    ):
        proto.prepare(m.FunctionCallResponse(name="lookup", content="x"))
    proto.receive_text(
        frame(type="FunctionCallCancelled", functions=[{"id": "b1", "name": "other"}])
    )
    assert proto.pending.as_dict() == {}


def test_pending_calls_rule_shared_with_the_emulator() -> None:
    calls = PendingCalls()
    calls.add("1", "f")
    calls.add("2", "g")
    calls.add("3", "f")
    assert len(calls) == 3 and "2" in calls
    assert calls.resolve("f", None) == "1"
    assert calls.resolve("f", "3") == "3"
    assert calls.resolve("f", None) is None
    assert calls.resolve("g", "nope") is None and "2" in calls
    assert calls.discard("2") == "g" and calls.discard("2") is None


def test_frames_are_held_in_order_until_ready_and_audio_is_bounded() -> None:
    proto = AgentProtocol(FRAME, max_held_audio=10)
    proto.hold(True, b"aaaa")
    proto.hold(False, b'{"type":"KeepAlive"}')
    proto.hold(True, b"bbbb")
    proto.hold(True, b"cccc")  # 12 bytes of audio > 10: the oldest chunk goes
    assert proto.dropped_before_ready == 1 and proto.held_audio_bytes == 8
    first = proto.take_held()
    assert first == (False, b'{"type":"KeepAlive"}')
    second = proto.take_held()
    assert second == (True, b"bbbb") and proto.held_audio_bytes == 4
    proto.unhold(True, b"bbbb")  # its write failed: it goes back first
    assert proto.held == 2 and proto.held_audio_bytes == 8
    assert proto.held_frames() == [(True, b"bbbb"), (True, b"cccc")]
    assert proto.held == 0 and proto.held_audio_bytes == 0 and proto.take_held() is None


def test_sent_counters() -> None:
    proto = ready_protocol()
    proto.text_sent(b'{"type":"KeepAlive"}')
    proto.audio_sent(320)
    proto.audio_sent(320)
    assert (proto.messages_sent, proto.audio_frames_sent, proto.audio_bytes_sent) == (2, 2, 640)


# ------------------------------------------------------------------------------ the server side


@pytest.mark.parametrize(
    ("phase", "kind", "binary", "code"),
    [
        (Phase.AWAITING_WELCOME, "Settings", False, None),
        (
            Phase.AWAITING_APPLIED,
            "InjectUserMessage",
            False,
            "NON_SETTINGS_MESSAGE_BEFORE_SETTINGS",
        ),
        (Phase.AWAITING_APPLIED, "", True, "BINARY_MESSAGE_BEFORE_SETTINGS"),
        (Phase.READY, "Settings", False, "SETTINGS_ALREADY_APPLIED"),
        (Phase.READY, "KeepAlive", False, None),
        (Phase.READY, "", True, None),
    ],
)
def test_client_order_rule(phase: Phase, kind: str, binary: bool, code: str | None) -> None:
    error = client_order_error(phase, kind, binary=binary)
    assert (error.code if error else None) == code
    if error is not None and not binary and code == "NON_SETTINGS_MESSAGE_BEFORE_SETTINGS":
        assert error.description == "Received InjectUserMessage before Settings."


# ------------------------------------------------------------------------------ frames in


def test_decoding_never_raises_whatever_the_bytes() -> None:
    proto = ready_protocol()
    rng = random.Random(1234)
    corpus = [
        b"",
        b"\xff\xfe\x00",
        b'{"type":"ConversationText","content":"\xff\xfe"}',
        b"[" * 5000 + b"]" * 5000,
        b'{"a":' * 3000 + b"1" + b"}" * 3000,
        b'{"type":"ConversationText","role":"user","x":' + b"[" * 3000 + b"]" * 3000 + b"}",
        b'{"type":7}',
        b'"Welcome"',
        b"null",
    ]
    corpus += [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64))) for _ in range(2000)]
    pieces = [b"{", b"}", b"[", b"]", b'"type"', b":", b",", b'"Welcome"', b"1e999", b"\\u"]
    corpus += [b"".join(rng.choice(pieces) for _ in range(20)) for _ in range(2000)]
    for data in corpus:
        item = proto.receive_text(data)  # must not raise
        assert isinstance(item, m.ServerMessage | m.Unhandled)
    assert proto.messages_received == len(corpus) + 2
    assert proto.unhandled_received >= len(corpus) - 50
    assert proto.phase is Phase.READY


def test_hooks_run_in_order_and_a_failing_hook_does_not_stop_the_stream(
    caplog: pytest.LogCaptureFixture,
) -> None:
    proto = ready_protocol()
    calls: list[str] = []

    def boom(item: Any) -> None:
        raise RuntimeError("hook broke")

    proto.add_hook(m.ConversationText, lambda i: calls.append(f"text:{i.content}"))
    proto.add_hook(m.ConversationText, boom)
    proto.add_hook(m.ConversationText, lambda i: calls.append("second"))
    proto.add_hook(None, lambda i: calls.append(type(i).__name__))
    with caplog.at_level(logging.ERROR, logger="deepgram_agent"):
        item = proto.receive_text(frame(type="ConversationText", role="user", content="hi"))
    audio = proto.receive_binary(b"\x01\x02")
    assert isinstance(item, m.ConversationText) and audio == b"\x01\x02"
    assert calls == ["text:hi", "second", "ConversationText", "bytes"]
    assert "a message hook raised" in caplog.text
    assert (proto.audio_frames_received, proto.audio_bytes_received) == (1, 2)


def test_garbage_frames_are_logged_a_few_times_then_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    proto = ready_protocol()
    with caplog.at_level(logging.WARNING, logger="deepgram_agent"):
        for _ in range(1000):
            proto.receive_text(b"not json")
    lines = [r for r in caplog.records if "undecodable" in r.getMessage()]
    assert 1 <= len(lines) <= 6  # the first few of this 10 s window, never one per frame
    assert proto.unhandled_received == 1000


def test_started_speaking_messages_get_the_seed_timestamp() -> None:
    proto = ready_protocol()
    started = proto.receive_text(frame(type="UserStartedSpeaking"))
    assert isinstance(started, m.UserStartedSpeaking)
    assert started.timestamp.endswith("+00:00") and "T" in started.timestamp
    assert m.UserStartedSpeaking().timestamp == ""


def test_the_wire_log_shows_every_frame_and_redacts_the_settings(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.DEBUG, logger="deepgram_agent.wire"):
        proto = AgentProtocol(FRAME)
        proto.connection_made()
        proto.receive_text(frame(type="Welcome", request_id="r"))
        proto.settings_sent()
        proto.receive_text(frame(type="SettingsApplied"))
        proto.text_sent(b'{"type":"KeepAlive"}')
        for _ in range(3):
            proto.receive_binary(b"\x00" * 480)
    text = caplog.text
    assert "<- Welcome" in text and "<- SettingsApplied" in text
    assert "-> Settings" in text and "-> KeepAlive 20 B" in text
    assert "sk-x" not in text and "***" in text


# ------------------------------------------------------------------------------ the wire log


def test_the_wire_log_at_trace_level_shows_every_audio_frame_and_the_close(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from deepgram_agent._protocol import TRACE

    with caplog.at_level(TRACE, logger="deepgram_agent.wire"):
        proto = AgentProtocol(b"not JSON at all")  # hand-made: the log must still say so
        proto.connection_made()
        proto.receive_text(frame(type="Welcome", request_id="r-9"))
        proto.settings_sent()
        proto.receive_text(frame(type="SettingsApplied"))
        proto.receive_binary(b"\x00" * 960)
        proto.audio_sent(640)
        proto.receive_close(1000, "bye")
    assert repr(proto) == "<AgentProtocol READY request_id='r-9'>"
    lines = [r.getMessage() for r in caplog.records if r.name == "deepgram_agent.wire"]
    assert "-> Settings 15 B (not JSON)" in lines
    assert "<- audio 960 B" in lines and "-> audio 640 B" in lines
    assert "<- close 1000 'bye'" in lines
