"""Programs written for the ``deepgram`` v4 SDK's agent API run with only the import renamed.

Each program below is written the way the v4 SDK's agent examples and docs write them (option
trees filled attribute by attribute, ``DeepgramClientOptions``, ``DeepgramClient(key, config)``,
``send(bytes)`` streaming of a WAV file, ``send(str(AgentKeepAlive()))``, ``verboselogs``,
``send_settings()``), with ``from deepgram import`` changed to ``from deepgram_agent import``.
Each runs as a subprocess against the emulator; the tests check what it printed and what
reached the wire (``emu.sessions[...]``).
"""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys
import textwrap
import wave
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp.web
import pytest

import deepgram_agent
from deepgram_agent import (
    ConnectOptions,
    DeepgramClient,
    DeepgramClientOptions,
    MissingDependencyError,
    SettingsOptions,
)
from deepgram_agent.testing import AgentEmulator, Rule, Script, ToolCall
from deepgram_agent.utils import verboselogs

from .conftest import scaled

ROOT = Path(__file__).resolve().parent.parent
KEY = "v4-program-key"


@pytest.fixture(scope="module")
def emu() -> Iterator[AgentEmulator]:
    script = Script(
        transcripts=["What's the weather like?"],
        rules=[
            Rule(match="Paris", tool_calls=[ToolCall(name="get_weather", arguments={"city": "Paris"})],
                 reply="In Paris it is {result[get_weather]}."),
            Rule(match="weather like", reply="Sunny and warm."),
        ],
    )  # fmt: skip
    with AgentEmulator.run_in_thread(api_key=KEY, realtime_audio=False, script=script) as e:
        yield e


def run_program(
    tmp_path: Path, name: str, source: str, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    full = dict(os.environ)
    full.pop("DEEPGRAM_AGENT_URL", None)
    full.pop("DEEPGRAM_API_KEY", None)
    full.update(env, PYTHONUNBUFFERED="1")
    full["PYTHONPATH"] = os.pathsep.join(
        p for p in (env.get("PYTHONPATH"), str(ROOT), os.environ.get("PYTHONPATH")) if p
    )
    out = subprocess.run(
        [sys.executable, str(path)],
        env=full,
        capture_output=True,
        text=True,
        timeout=scaled(timeout),
        cwd=str(tmp_path),
        check=False,
    )
    assert "Traceback" not in out.stderr, out.stderr
    assert out.returncode == 0, out.stderr
    return out


def emulator_env(emu: AgentEmulator) -> dict[str, str]:
    return {"DEEPGRAM_AGENT_URL": emu.url, "DEEPGRAM_API_KEY": KEY}


def new_sessions(emu: AgentEmulator, before: int) -> list[Any]:
    return emu.sessions[before:]


def json_after(text: str, marker: str) -> Any:
    start = text.index("{", text.index(marker))
    return json.JSONDecoder().raw_decode(text, start)[0]


def speech_wav(path: Path) -> int:
    """A 16 kHz mono WAV: 0.2 s silence, 0.4 s of a loud tone, 0.6 s silence. Returns the
    number of audio bytes after the 44-byte header."""
    rate = 16000
    tone = array("h", (round(16000 * math.sin(2 * math.pi * 300 * i / rate)) for i in range(6400)))
    pcm = bytes(6400) + tone.tobytes() + bytes(19200)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm)
    assert path.stat().st_size == 44 + len(pcm)
    return len(pcm)


# ---- the "no mic" example: an attribute-filled tree, send(bytes) of a WAV, str(KeepAlive) ----

NO_MIC = """
    import os
    import threading

    from deepgram_agent import (
        AgentKeepAlive,
        AgentWebSocketEvents,
        DeepgramClient,
        DeepgramClientOptions,
        SettingsOptions,
    )


    def main():
        try:
            api_key = os.getenv("DEEPGRAM_API_KEY")
            config = DeepgramClientOptions(options={"keepalive": "true"})
            deepgram = DeepgramClient(api_key, config)
            connection = deepgram.agent.websocket.v("1")

            options = SettingsOptions()
            options.audio.input.encoding = "linear16"
            options.audio.input.sample_rate = 16000
            options.audio.output.encoding = "linear16"
            options.audio.output.sample_rate = 24000
            options.audio.output.container = "none"
            options.agent.language = "en"
            options.agent.listen.provider.type = "deepgram"
            options.agent.listen.model = "nova-3"
            options.agent.think.provider.type = "open_ai"
            options.agent.think.model = "gpt-4o-mini"
            options.agent.think.prompt = "You are a friendly AI assistant."
            options.agent.speak.provider.type = "deepgram"
            options.agent.speak.model = "aura-2-thalia-en"
            options.agent.greeting = "Hello! How can I help you today?"

            audio_done = threading.Semaphore(0)
            received = {"audio": 0}

            def on_audio_data(self, data, **kwargs):
                received["audio"] += len(data)

            def on_agent_audio_done(self, agent_audio_done, **kwargs):
                print(f"Agent audio done: {agent_audio_done.type}")
                audio_done.release()

            def on_conversation_text(self, conversation_text, **kwargs):
                print(f"Conversation Text: {conversation_text.role}: {conversation_text.content}")

            def on_welcome(self, welcome, **kwargs):
                print(f"Welcome message received: {welcome.type}")

            def on_settings_applied(self, settings_applied, **kwargs):
                print(f"Settings applied: {settings_applied.type}")

            def on_user_started_speaking(self, user_started_speaking, **kwargs):
                print("User Started Speaking")

            def on_close(self, close, **kwargs):
                print(f"Connection closed: {close.type}")

            def on_error(self, error, **kwargs):
                print(f"Error: {error}")

            connection.on(AgentWebSocketEvents.AudioData, on_audio_data)
            connection.on(AgentWebSocketEvents.AgentAudioDone, on_agent_audio_done)
            connection.on(AgentWebSocketEvents.ConversationText, on_conversation_text)
            connection.on(AgentWebSocketEvents.Welcome, on_welcome)
            connection.on(AgentWebSocketEvents.SettingsApplied, on_settings_applied)
            connection.on(AgentWebSocketEvents.UserStartedSpeaking, on_user_started_speaking)
            connection.on(AgentWebSocketEvents.Close, on_close)
            connection.on(AgentWebSocketEvents.Error, on_error)

            print("Options:")
            print(options)
            if not connection.start(options):
                print("Failed to start connection")
                return
            connection.send(str(AgentKeepAlive()))

            # the greeting is spoken first; then stream the file as the user's speech
            if not audio_done.acquire(timeout=30):
                print("Timed out waiting for the greeting")
            with open(os.environ["AGENT_WAV"], "rb") as wav:
                wav.read(44)  # skip the WAV header
                while True:
                    chunk = wav.read(8192)
                    if not chunk:
                        break
                    connection.send(chunk)
            if not audio_done.acquire(timeout=30):
                print("Timed out waiting for the reply")
            connection.finish()
            print(f"Received {received['audio']} bytes of agent audio")
            print("Finished")
        except Exception as e:
            print(f"Error: {str(e)}")


    if __name__ == "__main__":
        main()
"""


