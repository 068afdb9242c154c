"""Local validation advises; the server decides (issue 14): documented forms, helpful errors,
open enums, audio encodings, and the emulator's server-side view of the same rules."""

from __future__ import annotations

import copy
import json
import warnings
from typing import Any

import aiohttp
import pytest

from deepgram_agent import DeepgramClient, SettingsError
from deepgram_agent import messages as m
from deepgram_agent._validate import (
    INPUT_ENCODINGS,
    OUTPUT_ENCODINGS,
    all_settings_problems,
    check_agent,
    check_client_message,
    check_settings,
    closest,
    normalize_client_message,
    normalize_settings,
    server_error_description,
    settings_warnings,
)
from deepgram_agent.options import DeepgramAgentWarning, coerce_settings
from deepgram_agent.testing import AgentEmulator
from tests.conftest import KEY, SETTINGS, client_for, scaled, until
from tests.test_emulator import connect, emulator, kinds
from tests.wire_examples import DOCS_FORMS

AUDIO = {"input": {"encoding": "linear16", "sample_rate": 16000}}
VALIDATE_FALSE = "pass validate=False to connect() to send the Settings unchecked"
SEND_RAW = "send the message unchecked with conn.send_raw(...)"


def settings(**agent: Any) -> dict[str, Any]:
    return {"type": "Settings", "audio": copy.deepcopy(AUDIO), "agent": agent}


def rejection(data: Any) -> SettingsError:
    with pytest.raises(SettingsError) as info:
        check_settings(data)
    return info.value


# ---------------------------------------------------------------------------------------------
# Documented forms are accepted, and sent in the form the server takes
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(DOCS_FORMS))
def test_documented_forms_pass_local_validation_without_warnings(name: str) -> None:
    data = DOCS_FORMS[name]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_settings(data)
        typed, sent = coerce_settings(data)
    assert '"language_hint"' not in json.dumps(sent)
    assert all_settings_problems(data) == []
    assert settings_warnings(data) == []
    assert isinstance(typed, m.Settings)


@pytest.mark.anyio
@pytest.mark.parametrize("name", list(DOCS_FORMS))
async def test_documented_forms_connect_to_the_emulator_with_default_options(name: str) -> None:
    data = DOCS_FORMS[name]
    async with AgentEmulator(realtime_audio=False) as emu:
        client = DeepgramClient(api_key="any-key", base_url=emu.url)
        async with client.agent.connect(data) as conn:
            assert conn.settings is not None
        session = emu.sessions[0]
        assert session.state.error is None
        assert session.handshake_status == 101
        (received,) = session.received_json("Settings")
        # What went over the wire is the normalised form.
        assert received == {**normalize_settings(data), "type": "Settings"}


@pytest.mark.anyio
@pytest.mark.parametrize("name", list(DOCS_FORMS))
async def test_documented_forms_sent_verbatim_are_accepted_by_the_emulator(name: str) -> None:
    async with emulator() as emu:
        async with connect(emu) as peer:
            await peer.start(DOCS_FORMS[name])  # raw aiohttp: language_hint itself goes out
        assert emu.sessions[0].state.error is None


@pytest.mark.anyio
async def test_emulator_applies_language_hint_as_language_hints() -> None:
    async with emulator() as emu:
        async with connect(emu) as peer:
            await peer.start(DOCS_FORMS["flux language_hint"])
        state = emu.sessions[0].state
        assert state.listen is not None
        assert state.listen["provider"]["language_hints"] == ["es"]
        assert state.listen_version == "v2"


