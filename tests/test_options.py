"""The seed's option classes mapped onto the wire (deepgram_agent.options)."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from deepgram_agent import messages as m
from deepgram_agent.exceptions import SettingsError
from deepgram_agent.options import (
    DEFAULT_THINK_MODEL,
    Agent,
    AgentKeepAlive,
    Audio,
    Context,
    DeepgramAgentWarning,
    Endpoint,
    Flags,
    Function,
    FunctionCallResponse,
    Header,
    InjectAgentMessageOptions,
    InjectUserMessageOptions,
    Input,
    Item,
    Listen,
    Output,
    Parameters,
    Properties,
    Provider,
    SettingsOptions,
    Speak,
    Think,
    UpdateListenOptions,
    UpdatePromptOptions,
    UpdateSpeakOptions,
    UpdateThinkOptions,
    coerce_client_message,
    coerce_settings,
    input_format,
    output_format,
)

DEFAULT_AUDIO = {
    "input": {"encoding": "linear16", "sample_rate": 16000},
    "output": {"encoding": "linear16", "sample_rate": 24000, "container": "none"},
}
SEED_LISTEN = {
    "provider": {
        "type": "deepgram",
        "version": "v1",
        "model": "nova-2",
        "language": "en-US",
        "smart_format": True,
    }
}


def no_null(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, dict):
        return all(no_null(v) for v in value.values())
    if isinstance(value, list):
        return all(no_null(v) for v in value)
    return True


# ---- the seed's five examples, built exactly as the seed writes them -------------------------


def seed_example_1() -> SettingsOptions:
    return SettingsOptions(
        agent=Agent(
            listen=Listen(
                model="nova-2",
                language="en-US",
                smart_format=True,
                encoding="linear16",
                sample_rate=16000,
                interim_results=True,
                vad_events=True,
            ),
            think=Think(
                provider=Provider(type="open_ai"),
                model="gpt-4",
                instructions="You are a helpful AI assistant. Be conversational and friendly.",
            ),
            speak=Speak(model="aura-asteria-en", encoding="linear16", sample_rate=24000),
        )
    )


def seed_example_2() -> SettingsOptions:
    weather_function = Function(
        name="get_weather",
        description="Get current weather information for a location",
        parameters=Parameters(
            type="object",
            properties={"location": {"type": "string", "description": "City name or location"}},
            required=["location"],
        ),
    )
    reminder_function = Function(
        name="set_reminder",
        description="Set a reminder for the user",
        parameters=Parameters(
            type="object",
            properties={
                "reminder": {"type": "string", "description": "Reminder text"},
                "time": {"type": "string", "description": "Time for the reminder"},
            },
            required=["reminder", "time"],
        ),
    )
    return SettingsOptions(
        agent=Agent(
            think=Think(
                provider=Provider(type="open_ai"),
                model="gpt-4",
                instructions="You are a helpful assistant with access to weather and reminder "
                "functions. Use them when appropriate.",
                functions=[weather_function, reminder_function],
            )
        )
    )


def seed_example_4(agent_id: str = "Moderator", instructions: str = "Keep it on track.") -> Any:
    return SettingsOptions(
        agent=Agent(
            think=Think(
                provider=Provider(type="open_ai"),
                model="gpt-4",
                instructions=f"Agent {agent_id}: {instructions}",
            )
        )
    )


def seed_example_5() -> SettingsOptions:
    return SettingsOptions()


def test_seed_example_1_warns_once_and_encodes() -> None:
    with pytest.warns(DeepgramAgentWarning, match="interim_results, vad_events") as record:
        opts = seed_example_1()
    assert len(record) == 1
    assert opts.to_dict() == {
        "type": "Settings",
        "audio": DEFAULT_AUDIO,
        "agent": {
            "listen": SEED_LISTEN,
            "think": {
                "provider": {"type": "open_ai", "model": "gpt-4"},
                "prompt": "You are a helpful AI assistant. Be conversational and friendly.",
            },
            "speak": {"provider": {"type": "deepgram", "model": "aura-asteria-en"}},
        },
    }


def test_seed_example_2_functions() -> None:
    data = seed_example_2().to_dict()
    assert data["audio"] == DEFAULT_AUDIO
    assert data["agent"]["think"]["functions"] == [
        {
            "name": "get_weather",
            "description": "Get current weather information for a location",
            "parameters": {
                "type": "object",
                "properties": {
                    "location": {"type": "string", "description": "City name or location"}
                },
                "required": ["location"],
            },
        },
        {
            "name": "set_reminder",
            "description": "Set a reminder for the user",
            "parameters": {
                "type": "object",
                "properties": {
                    "reminder": {"type": "string", "description": "Reminder text"},
                    "time": {"type": "string", "description": "Time for the reminder"},
                },
                "required": ["reminder", "time"],
            },
        },
    ]


def test_seed_example_3_runtime_messages() -> None:
    new_prompt = UpdatePromptOptions(
        prompt="You are now a cheerful children's storyteller. Use simple language and be very "
        "enthusiastic."
    )
    new_speak_options = UpdateSpeakOptions(
        speak=Speak(model="aura-luna-en", encoding="linear16", sample_rate=24000)
    )
    agent_message = InjectAgentMessageOptions(
        text="I just switched to storytelling mode! What kind of story would you like to hear?"
    )
    user_message = InjectUserMessageOptions(
        text="The user mentioned they like adventure stories about pirates."
    )
    assert new_prompt.to_dict()["type"] == "UpdatePrompt"
    assert new_speak_options.to_dict() == {
        "type": "UpdateSpeak",
        "speak": {"provider": {"type": "deepgram", "model": "aura-luna-en"}},
    }
    assert agent_message.to_dict() == {
        "type": "InjectAgentMessage",
        "message": "I just switched to storytelling mode! What kind of story would you like to "
        "hear?",
    }
    assert user_message.to_dict() == {
        "type": "InjectUserMessage",
        "content": "The user mentioned they like adventure stories about pirates.",
    }


def test_seed_example_4_and_5() -> None:
    assert seed_example_4().to_dict() == {
        "type": "Settings",
        "audio": DEFAULT_AUDIO,
        "agent": {
            "think": {
                "provider": {"type": "open_ai", "model": "gpt-4"},
                "prompt": "Agent Moderator: Keep it on track.",
            }
        },
    }
    assert seed_example_5().to_dict() == {"type": "Settings", "audio": DEFAULT_AUDIO, "agent": {}}


# ---- golden JSON: every client message, seed style and wire style ----------------------------

GOLDEN_SETTINGS = {
    "type": "Settings",
    "tags": ["support-line"],
    "experimental": False,
    "mip_opt_out": True,
    "flags": {"history": True},
    "audio": {
        "input": {"encoding": "mulaw", "sample_rate": 8000},
        "output": {"encoding": "mulaw", "sample_rate": 8000, "container": "none"},
    },
    "agent": {
        "listen": {
            "provider": {
                "type": "deepgram",
                "version": "v1",
                "model": "nova-3",
                "language": "en",
                "smart_format": True,
                "keyterms": ["Acme"],
            }
        },
        "think": {
            "provider": {"type": "open_ai", "model": "gpt-4.1-mini", "temperature": 0.4},
            "prompt": "Be brief.",
            "functions": [
                {
                    "name": "open_ticket",
                    "description": "Create a ticket.",
                    "parameters": {
                        "type": "object",
                        "properties": {"summary": {"type": "string"}},
                        "required": ["summary"],
                    },
                    "endpoint": {
                        "url": "https://crm.example/api/tickets",
                        "method": "POST",
                        "headers": {"authorization": "Bearer crm-secret"},
                    },
                    "defer_until_eot": True,
                }
            ],
        },
        "speak": {"provider": {"type": "deepgram", "model": "aura-2-thalia-en", "speed": 1.1}},
        "greeting": "Hello!",
    },
}


def golden_settings_seed_style() -> SettingsOptions:
    return SettingsOptions(
        tags=["support-line"],
        experimental=False,
        mip_opt_out=True,
        flags=Flags(history=True),
        listen=Listen(
            model="nova-3",
            language="en",
            keyterms=["Acme"],
            encoding="mulaw",
            sample_rate=8000,
        ),
        think=Think(
            provider=Provider(type="open_ai"),
            model="gpt-4.1-mini",
            temperature=0.4,
            instructions="Be brief.",
            functions=[
                Function(
                    name="open_ticket",
                    description="Create a ticket.",
                    parameters=Parameters(
                        properties=Properties(summary=Item(type="string")), required=["summary"]
                    ),
                    url="https://crm.example/api/tickets",
                    method="POST",
                    headers=[Header(name="authorization", value="Bearer crm-secret")],
                    defer_until_eot=True,
                )
            ],
        ),
        speak=Speak(model="aura-2-thalia-en", speed=1.1, encoding="mulaw", sample_rate=8000),
        greeting="Hello!",
    )


def golden_settings_wire_style() -> SettingsOptions:
    return SettingsOptions(
        tags=["support-line"],
        experimental=False,
        mip_opt_out=True,
        flags={"history": True},
        audio=Audio(
            input=Input(encoding="mulaw", sample_rate=8000),
            output=Output(encoding="mulaw", sample_rate=8000),
        ),
        agent=Agent(
            listen=Listen(
                provider=Provider(
                    type="deepgram",
                    version="v1",
                    model="nova-3",
                    language="en",
                    smart_format=True,
                    keyterms=["Acme"],
                )
            ),
            think=Think(
                provider={"type": "open_ai", "model": "gpt-4.1-mini", "temperature": 0.4},
                prompt="Be brief.",
                functions=[
                    Function(
                        name="open_ticket",
                        description="Create a ticket.",
                        parameters={
                            "type": "object",
                            "properties": {"summary": {"type": "string"}},
                            "required": ["summary"],
                        },
                        endpoint=Endpoint(
                            url="https://crm.example/api/tickets",
                            method="POST",
                            headers={"authorization": "Bearer crm-secret"},
                        ),
                        defer_until_eot=True,
                    )
                ],
            ),
            speak=Speak(provider=Provider(type="deepgram", model="aura-2-thalia-en", speed=1.1)),
            greeting="Hello!",
        ),
    )


@pytest.mark.parametrize("build", [golden_settings_seed_style, golden_settings_wire_style])
def test_golden_settings(build: Any) -> None:
    assert build().to_dict() == GOLDEN_SETTINGS


def test_golden_settings_from_a_dict_and_json() -> None:
    typed, sent = coerce_settings(GOLDEN_SETTINGS)
    assert sent == GOLDEN_SETTINGS
    assert isinstance(typed, m.Settings)
    typed2, sent2 = coerce_settings(json.dumps(GOLDEN_SETTINGS))
    assert sent2 == GOLDEN_SETTINGS
    assert typed2 == typed
    typed3, sent3 = coerce_settings(json.dumps(GOLDEN_SETTINGS).encode())
    assert sent3 == GOLDEN_SETTINGS
    assert typed3 == typed
    # The typed Settings and the dict describe the same JSON.
    assert msgspec.to_builtins(typed) == GOLDEN_SETTINGS
    assert coerce_settings(typed)[1] == GOLDEN_SETTINGS


GOLDEN_MESSAGES: list[tuple[str, Any, Any, dict[str, Any]]] = [
    (
        "UpdatePrompt",
        lambda: UpdatePromptOptions(prompt="Be brief."),
        lambda: UpdatePromptOptions.from_dict({"prompt": "Be brief."}),
        {"type": "UpdatePrompt", "prompt": "Be brief."},
    ),
    (
        "UpdateSpeak",
        lambda: UpdateSpeakOptions(speak=Speak(model="aura-2-luna-en")),
        lambda: UpdateSpeakOptions(
            speak={"provider": {"type": "deepgram", "model": "aura-2-luna-en"}}
        ),
        {
            "type": "UpdateSpeak",
            "speak": {"provider": {"type": "deepgram", "model": "aura-2-luna-en"}},
        },
    ),
    (
        "UpdateSpeak fallback",
        lambda: UpdateSpeakOptions(
            speak=[
                Speak(model="aura-2-luna-en"),
                Speak(
                    provider=Provider(type="open_ai", model="tts-1", voice="nova"),
                    endpoint=Endpoint(
                        url="https://api.openai.com/v1/audio/speech",
                        headers=[Header(name="authorization", value="Bearer sk-x")],
                    ),
                ),
            ]
        ),
        lambda: UpdateSpeakOptions(
            speak=[
                Speak(provider=Provider(type="deepgram", model="aura-2-luna-en")),
                Speak(
                    provider={"type": "open_ai", "model": "tts-1", "voice": "nova"},
                    endpoint={
                        "url": "https://api.openai.com/v1/audio/speech",
                        "headers": {"authorization": "Bearer sk-x"},
                    },
                ),
            ]
        ),
        {
            "type": "UpdateSpeak",
            "speak": [
                {"provider": {"type": "deepgram", "model": "aura-2-luna-en"}},
                {
                    "provider": {"type": "open_ai", "model": "tts-1", "voice": "nova"},
                    "endpoint": {
                        "url": "https://api.openai.com/v1/audio/speech",
                        "headers": {"authorization": "Bearer sk-x"},
                    },
                },
            ],
        },
    ),
    (
        "UpdateThink",
        lambda: UpdateThinkOptions(
            think=Think(
                provider=Provider(type="open_ai"),
                model="gpt-4o-mini",
                temperature=0.2,
                instructions="You are now the billing specialist. Be precise.",
                functions=[
                    Function(
                        name="issue_refund",
                        parameters=Parameters(properties={"amount": Item(type="number")}),
                        defer_until_eot=True,
                    )
                ],
            )
        ),
        lambda: UpdateThinkOptions(
            think=Think(
                provider=Provider(type="open_ai", model="gpt-4o-mini", temperature=0.2),
                prompt="You are now the billing specialist. Be precise.",
                functions=[
                    {
                        "name": "issue_refund",
                        "parameters": {
                            "type": "object",
                            "properties": {"amount": {"type": "number"}},
                        },
                        "defer_until_eot": True,
                    }
                ],
            )
        ),
        {
            "type": "UpdateThink",
            "think": {
                "provider": {"type": "open_ai", "model": "gpt-4o-mini", "temperature": 0.2},
                "prompt": "You are now the billing specialist. Be precise.",
                "functions": [
                    {
                        "name": "issue_refund",
                        "parameters": {
                            "type": "object",
                            "properties": {"amount": {"type": "number"}},
                        },
                        "defer_until_eot": True,
                    }
                ],
            },
        },
    ),
    (
        "UpdateListen",
        lambda: UpdateListenOptions(
            listen=Listen(
                model="flux-general-multi",
                eot_threshold=0.85,
                keyterms=["Zephyr Pro"],
                language_hints=["en", "es"],
            )
        ),
        lambda: UpdateListenOptions(
            listen=Listen(
                provider={
                    "type": "deepgram",
                    "version": "v2",
                    "model": "flux-general-multi",
                    "eot_threshold": 0.85,
                    "keyterms": ["Zephyr Pro"],
                    "language_hints": ["en", "es"],
                }
            )
        ),
        {
            "type": "UpdateListen",
            "listen": {
                "provider": {
                    "type": "deepgram",
                    "version": "v2",
                    "model": "flux-general-multi",
                    "eot_threshold": 0.85,
                    "keyterms": ["Zephyr Pro"],
                    "language_hints": ["en", "es"],
                }
            },
        },
    ),
    (
        "InjectUserMessage",
        lambda: InjectUserMessageOptions(text="Can you text me the tracking link?"),
        lambda: InjectUserMessageOptions(content="Can you text me the tracking link?"),
        {"type": "InjectUserMessage", "content": "Can you text me the tracking link?"},
    ),
    (
        "InjectAgentMessage",
        lambda: InjectAgentMessageOptions(text="One moment.", behavior="queue"),
        lambda: InjectAgentMessageOptions(message="One moment.", behavior="queue"),
        {"type": "InjectAgentMessage", "message": "One moment.", "behavior": "queue"},
    ),
    (
        "FunctionCallResponse",
        lambda: FunctionCallResponse(
            id="call_Qx7rT2mLs9Vb", name="lookup_order", result={"status": "delivered"}
        ),
        lambda: FunctionCallResponse(
            id="call_Qx7rT2mLs9Vb", name="lookup_order", content='{"status":"delivered"}'
        ),
        {
            "type": "FunctionCallResponse",
            "id": "call_Qx7rT2mLs9Vb",
            "name": "lookup_order",
            "content": '{"status":"delivered"}',
        },
    ),
    (
        "KeepAlive",
        lambda: AgentKeepAlive(),
        lambda: AgentKeepAlive(type="KeepAlive"),
        {"type": "KeepAlive"},
    ),
]


@pytest.mark.parametrize(
    ("name", "seed", "wire", "expected"), GOLDEN_MESSAGES, ids=[g[0] for g in GOLDEN_MESSAGES]
)
def test_golden_client_messages(name: str, seed: Any, wire: Any, expected: dict[str, Any]) -> None:
    seed_obj, wire_obj = seed(), wire()
    assert seed_obj.to_dict() == expected
    assert wire_obj.to_dict() == expected
    assert json.loads(seed_obj.to_json()) == expected
    # to_message / coerce_client_message give the typed struct of the same JSON.
    typed = coerce_client_message(seed_obj)
    assert isinstance(typed, m.CLIENT_MESSAGE_TYPES[expected["type"]])
    assert msgspec.to_builtins(typed) == expected
    assert coerce_client_message(expected) == typed
    assert coerce_client_message(json.dumps(expected)) == typed
    assert coerce_client_message(typed) == typed
    # round trip through from_dict / from_json
    again = type(seed_obj).from_dict(expected)
    assert again.to_dict() == expected
    assert type(seed_obj).from_json(seed_obj.to_json()).to_dict() == expected


def test_function_call_response_seed_style_without_id() -> None:
    resp = FunctionCallResponse(name="get_weather", result=json.dumps({"temp": 72}))
    assert not resp.id  # left out of the JSON until the connection fills it in
    assert resp.name == "get_weather"
    assert resp.content == '{"temp": 72}'
    assert resp.result == resp.content
    assert resp.to_dict() == {
        "type": "FunctionCallResponse",
        "name": "get_weather",
        "content": '{"temp": 72}',
    }
    msg = coerce_client_message(resp)
    assert isinstance(msg, m.FunctionCallResponse)
    assert msg.id is msgspec.UNSET
    filled = resp.to_message("call_1")
    assert filled.id == "call_1"
    # an explicit id wins over the one the core offers
    own = FunctionCallResponse(id="call_mine", name="f", content="x").to_message("call_other")
    assert own.id == "call_mine"


def test_function_call_response_needs_content_and_name() -> None:
    # One class with the wire message now: the problem shows at construction, not at send.
    with pytest.raises(SettingsError, match="result"):
        FunctionCallResponse(name="f")
    with pytest.raises(SettingsError) as err:
        FunctionCallResponse(content="x")
    assert err.value.path == "name"
    with pytest.raises(SettingsError, match="same field"):
        FunctionCallResponse(name="f", result="a", content="b")


# ---- mapping details -------------------------------------------------------------------------


def test_listen_defaults_and_flux() -> None:
    assert Listen().to_dict() == SEED_LISTEN
    assert Listen().model == "nova-2"
    assert Listen().language == "en-US"
    flux = Listen(model="flux-general-en", eot_threshold=0.75, eot_timeout_ms=4000)
    assert flux.to_dict() == {
        "provider": {
            "type": "deepgram",
            "version": "v2",
            "model": "flux-general-en",
            "eot_threshold": 0.75,
            "eot_timeout_ms": 4000,
        }
    }
    assert flux.version == "v2"
    assert flux.language is None


def test_flux_with_nova_only_keys_is_rejected() -> None:
    opts = SettingsOptions(listen=Listen(model="flux-general-en", smart_format=True))
    with pytest.raises(SettingsError) as err:
        opts.to_dict()
    assert err.value.path == "agent.listen.provider.smart_format"


def test_seed_function_url_method_are_mapped_into_endpoint() -> None:
    fn = Function(name="get_weather", url="https://api.example/weather", method="GET")
    assert fn.to_dict() == {
        "name": "get_weather",
        "endpoint": {"url": "https://api.example/weather", "method": "GET"},
    }
    assert Function(name="f", endpoint=Endpoint(url="https://x.example")).to_dict() == {
        "name": "f",
        "endpoint": {"url": "https://x.example", "method": "POST"},
    }
    assert Function(name="client_side").to_dict() == {"name": "client_side"}


def test_function_endpoint_without_url() -> None:
    opts = SettingsOptions(think=Think(functions=[Function(name="f", method="POST")]))
    with pytest.raises(SettingsError) as err:
        opts.to_dict()
    assert err.value.path == "agent.think.functions[0].endpoint.url"
    assert "client-side" in str(err.value)


def test_think_and_speak_endpoints_take_no_method() -> None:
    # The server's think/speak endpoints have no method (the v4 SDK always sent one): it is
    # left out, and a warning names it.
    opts = SettingsOptions(
        think=Think(
            provider=Provider(type="groq", model="openai/gpt-oss-20b"),
            endpoint=Endpoint(url="https://groq.example", method="POST"),
        ),
        speak=Speak(
            provider=Provider(type="open_ai", model="tts-1", voice="nova"),
            endpoint={"url": "https://tts.example", "method": "POST"},
        ),
    )
    with pytest.warns(DeepgramAgentWarning) as record:
        data = opts.to_dict()
    assert data["agent"]["think"]["endpoint"] == {"url": "https://groq.example"}
    assert data["agent"]["speak"]["endpoint"] == {"url": "https://tts.example"}
    texts = sorted(str(w.message) for w in record)
    assert "agent.speak.endpoint.method='POST' is not sent" in texts[0]
    assert "agent.think.endpoint.method='POST' is not sent" in texts[1]
    # an Endpoint's method reads POST (the v4 default) but is only sent for a function
    assert Endpoint(url="https://x.example").method == "POST"
    assert Endpoint(url="https://x.example").to_dict() == {"url": "https://x.example"}


def test_think_provider_types_and_models() -> None:
    # The seed declares gpt-4, which the server no longer lists: the default is a current model
    # (docs/protocol.md 5.1.2); a model you give is sent as given.
    assert Think().to_dict() == {"provider": {"type": "open_ai", "model": "gpt-4o-mini"}}
    assert Think().model == "gpt-4o-mini" == DEFAULT_THINK_MODEL
    assert Think(model="gpt-4").to_dict()["provider"]["model"] == "gpt-4"
    anthropic = Think(provider=Provider(type="anthropic"), model="claude-haiku-4-5")
    assert anthropic.to_dict() == {"provider": {"type": "anthropic", "model": "claude-haiku-4-5"}}
    with pytest.raises(SettingsError) as err:
        SettingsOptions(think=Think(provider=Provider(type="anthropic"))).to_dict()
    assert err.value.path == "agent.think.provider.model"


def test_speak_other_providers() -> None:
    speak = Speak(
        provider=Provider(type="eleven_labs", model_id="eleven_turbo_v2_5"),
        endpoint=Endpoint(url="wss://api.elevenlabs.io/v1/text-to-speech/v/stream-input"),
    )
    data = SettingsOptions(speak=speak).to_dict()
    assert data["agent"]["speak"] == {
        "provider": {"type": "eleven_labs", "model_id": "eleven_turbo_v2_5"},
        "endpoint": {"url": "wss://api.elevenlabs.io/v1/text-to-speech/v/stream-input"},
    }
    assert data["audio"]["output"] == DEFAULT_AUDIO["output"]


def test_context_replays_server_history_events() -> None:
    events = [
        m.History(role="user", content="What time is it?"),
        m.History(
            function_calls=[
                m.HistoryFunctionCallItem(
                    id="call_Zt41",
                    name="get_time",
                    client_side=True,
                    arguments="{}",
                    response='{"time":"14:05"}',
                )
            ]
        ),
        {"role": "assistant", "content": "It's five past two."},
    ]
    data = SettingsOptions(context=Context(messages=events)).to_dict()
    assert data["agent"]["context"] == {
        "messages": [
            {"type": "History", "role": "user", "content": "What time is it?"},
            {
                "type": "History",
                "function_calls": [
                    {
                        "id": "call_Zt41",
                        "name": "get_time",
                        "client_side": True,
                        "arguments": "{}",
                        "response": '{"time":"14:05"}',
                    }
                ],
            },
            {"type": "History", "role": "assistant", "content": "It's five past two."},
        ]
    }


def test_stored_agent_id() -> None:
    data = SettingsOptions(agent="3f9c2d1e-8a47-4b6e-9f10-2c5d7e8a1b34").to_dict()
    assert data == {
        "type": "Settings",
        "audio": DEFAULT_AUDIO,
        "agent": "3f9c2d1e-8a47-4b6e-9f10-2c5d7e8a1b34",
    }
    with pytest.raises(SettingsError) as err:
        SettingsOptions(agent="3f9c2d1e", listen=Listen()).to_dict()
    assert err.value.path == "agent"


def test_speak_fallback_chain_and_output_audio() -> None:
    opts = SettingsOptions(
        agent=Agent(speak=[Speak(model="aura-2-thalia-en", sample_rate=16000), Speak()])
    )
    data = opts.to_dict()
    assert data["audio"]["output"] == {
        "encoding": "linear16",
        "sample_rate": 16000,
        "container": "none",
    }
    assert [s["provider"]["model"] for s in data["agent"]["speak"]] == [
        "aura-2-thalia-en",
        "aura-asteria-en",
    ]


def test_output_bitrate_only_when_set() -> None:
    data = SettingsOptions(speak=Speak(encoding="mp3", bitrate=48000)).to_dict()
    assert data["audio"]["output"] == {
        "encoding": "mp3",
        "sample_rate": 24000,
        "container": "none",
        "bitrate": 48000,
    }


def test_listen_seed_only_fields_are_not_sent() -> None:
    with pytest.warns(DeepgramAgentWarning, match="channels, endpointing") as record:
        listen = Listen(channels=1, endpointing=False)
    assert len(record) == 1
    assert listen.channels == 1
    assert listen.endpointing is False
    assert listen.to_dict() == SEED_LISTEN


def test_no_warning_without_seed_only_fields() -> None:
    # filterwarnings=error would turn any warning into a failure here
    assert Listen(model="nova-3").model == "nova-3"


# ---- contradictions --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("opts", "path"),
    [
        (
            lambda: SettingsOptions(
                listen=Listen(sample_rate=16000), audio=Audio(input=Input(sample_rate=8000))
            ),
            "audio.input.sample_rate",
        ),
        (
            lambda: SettingsOptions(
                speak=Speak(encoding="mulaw"), audio=Audio(output=Output(encoding="linear16"))
            ),
            "audio.output.encoding",
        ),
        (
            lambda: SettingsOptions(listen=Listen(), agent=Agent(listen=Listen())),
            "agent.listen",
        ),
        (
            lambda: SettingsOptions(greeting="a", agent=Agent(greeting="b")),
            "agent.greeting",
        ),
        (
            lambda: SettingsOptions(
                agent=Agent(speak=[Speak(sample_rate=16000), Speak(sample_rate=24000)])
            ),
            "audio.output.sample_rate",
        ),
        (
            lambda: SettingsOptions(
                listen=Listen(model="nova-2", provider=Provider(model="nova-3"))
            ),
            "agent.listen.provider.model",
        ),
        (
            lambda: SettingsOptions(think=Think(instructions="a", prompt="b")),
            "agent.think.prompt",
        ),
        (
            lambda: SettingsOptions(
                think=Think(
                    functions=[
                        Function(
                            name="f",
                            url="https://a.example",
                            endpoint=Endpoint(url="https://b.example"),
                        )
                    ]
                )
            ),
            "agent.think.functions[0].endpoint.url",
        ),
    ],
)
def test_contradictions_raise(opts: Any, path: str) -> None:
    with pytest.raises(SettingsError) as err:
        opts().to_dict()
    assert err.value.path == path
    text = str(err.value)
    assert any(advice in text for advice in ("in one place", "once", "pass one")), text


def test_agreeing_sources_are_fine() -> None:
    opts = SettingsOptions(
        listen=Listen(sample_rate=8000, encoding="mulaw"),
        audio=Audio(input=Input(encoding="mulaw", sample_rate=8000)),
    )
    assert opts.to_dict()["audio"]["input"] == {"encoding": "mulaw", "sample_rate": 8000}
    # a Listen left at its defaults yields to an explicit Audio input
    opts = SettingsOptions(listen=Listen(), audio=Audio(input=Input(sample_rate=48000)))
    assert opts.to_dict()["audio"]["input"] == {"encoding": "linear16", "sample_rate": 48000}


def test_inject_text_and_message_contradict() -> None:
    with pytest.raises(SettingsError, match="same field"):
        InjectAgentMessageOptions(text="a", message="b")
    with pytest.raises(SettingsError, match="same field"):
        InjectUserMessageOptions(text="a", content="b")
    assert InjectUserMessageOptions(text="a", content="a").text == "a"


# ---- recorded bad shapes of docs/protocol.md 9.4, given as dicts ----------------------------------

AUDIO = {"input": {"encoding": "linear16", "sample_rate": 16000}}


@pytest.mark.parametrize(
    ("data", "path", "hint"),
    [
        (
            {"audio": AUDIO, "agent": {"listen": {"provider": "deepgram", "model": "nova-3"}}},
            "agent.listen.model",
            "agent.listen.provider",
        ),
        (
            {
                "audio": AUDIO,
                "agent": {
                    "think": {
                        "provider": {"type": "open_ai", "model": "gpt-4o-mini"},
                        "functions": [
                            {
                                "name": "get_weather",
                                "url": "https://api.example.com/weather",
                                "method": "post",
                            }
                        ],
                    }
                },
            },
            "agent.think.functions[0].method",
            "endpoint",
        ),
        ({"audio": AUDIO, "agent": {"tags": ["x"]}}, "agent.tags", "top level"),
        ({"audio": AUDIO, "agent": {}, "greeting": "Hi"}, "greeting", "agent.greeting"),
        ({"audio": AUDIO, "agent": {"mip_opt_out": True}}, "agent.mip_opt_out", "top level"),
    ],
)
def test_recorded_bad_shapes(data: dict[str, Any], path: str, hint: str) -> None:
    with pytest.raises(SettingsError) as err:
        coerce_settings(data)
    assert err.value.path == path
    assert hint in str(err.value)
    assert err.value.code == "UNPARSABLE_CLIENT_MESSAGE"
    with pytest.raises(SettingsError) as again:
        coerce_settings(json.dumps(data))
    assert again.value.path == path
    # from_dict builds what the constructor builds: the classic function url/method and a
    # top-level greeting are mapped where the wire wants them; the others name the path.
    if path == "agent.think.functions[0].method":
        fn = SettingsOptions.from_dict(data).to_dict()["agent"]["think"]["functions"][0]
        assert fn["endpoint"] == {"url": "https://api.example.com/weather", "method": "post"}
    elif path == "greeting":
        assert SettingsOptions.from_dict(data).to_dict()["agent"]["greeting"] == "Hi"
    else:
        with pytest.raises(SettingsError) as again:
            SettingsOptions.from_dict(data)
        assert again.value.path == path


def test_invalid_json_and_wrong_types() -> None:
    with pytest.raises(SettingsError, match="not valid JSON"):
        coerce_settings("{nope")
    with pytest.raises(SettingsError, match="JSON object"):
        coerce_settings("[1, 2]")
    with pytest.raises(TypeError, match="SettingsOptions"):
        coerce_settings(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="option object"):
        coerce_client_message(3.5)
    with pytest.raises(SettingsError) as err:
        coerce_client_message({"type": "InjectAgentMessage", "content": "x"})
    assert err.value.path == "content"
    with pytest.raises(SettingsError) as err:
        coerce_client_message({"type": "SettingsConfiguration"})
    assert err.value.path == "type"


def test_settings_wrong_field_type_names_the_path() -> None:
    with pytest.raises(SettingsError) as err:
        SettingsOptions(listen=Listen(sample_rate="fast")).to_dict()  # type: ignore[arg-type]
    assert err.value.path == "audio.input.sample_rate"


def test_coerce_client_message_other_structs() -> None:
    assert coerce_client_message(m.ForceEndTurn()) == m.ForceEndTurn()
    assert coerce_client_message({"type": "KeepAlive"}) == m.KeepAlive()
    settings = coerce_client_message(seed_example_4())
    assert isinstance(settings, m.Settings)
    with pytest.raises(SettingsError) as err:
        coerce_client_message(
            m.UpdateSpeak(speak=m.SpeakSettings(provider=m.SpeakProvider(type="deepgram")))
        )
    assert err.value.path == "speak.provider.model"


# ---- round trips, escape hatch, nulls, whole floats ------------------------------------------


@pytest.mark.parametrize(
    "build",
    [golden_settings_seed_style, golden_settings_wire_style, seed_example_2, seed_example_4],
)
def test_settings_round_trip(build: Any) -> None:
    opts = build()
    data = opts.to_dict()
    again = SettingsOptions.from_dict(data)
    assert again.to_dict() == data
    assert SettingsOptions.from_json(opts.to_json()).to_dict() == data
    assert SettingsOptions.from_json(opts.to_json()) == again


def test_escape_hatch_is_merged_after_validation() -> None:
    opts = SettingsOptions(
        listen=Listen(model="nova-3"),
        extra={
            "agent": {"new_key": 1, "listen": {"provider": {"future_option": True}}},
            "audio": {"output": {"sample_rate": 16000}},
            "brand_new_top": {"a": [1, 2]},
        },
    )
    typed, sent = coerce_settings(opts)
    assert sent["agent"]["new_key"] == 1
    assert sent["agent"]["listen"]["provider"]["future_option"] is True
    assert sent["agent"]["listen"]["provider"]["model"] == "nova-3"
    assert sent["brand_new_top"] == {"a": [1, 2]}
    assert sent["audio"]["output"] == {
        "encoding": "linear16",
        "sample_rate": 16000,
        "container": "none",
    }
    assert opts.to_dict() == sent
    # the typed view follows the merged values the SDK models
    assert output_format(typed) == ("linear16", 16000)
    # without extra, unknown keys are never produced
    assert "new_key" not in SettingsOptions(listen=Listen(model="nova-3")).to_dict()["agent"]


def test_escape_hatch_none_removes_and_bad_types_fail() -> None:
    opts = SettingsOptions(
        listen=Listen(), extra={"agent": {"listen": {"provider": {"smart_format": None}}}}
    )
    assert "smart_format" not in opts.to_dict()["agent"]["listen"]["provider"]
    # What extra merges in goes out as given: no local rule runs on it (the server decides),
    # and the typed view falls back to the validated modelled part.
    odd = SettingsOptions(extra={"audio": {"input": {"sample_rate": "high"}}})
    typed, sent = coerce_settings(odd)
    assert sent["audio"]["input"] == {"encoding": "linear16", "sample_rate": "high"}
    assert input_format(typed) == ("linear16", 16000)
    future = SettingsOptions(
        extra={"agent": {"think": {"provider": {"type": "x_ai", "model": "grok-3"}}}}
    )
    typed, sent = coerce_settings(future)
    assert sent["agent"]["think"] == {"provider": {"type": "x_ai", "model": "grok-3"}}
    # the modelled part is still validated
    with pytest.raises(SettingsError) as err:
        SettingsOptions(listen=Listen(sample_rate="fast"), extra={"a": 1}).to_dict()  # type: ignore[arg-type]
    assert err.value.path == "audio.input.sample_rate"


def test_no_null_in_any_output() -> None:
    outputs = [
        golden_settings_seed_style().to_dict(),
        golden_settings_wire_style().to_dict(),
        seed_example_2().to_dict(),
        SettingsOptions(listen=Listen(language=None, model=None), flags=Flags()).to_dict(),
        coerce_settings({"audio": AUDIO, "agent": {"greeting": None, "think": None}})[1],
        FunctionCallResponse(name="f", result="r", id=None).to_dict(),
        InjectAgentMessageOptions(text="x", behavior=None).to_dict(),
    ]
    outputs += [g[1]().to_dict() for g in GOLDEN_MESSAGES]
    for out in outputs:
        assert no_null(out), out
        assert "null" not in json.dumps(out)


def test_whole_floats_become_ints() -> None:
    data = SettingsOptions(
        listen=Listen(sample_rate=16000.0), speak=Speak(sample_rate=24000.0)
    ).to_dict()
    assert data["audio"]["input"]["sample_rate"] == 16000
    assert isinstance(data["audio"]["input"]["sample_rate"], int)
    assert '"sample_rate":16000' in json.dumps(data, separators=(",", ":"))
    assert isinstance(data["audio"]["output"]["sample_rate"], int)
    typed, sent = coerce_settings(
        {"audio": {"input": {"encoding": "linear16", "sample_rate": 8000.0}}, "agent": {}}
    )
    assert input_format(typed) == ("linear16", 8000)
    assert isinstance(sent["audio"]["input"]["sample_rate"], int)
    # a real fraction stays a float
    think = SettingsOptions(think=Think(temperature=0.5)).to_dict()["agent"]["think"]
    assert think["provider"]["temperature"] == 0.5


def test_listen_and_speak_inside_an_agent_dict_set_the_audio_format() -> None:
    """Listen/Speak objects inside an agent dict set the audio format.

    Broke: SettingsOptions(agent={'listen': Listen(...), 'speak': Speak(...)}) ignored their
    encoding and sample rate; mulaw/alaw without a sample rate means 8000 Hz.
    """
    opts = SettingsOptions(
        agent={
            "listen": Listen(model="nova-3", encoding="mulaw", sample_rate=8000),
            "speak": Speak(model="aura-2-thalia-en", encoding="mulaw"),
        }
    )
    audio = opts.to_dict()["audio"]
    assert audio["input"] == {"encoding": "mulaw", "sample_rate": 8000}
    assert audio["output"] == {"encoding": "mulaw", "sample_rate": 8000, "container": "none"}


def test_audio_format_helpers_defaults() -> None:
    bare = m.Settings(audio=m.AudioConfig(), agent=m.AgentSettings())
    assert input_format(bare) == ("linear16", 24000)
    assert output_format(bare) == ("linear16", 24000)
    partial = m.Settings(audio=m.AudioConfig(output=m.AudioOutput(encoding="mulaw")), agent="id")
    assert output_format(partial) == ("mulaw", 24000)
    typed, _ = coerce_settings(golden_settings_seed_style())
    assert input_format(typed) == ("mulaw", 8000)
    assert output_format(typed) == ("mulaw", 8000)


# ---- reprs -----------------------------------------------------------------------------------


def test_reprs_are_readable_and_hide_secrets() -> None:
    assert repr(Listen(model="nova-3")) == "Listen(model='nova-3')"
    assert (
        repr(Provider(type="open_ai", model="gpt-4o")) == "Provider(type='open_ai', model='gpt-4o')"
    )
    text = repr(golden_settings_seed_style()) + repr(golden_settings_wire_style())
    assert "crm-secret" not in text
    assert "SettingsOptions(" in text
    creds = Provider(type="aws_bedrock", model="m", credentials={"secret_access_key": "AKIAsecret"})
    assert "AKIAsecret" not in repr(creds)
    assert "sk-x" not in repr(GOLDEN_MESSAGES[2][1]())
    assert "sk-x" not in repr(Header(name="authorization", value="sk-x"))


def test_equality_and_attribute_access() -> None:
    assert Listen(model="nova-3") == Listen(model="nova-3")
    assert Listen(model="nova-3") != Listen(model="nova-2")
    provider = Provider(type="open_ai")
    provider.model = "gpt-4o"
    assert provider["model"] == "gpt-4o"
    assert provider.temperature is None
    listen = Listen()
    listen.sample_rate = 8000
    assert listen.is_set("sample_rate")
    with pytest.raises(SettingsError):
        SettingsOptions(listen=listen, audio=Audio(input=Input(sample_rate=16000))).to_dict()


def test_building_block_errors_name_the_path() -> None:
    def path_of(opts: SettingsOptions) -> str:
        with pytest.raises(SettingsError) as err:
            opts.to_dict()
        return err.value.path

    bad_property = Function(name="f", parameters=Parameters(properties={"city": "string"}))
    assert path_of(SettingsOptions(think=Think(functions=[bad_property]))) == (
        "agent.think.functions[0].parameters.properties.city"
    )
    bad_header = Function(name="f", url="https://x.example", headers=[Header(name="a")])
    assert path_of(SettingsOptions(think=Think(functions=[bad_header]))) == (
        "agent.think.functions[0].endpoint.headers[0]"
    )
    assert Speak(provider=Provider(type="deepgram")).model == "aura-asteria-en"
    # a dict function in the seed's flat shape is refused with the server's path
    flat_fn = {"name": "f", "url": "https://x.example", "method": "POST"}
    assert path_of(SettingsOptions(think=Think(functions=[flat_fn]))) == (
        "agent.think.functions[0].method"
    )


def test_headers_forms() -> None:
    as_pairs = Endpoint(
        url="u", headers=[{"key": "x-a", "value": "1"}, Header(key="x-b", value="2")]
    )
    assert as_pairs.to_dict() == {"url": "u", "headers": {"x-a": "1", "x-b": "2"}}
    assert "'1'" not in repr(as_pairs)


def test_message_options_need_their_field() -> None:
    for opts, path in [
        (UpdatePromptOptions(), "prompt"),
        (UpdateSpeakOptions(), "speak"),
        (UpdateThinkOptions(), "think"),
        (UpdateListenOptions(), "listen"),
        (InjectUserMessageOptions(), "content"),
        (InjectAgentMessageOptions(), "message"),
    ]:
        with pytest.raises(SettingsError) as err:
            coerce_client_message(opts)
        assert err.value.path == path
    with pytest.raises(SettingsError):
        AgentKeepAlive(type="Ping")
    with pytest.raises(SettingsError) as err:
        UpdatePromptOptions.from_dict({"type": "UpdateSpeak", "prompt": "x"})
    assert err.value.path == "type"
    with pytest.raises(TypeError, match="takes a dict"):
        UpdatePromptOptions.from_dict(["prompt"])  # type: ignore[arg-type]


def test_dynamic_inject_agent_message() -> None:
    opts = InjectAgentMessageOptions(is_dynamic=True, behavior="queue")
    assert opts.to_dict() == {"type": "InjectAgentMessage", "behavior": "queue", "is_dynamic": True}


def test_escape_hatch_inside_a_fallback_list() -> None:
    extra = {"agent": {"speak": [{"provider": {"type": "deepgram", "model": "m", "new": 1}}]}}
    typed, sent = coerce_settings(SettingsOptions(speak=Speak(), extra=extra))
    assert sent["agent"]["speak"][0]["provider"]["new"] == 1
    assert isinstance(typed.agent, m.AgentSettings)
    assert isinstance(typed.agent.speak, list)
    assert typed.agent.speak[0].provider.model == "m"


# ---- the deepgram v4 SDK's idioms: default trees, constructors, serialisation ---------------


def test_default_trees_read_without_being_sent() -> None:
    opts = SettingsOptions()
    # every nested object reads as a default, as in the v4 SDK
    assert opts.agent.think.provider.type == "open_ai"
    assert opts.agent.listen.provider.type == "deepgram"
    assert opts.agent.speak.provider.type == "deepgram"
    assert opts.audio.input.encoding == "linear16" and opts.audio.input.sample_rate == 16000
    assert opts.audio.output.sample_rate == 24000 and opts.audio.output.container == "none"
    assert opts.agent.language == "en" and opts.agent.greeting is None
    assert opts.experimental is False and opts.mip_opt_out is False
    assert opts.type == "Settings"
    assert opts.agent.think.prompt is None and opts.agent.think.instructions == ""
    assert opts.agent.think.model == DEFAULT_THINK_MODEL
    assert opts.agent.speak.model == "aura-asteria-en"
    assert opts.agent.listen.model == "nova-2"
    # ...and reading them sent nothing: the server's managed defaults still apply
    assert opts.to_dict() == {"type": "Settings", "audio": DEFAULT_AUDIO, "agent": {}}
    assert repr(opts) == "SettingsOptions()"
    assert opts == SettingsOptions()


def test_setting_inside_a_default_attaches_it_and_its_parents() -> None:
    opts = SettingsOptions()
    opts.agent.think.prompt = "Be brief."
    # think needs a provider: the default type and model (ones the server takes) complete it
    assert opts.to_dict()["agent"] == {
        "think": {
            "provider": {"type": "open_ai", "model": DEFAULT_THINK_MODEL},
            "prompt": "Be brief.",
        }
    }
    opts.agent.listen.provider.keyterms = ["Acme"]
    assert opts.to_dict()["agent"]["listen"] == {
        "provider": {"type": "deepgram", "keyterms": ["Acme"]}
    }
    opts.agent.speak.provider.model = "aura-2-thalia-en"
    assert opts.to_dict()["agent"]["speak"] == {
        "provider": {"type": "deepgram", "model": "aura-2-thalia-en"}
    }
    opts.audio.output.encoding = "mulaw"
    assert opts.to_dict()["audio"]["output"] == {
        "encoding": "mulaw",
        "sample_rate": 8000,
        "container": "none",
    }
    opts.experimental = False  # set explicitly: sent
    opts.mip_opt_out = True
    opts.agent.language = "en"
    data = opts.to_dict()
    assert (data["experimental"], data["mip_opt_out"], data["agent"]["language"]) == (
        False,
        True,
        "en",
    )
    assert opts.is_set("agent") and opts.agent.is_set("think")
    # setting None resets an option to its default (not sent)
    opts.agent.speak = None
    assert "speak" not in opts.to_dict()["agent"]
    assert opts.agent.speak.provider.type == "deepgram"  # a fresh default


def test_a_default_read_from_one_tree_and_assigned_to_another_belongs_to_the_second() -> None:
    first, second = SettingsOptions(), SettingsOptions()
    speak = first.agent.speak
    second.agent.speak = speak
    speak.provider.model = "aura-2-luna-en"
    assert "speak" not in first.to_dict()["agent"]
    assert second.to_dict()["agent"]["speak"]["provider"]["model"] == "aura-2-luna-en"


def test_every_class_reads_defaults_and_message_classes_need_content() -> None:
    update = UpdateSpeakOptions()
    assert update.speak.provider.type == "deepgram"
    with pytest.raises(SettingsError) as err:
        update.to_dict()  # nothing set yet: nothing to send
    assert err.value.path == "speak"
    update.speak.provider.model = "aura-2-luna-en"
    assert update.to_dict() == {
        "type": "UpdateSpeak",
        "speak": {"provider": {"type": "deepgram", "model": "aura-2-luna-en"}},
    }
    think = UpdateThinkOptions()
    think.think.prompt = "New rules."
    assert think.to_dict()["think"]["prompt"] == "New rules."
    listen = UpdateListenOptions()
    listen.listen.provider.keyterms = ["Zephyr"]
    assert listen.to_dict() == {
        "type": "UpdateListen",
        "listen": {"provider": {"type": "deepgram", "keyterms": ["Zephyr"]}},
    }
    speak = Speak()
    speak.provider.type = "open_ai"
    speak.provider.model = "tts-1"
    speak.provider.voice = "nova"
    assert speak.to_dict() == {"provider": {"type": "open_ai", "model": "tts-1", "voice": "nova"}}
    assert Audio().input.sample_rate == 16000 and Audio().to_dict() == {}


def test_provider_is_a_dict_with_attribute_access() -> None:
    provider = Provider({"type": "deepgram", "model": "nova-3"})
    assert isinstance(provider, dict) and provider == {"type": "deepgram", "model": "nova-3"}
    assert json.loads(json.dumps(provider)) == provider
    provider.keyterms = ["a"]
    provider["smart_format"] = True
    provider.update(language="en", model=None)  # None removes
    assert provider == {
        "type": "deepgram",
        "keyterms": ["a"],
        "smart_format": True,
        "language": "en",
    }
    del provider.language
    assert provider.language is None and "language" not in provider
    # a standalone Provider reads the seed's default type; a Listen/Speak makes it deepgram
    assert Provider().type == "open_ai" and Provider().to_dict() == {}
    untyped = Provider(model="nova-3")
    listen = Listen(provider=untyped)
    assert untyped.type == "deepgram"
    assert listen.to_dict() == {"provider": {"type": "deepgram", "model": "nova-3"}}
    assert (
        Listen(provider={"model": "nova-3"}).provider.type == "deepgram"
    )  # dicts become Providers
    assert str(Provider(type="open_ai")) == '{\n    "type": "open_ai"\n}'
    assert Provider.from_json('{"type": "anthropic"}') == {"type": "anthropic"}
    with pytest.raises(AttributeError):
        provider._secret = 1


def test_a_flux_model_on_a_default_provider_selects_v2() -> None:
    opts = SettingsOptions()
    opts.agent.listen.provider.model = "flux-general-en"
    opts.agent.listen.provider.eot_threshold = 0.8
    assert opts.to_dict()["agent"]["listen"] == {
        "provider": {
            "type": "deepgram",
            "model": "flux-general-en",
            "eot_threshold": 0.8,
            "version": "v2",
        }
    }
    assert opts.agent.listen.version == "v2"


def test_flat_attributes_map_into_the_provider() -> None:
    opts = SettingsOptions()
    opts.agent.listen.provider.type = "deepgram"
    opts.agent.listen.model = "nova-3"  # the v4 SDK silently dropped these; here they are sent
    opts.agent.think.model = "gpt-4.1-mini"
    opts.agent.think.temperature = 0.3
    opts.agent.speak.model = "aura-2-thalia-en"
    opts.agent.speak.voice = None
    agent = opts.to_dict()["agent"]
    assert agent["listen"]["provider"] == {"type": "deepgram", "model": "nova-3"}
    assert agent["think"]["provider"] == {
        "type": "open_ai",
        "model": "gpt-4.1-mini",
        "temperature": 0.3,
    }
    assert agent["speak"]["provider"] == {"type": "deepgram", "model": "aura-2-thalia-en"}
    think = Think(instructions="a")
    think.prompt = "b"  # the last one set wins (they are one option)
    assert (think.prompt, think.instructions) == ("b", "b")
    think.instructions = "c"
    assert think.to_dict()["prompt"] == "c"


def test_unknown_attributes_are_errors_that_suggest_the_name() -> None:
    opts = SettingsOptions()
    with pytest.raises(AttributeError, match="did you mean 'prompt'"):
        opts.agent.think.promt = "x"
    with pytest.raises(AttributeError, match="SettingsOptions has no option 'greting'"):
        opts.greting = "Hi"
    with pytest.raises(AttributeError):
        opts.type = "Other"  # read-only
    assert opts.to_dict()["agent"] == {}


def test_v4_positional_orders() -> None:
    assert Header("authorization", "Bearer x").to_dict() == {"authorization": "Bearer x"}
    assert Header(key="a", value="1").name == "a" == Header(key="a", value="1").key
    with pytest.raises(SettingsError, match="same field"):
        Header("a", "1", name="b")
    assert Item("string", "City").to_dict() == {"type": "string", "description": "City"}
    assert Parameters("object", {"city": {"type": "string"}}, ["city"]).to_dict() == {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    }
    assert Endpoint("GET", "https://x.example").to_dict() == {
        "url": "https://x.example",
        "method": "GET",
    }
    fn = Function("f", "desc", "https://x.example", "GET", {"a": "1"}, {"type": "object"})
    assert fn.to_dict() == {
        "name": "f",
        "description": "desc",
        "parameters": {"type": "object"},
        "endpoint": {"url": "https://x.example", "method": "GET", "headers": {"a": "1"}},
    }
    think = Think(Provider(type="anthropic", model="claude-haiku-4-5"), None, None, "Hi", 2000)
    assert think.to_dict() == {
        "provider": {"type": "anthropic", "model": "claude-haiku-4-5"},
        "prompt": "Hi",
        "context_length": 2000,
    }
    assert Listen(Provider(model="nova-3")).to_dict() == {
        "provider": {"type": "deepgram", "model": "nova-3"}
    }
    assert Speak(Provider(model="m"), Endpoint(url="https://t.example")).to_dict()["endpoint"] == {
        "url": "https://t.example"
    }
    agent = Agent("en", None, Think(model="gpt-4o"), None, "Hello")
    assert agent.to_dict() == {
        "think": {"provider": {"type": "open_ai", "model": "gpt-4o"}},
        "greeting": "Hello",
        "language": "en",
    }
    assert Input("mulaw").to_dict() == {"encoding": "mulaw", "sample_rate": 8000}
    assert Output("linear16", 16000, None, "wav").to_dict() == {
        "encoding": "linear16",
        "sample_rate": 16000,
        "container": "wav",
    }
    assert Audio(Input(sample_rate=8000)).to_dict() == {
        "input": {"encoding": "linear16", "sample_rate": 8000}
    }


def test_str_is_the_json_and_round_trips() -> None:
    assert str(AgentKeepAlive()) == '{\n    "type": "KeepAlive"\n}'
    assert json.loads(str(UpdatePromptOptions(prompt="x"))) == {
        "type": "UpdatePrompt",
        "prompt": "x",
    }
    assert AgentKeepAlive().type == "KeepAlive" and UpdatePromptOptions().type == "UpdatePrompt"
    # an object that cannot be JSON yet prints its repr instead of raising
    assert str(UpdatePromptOptions()) == "UpdatePromptOptions()"
    # str() does not validate: print(options) shows what a local check will refuse
    odd = SettingsOptions()
    odd.agent.speak.provider.arbitrary_key = "test"
    assert json.loads(str(odd))["agent"]["speak"]["provider"]["arbitrary_key"] == "test"
    with pytest.raises(SettingsError) as err:
        odd.to_json()
    assert err.value.path == "agent.speak.provider.arbitrary_key"
    opts = golden_settings_wire_style()
    assert json.loads(str(opts)) == opts.to_dict() == GOLDEN_SETTINGS
    assert opts.to_json(sort_keys=True) == json.dumps(
        GOLDEN_SETTINGS, sort_keys=True, separators=(",", ":")
    )
    for cls, value in [
        (Listen, Listen(model="nova-3")),
        (Speak, Speak(model="aura-2-thalia-en")),
        (Think, Think(model="gpt-4o", prompt="p")),
        (Endpoint, Endpoint(url="https://x.example", headers={"a": "1"})),
        (Input, Input(encoding="mulaw")),
        (Output, Output(sample_rate=16000)),
        (Function, Function(name="f", url="https://x.example")),
        (Parameters, Parameters(properties={"a": {"type": "string"}})),
        (Item, Item(type="string", enum=["a", "b"])),
        (Context, Context(messages=[{"role": "user", "content": "hi"}])),
        (Flags, Flags(history=False)),
        (InjectAgentMessageOptions, InjectAgentMessageOptions(message="m", behavior="queue")),
        (UpdateSpeakOptions, UpdateSpeakOptions(speak=[Speak(model="a"), Speak(model="b")])),
    ]:
        again = cls.from_json(value.to_json())  # type: ignore[attr-defined]
        assert again.to_dict() == value.to_dict(), cls
    assert Properties.from_json(Properties(a=Item(type="string")).to_json()) == {
        "a": {"type": "string"}
    }
    assert str(Properties(a={"type": "string"})).startswith("{\n")
    assert Header.from_dict({"authorization": "x"}).to_dict() == {"authorization": "x"}


def test_from_dict_fills_the_same_defaults_as_the_constructor() -> None:
    partial = SettingsOptions.from_dict({"agent": {"think": {"prompt": "Be brief."}}})
    assert partial.audio.output.sample_rate == 24000
    assert partial.agent.speak.provider.type == "deepgram"
    assert (
        partial.to_dict() == SettingsOptions(agent=Agent(think=Think(prompt="Be brief."))).to_dict()
    )
    assert Think.from_dict({}).model == DEFAULT_THINK_MODEL
    assert InjectUserMessageOptions.from_dict({"content": "hi"}).text == "hi"
    with pytest.raises(SettingsError) as err:
        Agent.from_dict({"think": {}, "promt": "x"})
    assert err.value.path == "agent.promt"
    with pytest.raises(SettingsError) as err:
        SettingsOptions.from_dict({"agent": {}, "extra": {"a": 1}})  # not a wire key
    assert err.value.path == "extra"
    with pytest.raises(SettingsError, match="did you mean 'sample_rate'"):
        Input.from_dict({"sample_rat": 8000})


def test_item_accepts_any_schema_keyword() -> None:
    item = Item(type="string")
    item["enum"] = ["a", "b"]
    item.description = "Choice"
    assert item["enum"] == ["a", "b"]
    assert item.to_dict() == {"type": "string", "enum": ["a", "b"], "description": "Choice"}
    assert SettingsOptions()["agent"].to_dict() == {}
    with pytest.raises(KeyError):
        SettingsOptions()["nope"]


def test_message_classes_keep_the_core_contract() -> None:
    """Every whole-message class: to_dict() is the exact wire JSON (type included, validated,
    extra merged), to_message() the typed struct (the connection core relies on both)."""
    settings = SettingsOptions(think=Think(prompt="p"), extra={"agent": {"future": 1}})
    assert settings.to_dict()["type"] == "Settings" and settings.to_dict()["agent"]["future"] == 1
    assert isinstance(settings.to_message(), m.Settings)
    cases: list[tuple[Any, type]] = [
        (UpdatePromptOptions(prompt="p"), m.UpdatePrompt),
        (UpdateSpeakOptions(speak=Speak(model="m")), m.UpdateSpeak),
        (UpdateThinkOptions(think=Think(model="gpt-4o")), m.UpdateThink),
        (UpdateListenOptions(listen=Listen(model="nova-3")), m.UpdateListen),
        (InjectAgentMessageOptions(message="hi"), m.InjectAgentMessage),
        (InjectUserMessageOptions(content="hi"), m.InjectUserMessage),
        (AgentKeepAlive(), m.KeepAlive),
    ]
    for opts, struct in cases:
        data = opts.to_dict()
        assert data["type"] == struct.__struct_config__.tag
        message = opts.to_message()
        assert isinstance(message, struct)
        assert msgspec.json.decode(msgspec.json.encode(message)) == data
    with pytest.raises(SettingsError) as err:
        UpdatePromptOptions(prompt="x", type="UpdateSpeak")
    assert err.value.path == "type"


# ----------------------------------------------------------------- the dict-like surface


def test_providers_and_headers_behave_like_the_classic_objects() -> None:
    from deepgram_agent.options import Endpoint

    p = Provider(type="open_ai")
    assert p.setdefault("model", "gpt-4o") == "gpt-4o"
    assert p.setdefault("model", "other") == "gpt-4o"  # already set: kept
    p |= {"temperature": 0.5}
    assert p.to_dict() == {"type": "open_ai", "model": "gpt-4o", "temperature": 0.5}
    with pytest.raises(AttributeError):
        _ = p._hidden
    with pytest.raises(TypeError, match=r"Provider.from_dict\(\) takes a dict, not list"):
        Provider.from_dict([1])  # type: ignore[arg-type]
    h = Header("x-one", "1")
    h.key = "x-two"
    assert (h.name, h.key) == ("x-two", "x-two")
    end = Endpoint(url="https://x.example", headers={"authorization": "sk-secret"})
    assert "sk-secret" not in repr(end)
    listed = Endpoint.from_dict(
        {"url": "https://x.example", "headers": [{"name": "a", "value": "1"}, Header("b", "2")]}
    )
    assert listed.to_dict()["headers"] == {"a": "1", "b": "2"}
    with pytest.raises(SettingsError, match=r"each header must be a Header\(key, value\)"):
        Endpoint(url="https://x.example", headers=[5]).to_dict()
    with pytest.raises(SettingsError, match="headers must be a dict"):
        Endpoint(url="https://x.example", headers=5).to_dict()


def test_option_objects_read_and_write_like_dicts_and_compare_by_value() -> None:
    s = Speak(model="aura-2-thalia-en")
    s["model"] = "aura-2-luna-en"
    assert s["model"] == "aura-2-luna-en" and s.model == "aura-2-luna-en"
    with pytest.raises(KeyError):
        s["_given"] = {}
    assert s != "aura-2-luna-en" and s == Speak(model="aura-2-luna-en")
    t = Think(prompt="one")
    t.prompt = None
    assert t.prompt is None and t.instructions == ""
    t.instructions = "two"
    t.instructions = None
    assert t.prompt is None
    t.provider = 5  # type: ignore[assignment]
    with pytest.raises(SettingsError, match="provider must be a Provider"):
        t.to_dict()
    assert t.model is None  # a broken provider reads as unset rather than failing
    sp = Speak(provider=5)  # type: ignore[arg-type]
    with pytest.raises(SettingsError, match="provider must be a Provider"):
        sp.to_dict()
    assert sp.model is None
    lp = Listen(provider=5)  # type: ignore[arg-type]
    with pytest.raises(SettingsError, match="provider must be a Provider"):
        lp.to_dict()
    assert lp.model is None
    with pytest.raises(SettingsError, match=r"agent\.speak holds only 'provider' and 'endpoint'"):
        Speak.from_dict({"provider": {"type": "deepgram"}, "voice": "x"})
    agent_msg = InjectAgentMessageOptions(message="hi")
    agent_msg.text = "hello"
    assert agent_msg.text == agent_msg.message == "hello"
    user_msg = InjectUserMessageOptions(content="hi")
    user_msg.text = "there"
    assert user_msg.content == "there"


def test_schema_objects_of_function_parameters() -> None:
    item = Item(type="string", description="a city")
    assert (item.type, item.description) == ("string", "a city")
    item.type = "integer"
    item.description = None
    assert item.to_dict() == {"type": "integer"}
    props = Properties.from_dict({"city": {"type": "string"}})
    assert "city" in repr(props)
    with pytest.raises(TypeError, match=r"Properties.from_dict\(\) takes a dict, not str"):
        Properties.from_dict("city")  # type: ignore[arg-type]
    params = Parameters(
        type="object", properties=props, required=["city"], additionalProperties=False
    )
    assert params.to_dict()["additionalProperties"] is False
    with pytest.raises(SettingsError, match="properties"):
        Parameters(type="object", properties=["city"]).to_dict()  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: SettingsOptions(audio=5), "audio must be an Audio"),
        (lambda: SettingsOptions(agent=5), "agent must be an Agent"),
        (lambda: SettingsOptions(extra=5), "extra must be a dict"),
        (lambda: SettingsOptions.from_dict({"type": "KeepAlive"}), "expected 'Settings'"),
        (lambda: coerce_settings("[1]"), "expected a JSON object, got list"),
    ],
)
def test_settings_options_that_cannot_be_settings_say_why(build: Any, match: str) -> None:
    with pytest.raises(SettingsError, match=match):
        obj = build()
        obj.to_dict()


def test_extra_merges_into_the_settings_json_and_think_lists_round_trip() -> None:
    opts = SettingsOptions(extra={"agent": {"think": {"new_flag": True}}, "mip_opt_out": True})
    wire = opts.to_dict()
    assert wire["mip_opt_out"] is True and wire["agent"]["think"]["new_flag"] is True
    think = [{"provider": {"type": "open_ai", "model": "gpt-4o"}}, Think(model="gpt-4o-mini")]
    assert len(UpdateThinkOptions.from_dict({"think": think}).to_dict()["think"]) == 2