def test_no_mic_program_streams_a_wav_file(emu: AgentEmulator, tmp_path: Path) -> None:
    audio_bytes = speech_wav(tmp_path / "speech.wav")
    before = len(emu.sessions)
    out = run_program(
        tmp_path,
        "no_mic.py",
        NO_MIC,
        {**emulator_env(emu), "AGENT_WAV": str(tmp_path / "speech.wav")},
    )
    lines = out.stdout.splitlines()
    assert lines[-1] == "Finished", out.stdout
    for expected in [
        "Welcome message received: Welcome",
        "Settings applied: SettingsApplied",
        "Conversation Text: assistant: Hello!",
        "Conversation Text: assistant: How can I help you today?",
        "User Started Speaking",
        "Conversation Text: user: What's the weather like?",
        "Conversation Text: assistant: Sunny and warm.",
        "Connection closed: Close",
    ]:
        assert expected in lines, (expected, out.stdout)
    assert "Error" not in out.stdout and "Timed out" not in out.stdout
    assert int(out.stdout.split("Received ")[1].split(" bytes")[0]) > 0
    (session,) = new_sessions(emu, before)
    settings = session.received_json("Settings")[0]
    # what print(options) showed is exactly what went out
    assert json_after(out.stdout, "Options:") == settings
    assert settings == {
        "type": "Settings",
        "audio": {
            "input": {"encoding": "linear16", "sample_rate": 16000},
            "output": {"encoding": "linear16", "sample_rate": 24000, "container": "none"},
        },
        "agent": {
            "listen": {"provider": {"type": "deepgram", "model": "nova-3"}},
            "think": {
                "provider": {"type": "open_ai", "model": "gpt-4o-mini"},
                "prompt": "You are a friendly AI assistant.",
            },
            "speak": {"provider": {"type": "deepgram", "model": "aura-2-thalia-en"}},
            "greeting": "Hello! How can I help you today?",
            "language": "en",
        },
    }
    assert session.received_json("KeepAlive") == [{"type": "KeepAlive"}]
    assert session.audio_bytes_received == audio_bytes  # every chunk, as binary frames


# ---- the "simple" example: verboselogs, DeepgramClient("", config), url=, function calls ----

SIMPLE = """
    import json
    import logging
    import os
    import threading

    from deepgram_agent.utils import verboselogs

    from deepgram_agent import (
        DeepgramClient,
        DeepgramClientOptions,
        AgentWebSocketEvents,
        SettingsOptions,
        FunctionCallRequest,
        FunctionCallResponse,
    )

    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")


    def main():
        try:
            config: DeepgramClientOptions = DeepgramClientOptions(
                url=os.environ["AGENT_HOST"],
                options={"keepalive": "true"},
                verbose=verboselogs.DEBUG,
            )
            deepgram: DeepgramClient = DeepgramClient("", config)
            dg_connection = deepgram.agent.websocket.v("1")
            audio_done = threading.Semaphore(0)

            def on_conversation_text(self, conversation_text, **kwargs):
                print(f"{conversation_text.role}: {conversation_text.content}")

            def on_function_call_request(
                self, function_call_request: FunctionCallRequest, **kwargs
            ):
                for call in function_call_request.functions:
                    print(f"Function Call Request: {call.name} {json.loads(call.arguments)}")
                    response = FunctionCallResponse(
                        id=call.id,
                        name=call.name,
                        content=json.dumps({"temperature": 21, "condition": "sunny"}),
                    )
                    dg_connection.send(response.to_json())

            def on_agent_audio_done(self, agent_audio_done, **kwargs):
                audio_done.release()

            def on_error(self, error, **kwargs):
                print(f"Error: {error}")

            dg_connection.on(AgentWebSocketEvents.ConversationText, on_conversation_text)
            dg_connection.on(AgentWebSocketEvents.FunctionCallRequest, on_function_call_request)
            dg_connection.on(AgentWebSocketEvents.AgentAudioDone, on_agent_audio_done)
            dg_connection.on(AgentWebSocketEvents.Error, on_error)

            options: SettingsOptions = SettingsOptions()
            options.agent.think.provider.type = "open_ai"
            options.agent.think.provider.model = "gpt-4o-mini"
            options.agent.think.prompt = "You are a helpful AI assistant."
            options.agent.think.functions = [
                {
                    "name": "get_weather",
                    "description": "Get the weather in a city",
                    "parameters": {
                        "type": "object",
                        "properties": {"city": {"type": "string"}},
                        "required": ["city"],
                    },
                }
            ]
            options.greeting = "Hello, this is a text to speech example using Deepgram."
            options.agent.listen.provider.keyterms = ["hello", "goodbye"]
            options.agent.listen.provider.model = "nova-3"
            options.agent.listen.provider.type = "deepgram"
            options.agent.language = "en"
            if dg_connection.start(options) is False:
                print("Failed to start connection")
                return
            audio_done.acquire(timeout=30)  # the greeting
            dg_connection.inject_user_message("What's the weather in Paris?")
            audio_done.acquire(timeout=30)  # the reply
            dg_connection.finish()
            print("Finished")
        except Exception as e:
            print(f"Unexpected error: {e}")


    if __name__ == "__main__":
        main()
"""


