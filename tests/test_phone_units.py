"""Fast unit tests of the pieces under the bridges: G.711, BargeIn, carriers, presets, TwiML."""

from __future__ import annotations

import base64
import time
from array import array

import msgspec
import pytest

from deepgram_agent import SettingsError
from deepgram_agent import messages as m
from deepgram_agent.audio import BargeIn, BargeInAction, StreamConverter, _g711, convert
from deepgram_agent.presets import (
    SettingsTemplate,
    browser_settings,
    deep_merge,
    telephony_settings,
)
from deepgram_agent.telephony import (
    CarrierFrameError,
    TelnyxCarrier,
    TwilioCarrier,
    twilio_signature,
    twiml_connect_stream,
    valid_twilio_signature,
)
from deepgram_agent.telephony._carrier import Dtmf, Media, Other, PlaybackMark, Start, Stop
from deepgram_agent.testing import _audio as emulator_audio

A = BargeInAction

# ---------------------------------------------------------------------------------- G.711

ALL_PCM = array("h", range(-32768, 32768)).tobytes()


@pytest.mark.parametrize("law", ["mulaw", "alaw"])
@pytest.mark.parametrize("numpy", [True, False])
def test_g711_tables_match_the_reference_for_every_sample(
    law: str, numpy: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if numpy:
        pytest.importorskip("numpy")
    else:
        monkeypatch.setattr(_g711, "_np_module", None)
        monkeypatch.setattr(_g711, "_np_checked", True)
    enc_ref = _g711.mulaw_encode_sample if law == "mulaw" else _g711.alaw_encode_sample
    dec_ref = _g711.mulaw_decode_sample if law == "mulaw" else _g711.alaw_decode_sample
    encode = _g711.pcm_to_mulaw if law == "mulaw" else _g711.pcm_to_alaw
    decode = _g711.pcm_from_mulaw if law == "mulaw" else _g711.pcm_from_alaw
    assert encode(ALL_PCM) == bytes(enc_ref(s) for s in range(-32768, 32768))
    decoded = array("h")
    decoded.frombytes(decode(bytes(range(256))))
    assert decoded.tolist() == [dec_ref(b) for b in range(256)]
    assert encode(b"\x01") == b""  # a lone byte is not a sample
    assert encode(memoryview(ALL_PCM)[:4]) == encode(ALL_PCM[:4])


def test_emulator_uses_the_package_codec() -> None:
    assert emulator_audio.mulaw_encode is _g711.mulaw_encode
    assert emulator_audio.alaw_decode is _g711.alaw_decode
    pcm = array("h", [0, 1000, -1000, 32767, -32768])
    assert _g711.mulaw_decode(_g711.mulaw_encode(pcm)).tolist() == [0, 988, -988, 32124, -32124]


def test_g711_is_fast() -> None:
    """One second of 8 kHz audio: the old per-sample Python took ~3.5 ms to encode."""
    pcm = ALL_PCM[: 2 * 8000]
    _g711.pcm_to_mulaw(pcm)  # build the tables
    t0 = time.perf_counter()
    for _ in range(50):
        _g711.pcm_from_mulaw(_g711.pcm_to_mulaw(pcm))
    per_second = (time.perf_counter() - t0) / 50
    assert per_second < 0.003  # generous for a loaded CI machine; ~0.1 ms with numpy


def test_stream_converter() -> None:
    same = StreamConverter(("mulaw", 8000), ("mulaw", 8000))
    assert same.identity and same.process(b"\x01\x02") == b"\x01\x02"
    law = StreamConverter(("linear16", 8000), ("alaw", 8000))
    assert law.process(ALL_PCM[:200]) == convert(ALL_PCM[:200], "linear16", "alaw")
    with pytest.raises(ValueError, match="codec"):
        StreamConverter(("mp3", 8000), ("mulaw", 8000))


# ---------------------------------------------------------------------------------- BargeIn

AUDIO = b"\x00" * 160


def test_barge_in_without_agent_started_speaking() -> None:
    """The real server sends no AgentStartedSpeaking without experimental: audio is the cue."""
    gate = BargeIn()
    assert gate.handle(m.ConversationText(role="assistant", content="Hi")) is A.IGNORE
    assert gate.handle(AUDIO) is A.REPLY_START
    assert gate.handle(AUDIO) is A.PLAY
    assert gate.handle(m.UserStartedSpeaking()) is A.FLUSH
    assert gate.muted and gate.interruptions == 1
    assert gate.handle(AUDIO) is A.DROP  # the interrupted reply's audio, still in flight
    assert gate.handle(m.AgentAudioDone()) is A.IGNORE  # ... and its late AgentAudioDone
    assert gate.handle(AUDIO) is A.DROP
    assert gate.handle(m.ConversationText(role="user", content="stop")) is A.IGNORE  # armed
    assert gate.handle(AUDIO) is A.REPLY_START  # the next reply's first audio unmutes
    assert not gate.muted
    assert gate.handle(m.AgentAudioDone()) is A.REPLY_DONE
    assert gate.replies == 2 and gate.dropped_bytes == 320


def test_barge_in_when_agent_audio_done_never_comes() -> None:
    gate = BargeIn()
    gate.handle(AUDIO)
    gate.handle(m.UserStartedSpeaking())
    gate.handle(m.ConversationText(role="assistant", content="Sure."))
    assert gate.handle(AUDIO) is A.REPLY_START
    assert gate.handle(m.AgentAudioDone()) is A.REPLY_DONE


def test_barge_in_repeated_and_idle() -> None:
    gate = BargeIn()
    assert gate.handle(m.UserStartedSpeaking()) is A.FLUSH  # nothing was playing
    assert gate.interruptions == 0
    assert gate.handle(m.UserStartedSpeaking()) is A.FLUSH
    assert gate.handle(m.AgentStartedSpeaking()) is A.IGNORE  # arms too, when it does come
    assert gate.handle(AUDIO) is A.REPLY_START
    assert gate.handle(m.AgentAudioDone()) is A.REPLY_DONE
    assert gate.handle(m.AgentAudioDone()) is A.REPLY_DONE  # a reply without audio
    assert gate.handle(m.Welcome(request_id="x")) is A.IGNORE
    assert "idle" in repr(gate)


def test_barge_in_across_a_reconnect() -> None:
    gate = BargeIn()
    gate.handle(AUDIO)
    reconnected = m.Reconnected(attempt=1, request_id=None, downtime=0.1, context_items=0)
    assert gate.handle(reconnected) is A.REPLY_DONE
    assert gate.handle(AUDIO) is A.REPLY_START
    gate.handle(m.UserStartedSpeaking())
    assert gate.handle(reconnected) is A.IGNORE and not gate.muted


# ---------------------------------------------------------------------------------- carriers


def twilio_start(**start: object) -> str:
    body = {
        "accountSid": "AC1",
        "streamSid": "MZ1",
        "callSid": "CA1",
        "tracks": ["inbound"],
        "customParameters": {"who": "me"},
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        **start,
    }
    return msgspec.json.encode({"event": "start", "sequenceNumber": "1", "start": body}).decode()


def test_twilio_frames() -> None:
    c = TwilioCarrier()
    assert c.parse('{"event":"connected","protocol":"Call","version":"1.0.0"}') == Other(
        "connected"
    )
    event = c.parse(twilio_start())
    assert isinstance(event, Start)
    info = event.info
    assert (info.call_id, info.stream_id, info.account_id) == ("CA1", "MZ1", "AC1")
    assert info.custom_parameters == {"who": "me"} and tuple(info.media_format) == ("mulaw", 8000)
    payload = base64.b64encode(b"\xff" * 160).decode()
    assert c.parse(
        f'{{"event":"media","media":{{"track":"inbound","payload":"{payload}"}}}}'
    ) == Media(b"\xff" * 160, "inbound")
    assert c.parse('{"event":"mark","mark":{"name":"reply-1"}}') == PlaybackMark("reply-1")
    assert c.parse('{"event":"dtmf","dtmf":{"track":"inbound_track","digit":"5"}}') == Dtmf("5")
    assert c.parse('{"event":"stop","stop":{"callSid":"CA1"}}') == Stop()
    assert msgspec.json.decode(c.media(b"\x01")) == {
        "event": "media",
        "streamSid": "MZ1",
        "media": {"payload": "AQ=="},
    }
    assert msgspec.json.decode(c.clear()) == {"event": "clear", "streamSid": "MZ1"}
    assert msgspec.json.decode(c.mark("x")) == {
        "event": "mark",
        "streamSid": "MZ1",
        "mark": {"name": "x"},
    }


@pytest.mark.parametrize(
    ("frame", "why"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "string 'event'"),
        ('{"event":"media"}', "'media' object"),
        ('{"event":"media","media":{"payload":"@@@"}}', "not base64"),
        ('{"event":"media","media":{"payload":7}}', "base64 'payload'"),
        ('{"event":"mark","mark":{}}', "mark.name"),
        ('{"event":"dtmf"}', "dtmf.digit"),
        ('{"event":"start"}', "'start' object"),
        ('{"event":"start","start":{"streamSid":"MZ"}}', "callSid"),
    ],
)
def test_twilio_bad_frames(frame: str, why: str) -> None:
    with pytest.raises(CarrierFrameError, match=why):
        TwilioCarrier().parse(frame)


