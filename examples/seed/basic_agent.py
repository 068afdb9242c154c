"""The seed's "basic agent" example, unchanged but for the import line.

Run it against the local emulator (no key, no network):
    python -m deepgram_agent.testing --port 8765 &
    DEEPGRAM_AGENT_URL=ws://127.0.0.1:8765 python examples/seed/basic_agent.py
"""

from deepgram_agent import DeepgramClient, SettingsOptions, Agent, Listen, Speak, Think, Provider, AgentWebSocketEvents
import threading

client = DeepgramClient(api_key="your-api-key")

def on_open(self, open_event, **kwargs):
    print("Agent connection opened")

def on_welcome(self, welcome, **kwargs):
    print(f"Agent welcome: {welcome.message}")

def on_conversation_text(self, text_event, **kwargs):
    print(f"{text_event.role}: {text_event.text}")

def on_user_started_speaking(self, event, **kwargs):
    print("User started speaking")

def on_agent_thinking(self, event, **kwargs):
    print("Agent is thinking...")

def on_agent_started_speaking(self, event, **kwargs):
    print("Agent started speaking")

def on_agent_audio_done(self, event, **kwargs):
    print("Agent finished speaking")

def on_audio_data(self, audio_data, **kwargs):
    # Handle agent's speech audio
    # In a real application, you'd play this audio
    print(f"Received {len(audio_data)} bytes of audio")

def on_error(self, error, **kwargs):
    print(f"Agent error: {error}")

# Configure agent settings
agent_settings = SettingsOptions(
    agent=Agent(
        listen=Listen(
            model="nova-2",
            language="en-US",
            smart_format=True,
            encoding="linear16",
            sample_rate=16000,
            interim_results=True,
            vad_events=True
        ),
        think=Think(
            provider=Provider(type="open_ai"),
            model="gpt-4",
            instructions="You are a helpful AI assistant. Be conversational and friendly."
        ),
        speak=Speak(
            model="aura-asteria-en",
            encoding="linear16",
            sample_rate=24000
        )
    )
)

# Create connection
dg_connection = client.agent.websocket.v("1")

# Set up event handlers
dg_connection.on(AgentWebSocketEvents.Open, on_open)
dg_connection.on(AgentWebSocketEvents.Welcome, on_welcome)
dg_connection.on(AgentWebSocketEvents.ConversationText, on_conversation_text)
dg_connection.on(AgentWebSocketEvents.UserStartedSpeaking, on_user_started_speaking)
dg_connection.on(AgentWebSocketEvents.AgentThinking, on_agent_thinking)
dg_connection.on(AgentWebSocketEvents.AgentStartedSpeaking, on_agent_started_speaking)
dg_connection.on(AgentWebSocketEvents.AgentAudioDone, on_agent_audio_done)
dg_connection.on(AgentWebSocketEvents.AudioData, on_audio_data)
dg_connection.on(AgentWebSocketEvents.Error, on_error)

# Start connection
if dg_connection.start(agent_settings):
    print("Agent connection started")

    # Send audio data (typically from microphone)
    # audio_data = get_microphone_data()
    # dg_connection.send_audio(audio_data)

    # Keep connection alive
    # dg_connection.keep_alive()

    # Close when done
    dg_connection.close()