def test_simple_program_with_verboselogs_url_and_function_calls(
    emu: AgentEmulator, tmp_path: Path
) -> None:
    before = len(emu.sessions)
    host = "http://" + emu.url.split("://", 1)[1]  # the v4 SDK's url= form (http -> ws)
    out = run_program(tmp_path, "simple.py", SIMPLE, {"AGENT_HOST": host, "DEEPGRAM_API_KEY": KEY})
    lines = out.stdout.splitlines()
    assert lines == [
        "assistant: Hello, this is a text to speech example using Deepgram.",
        "user: What's the weather in Paris?",
        "Function Call Request: get_weather {'city': 'Paris'}",
        'assistant: In Paris it is {"temperature": 21, "condition": "sunny"}.',
        "Finished",
    ], out.stdout
    # verbose=verboselogs.DEBUG reached the deepgram_agent logger; the key never appears
    assert "DEBUG deepgram_agent.connection: socket open to ws://127.0.0.1:" in out.stderr
    assert KEY not in out.stdout + out.stderr
    (session,) = new_sessions(emu, before)
    agent = session.received_json("Settings")[0]["agent"]
    assert agent["listen"] == {
        "provider": {"type": "deepgram", "keyterms": ["hello", "goodbye"], "model": "nova-3"}
    }
    assert agent["greeting"] == "Hello, this is a text to speech example using Deepgram."
    assert agent["think"]["functions"][0]["name"] == "get_weather"
    # send(response.to_json()) sent the v4 (id, name, content) response; the reply above used
    # its content, so the id matched the request's
    (response,) = session.received_json("FunctionCallResponse")
    assert response.pop("id")
    assert response == {
        "type": "FunctionCallResponse",
        "name": "get_weather",
        "content": '{"temperature": 21, "condition": "sunny"}',
    }


# ---- the async example: asyncwebsocket, tags, flags, context, InjectUserMessageOptions ----

ASYNC = """
    import asyncio

    from deepgram_agent import (
        AgentWebSocketEvents,
        Context,
        DeepgramClient,
        DeepgramClientOptions,
        Flags,
        InjectUserMessageOptions,
        SettingsOptions,
    )


    async def main():
        try:
            config: DeepgramClientOptions = DeepgramClientOptions(options={"keepalive": "true"})
            deepgram: DeepgramClient = DeepgramClient("", config)
            dg_connection = deepgram.agent.asyncwebsocket.v("1")
            replied = asyncio.Event()

            async def on_conversation_text(self, conversation_text, **kwargs):
                print(f"{conversation_text.role}: {conversation_text.content}")

            async def on_agent_audio_done(self, agent_audio_done, **kwargs):
                replied.set()

            async def on_close(self, close, **kwargs):
                print("Connection closed")

            async def on_error(self, error, **kwargs):
                print(f"Error: {error}")

            dg_connection.on(AgentWebSocketEvents.ConversationText, on_conversation_text)
            dg_connection.on(AgentWebSocketEvents.AgentAudioDone, on_agent_audio_done)
            dg_connection.on(AgentWebSocketEvents.Close, on_close)
            dg_connection.on(AgentWebSocketEvents.Error, on_error)

            options = SettingsOptions()
            options.flags = Flags(history=True)
            options.tags = ["v4-style", "async"]
            options.audio.input.encoding = "linear16"
            options.audio.input.sample_rate = 16000
            options.agent.context = Context(
                messages=[
                    {"role": "user", "content": "Hi, I'm Ada."},
                    {"role": "assistant", "content": "Hello Ada!"},
                ]
            )
            options.agent.think.provider.type = "open_ai"
            options.agent.think.provider.model = "gpt-4o-mini"
            options.agent.think.prompt = "You remember names."
            print(f"Using tags: {options.tags}")
            print(f"History enabled: {options.flags.history}")
            print(f"Provider: {options.agent.think.provider.type} ({options.agent.think.provider.model})")

            if await dg_connection.start(options) is False:
                print("Failed to start connection")
                return
            await dg_connection.inject_user_message(
                InjectUserMessageOptions(content="What's my name?")
            )
            try:
                await asyncio.wait_for(replied.wait(), 30)
            except asyncio.TimeoutError:
                print("Timed out")
            await dg_connection.finish()
            print("Finished")
        except Exception as e:
            print(f"An unexpected error occurred: {e}")


    asyncio.run(main())
"""


def test_async_program_with_tags_flags_and_context(emu: AgentEmulator, tmp_path: Path) -> None:
    before = len(emu.sessions)
    out = run_program(tmp_path, "async_agent.py", ASYNC, emulator_env(emu))
    assert out.stdout.splitlines() == [
        "Using tags: ['v4-style', 'async']",
        "History enabled: True",
        "Provider: open_ai (gpt-4o-mini)",
        "user: What's my name?",
        "assistant: You said: What's my name?",
        "Connection closed",
        "Finished",
    ], out.stdout
    (session,) = new_sessions(emu, before)
    settings = session.received_json("Settings")[0]
    assert settings["tags"] == ["v4-style", "async"]
    assert settings["flags"] == {"history": True}
    assert settings["agent"] == {
        "think": {
            "provider": {"type": "open_ai", "model": "gpt-4o-mini"},
            "prompt": "You remember names.",
        },
        "context": {
            "messages": [
                {"type": "History", "role": "user", "content": "Hi, I'm Ada."},
                {"type": "History", "role": "assistant", "content": "Hello Ada!"},
            ]
        },
    }
    assert session.received_json("InjectUserMessage") == [
        {"type": "InjectUserMessage", "content": "What's my name?"}
    ]


# ---- the fallback TTS example: Speak() objects, Endpoint(), Header(key=...), server functions --