def test_normalize_settings_rewrites_language_hint_without_touching_the_input() -> None:
    data = settings(
        listen={"provider": {"type": "deepgram", "version": "v2", "model": "flux-general-multi"}}
    )
    data["agent"]["listen"]["provider"]["language_hint"] = "es"
    before = copy.deepcopy(data)
    out = normalize_settings(data)
    assert data == before  # not modified
    assert out["agent"]["listen"]["provider"] == {
        "type": "deepgram",
        "version": "v2",
        "model": "flux-general-multi",
        "language_hints": ["es"],
    }
    # Both forms: merged, no duplicates.
    data["agent"]["listen"]["provider"]["language_hints"] = ["en", "es"]
    data["agent"]["listen"]["provider"]["language_hint"] = ["es", "fr"]
    merged = normalize_settings(data)["agent"]["listen"]["provider"]
    assert merged["language_hints"] == ["en", "es", "fr"] and "language_hint" not in merged
    # Only Flux has the alias: on v1 it stays, and is an unknown key with a suggestion.
    v1 = settings(
        listen={"provider": {"type": "deepgram", "model": "nova-3", "language_hint": "es"}}
    )
    assert normalize_settings(v1) == v1
    err = rejection(v1)
    assert err.path == "agent.listen.provider.language_hint"
    assert "did you mean 'language'?" in err.problem
    assert "for a v1 listen provider" in err.problem
    assert "accepted here: keyterms, language, model, smart_format;" in err.problem
    # Not a dict: given back for the validator to report.
    assert normalize_settings([1]) == [1]  # type: ignore[arg-type]


def test_update_listen_takes_the_alias_too() -> None:
    msg = {
        "type": "UpdateListen",
        "listen": {
            "provider": {
                "type": "deepgram",
                "version": "v2",
                "model": "flux-general-multi",
                "language_hint": "de",
            }
        },
    }
    typed = check_client_message(msg)
    assert isinstance(typed, m.UpdateListen)
    assert typed.listen.provider.language_hints == ["de"]  # type: ignore[union-attr]
    assert normalize_client_message(msg)["listen"]["provider"]["language_hints"] == ["de"]
    assert "language_hint" in msg["listen"]["provider"]  # the input is untouched


def test_relaxed_rules_that_the_docs_contradict() -> None:
    # google: no model with a custom endpoint (docs/protocol.md 12 #23); even without one, the
    # server decides.
    check_settings(settings(think={"provider": {"type": "google"}}))
    # aws_polly: language or its deprecated alias; neither is an error naming 'language'.
    polly = copy.deepcopy(DOCS_FORMS["aws_polly language_code"])
    del polly["agent"]["speak"]["provider"]["language_code"]
    err = rejection(polly)
    assert err.path == "agent.speak.provider.language"


# ---------------------------------------------------------------------------------------------
# Errors point the way: what is known, the closest match, how to send it anyway
# ---------------------------------------------------------------------------------------------


def test_unknown_key_names_the_closest_match_and_validate_false() -> None:
    err = rejection(
        settings(think={"provider": {"type": "open_ai", "model": "gpt-4o-mini"}, "promt": "Hi"})
    )
    assert err.path == "agent.think.promt"
    assert "did you mean 'prompt'?" in err.problem
    assert "accepted here: context_length, endpoint, functions, prompt, provider" in err.problem
    assert VALIDATE_FALSE in err.problem
    assert VALIDATE_FALSE in str(err)
    assert err.code == "UNPARSABLE_CLIENT_MESSAGE"


def test_unknown_top_level_and_provider_keys() -> None:
    err = rejection({**settings(), "mip_opt": True})
    assert err.path == "mip_opt"
    assert "did you mean 'mip_opt_out'?" in err.problem and VALIDATE_FALSE in err.problem
    err = rejection(
        settings(speak={"provider": {"type": "deepgram", "model": "aura-2-thalia-en", "sped": 1}})
    )
    assert err.path == "agent.speak.provider.sped"
    assert "did you mean 'speed'?" in err.problem
    assert "for the 'deepgram' speak provider" in err.problem and VALIDATE_FALSE in err.problem


