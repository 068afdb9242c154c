"""Decoding every server message of the wire reference (docs/protocol.md 6 and the 9.5 transcript).

The JSON below is copied from the protocol reference as data (facts of the wire); the reference
file itself lives outside the repository and is not read at test time.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from deepgram_agent import messages as m
from deepgram_agent._codec import decode_server, encode

# (type, exact JSON text, expected attribute values) -- docs/protocol.md section 6
SECTION_6: list[tuple[type[m.ServerMessage], str, dict[str, Any]]] = [
    (
        m.Welcome,
        '{ "type": "Welcome", "request_id": "7e1c4a92-35b0-4d8e-a1f6-0c93b2d57e10" }',
        {"request_id": "7e1c4a92-35b0-4d8e-a1f6-0c93b2d57e10"},
    ),
    (m.SettingsApplied, '{ "type": "SettingsApplied" }', {}),
    (
        m.ConversationText,
        '{ "type": "ConversationText", "role": "assistant",'
        ' "content": "Your order shipped this morning.", "conversational_behavior": "default" }',
        {
            "role": "assistant",
            "content": "Your order shipped this morning.",
            "conversational_behavior": "default",
        },
    ),
    (m.UserStartedSpeaking, '{ "type": "UserStartedSpeaking" }', {}),
    (
        m.AgentThinking,
        '{ "type": "AgentThinking", "content": "User wants order status; call lookup_order." }',
        {"content": "User wants order status; call lookup_order."},
    ),
    (
        m.FunctionCallRequest,
        '{ "type": "FunctionCallRequest",'
        ' "functions": [ { "id": "call_Qx7rT2mLs9Vb", "name": "lookup_order",'
        ' "arguments": "{\\"order_id\\":\\"4417\\"}", "client_side": true } ] }',
        {"call_id": "call_Qx7rT2mLs9Vb"},
    ),
    (
        m.FunctionCallCancelled,
        '{ "type": "FunctionCallCancelled",'
        ' "functions": [ { "id": "call_Qx7rT2mLs9Vb", "name": "book_slot" } ] }',
        {},
    ),
    (
        m.ServerFunctionCallResponse,
        '{ "type": "FunctionCallResponse", "id": "call_K2pd8", "name": "open_ticket",'
        ' "content": "{\\"ticket\\":\\"SUP-8812\\"}" }',
        {"id": "call_K2pd8", "name": "open_ticket", "content": '{"ticket":"SUP-8812"}'},
    ),
    (
        m.AgentStartedSpeaking,
        '{ "type": "AgentStartedSpeaking", "total_latency": 0.912, "tts_latency": 0.318,'
        ' "ttt_latency": 0.594 }',
        {"total_latency": 0.912, "tts_latency": 0.318, "ttt_latency": 0.594},
    ),
    (m.AgentAudioDone, '{ "type": "AgentAudioDone" }', {}),
    (m.PromptUpdated, '{ "type": "PromptUpdated" }', {}),
    (m.SpeakUpdated, '{ "type": "SpeakUpdated" }', {}),
    (m.ThinkUpdated, '{ "type": "ThinkUpdated" }', {}),
    (m.ListenUpdated, '{ "type": "ListenUpdated" }', {}),
    (m.ThinkLiveUpdated, '{ "type": "ThinkLiveUpdated" }', {}),
    (
        m.InjectionRefused,
        '{ "type": "InjectionRefused", "message": "Agent is currently speaking." }',
        {"message": "Agent is currently speaking."},
    ),
    (
        m.LatencyReport,
        '{ "type": "LatencyReport", "stt_latency": 0.11, "ttt_token_latency": 0.33,'
        ' "ttt_text_latency": 0.35, "tts_latency": 0.21, "total_latency": 0.78 }',
        {
            "stt_latency": 0.11,
            "ttt_token_latency": 0.33,
            "ttt_text_latency": 0.35,
            "ttt_tool_latency": None,
            "tts_latency": 0.21,
            "total_latency": 0.78,
        },
    ),
    (
        m.FrustrationDetected,
        '{ "type": "FrustrationDetected", "count": 3, "escalated": true }',
        {"count": 3, "escalated": True},
    ),
    (
        m.History,
        '{ "type": "History", "function_calls": [ { "id": "call_Qx7rT2mLs9Vb",'
        ' "name": "lookup_order", "client_side": true, "arguments": "{\\"order_id\\": \\"4417\\"}",'
        ' "response": "{\\"status\\":\\"delivered\\"}" } ] }',
        {"is_function_calls": True, "role": None},
    ),
    (
        m.History,
        '{ "type": "History", "role": "user", "content": "Where is my order 4417?" }',
        {"role": "user", "content": "Where is my order 4417?", "is_function_calls": False},
    ),
    (
        m.CustomFromThinkProvider,
        '{ "type": "__customFromThinkProvider",'
        ' "content": { "trace_id": "llm-5521", "cache_hit": true } }',
        {"content": {"trace_id": "llm-5521", "cache_hit": True}},
    ),
    (
        m.Warning,
        '{ "type": "Warning", "code": "SLOW_THINK_REQUEST",'
        ' "description": "Think request is taking longer than expected." }',
        {"code": "SLOW_THINK_REQUEST", "message": "Think request is taking longer than expected."},
    ),
    (
        m.Error,
        '{ "type": "Error", "code": "UNPARSABLE_CLIENT_MESSAGE", "description": "Error parsing'
        ' client message. Check the agent.listen.model field against the API spec." }',
        {
            "code": "UNPARSABLE_CLIENT_MESSAGE",
            "description": "Error parsing client message. Check the agent.listen.model field "
            "against the API spec.",
        },
    ),
]

# Every server line of the constructed transcript, docs/protocol.md 9.5 (exact text).
TRANSCRIPT_9_5: list[tuple[type[m.ServerMessage], str]] = [
    (m.Welcome, '{"type":"Welcome","request_id":"2b0f9e6a-0d1c-4f3e-9a77-51c8e2d4b6a0"}'),
    (m.SettingsApplied, '{"type":"SettingsApplied"}'),
    (
        m.ConversationText,
        '{"type":"ConversationText","role":"assistant","content":"Hello!",'
        '"conversational_behavior":"default"}',
    ),
    (m.History, '{"type":"History","role":"assistant","content":"Hello!"}'),
    (m.AgentAudioDone, '{"type":"AgentAudioDone"}'),
    (m.UserStartedSpeaking, '{"type":"UserStartedSpeaking"}'),
    (
        m.ConversationText,
        '{"type":"ConversationText","role":"user","content":"What time is it?",'
        '"conversational_behavior":"default"}',
    ),
    (m.History, '{"type":"History","role":"user","content":"What time is it?"}'),
    (m.AgentThinking, '{"type":"AgentThinking","content":"Need the current time."}'),
    (
        m.FunctionCallRequest,
        '{"type":"FunctionCallRequest","functions":[{"id":"call_Zt41","name":"get_time",'
        '"arguments":"{}","client_side":true}]}',
    ),
    (
        m.History,
        '{"type":"History","function_calls":[{"id":"call_Zt41","name":"get_time",'
        '"client_side":true,"arguments":"{}","response":"{\\"time\\":\\"14:05\\"}"}]}',
    ),
    (
        m.ConversationText,
        '{"type":"ConversationText","role":"assistant","content":"It\'s five past two.",'
        '"conversational_behavior":"default"}',
    ),
    (m.History, '{"type":"History","role":"assistant","content":"It\'s five past two."}'),
    (
        m.AgentStartedSpeaking,
        '{"type":"AgentStartedSpeaking","total_latency":1.21,"tts_latency":0.29,"ttt_latency":0.92}',
    ),
    (
        m.LatencyReport,
        '{"type":"LatencyReport","ttt_token_latency":0.41,"ttt_tool_latency":0.41,'
        '"tts_latency":0.29,"total_latency":1.21}',
    ),
    (m.AgentAudioDone, '{"type":"AgentAudioDone"}'),
]


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


@pytest.mark.parametrize(
    ("cls", "text", "attrs"), SECTION_6, ids=[c[0].__name__ for c in SECTION_6]
)
def test_section_6_examples_decode(
    cls: type[m.ServerMessage], text: str, attrs: dict[str, Any]
) -> None:
    msg = decode_server(text.encode())
    assert type(msg) is cls
    assert msg.type == json.loads(text)["type"]
    for name, value in attrs.items():
        assert getattr(msg, name) == value, name


@pytest.mark.parametrize(("cls", "text"), TRANSCRIPT_9_5)
def test_transcript_9_5_server_lines_decode(cls: type[m.ServerMessage], text: str) -> None:
    msg = decode_server(text.encode())
    assert type(msg) is cls
    # Every field of the frame survives: re-encoding gives the same data back.
    assert _drop_none(msg.to_dict()) == json.loads(text)


def test_section_6_every_server_type_is_covered() -> None:
    covered = {json.loads(text)["type"] for _, text, _ in SECTION_6}
    assert covered == set(m.SERVER_MESSAGE_TYPES)


def test_transcript_function_call_details() -> None:
    msg = decode_server(TRANSCRIPT_9_5[9][1].encode())
    assert isinstance(msg, m.FunctionCallRequest)
    item = msg.functions[0]
    assert (item.id, item.name, item.arguments, item.client_side) == (
        "call_Zt41",
        "get_time",
        "{}",
        True,
    )
    history = decode_server(TRANSCRIPT_9_5[10][1].encode())
    assert isinstance(history, m.History)
    assert history.function_calls is not None
    assert history.function_calls[0].response == '{"time":"14:05"}'


# ---- seed attribute names --------------------------------------------------------------------


def test_seed_names_conversation_text_and_welcome() -> None:
    text = decode_server(SECTION_6[2][1].encode())
    assert isinstance(text, m.ConversationText)
    assert text.text == "Your order shipped this morning."
    assert text.role == "assistant"
    welcome = decode_server(SECTION_6[0][1].encode())
    assert isinstance(welcome, m.Welcome)
    assert "7e1c4a92-35b0-4d8e-a1f6-0c93b2d57e10" in welcome.message


def test_seed_names_function_call_request() -> None:
    msg = decode_server(SECTION_6[5][1].encode())
    assert isinstance(msg, m.FunctionCallRequest)
    call = msg.function_call
    assert call is not None
    assert call.name == "lookup_order"
    assert call.arguments == {"order_id": "4417"}
    assert isinstance(call.arguments, dict)
    assert msg.call_id == "call_Qx7rT2mLs9Vb"
    assert call.id == "call_Qx7rT2mLs9Vb"


def test_seed_function_call_with_bad_arguments_text() -> None:
    raw = b'{"type":"FunctionCallRequest","functions":[{"id":"c1","name":"f","arguments":"[1,"}]}'
    msg = decode_server(raw)
    assert isinstance(msg, m.FunctionCallRequest)
    assert msg.function_call is not None
    assert msg.function_call.arguments == {}
    assert msg.function_call.raw_arguments == "[1,"


def test_empty_function_call_request() -> None:
    msg = decode_server(b'{"type":"FunctionCallRequest","functions":[]}')
    assert isinstance(msg, m.FunctionCallRequest)
    assert msg.function_call is None
    assert msg.call_id == ""


def test_seed_names_error() -> None:
    msg = decode_server(SECTION_6[-1][1].encode())
    assert isinstance(msg, m.Error)
    assert msg.code == "UNPARSABLE_CLIENT_MESSAGE"
    assert msg.message == msg.description
    assert msg.description.startswith("Error parsing client message.")
    assert str(msg).startswith("UNPARSABLE_CLIENT_MESSAGE: Error parsing")


def test_error_without_code_decodes() -> None:
    msg = decode_server(b'{"type":"Error","description":"Failed to resolve endpoint: x"}')
    assert isinstance(msg, m.Error)
    assert msg.code == ""
    assert msg.description == "Failed to resolve endpoint: x"
    assert msg.message == "Failed to resolve endpoint: x"


def test_error_in_the_recorded_v4_shape_keeps_message() -> None:
    msg = decode_server(b'{"type":"Error","description":"boom","message":"older text"}')
    assert isinstance(msg, m.Error)
    assert msg.message == "older text"


def test_injection_refused_without_message() -> None:
    msg = decode_server(b'{"type":"InjectionRefused"}')
    assert isinstance(msg, m.InjectionRefused)
    assert msg.message == ""


def test_conversation_text_without_behavior_defaults() -> None:
    msg = decode_server(b'{"type":"ConversationText","role":"user","content":"hi"}')
    assert isinstance(msg, m.ConversationText)
    assert msg.conversational_behavior == "default"


def test_extra_server_keys_are_tolerated() -> None:
    msg = decode_server(b'{"type":"Welcome","request_id":"r","brand_new":{"x":1}}')
    assert isinstance(msg, m.Welcome)
    assert msg.request_id == "r"


# ---- Unhandled -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [b'{"type":"EndOfThought"}', b'{"type":"SomethingNew","payload":[1,2,3]}'],
)
def test_unknown_types_are_unhandled_without_reason(raw: bytes) -> None:
    msg = decode_server(raw)
    assert isinstance(msg, m.Unhandled)
    assert msg.reason is None
    assert not msg.is_protocol_error
    assert msg.raw == raw
    assert msg.message_type == json.loads(raw)["type"]
    assert msg.json() == json.loads(raw)


@pytest.mark.parametrize(
    ("raw", "expected", "repair"),
    [
        (b'{"type":"Welcome","request_id":42}', m.Welcome(request_id="42"), "$.request_id"),
        (
            b'{"type":"FunctionCallRequest","functions":"nope"}',
            m.FunctionCallRequest(),
            "$.functions",
        ),
        (
            b'{"type":"AgentStartedSpeaking","total_latency":"fast","tts_latency":0.5}',
            m.AgentStartedSpeaking(tts_latency=0.5),
            "$.total_latency",
        ),
        (
            b'{"type":"FunctionCallRequest","functions":[{"id":"c","name":"f","arguments":{"a":1}}]}',
            m.FunctionCallRequest(
                functions=[m.FunctionCallRequestItem(id="c", name="f", arguments='{"a":1}')]
            ),
            "$.functions[0].arguments",
        ),
        (
            b'{"type":"ConversationText","role":"user","content":null,"mood":"happy"}',
            m.ConversationText(role="user"),
            "$.content",
        ),
    ],
)
def test_known_types_with_fields_of_the_wrong_type_arrive_repaired(
    raw: bytes, expected: m.ServerMessage, repair: str
) -> None:
    msg = decode_server(raw)
    assert type(msg) is type(expected)
    assert msg.to_dict() | {"mood": None} == expected.to_dict() | msg.extra | {"mood": None}
    assert msg.raw == raw
    assert msg.wire_ is not None and any(r.startswith(repair) for r in msg.wire_.repairs)


def test_a_new_field_on_a_known_message_stays_reachable() -> None:
    raw = b'{"type":"AgentAudioDone","latency_ms":12,"nested":{"a":[1,2]}}'
    msg = decode_server(raw)
    assert isinstance(msg, m.AgentAudioDone)
    assert msg.extra == {"latency_ms": 12, "nested": {"a": [1, 2]}}
    assert msg.raw == raw
    assert msg.to_dict() == {"type": "AgentAudioDone", "latency_ms": 12, "nested": {"a": [1, 2]}}
    exact = decode_server(b'{"type":"AgentAudioDone"}')
    assert exact.raw is None and exact.extra == {}  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("raw", "message_type", "reason_part"),
    [
        (b"not json at all", "", "not valid JSON"),
        (b'{"type":"Welcome","request_id":', "", "not valid JSON"),
        (b"", "", "empty"),
        (b'[{"type":"Welcome"}]', "", ""),
        (b'{"request_id":"r"}', "", ""),
        (b'{"type":7}', "", ""),
        (b'"Welcome"', "", ""),
    ],
)
def test_malformed_frames_are_unhandled_with_reason(
    raw: bytes, message_type: str, reason_part: str
) -> None:
    msg = decode_server(raw)
    assert isinstance(msg, m.Unhandled)
    assert msg.reason, "a malformed frame must say why"
    assert reason_part in msg.reason
    assert msg.is_protocol_error
    assert msg.raw == raw
    assert msg.message_type == message_type


def test_unhandled_repr_is_bounded() -> None:
    raw = b'{"type":"Big","blob":"' + b"x" * 1000 + b'"}'
    msg = decode_server(raw)
    assert isinstance(msg, m.Unhandled)
    text = repr(msg)
    assert f"{len(raw)} bytes" in text
    assert len(text) < 400


def test_unhandled_json_of_non_json_is_none() -> None:
    msg = decode_server(b"\xff\xfe")
    assert isinstance(msg, m.Unhandled)
    assert msg.json() is None


# ---- client structs --------------------------------------------------------------------------


def test_client_structs_omit_unset_and_carry_type() -> None:
    msg = m.FunctionCallResponse(name="f", content="{}")
    assert json.loads(encode(msg)) == {"type": "FunctionCallResponse", "name": "f", "content": "{}"}
    assert msg.type == "FunctionCallResponse"
    assert json.loads(encode(m.KeepAlive())) == {"type": "KeepAlive"}


def test_client_structs_are_strict() -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(b'{"prompt":"x","extra":1}', type=m.UpdatePrompt)


def test_server_message_to_json_round_trips() -> None:
    msg = decode_server(TRANSCRIPT_9_5[13][1].encode())
    assert isinstance(msg, m.AgentStartedSpeaking)
    assert decode_server(msg.to_json().encode()) == msg
    assert str(msg) == msg.to_json()


# --------------------------------------------------------------------- SDK events as data


def test_sdk_events_serialise_and_unhandled_round_trips() -> None:
    gone = m.Reconnecting(attempt=1, delay=0.5, cause="dropped")
    assert gone.to_dict() == {
        "type": "Reconnecting",
        "attempt": 1,
        "delay": 0.5,
        "cause": "dropped",
    }
    assert json.loads(str(gone)) == gone.to_dict() == json.loads(gone.to_json())
    back = m.Reconnected(attempt=1, request_id="r", downtime=0.2, resent=["InjectUserMessage"])
    assert json.loads(str(back))["resent"] == ["InjectUserMessage"]
    assert back.to_dict()["type"] == "Reconnected"

    odd = m.Unhandled(message_type="EndOfThought", raw=b'{"type":"EndOfThought"}')
    assert json.loads(str(odd)) == {
        "type": "Unhandled",
        "message_type": "EndOfThought",
        "reason": None,
        "raw": '{"type":"EndOfThought"}',
        "data": {"type": "EndOfThought"},
    }
    assert m.Unhandled.from_dict(odd.to_dict()) == odd
    assert m.Unhandled.from_dict({"raw": b"\xff", "reason": "bad"}).raw == b"\xff"
    assert m.Unhandled(message_type="", raw=b"\xff{").json() is None


def test_function_call_response_takes_the_classic_positional_order() -> None:
    r = m.FunctionCallResponse("call_1", "get_time", "noon")
    assert (r.id, r.name, r.content) == ("call_1", "get_time", "noon")
    with pytest.raises(TypeError, match="at most"):
        m.FunctionCallResponse("a", "b", "c", "d")
    with pytest.raises(TypeError, match="'name' twice"):
        m.FunctionCallResponse("a", "b", name="c")


def test_from_json_wants_an_object_and_settings_applied_built_by_hand_has_no_settings() -> None:
    with pytest.raises(msgspec.ValidationError, match="expected a JSON object, got list"):
        m.Welcome.from_json("[1, 2]")
    assert m.SettingsApplied().settings == {}


def test_decoding_never_raises_on_odd_frames() -> None:
    bad_utf8 = b'{"type":"ConversationText","role":"user","content":"\xff\xfe"}'
    msg = decode_server(bad_utf8)
    assert isinstance(msg, m.Unhandled) and msg.raw == bad_utf8
    assert msg.reason is not None and "UTF-8" in msg.reason
    # A known message with an unknown nested key and a wrong type is repaired, not dropped.
    frame = (
        b'{"type":"FunctionCallRequest","functions":[{"id":"c","name":"f","arguments":"{}",'
        b'"client_side":true,"new_nested_key":1}],"when":{"at":1}}'
    )
    request = decode_server(frame)
    assert isinstance(request, m.FunctionCallRequest), request
    assert request.functions[0].name == "f"
    assert request.extra == {"when": {"at": 1}}
    assert any("new_nested_key" in r for r in request.wire_.repairs)  # type: ignore[union-attr]
    assert "raw=" in repr(request.wire_) and "repairs=" in repr(request.wire_)
    # A nested field of the wrong type gets its default; the repair names its path.
    nested = decode_server(
        b'{"type":"FunctionCallRequest","functions":[{"id":"c","name":"f","arguments":"{}",'
        b'"client_side":"yes"}]}'
    )
    assert isinstance(nested, m.FunctionCallRequest) and nested.functions[0].client_side is None
    assert nested.wire_ is not None
    assert nested.wire_.repairs[0].startswith("$.functions[0].client_side: Expected")