FALLBACK = """
    from deepgram_agent import (
        AgentWebSocketEvents,
        DeepgramClient,
        DeepgramClientOptions,
        Endpoint,
        Function,
        Header,
        SettingsOptions,
        Speak,
    )


    def main():
        try:
            config = DeepgramClientOptions(options={"keepalive": "true"})
            deepgram = DeepgramClient("", config)
            dg_connection = deepgram.agent.websocket.v("1")
            dg_connection.on(
                AgentWebSocketEvents.SettingsApplied,
                lambda self, settings_applied, **kwargs: print("Settings applied"),
            )

            primary_tts = Speak()
            primary_tts.provider.type = "deepgram"
            primary_tts.provider.model = "aura-2-zeus-en"

            fallback_tts = Speak()
            fallback_tts.provider.type = "open_ai"
            fallback_tts.provider.model = "tts-1"
            fallback_tts.provider.voice = "shimmer"
            fallback_tts.endpoint = Endpoint(
                method="POST",
                url="https://api.openai.com/v1/audio/speech",
                headers=[Header(key="authorization", value="Bearer {{OPENAI_API_KEY}}")],
            )

            options: SettingsOptions = SettingsOptions()
            options.agent.think.provider.type = "open_ai"
            options.agent.think.provider.model = "gpt-4o-mini"
            options.agent.think.functions = [
                Function(
                    "open_ticket",
                    "Create a support ticket",
                    "https://crm.example/api/tickets",
                    "post",
                    {"authorization": "Bearer crm-secret"},
                )
            ]
            options.agent.speak = [primary_tts, fallback_tts]
            print("TTS Providers configured:")
            print(f"1. Primary: {primary_tts.provider.type} - {primary_tts.provider.model}")
            print(f"2. Fallback: {fallback_tts.provider.type} - {fallback_tts.provider.model}")
            if dg_connection.start(options) is False:
                print("Failed to start connection")
                return
            dg_connection.finish()
            print("Finished")
        except Exception as e:
            print(f"An unexpected error occurred: {e}")


    if __name__ == "__main__":
        main()
"""


def test_fallback_tts_program_maps_endpoints_onto_the_wire(
    emu: AgentEmulator, tmp_path: Path
) -> None:
    before = len(emu.sessions)
    out = run_program(tmp_path, "fallback_tts.py", FALLBACK, emulator_env(emu))
    assert out.stdout.splitlines() == [
        "TTS Providers configured:",
        "1. Primary: deepgram - aura-2-zeus-en",
        "2. Fallback: open_ai - tts-1",
        "Settings applied",
        "Finished",
    ], out.stdout
    # the speak endpoint's method has no place on the wire: dropped, with a warning
    assert "DeepgramAgentWarning: agent.speak[1].endpoint.method='POST' is not sent" in out.stderr
    (session,) = new_sessions(emu, before)
    agent = session.received_json("Settings")[0]["agent"]
    assert agent["speak"] == [
        {"provider": {"type": "deepgram", "model": "aura-2-zeus-en"}},
        {
            "provider": {"type": "open_ai", "model": "tts-1", "voice": "shimmer"},
            "endpoint": {
                "url": "https://api.openai.com/v1/audio/speech",
                "headers": {"authorization": "Bearer {{OPENAI_API_KEY}}"},
            },
        },
    ]
    # v4's Function(name, description, url, method, headers) goes inside endpoint
    assert agent["think"]["functions"] == [
        {
            "name": "open_ticket",
            "description": "Create a support ticket",
            "endpoint": {
                "url": "https://crm.example/api/tickets",
                "method": "post",
                "headers": {"authorization": "Bearer crm-secret"},
            },
        }
    ]


# ---- return values: local failures are events, wrong arguments are False -----------------

RETURNS = """
    from deepgram_agent import (
        AgentWebSocketEvents,
        DeepgramClient,
        DeepgramClientOptions,
        InjectAgentMessageOptions,
        InjectUserMessageOptions,
        SettingsOptions,
    )


    def main():
        deepgram = DeepgramClient("", DeepgramClientOptions())

        # an arbitrary provider key: the local checks name it, and start() reports it as the
        # server would (Error, then Close) instead of raising
        connection = deepgram.agent.websocket.v("1")
        connection.on(
            AgentWebSocketEvents.Error,
            lambda self, error, **kwargs: print(f"Error received: {error.code}: {error.description}"),
        )
        connection.on(AgentWebSocketEvents.Close, lambda self, close, **kwargs: print("Close received"))
        options = SettingsOptions()
        options.agent.speak.provider.type = "deepgram"
        options.agent.speak.provider.model = "aura-2-thalia-en"
        options.agent.speak.provider.arbitrary_key = "test"
        print(f"start: {connection.start(options)}")

        good = deepgram.agent.websocket.v("1")
        errors = []
        good.on(AgentWebSocketEvents.Error, lambda self, error, **kwargs: errors.append(error.code))
        print(f"start: {good.start(SettingsOptions())}")
        print(f"inject_agent_message(user options): {good.inject_agent_message(InjectUserMessageOptions(content='hi'))}")
        print(f"inject_user_message(None): {good.inject_user_message(None)}")
        print(f"send(None): {good.send(None)}")
        print(f"send_audio(str): {good.send_audio('not audio')}")
        print(f"update_prompt(42): {good.update_prompt(42)}")
        print(f"send(bad JSON): {good.send('{not json')}")
        print(f"send(bytes): {good.send(bytes(320))}")
        print(f"inject_agent_message: {good.inject_agent_message(InjectAgentMessageOptions(message='Hello there.'))}")
        print(f"errors: {errors}")
        good.finish()


    if __name__ == "__main__":
        main()
"""


def test_return_values_as_in_v4(emu: AgentEmulator, tmp_path: Path) -> None:
    before = len(emu.sessions)
    out = run_program(tmp_path, "returns.py", RETURNS, emulator_env(emu))
    lines = out.stdout.splitlines()
    assert lines[0].startswith(
        "Error received: UNPARSABLE_CLIENT_MESSAGE: Invalid settings at "
        "'agent.speak.provider.arbitrary_key': unknown field 'arbitrary_key'"
    ), out.stdout
    assert lines[1:] == [
        "Close received",
        "start: False",
        "start: True",
        "inject_agent_message(user options): False",
        "inject_user_message(None): False",
        "send(None): False",
        "send_audio(str): False",
        "update_prompt(42): False",
        "send(bad JSON): False",
        "send(bytes): True",
        "inject_agent_message: True",
        "errors: ['UNPARSABLE_CLIENT_MESSAGE']",  # only the invalid JSON is an Error event
    ], out.stdout
    # each wrong argument was logged with the reason
    assert (
        "inject_agent_message() sends InjectAgentMessage: pass InjectAgentMessageOptions(...) "
        "or the text, not InjectUserMessageOptions; nothing was sent"
    ) in out.stderr
    assert "send() got None; nothing was sent" in out.stderr
    assert "send_audio() takes bytes, not str; nothing was sent" in out.stderr
    assert "inject_user_message() got None; nothing was sent" in out.stderr
    # the bad settings never left the process: one session, the good one
    (session,) = new_sessions(emu, before)
    assert [f["type"] if isinstance(f, dict) else "audio" for f in session.received] == [
        "Settings",
        "audio",
        "InjectAgentMessage",
    ]
    assert session.received_json("InjectAgentMessage")[0]["message"] == "Hello there."