def test_unknown_provider_types() -> None:
    err = rejection(settings(think={"provider": {"type": "openai", "model": "gpt-4o-mini"}}))
    assert err.path == "agent.think.provider.type"
    assert "unknown think provider type 'openai' (did you mean 'open_ai'?)" in err.problem
    assert (
        "accepted: anthropic, aws_bedrock, deepgram, google, groq, nvidia, open_ai" in err.problem
    )
    assert VALIDATE_FALSE in err.problem
    # docs/protocol.md 12 #24: x_ai is let through only unchecked, and the error says why.
    err = rejection(settings(think={"provider": {"type": "x_ai", "model": "grok-3"}}))
    assert "older Deepgram docs page listed 'x_ai'" in err.problem and VALIDATE_FALSE in err.problem
    err = rejection(settings(speak={"provider": {"type": "elevenlabs", "model_id": "x"}}))
    assert "did you mean 'eleven_labs'?" in err.problem
    err = rejection(settings(listen={"provider": {"type": "whisper"}}))
    assert err.path == "agent.listen.provider.type" and "accepted: deepgram" in err.problem


def test_flux_keys_without_version_say_how() -> None:
    err = rejection(
        settings(listen={"provider": {"model": "flux-general-en", "eot_threshold": 0.7}})
    )
    assert err.path == "agent.listen.provider.eot_threshold"
    assert "Flux keys need version: 'v2'" in err.problem


def test_recorded_misplacements_keep_their_specific_hint() -> None:
    err = rejection({**settings(), "greeting": "Hi"})
    assert "'greeting' belongs inside 'agent'" in err.problem
    assert VALIDATE_FALSE not in err.problem  # the server rejects it: no point sending it


def test_other_messages_point_to_send_raw() -> None:
    with pytest.raises(SettingsError) as info:
        check_client_message({"type": "UpdatePrompt", "prompt": "x", "mode": "append"})
    assert info.value.path == "mode" and SEND_RAW in info.value.problem
    with pytest.raises(SettingsError) as info:
        check_client_message({"type": "InjectUserMesage", "content": "x"})
    assert info.value.path == "type"
    assert "did you mean 'InjectUserMessage'?" in info.value.problem
    assert SEND_RAW in info.value.problem
    with pytest.raises(SettingsError) as info:
        check_client_message(
            {"type": "UpdateSpeak", "speak": {"provider": {"type": "deepgram", "modle": "x"}}}
        )
    assert info.value.path == "speak.provider.modle" and "did you mean 'model'?" in (
        info.value.problem
    )


def test_the_servers_description_never_carries_the_sdks_advice() -> None:
    err = rejection(settings(think={"provider": {"type": "open_ai", "model": "x"}, "promt": "x"}))
    assert server_error_description(err) == (
        "Error parsing client message. Check the agent.think.promt field against the API spec."
    )
    invalid = SettingsError(
        "audio.input.sample_rate",
        f"bad; if Deepgram added it after this SDK was released, {VALIDATE_FALSE}",
        code="INVALID_SETTINGS",
    )
    assert "validate=False" not in server_error_description(invalid)


# ---------------------------------------------------------------------------------------------
# Audio encodings (issue 17)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("side", "value", "suggestion"),
    [
        ("input", "pcm16", "linear16"),
        ("input", "PCM_S16LE", "linear16"),
        ("input", "ulaw", "mulaw"),
        ("input", "LINEAR16", "linear16"),
        ("input", "ogg", "ogg-opus"),
        ("output", "pcm16", "linear16"),
        ("output", "mp4", "mp3"),
    ],
)
def test_unknown_encodings_are_errors_with_the_accepted_list(
    side: str, value: str, suggestion: str
) -> None:
    data = settings()
    data["audio"][side] = {"encoding": value, "sample_rate": 16000}
    err = rejection(data)
    assert err.path == f"audio.{side}.encoding"
    assert f"unknown {side} encoding {value!r} (did you mean {suggestion!r}?)" in err.problem
    known = INPUT_ENCODINGS if side == "input" else OUTPUT_ENCODINGS
    assert f"accepted: {', '.join(sorted(known))}" in err.problem
    assert VALIDATE_FALSE in err.problem


@pytest.mark.parametrize("encoding", INPUT_ENCODINGS)
def test_every_documented_input_encoding_passes(encoding: str) -> None:
    data = settings()
    data["audio"]["input"] = {"encoding": encoding, "sample_rate": 16000}
    check_settings(data)