def test_twilio_refuses_other_formats_and_huge_payloads() -> None:
    with pytest.raises(CarrierFrameError, match="unsupported media format"):
        TwilioCarrier().parse(twilio_start(mediaFormat={"encoding": "audio/opus"}))
    big = base64.b64encode(b"\x00" * 20_000).decode()
    with pytest.raises(CarrierFrameError, match="limit"):
        TwilioCarrier().parse(f'{{"event":"media","media":{{"payload":"{big}"}}}}')
    with pytest.raises(RuntimeError, match="streamSid"):
        TwilioCarrier().clear()


def test_telnyx_frames() -> None:
    c = TelnyxCarrier()
    start = {
        "event": "start",
        "sequence_number": "1",
        "stream_id": "s-1",
        "start": {
            "user_id": "u",
            "call_control_id": "v3:abc",
            "client_state": "c3RhdGU=",
            "media_format": {"encoding": "PCMA", "sample_rate": 8000, "channels": 1},
        },
    }
    event = c.parse(msgspec.json.encode(start))
    assert isinstance(event, Start)
    assert (event.info.call_id, event.info.stream_id) == ("v3:abc", "s-1")
    assert tuple(event.info.media_format) == ("alaw", 8000)
    assert event.info.custom_parameters == {"client_state": "c3RhdGU="}
    assert msgspec.json.decode(c.media(b"\x01")) == {"event": "media", "media": {"payload": "AQ=="}}
    assert msgspec.json.decode(c.clear()) == {"event": "clear"}
    assert c.parse('{"event":"error","payload":{}}') == Other("error")
    start["start"]["media_format"] = {"encoding": "G722"}  # type: ignore[index]
    with pytest.raises(CarrierFrameError, match="PCMU or PCMA"):
        c.parse(msgspec.json.encode(start))