# ---- send_settings(): what changed goes out as the runtime updates the server accepts ------

SEND_SETTINGS = """
    import threading

    from deepgram_agent import AgentWebSocketEvents, DeepgramClient, SettingsOptions


    def main():
        deepgram = DeepgramClient()
        dg_connection = deepgram.agent.websocket.v("1")
        acks = threading.Semaphore(0)
        for event in (
            AgentWebSocketEvents.PromptUpdated,
            AgentWebSocketEvents.SpeakUpdated,
            AgentWebSocketEvents.ThinkUpdated,
            AgentWebSocketEvents.ListenUpdated,
        ):
            dg_connection.on(event, lambda self, ack, **kwargs: acks.release())
        dg_connection.on(
            AgentWebSocketEvents.Error,
            lambda self, error, **kwargs: print(f"Error: {error.code}: {error.description}"),
        )

        options = SettingsOptions()
        options.agent.listen.provider.model = "nova-3"
        options.agent.think.provider.model = "gpt-4o-mini"
        options.agent.think.prompt = "You are a helpful assistant."
        options.agent.speak.provider.model = "aura-2-thalia-en"
        print(f"start: {dg_connection.start(options)}")

        options.agent.think.prompt = "You are a pirate."
        print(f"prompt: {dg_connection.send_settings(options)}")
        options.agent.speak.provider.model = "aura-2-luna-en"
        options.agent.think.provider.model = "gpt-4.1-mini"
        print(f"speak and think: {dg_connection.send_settings(options)}")
        options.agent.listen.provider.keyterms = ["Deepgram"]
        print(f"listen: {dg_connection.send_settings(options)}")
        for _ in range(4):
            acks.acquire(timeout=30)
        print(f"unchanged: {dg_connection.send_settings(options)}")
        options.audio.output.sample_rate = 16000
        options.agent.greeting = "Ahoy!"
        print(f"audio and greeting: {dg_connection.send_settings(options)}")
        dg_connection.finish()


    if __name__ == "__main__":
        main()
"""


def test_send_settings_sends_runtime_updates(emu: AgentEmulator, tmp_path: Path) -> None:
    before = len(emu.sessions)
    out = run_program(tmp_path, "send_settings.py", SEND_SETTINGS, emulator_env(emu))
    lines = out.stdout.splitlines()
    assert lines[:5] == [
        "start: True",
        "prompt: True",
        "speak and think: True",
        "listen: True",
        "unchanged: True",
    ], out.stdout
    assert lines[5].startswith(
        "Error: CLIENT_SETTINGS_NOT_UPDATABLE: these settings cannot change during a session: "
        "audio, agent.greeting"
    )
    assert lines[6:] == ["audio and greeting: False"]
    (session,) = new_sessions(emu, before)
    assert [f["type"] for f in session.received_json()] == [
        "Settings",
        "UpdatePrompt",
        "UpdateSpeak",
        "UpdateThink",
        "UpdateListen",
    ]
    assert session.received_json("UpdatePrompt")[0]["prompt"] == "You are a pirate."
    assert session.received_json("UpdateSpeak")[0]["speak"] == {
        "provider": {"type": "deepgram", "model": "aura-2-luna-en"}
    }
    assert session.received_json("UpdateThink")[0]["think"] == {
        "provider": {"type": "open_ai", "model": "gpt-4.1-mini"},
        "prompt": "You are a pirate.",
    }
    assert session.received_json("UpdateListen")[0]["listen"] == {
        "provider": {"type": "deepgram", "model": "nova-3", "keyterms": ["Deepgram"]}
    }
    # the emulator applied them (it follows the server's semantics)
    assert session.state.prompt == "You are a pirate."
    assert session.state.speak_model == "aura-2-luna-en"
    assert session.state.think_model == "gpt-4.1-mini"
    assert session.state.listen == {
        "provider": {"type": "deepgram", "model": "nova-3", "keyterms": ["Deepgram"]}
    }


# ---- speaker_playback / microphone_record drive deepgram_agent.audio ------------------------

#: A stand-in for the third-party ``sounddevice`` package (not our code): an output stream that
#: pulls blocks from the callback as a sound card would, and an input stream that captures
#: 0.2 s of silence, 0.4 s of a loud tone, then silence, at four times real time.
FAKE_SOUNDDEVICE = """
    import atexit
    import math
    import sys
    import threading
    import time
    from array import array

    played_any = threading.Event()
    counts = {"played": 0, "recorded": 0, "outputs": 0, "inputs": 0}


    class _Stream:
        def __init__(self, *, samplerate, blocksize, channels, dtype, callback, device):
            assert channels == 1 and dtype == "int16"
            self.rate, self.block, self.callback = samplerate, blocksize, callback
            self._stop = threading.Event()
            self._thread = None

        def start(self):
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()

        def stop(self):
            self._stop.set()
            if self._thread is not None and self._thread is not threading.current_thread():
                self._thread.join(2)

        def close(self):
            self.stop()


    class RawOutputStream(_Stream):
        def _run(self):
            counts["outputs"] += 1
            while not self._stop.is_set():
                buf = bytearray(self.block * 2)
                self.callback(buf, self.block, None, None)
                loud = sum(1 for s in array("h", bytes(buf)) if s)
                if loud:
                    counts["played"] += loud
                    played_any.set()
                time.sleep(0.002)  # a device's pace (the scenario, not a wait)


    class RawInputStream(_Stream):
        def _run(self):
            counts["inputs"] += 1
            n = 0
            while not self._stop.is_set():
                start = n * self.block
                block = array("h", bytes(self.block * 2))
                for i in range(self.block):
                    t = (start + i) / self.rate
                    if 0.2 <= t < 0.6:
                        block[i] = round(16000 * math.sin(2 * math.pi * 300 * t))
                self.callback(memoryview(block.tobytes()), self.block, None, None)
                counts["recorded"] += self.block * 2
                n += 1
                time.sleep(self.block / self.rate / 4)  # a microphone's pace, sped up


    atexit.register(lambda: print(f"FAKE_DEVICE {counts}", file=sys.stderr))
"""