def test_an_input_encoding_used_for_output_warns_and_is_sent() -> None:
    data = settings()
    data["audio"]["output"] = {"encoding": "linear32", "sample_rate": 24000}
    with pytest.warns(DeepgramAgentWarning, match="do not list for agent output"):
        check_settings(data)
    check_settings(data, as_server=True)  # the emulator takes it


def test_sample_rates_must_be_positive() -> None:
    data = settings()
    data["audio"]["input"]["sample_rate"] = 0
    err = rejection(data)
    assert err.path == "audio.input.sample_rate" and err.code == "INVALID_SETTINGS"


@pytest.mark.anyio
async def test_emulator_refuses_pcm16_with_the_servers_text() -> None:
    data = settings()
    data["audio"]["input"]["encoding"] = "pcm16"
    async with emulator() as emu:
        async with connect(emu) as peer:
            await peer.next()
            await peer.send(data)
            frames, _code = await peer.expect_close()
    assert frames == [
        {
            "type": "Error",
            "code": "UNPARSABLE_CLIENT_MESSAGE",
            "description": "Error parsing client message. Check the audio.input.encoding "
            "field against the API spec.",
        }
    ]


# ---------------------------------------------------------------------------------------------
# Open enums: known-or-string, a warning for the client, the server's view in the emulator
# ---------------------------------------------------------------------------------------------

OPEN_ENUMS = [
    (
        settings(context={"messages": [{"type": "History", "role": "system", "content": "x"}]}),
        "agent.context.messages[0].role",
        "history role 'system'",
    ),
    (
        settings(
            think={"provider": {"type": "open_ai", "model": "gpt-5", "reasoning_mode": "max"}}
        ),
        "agent.think.provider.reasoning_mode",
        "reasoning mode 'max'",
    ),
    (
        settings(think={"provider": {"type": "google", "model": "g", "version": "v2beta"}}),
        "agent.think.provider.version",
        "google version 'v2beta'",
    ),
    (
        settings(
            speak={"provider": {"type": "deepgram", "model": "aura-2-thalia-en", "version": "v3"}}
        ),
        "agent.speak.provider.version",
        "deepgram version 'v3'",
    ),
    (
        settings(
            listen={
                "provider": {
                    "type": "deepgram",
                    "version": "v3",
                    "model": "x",
                    "smart_format": True,
                }
            }
        ),
        "agent.listen.provider.version",
        "listen provider version 'v3'",
    ),
    (
        {**settings(), "audio": {"output": {"encoding": "linear16", "container": "mp4"}}},
        "audio.output.container",
        "container 'mp4'",
    ),
    (
        settings(
            speak={
                "provider": {
                    "type": "aws_polly",
                    "voice": "Joanna",
                    "language": "en-US",
                    "engine": "turbo",
                    "credentials": {"type": "iam", "region": "us-east-1"},
                }
            }
        ),
        "agent.speak.provider.engine",
        "aws_polly engine 'turbo'",
    ),
    (
        settings(
            think={
                "provider": {
                    "type": "aws_bedrock",
                    "model": "anthropic.claude-3",
                    "credentials": {"type": "sso", "region": "us-east-1"},
                },
                "endpoint": {"url": "https://bedrock-runtime.us-east-1.amazonaws.com/"},
            }
        ),
        "agent.think.provider.credentials.type",
        "credential type 'sso'",
    ),
]


@pytest.mark.parametrize(("data", "path", "what"), OPEN_ENUMS)
def test_open_enums_warn_on_the_client_and_are_sent(
    data: dict[str, Any], path: str, what: str
) -> None:
    with pytest.warns(
        DeepgramAgentWarning, match="It is sent as given and the server decides"
    ) as rec:
        typed, sent = coerce_settings(data)
    texts = [str(w.message) for w in rec]
    assert any(what in t for t in texts), texts
    assert sent["agent"] == data["agent"] and sent["audio"] == data["audio"]
    assert isinstance(typed, m.Settings)
    assert settings_warnings(data) == list(dict.fromkeys(texts))


