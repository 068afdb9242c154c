"""The seed's "dynamic updates" example, with the import line changed.

Added (the seed leaves it undefined): `initial_settings`. The script ends without close():
the SDK closes the socket on the way out.
"""

from deepgram_agent import (
    DeepgramClient, UpdatePromptOptions, UpdateSpeakOptions,
    InjectAgentMessageOptions, InjectUserMessageOptions, Speak
)

# --- added: the settings the seed's example starts with ---------------------------------
from deepgram_agent import SettingsOptions, Agent, Think, Provider

initial_settings = SettingsOptions(
    agent=Agent(
        think=Think(
            provider=Provider(type="open_ai"),
            model="gpt-4o-mini",
            instructions="You are a helpful assistant.",
        ),
        speak=Speak(model="aura-asteria-en", encoding="linear16", sample_rate=24000),
    )
)
# ------------------------------------------------------------------------------------------

client = DeepgramClient(api_key="your-api-key")
dg_connection = client.agent.websocket.v("1")

# Start with initial settings
if dg_connection.start(initial_settings):
    # Update the agent's personality/instructions
    new_prompt = UpdatePromptOptions(
        prompt="You are now a cheerful children's storyteller. Use simple language and be very enthusiastic."
    )
    dg_connection.update_prompt(new_prompt)

    # Change the voice model
    new_speak_options = UpdateSpeakOptions(
        speak=Speak(
            model="aura-luna-en",  # Different voice
            encoding="linear16",
            sample_rate=24000
        )
    )
    dg_connection.update_speak_options(new_speak_options)

    # Inject context into the conversation
    agent_message = InjectAgentMessageOptions(
        text="I just switched to storytelling mode! What kind of story would you like to hear?"
    )
    dg_connection.inject_agent_message(agent_message)

    # Inject user context
    user_message = InjectUserMessageOptions(
        text="The user mentioned they like adventure stories about pirates."
    )
    dg_connection.inject_user_message(user_message)