DEVICES = """
    import threading

    from deepgram_agent import (
        AgentWebSocketEvents,
        DeepgramClient,
        DeepgramClientOptions,
        SettingsOptions,
    )


    def main():
        try:
            config = DeepgramClientOptions(
                options={
                    "keepalive": "true",
                    "microphone_record": "true",
                    "speaker_playback": "true",
                },
            )
            deepgram = DeepgramClient("", config)
            dg_connection = deepgram.agent.websocket.v("1")
            replied = threading.Event()

            def on_conversation_text(self, conversation_text, **kwargs):
                print(f"{conversation_text.role}: {conversation_text.content}")

            def on_agent_audio_done(self, agent_audio_done, **kwargs):
                replied.set()

            dg_connection.on(AgentWebSocketEvents.ConversationText, on_conversation_text)
            dg_connection.on(AgentWebSocketEvents.AgentAudioDone, on_agent_audio_done)

            options = SettingsOptions()
            options.agent.think.provider.type = "open_ai"
            options.agent.think.provider.model = "gpt-4o-mini"
            if dg_connection.start(options) is False:
                print("Failed to start connection")
                return
            replied.wait(30)
            import sounddevice  # the stand-in: wait until the reply was heard

            sounddevice.played_any.wait(30)
            dg_connection.finish()
            print("Finished")
        except Exception as e:
            print(f"Error: {e}")


    if __name__ == "__main__":
        main()
"""


def test_speaker_playback_and_microphone_record(tmp_path: Path) -> None:
    fake = tmp_path / "fake_devices"
    fake.mkdir()
    (fake / "sounddevice.py").write_text(textwrap.dedent(FAKE_SOUNDDEVICE))
    script = Script(
        transcripts=["Can you hear me?"], rules=[Rule(match="hear", reply="Loud and clear.")]
    )
    with AgentEmulator.run_in_thread(api_key=KEY, realtime_audio=False, script=script) as emu:
        out = run_program(
            tmp_path, "devices.py", DEVICES, {**emulator_env(emu), "PYTHONPATH": str(fake)}
        )
        (session,) = emu.sessions
    assert out.stdout.splitlines() == [
        "user: Can you hear me?",
        "assistant: Loud and clear.",
        "Finished",
    ], out.stdout
    # the microphone's audio went up in the Settings' input format (16 kHz linear16 blocks)...
    assert session.audio_bytes_received > 0
    assert session.audio_bytes_received % 640 == 0
    # ...and the agent's reply came out of the speaker
    counts = eval(out.stderr.split("FAKE_DEVICE ")[1].splitlines()[0])
    assert counts["played"] > 0 and counts["outputs"] == 1 and counts["inputs"] == 1


def test_devices_without_the_audio_extra_name_it(tmp_path: Path) -> None:
    # sounddevice not importable (as without the 'audio' extra), whatever this machine has
    missing = tmp_path / "no_audio_extra"
    missing.mkdir()
    (missing / "sounddevice.py").write_text(
        "raise ImportError(\"No module named 'sounddevice'\")\n"
    )
    with AgentEmulator.run_in_thread(api_key=KEY, realtime_audio=False) as emu:
        out = run_program(
            tmp_path, "devices.py", DEVICES, {**emulator_env(emu), "PYTHONPATH": str(missing)}
        )
        assert emu.sessions == []  # checked before connecting
    (line,) = out.stdout.splitlines()
    assert line == (
        'Error: DeepgramClientOptions(options={"speaker_playback": "true", "microphone_record": '
        '"true"}) uses the sound devices through deepgram_agent.audio: audio devices need the '
        "'audio' extra: pip install \"deepgram-agent[audio]\""
    )


# ---- handlers that dump events the v4 way (needs the lead's messages.* __dict__ support) ----


DICT_DUMPS = """
    import json
    import threading

    from deepgram_agent import AgentWebSocketEvents, DeepgramClient, SettingsOptions

    deepgram = DeepgramClient()
    dg_connection = deepgram.agent.websocket.v("1")
    replied = threading.Event()


    def on_conversation_text(self, conversation_text, **kwargs):
        print(json.dumps(conversation_text.__dict__, sort_keys=True))


    def on_welcome(self, welcome, **kwargs):
        print(sorted(vars(welcome)))


    dg_connection.on(AgentWebSocketEvents.ConversationText, on_conversation_text)
    dg_connection.on(AgentWebSocketEvents.Welcome, on_welcome)
    dg_connection.on(AgentWebSocketEvents.AgentAudioDone, lambda self, done, **kwargs: replied.set())
    if dg_connection.start(SettingsOptions()):
        dg_connection.inject_user_message("Dump me.")
        replied.wait(30)
    dg_connection.finish()
"""


def test_handlers_dumping_event_dicts(emu: AgentEmulator, tmp_path: Path) -> None:
    out = run_program(tmp_path, "dict_dumps.py", DICT_DUMPS, emulator_env(emu))
    lines = out.stdout.splitlines()
    assert "request_id" in lines[0]
    user, assistant = (json.loads(line) for line in lines[1:3])
    assert (user["role"], user["content"]) == ("user", "Dump me.")
    assert (assistant["role"], assistant["content"]) == ("assistant", "You said: Dump me.")