@pytest.mark.parametrize(("data", "path", "what"), OPEN_ENUMS)
def test_open_enums_are_refused_by_the_emulated_server(
    data: dict[str, Any], path: str, what: str
) -> None:
    with pytest.raises(SettingsError) as info:
        check_settings(data, as_server=True)
    assert info.value.path == path
    assert server_error_description(info.value).startswith("Error parsing client message.")


def test_a_typo_in_an_open_enum_suggests_the_known_value() -> None:
    data = settings(context={"messages": [{"type": "History", "role": "User", "content": "x"}]})
    with pytest.warns(DeepgramAgentWarning, match="did you mean 'user'"):
        check_settings(data)
    with pytest.warns(DeepgramAgentWarning, match="did you mean 'queue'"):
        msg = check_client_message(
            {"type": "InjectAgentMessage", "message": "x", "behavior": "Queue"}
        )
    assert isinstance(msg, m.InjectAgentMessage) and msg.behavior == "Queue"


def test_check_agent_runs_the_same_rules() -> None:
    with pytest.raises(SettingsError, match="did you mean 'open_ai'"):
        check_agent({"think": {"provider": {"type": "opena", "model": "x"}}})
    with pytest.warns(DeepgramAgentWarning):
        check_agent({"context": {"messages": [{"type": "History", "role": "bot", "content": "x"}]}})
    with pytest.raises(SettingsError):
        check_agent(
            {"context": {"messages": [{"type": "History", "role": "bot", "content": "x"}]}},
            as_server=True,
        )


@pytest.mark.parametrize(
    ("provider", "warns"),
    [
        ({"type": "deepgram", "model": "nova3"}, "did you mean 'nova-3'"),
        ({"type": "deepgram", "model": "nova-3-medical"}, None),  # a variant, not a typo
        ({"type": "deepgram", "model": "my-custom-model"}, None),  # new or private: silent
        ({"type": "deepgram", "model": "nova-2"}, None),
    ],
)
def test_model_names_are_free_but_near_misses_warn(
    provider: dict[str, Any], warns: str | None
) -> None:
    data = settings(listen={"provider": provider})
    if warns is None:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            check_settings(data)
    else:
        with pytest.warns(DeepgramAgentWarning, match=warns):
            check_settings(data)
    check_settings(data, as_server=True)  # never an error, never a warning in the emulator


def test_think_and_speak_model_hints() -> None:
    with pytest.warns(DeepgramAgentWarning, match="did you mean 'claude-haiku-4-5'"):
        check_settings(
            settings(think={"provider": {"type": "anthropic", "model": "claude-haiku-4.5"}})
        )
    with pytest.warns(DeepgramAgentWarning, match="did you mean 'shimmer'"):
        check_settings(
            settings(speak={"provider": {"type": "open_ai", "model": "tts-1", "voice": "shimer"}})
        )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_settings(settings(think={"provider": {"type": "open_ai", "model": "gpt-4"}}))


@pytest.mark.anyio
async def test_unknown_behavior_reaches_the_emulator_which_answers_as_the_server() -> None:
    async with emulator() as emu:
        async with connect(emu) as peer:
            await peer.start()
            await peer.send({"type": "InjectAgentMessage", "message": "x", "behavior": "whisper"})
            frames, _ = await peer.expect_close()
    assert kinds(frames) == ["Error"]
    assert frames[0] == {
        "type": "Error",
        "code": "UNPARSABLE_CLIENT_MESSAGE",
        "description": "Error parsing client message. Check the behavior field against the API spec.",
    }


def test_inject_agent_message_forms_the_server_rejects_fail_locally() -> None:
    """InjectAgentMessage forms the server refuses are caught before sending.

    Broke: a missing message (without is_dynamic) was sent and the session died on the server's
    error instead of a local SettingsError naming the field.
    """
    # behavior is an open enum (issue 14): the client warns and sends it; the server decides.
    bad = {"type": "InjectAgentMessage", "message": "x", "behavior": "Queue"}
    with pytest.warns(DeepgramAgentWarning, match="did you mean 'queue'"):
        msg = check_client_message(bad)
    assert isinstance(msg, m.InjectAgentMessage) and msg.behavior == "Queue"
    with pytest.raises(SettingsError) as info:
        check_client_message(bad, as_server=True)  # the emulator answers as today's server
    assert info.value.path == "behavior"
    with pytest.raises(SettingsError, match="needs message"):
        check_client_message({"type": "InjectAgentMessage"})
    with pytest.raises(SettingsError, match="needs message"):
        check_client_message({"type": "InjectAgentMessage", "is_dynamic": False})
    check_client_message({"type": "InjectAgentMessage", "is_dynamic": True, "behavior": "queue"})
    check_client_message({"type": "InjectAgentMessage", "message": "x", "behavior": "interrupt"})