def test_twiml_and_signature() -> None:
    twiml = twiml_connect_stream("wss://example.test/twilio", {"token": 'a"b<c'})
    assert twiml == (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Connect>'
        '<Stream url="wss://example.test/twilio"><Parameter name="token" value=\'a"b&lt;c\'/>'
        "</Stream></Connect></Response>"
    )
    assert '<Stream url="ws://h/twilio"/>' in twiml_connect_stream("ws://h/twilio")
    # The documented construction: URL + sorted name/value pairs, HMAC-SHA1, base64.
    params = {"CallSid": "CA1", "From": "+15550100", "AccountSid": "AC1"}
    sig = twilio_signature("token", "https://h/twilio/voice", params)
    assert len(base64.b64decode(sig)) == 20
    assert valid_twilio_signature("token", "https://h/twilio/voice", params, sig)
    assert not valid_twilio_signature("other", "https://h/twilio/voice", params, sig)
    assert not valid_twilio_signature("token", "https://h/twilio/voice?x=1", params, sig)
    assert not valid_twilio_signature("token", "https://h/twilio/voice", params, None)


# ---------------------------------------------------------------------------------- presets


def test_telephony_preset_sets_both_directions() -> None:
    data = telephony_settings({"agent": {"greeting": "Hi"}})
    assert data["audio"] == {
        "input": {"encoding": "mulaw", "sample_rate": 8000},
        "output": {"encoding": "mulaw", "sample_rate": 8000, "container": "none"},
    }
    assert data["agent"]["greeting"] == "Hi"
    # An explicit wrong output block is replaced too: the line's format wins.
    wrong = {"audio": {"output": {"encoding": "linear16", "sample_rate": 24000}}, "agent": {}}
    assert telephony_settings(wrong)["audio"]["output"]["encoding"] == "mulaw"
    assert telephony_settings(None, encoding="alaw")["audio"]["input"]["encoding"] == "alaw"
    assert telephony_settings('{"agent": {}}')["audio"]["input"]["sample_rate"] == 8000
    assert browser_settings()["audio"]["output"]["sample_rate"] == 24000
    with pytest.raises(SettingsError, match=r"agent\.think"):
        telephony_settings({"agent": {"think": {"provider": "nope"}}})


def test_settings_template_copies_per_call() -> None:
    template = SettingsTemplate(deep_merge(telephony_settings(), {"agent": {"greeting": "Hi"}}))
    one = template.for_call({"agent": {"greeting": "Hello Ada"}})
    two = template.for_call()
    one["agent"]["listen"]["provider"]["model"] = "changed"
    assert two["agent"]["greeting"] == "Hi"
    assert template.base["agent"]["listen"]["provider"]["model"] == "nova-3"
    assert template.for_call({"agent": {"greeting": None}})["agent"].get("greeting") is None
    assert tuple(template.input_format) == ("mulaw", 8000)
    assert tuple(template.output_format) == ("mulaw", 8000)
    with pytest.raises(SettingsError):
        SettingsTemplate({"audio": {"input": {"encoding": 3}}, "agent": {}})
    t0 = time.perf_counter()
    for _ in range(200):
        template.for_call({"agent": {"greeting": "x"}})
    assert (time.perf_counter() - t0) / 200 < 0.002  # ~0.02-0.08 ms measured; generous bound


def test_deep_merge() -> None:
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    out = deep_merge(base, {"a": {"c": [3], "e": {"f": 1}}, "d": None})
    assert out == {"a": {"b": 1, "c": [3], "e": {"f": 1}}}
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": 1}