# ---- DeepgramClientOptions, mapped onto the client ------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("agent.deepgram.com", "wss://agent.deepgram.com/v1/agent/converse"),
        ("https://agent.deepgram.com", "wss://agent.deepgram.com/v1/agent/converse"),
        ("http://127.0.0.1:8765", "ws://127.0.0.1:8765/v1/agent/converse"),
        ("ws://127.0.0.1:8765/", "ws://127.0.0.1:8765/v1/agent/converse"),
        ("wss://eu.agent.example/v1/agent/converse", "wss://eu.agent.example/v1/agent/converse"),
        # the v4 SDK's default (its REST host) and no url: the agent host
        ("api.deepgram.com", "wss://agent.deepgram.com/v1/agent/converse"),
        ("https://api.deepgram.com", "wss://agent.deepgram.com/v1/agent/converse"),
        ("", "wss://agent.deepgram.com/v1/agent/converse"),
    ],
)
def test_client_options_url_forms(url: str, expected: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEEPGRAM_AGENT_URL", raising=False)
    assert DeepgramClient("k", DeepgramClientOptions(url=url)).url == expected
    # an explicit base_url wins over the config's url
    explicit = DeepgramClient("k", DeepgramClientOptions(url=url), base_url="ws://127.0.0.1:1")
    assert explicit.url == "ws://127.0.0.1:1/v1/agent/converse"


def test_client_options_credentials_keepalive_and_types(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEEPGRAM_API_KEY", raising=False)
    config = DeepgramClientOptions("config-key")  # v4 positional order: api_key first
    assert DeepgramClient("", config)._credentials().header() == "Token config-key"
    assert DeepgramClient("arg-key", config)._credentials().header() == "Token arg-key"
    assert DeepgramClient(config=config)._credentials().header() == "Token config-key"
    assert (
        DeepgramClient(config)._credentials().header() == "Token config-key"
    )  # DeepgramClient(config)
    monkeypatch.setenv("DEEPGRAM_API_KEY", "env-key")
    assert DeepgramClient("", DeepgramClientOptions())._credentials().header() == "Token env-key"
    token = DeepgramClientOptions(access_token="jwt")
    assert DeepgramClient("", token)._credentials().header() == "Bearer jwt"
    assert "config-key" not in repr(config) + repr(DeepgramClient("", config))
    config.set_apikey("rotated")
    assert config.api_key == "rotated"

    # keepalive: on unless "false" (ours is on by default; the v4 SDK's was off unless asked)
    assert DeepgramClient("k", DeepgramClientOptions()).options.keepalive_interval == 5.0
    off = DeepgramClient("k", DeepgramClientOptions(options={"keepalive": "false"}))
    assert off.options.keepalive_interval is None
    on = DeepgramClient(
        "k",
        DeepgramClientOptions(options={"keepalive": True}),
        options=ConnectOptions(keepalive_interval=None, open_timeout=3),
    )
    assert (on.options.keepalive_interval, on.options.open_timeout) == (5.0, 3)
    assert not DeepgramClientOptions(options={"keepalive": "false"}).is_keep_alive_enabled()

    with pytest.raises(ValueError, match="keepalive"):
        DeepgramClientOptions(options={"keepalive": "sometimes"})
    with pytest.raises(ValueError, match="speaker_playback_device_index"):
        DeepgramClientOptions(options={"speaker_playback_device_index": "left"})
    with pytest.raises(TypeError, match="DeepgramClientOptions"):
        DeepgramClient("k", ConnectOptions())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="config="):
        DeepgramClient("k", options=DeepgramClientOptions())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="headers"):
        DeepgramClientOptions(headers=["x"])  # type: ignore[arg-type]
    devices = DeepgramClientOptions(
        options={"speaker_playback_device_index": "3", "microphone_record_rate": 48000}
    )
    assert devices.device_settings("speaker") == {"device_name": 3}
    assert devices.device_settings("microphone") == {"device_rate": 48000}


def test_client_options_unknown_v4_options_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="deepgram_agent"):
        DeepgramClientOptions(options={"auto_flush_reply_delta": "2000", "keepalive": "true"})
    assert "options auto_flush_reply_delta have no effect" in caplog.text


def test_client_options_verbose_sets_the_logger_level() -> None:
    logger = logging.getLogger("deepgram_agent")
    saved = logger.level
    try:
        DeepgramClient("k", DeepgramClientOptions(verbose=verboselogs.SPAM))
        assert logger.level == verboselogs.SPAM == 5
        DeepgramClient("k", DeepgramClientOptions(verbose="verbose"))
        assert logger.level == 15
        DeepgramClient("k", DeepgramClientOptions())  # not given: left alone
        assert logger.level == 15
        assert DeepgramClientOptions().verbose == logging.WARNING
        with pytest.raises(ValueError, match="unknown log level"):
            DeepgramClientOptions(verbose="chatty")
    finally:
        logger.setLevel(saved)


@pytest.mark.anyio
async def test_client_options_headers_go_on_the_handshake() -> None:
    seen: list[dict[str, str]] = []

    async def refuse(request: aiohttp.web.Request) -> aiohttp.web.Response:
        seen.append(dict(request.headers))
        return aiohttp.web.Response(status=401, headers={"dg-error": "no"})

    app = aiohttp.web.Application()
    app.router.add_get("/v1/agent/converse", refuse)
    runner = aiohttp.web.AppRunner(app)
    await runner.setup()
    site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        config = DeepgramClientOptions(
            url=f"http://127.0.0.1:{port}", headers={"X-Team": "support"}
        )
        dg = DeepgramClient("header-key", config).agent.asyncwebsocket.v("1")
        codes: list[str] = []
        dg.on("Error", lambda self, error: codes.append(error.code))
        assert await dg.start(SettingsOptions()) is False
    finally:
        await runner.cleanup()
    assert seen[0]["X-Team"] == "support"
    assert seen[0]["Authorization"] == "Token header-key"
    assert codes == ["CLIENT_AUTHENTICATION_FAILED"]