@pytest.mark.anyio
async def test_unknown_behavior_warns_locally_and_the_server_decides() -> None:
    """An unknown behavior warns locally, is sent as given, and the server's Error arrives.

    Broke: the client refused it with a SettingsError; the server decides (issue 14).
    """
    async with AgentEmulator(api_key=KEY, realtime_audio=False) as emu:
        client = client_for(emu)
        async with client.agent.connect(SETTINGS) as conn:
            with pytest.warns(DeepgramAgentWarning, match="did you mean 'queue'"):
                await conn.inject_agent_message("One moment.", behavior="Queue")
            error = await until(conn, lambda x: isinstance(x, m.Error))
            assert error.code == "UNPARSABLE_CLIENT_MESSAGE"
            assert "behavior" in error.description
        sent = emu.sessions[0].received_json("InjectAgentMessage")
        assert sent == [
            {"type": "InjectAgentMessage", "message": "One moment.", "behavior": "Queue"}
        ]


# ---------------------------------------------------------------------------------------------
# closest()
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "known", "expected"),
    [
        ("promt", ["prompt", "provider", "functions"], "prompt"),
        ("pcm16", INPUT_ENCODINGS, "linear16"),
        ("mu-law", INPUT_ENCODINGS, "mulaw"),
        ("A-LAW", INPUT_ENCODINGS, "alaw"),
        ("Linear16", INPUT_ENCODINGS, "linear16"),
        ("linear16", INPUT_ENCODINGS, "linear16"),
        ("pcm16", ["mp3", "aac"], None),  # an alias only maps to a known name
        ("zzzzzz", ["prompt"], None),
        ("", ["prompt"], None),
        (None, ["prompt"], None),
        (42, ["prompt"], None),
    ],
)
def test_closest(name: Any, known: Any, expected: str | None) -> None:
    assert closest(name, known) == expected


# ---------------------------------------------------------------------------------------------
# The emulator's escape hatch: strict=False accepts any Settings object
# ---------------------------------------------------------------------------------------------

UNKNOWN_TO_THIS_SDK = {
    "type": "Settings",
    "audio": {"input": {"encoding": "linear16", "sample_rate": 16000}, "future_audio": True},
    "agent": {
        "think": {"provider": {"type": "x_ai", "model": "grok-9"}, "prompt": "Hi"},
        "new_feature": {"on": True},
    },
    "brand_new_top_level": 1,
}


@pytest.mark.anyio
async def test_strict_emulator_refuses_what_the_sdk_does_not_know() -> None:
    async with emulator() as emu:
        async with connect(emu) as peer:
            await peer.next()
            await peer.send(UNKNOWN_TO_THIS_SDK)
            frames, _ = await peer.expect_close()
    assert isinstance(frames[0], dict) and frames[0]["code"] == "UNPARSABLE_CLIENT_MESSAGE"


@pytest.mark.anyio
async def test_lenient_emulator_accepts_any_settings_object_and_still_works() -> None:
    async with emulator(strict=False) as emu:
        async with connect(emu) as peer:
            await peer.start(UNKNOWN_TO_THIS_SDK)
            await peer.send({"type": "InjectUserMessage", "content": "hello"})
            frames = await peer.until("AgentAudioDone")
            # A later message it cannot validate is ignored, not fatal.
            await peer.send({"type": "UpdatePrompt", "prompt": 5})
            await peer.send({"type": "BrandNewMessage", "x": 1})
            await peer.send({"type": "UpdatePrompt", "prompt": "Now brief."})
            assert kinds(await peer.until("PromptUpdated")) == ["PromptUpdated"]
        session = emu.sessions[0]
    assert session.settings == UNKNOWN_TO_THIS_SDK
    assert session.state.error is None and session.state.prompt == "Now brief."
    assert "You said: hello" in json.dumps([f for f in frames if isinstance(f, dict)])


@pytest.mark.anyio
@pytest.mark.parametrize(
    "body",
    [
        {"type": "Settings"},
        {"type": "Settings", "audio": "nope", "agent": 5},
        {
            "type": "Settings",
            "audio": {"input": {"encoding": 7, "sample_rate": "fast"}, "output": []},
            "agent": {"listen": "x", "think": [1, "y"], "speak": {"provider": "z"}, "greeting": 3},
        },
    ],
)
async def test_lenient_emulator_survives_any_shape(body: dict[str, Any]) -> None:
    async with emulator(strict=False) as emu:
        async with connect(emu) as peer:
            await peer.start(body)
            await peer.send({"type": "InjectUserMessage", "content": "hi"})
            await peer.until("AgentAudioDone")
        state = emu.sessions[0].state
    assert (state.input_encoding, state.input_sample_rate) == ("linear16", 24000)
    assert state.error is None and state.speak_model is None and state.listen_version == "v1"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("first", "code"),
    [
        ({"type": "KeepAlive"}, "NON_SETTINGS_MESSAGE_BEFORE_SETTINGS"),
        ({"type": "Mystery"}, "NON_SETTINGS_MESSAGE_BEFORE_SETTINGS"),
        ("not json", "UNPARSABLE_CLIENT_MESSAGE"),
        ([1, 2], "UNPARSABLE_CLIENT_MESSAGE"),
    ],
)
async def test_lenient_emulator_still_wants_a_settings_object_first(first: Any, code: str) -> None:
    async with emulator(strict=False) as emu:
        async with connect(emu) as peer:
            await peer.next()
            await peer.ws.send_str(first if isinstance(first, str) else json.dumps(first))
            frames, _ = await peer.expect_close()
    assert isinstance(frames[0], dict) and frames[0]["code"] == code


@pytest.mark.anyio
async def test_lenient_emulator_still_refuses_a_second_settings() -> None:
    async with emulator(strict=False) as emu:
        async with connect(emu) as peer:
            await peer.start({"type": "Settings", "anything": 1})
            await peer.send({"type": "Settings", "anything": 2})
            frames, _ = await peer.expect_close()
    assert isinstance(frames[0], dict) and frames[0]["code"] == "SETTINGS_ALREADY_APPLIED"


@pytest.mark.anyio
async def test_aiohttp_client_reaches_the_lenient_emulator_with_raw_json() -> None:
    # The path validate=False takes: the JSON text exactly as written.
    text = json.dumps(UNKNOWN_TO_THIS_SDK)
    async with AgentEmulator(strict=False, realtime_audio=False) as emu:
        async with aiohttp.ClientSession() as http:
            async with http.ws_connect(emu.agent_url, headers={"Authorization": "Token k"}) as ws:
                await ws.receive(timeout=scaled(5))
                await ws.send_str(text)
                applied = await ws.receive(timeout=scaled(5))
                assert json.loads(applied.data) == {"type": "SettingsApplied"}


def test_edge_cases_of_the_alias_and_hints() -> None:
    flux = {"type": "deepgram", "version": "v2", "model": "flux-general-multi"}
    # language_hints of the wrong type next to language_hint: left for the type check.
    err = rejection(
        settings(listen={"provider": {**flux, "language_hints": "en", "language_hint": "es"}})
    )
    assert err.path == "agent.listen.provider.language_hint"
    # A near miss in case only is still a near miss.
    with pytest.warns(DeepgramAgentWarning, match="did you mean 'nova-3'"):
        check_settings(settings(listen={"provider": {"type": "deepgram", "model": "Nova-3"}}))
    # normalize_client_message copies other messages and leaves non-dicts alone.
    msg = {"type": "KeepAlive"}
    assert normalize_client_message(msg) == msg and normalize_client_message(msg) is not msg
    assert normalize_client_message("x") == "x"  # type: ignore[arg-type]