def test_verboselogs_names() -> None:
    assert (verboselogs.SPAM, verboselogs.VERBOSE, verboselogs.NOTICE, verboselogs.SUCCESS) == (
        5,
        15,
        25,
        35,
    )
    assert verboselogs.DEBUG == logging.DEBUG and verboselogs.CRITICAL == logging.CRITICAL
    assert logging.getLevelName(5) == "SPAM" and logging.getLevelName(25) == "NOTICE"
    assert verboselogs.level_from("success") == 35 and verboselogs.level_from("10") == 10
    with pytest.raises(ValueError):
        verboselogs.level_from(True)
    logger = verboselogs.VerboseLogger("deepgram_agent.test_verboselogs")
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger.addHandler(Keep())
    logger.setLevel(verboselogs.SPAM)
    logger.spam("a")
    logger.verbose("b")
    logger.notice("c")
    logger.success("d")
    assert [(r.levelname, r.getMessage()) for r in records] == [
        ("SPAM", "a"),
        ("VERBOSE", "b"),
        ("NOTICE", "c"),
        ("SUCCESS", "d"),
    ]
    saved = logging.getLoggerClass()
    try:
        verboselogs.install()
        assert logging.getLoggerClass() is verboselogs.VerboseLogger
    finally:
        logging.setLoggerClass(saved)


# ---- the async client's return values, in process -------------------------------------------


@pytest.mark.anyio
async def test_async_client_returns_false_for_wrong_arguments_and_fixed_settings() -> None:
    from deepgram_agent import InjectUserMessageOptions, Speak, UpdateSpeakOptions

    async with AgentEmulator(api_key=KEY, realtime_audio=False) as emulator:
        client = DeepgramClient(KEY, base_url=emulator.url)
        dg = client.agent.asyncwebsocket.v("1")
        events: list[str] = []
        dg.on("Error", lambda self, error: events.append(f"Error {error.code}"))
        dg.on("Close", lambda self, close: events.append("Close"))
        # local failures are events, as for a server rejection; nothing connects
        assert await dg.start(42) is False
        assert await dg.start({"audio": {}, "agent": {"tags": ["x"]}}) is False
        assert events == [
            "Error CLIENT_ERROR",
            "Close",
            "Error UNPARSABLE_CLIENT_MESSAGE",
            "Close",
        ]
        assert emulator.sessions == []
        events.clear()
        options = SettingsOptions()
        options.agent.speak.provider.model = "aura-2-thalia-en"
        assert await dg.start(options, keepalive_interval=None) is True
        assert await dg.update_speak_options(InjectUserMessageOptions(content="x")) is False
        assert await dg.update_speak_options({"type": "UpdatePrompt", "prompt": "x"}) is False
        assert await dg.send_settings(3.5) is False
        assert await dg.update_speak_options(
            UpdateSpeakOptions(speak=Speak(model="aura-2-luna-en"))
        )
        assert await dg.update_speak_options([Speak(model="aura-2-orion-en"), Speak()])
        options.agent.listen.provider.model = "nova-3"
        options.tags = ["later"]
        assert await dg.send_settings(options) is False  # tags cannot change: nothing sent
        assert events == ["Error CLIENT_SETTINGS_NOT_UPDATABLE"]
        options.tags = None
        assert await dg.send_settings(options) is True  # the listen change alone can
        session = emulator.sessions[0]
        await session.wait_for_received("UpdateListen", timeout=scaled(5))
        await dg.finish()
    assert [f["type"] for f in session.received_json()] == [
        "Settings",
        "UpdateSpeak",
        "UpdateSpeak",
        "UpdateListen",
    ]
    assert [s["provider"]["model"] for s in session.received_json("UpdateSpeak")[1]["speak"]] == [
        "aura-2-orion-en",
        "aura-asteria-en",
    ]


def test_public_names_for_v4_programs() -> None:
    assert deepgram_agent.DeepgramClientOptions is DeepgramClientOptions
    assert issubclass(MissingDependencyError, ImportError)


def _fake_sounddevice(monkeypatch: pytest.MonkeyPatch) -> Any:
    import types

    module = types.ModuleType("sounddevice")
    exec(
        textwrap.dedent(FAKE_SOUNDDEVICE).replace("atexit.register", "(lambda f: f)"),
        module.__dict__,
    )
    monkeypatch.setitem(sys.modules, "sounddevice", module)
    return module


@pytest.mark.anyio
async def test_async_client_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    sounddevice = _fake_sounddevice(monkeypatch)
    script = Script(transcripts=["Testing."], rules=[Rule(match="Testing", reply="Heard you.")])
    config = DeepgramClientOptions(
        options={"speaker_playback": "true", "microphone_record": "true"}
    )
    async with AgentEmulator(api_key=KEY, realtime_audio=False, script=script) as emulator:
        dg = DeepgramClient(KEY, config, base_url=emulator.url).agent.asyncwebsocket.v("1")
        texts: list[str] = []
        replied = asyncio.Event()
        dg.on("ConversationText", lambda self, text: texts.append(f"{text.role}: {text.content}"))
        dg.on("AgentAudioDone", lambda self, done: replied.set())
        assert await dg.start(SettingsOptions())
        await asyncio.wait_for(replied.wait(), scaled(30))
        played = await asyncio.to_thread(sounddevice.played_any.wait, scaled(30))
        session = emulator.sessions[0]
        await dg.finish()
    assert played and texts == ["user: Testing.", "assistant: Heard you."]
    assert session.audio_bytes_received > 0
    assert sounddevice.counts["inputs"] == sounddevice.counts["outputs"] == 1


def test_a_device_that_cannot_open_fails_start_before_connecting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sounddevice = _fake_sounddevice(monkeypatch)

    def busy(**kwargs: Any) -> Any:
        raise OSError("Device unavailable")

    monkeypatch.setattr(sounddevice, "RawInputStream", busy)
    config = DeepgramClientOptions(
        options={"speaker_playback": "true", "microphone_record": "true"}
    )
    with AgentEmulator.run_in_thread(api_key=KEY) as emulator:
        dg = DeepgramClient(KEY, config, base_url=emulator.url).agent.websocket.v("1")
        with pytest.raises(deepgram_agent.DeepgramError) as err:
            dg.start(SettingsOptions())
        assert emulator.sessions == []
    assert str(err.value) == (
        "could not open the microphone for DeepgramClientOptions(options={'microphone_record': "
        "'true'}): OSError: Device unavailable; check the device (and "
        "microphone_record_device_index), or leave microphone_record out"
    )