_OA = {"type": "open_ai", "model": "gpt-4o"}


@pytest.mark.parametrize(
    ("data", "path", "text"),
    [
        (settings(think={"provider": {"type": "groq", "model": "x"}}), "agent.think.endpoint",
         "needs an endpoint"),
        (settings(think={"provider": _OA, "functions": [
            {"name": "f", "description": "d", "agent_filler_max_count": 1}]}),
         "agent.think.functions[0].agent_filler_max_count", "requires agent.think_live"),
        (settings(think_live={"provider": {"type": "deepgram"}}, think={"provider": _OA,
            "functions": [{"name": "f", "description": "d", "agent_filler_max_count": 1,
                           "agent_filler_interval_ms": 10}]}),
         "agent.think.functions[0].agent_filler_interval_ms", "between 1000 and 60000"),
        (settings(listen={"provider": {"type": "deepgram", "version": "v2"}}),
         "agent.listen.provider.model", "a v2 (Flux) listen provider needs a model"),
        (settings(speak={"provider": {"type": "cartesia", "model_id": "sonic", "voice": "x"}}),
         "agent.speak.provider.voice", "cartesia needs voice {mode, id}"),
        (settings(context={"messages": [5]}), "agent.context.messages[0]",
         "each context message must be a History object"),
        (settings(think={"provider": {**_OA, "colour": "red"}}), "agent.think.provider.colour",
         "unknown field 'colour' for the 'open_ai' think provider"),
        ({**settings(), "type": "KeepAlive"}, "type", "expected 'Settings', got 'KeepAlive'"),
    ],
    ids=["groq-endpoint", "think-live-key", "filler-interval", "flux-model", "cartesia-voice",
         "context-item", "provider-key", "type"],
)  # fmt: skip
def test_rules_beyond_the_types_name_the_path(data: dict[str, Any], path: str, text: str) -> None:
    err = rejection(data)
    assert err.path == path
    assert text in str(err)


def test_a_settings_message_normalised_as_a_client_message_is_normalised_as_settings() -> None:
    data = {"type": "Settings", "audio": AUDIO, "agent": {}}
    assert normalize_client_message(data) == normalize_settings(data)


@pytest.mark.parametrize(
    ("agent", "top", "paths"),
    [
        ({"think": {"provider": _OA, "functions": [5, {"name": "f", "description": "d"}]}}, {},
         ["agent.think.functions[0]"]),
        ({"think_live": {}}, {}, ["agent.think_live.provider"]),
        ({"think_live": {"provider": {"type": "deepgram", "frustration_max_count": "x"}}},
         {"experimental": "yes"},
         ["agent.think_live.provider.frustration_max_count", "experimental"]),
        ({"context": {"messages": [{"type": "History"}]}}, {},
         ["agent.context.messages[0].role"]),
        ({"context": {"messages": [{"type": "History", "function_calls": [{}]}]}}, {},
         ["agent.context.messages[0].function_calls[0].id"]),
        ({"listen": {"provider": {"type": "deepgram", "model": "nova-3", "keyterms": [1, 2]}}},
         {}, ["agent.listen.provider.keyterms[0]", "agent.listen.provider.keyterms[1]"]),
        ({}, {"audio": {"input": {"sample_rate": 16000}}}, ["audio.input.encoding"]),
    ],
    ids=["list-item", "missing-object", "wrong-number-and-bool", "history-role",
         "history-call-id", "each-list-item", "missing-encoding"],
)  # fmt: skip
def test_every_problem_is_listed_once_with_its_path(
    agent: dict[str, Any], top: dict[str, Any], paths: list[str]
) -> None:
    data = {"type": "Settings", "audio": copy.deepcopy(AUDIO), "agent": agent, **top}
    assert [p.path for p in all_settings_problems(data)] == paths
    assert settings_warnings(data) == []  # invalid: no advice on top of the errors
