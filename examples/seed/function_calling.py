"""The seed's "function calling" example, with the import line changed.

Added (the seed leaves it as `pass`): after start(), the example asks the agent about the
weather so that the function-call handler runs, waits for the spoken reply, and closes.
"""

from deepgram_agent import (
    DeepgramClient, SettingsOptions, Agent, Think, Provider, Function,
    Parameters, Properties, FunctionCallResponse, AgentWebSocketEvents
)
import json

client = DeepgramClient(api_key="your-api-key")

def on_function_call_request(self, request, **kwargs):
    """Handle function call requests from the agent"""
    print(f"Function call: {request.function_call.name}")
    print(f"Arguments: {request.function_call.arguments}")

    # Execute the function based on name
    if request.function_call.name == "get_weather":
        location = request.function_call.arguments.get("location")
        weather_data = get_weather(location)  # Your weather function

        # Send response back to agent
        response = FunctionCallResponse(
            name=request.function_call.name,
            result=json.dumps(weather_data)
        )
        dg_connection.send_function_call_response(response)

    elif request.function_call.name == "set_reminder":
        reminder = request.function_call.arguments.get("reminder")
        time = request.function_call.arguments.get("time")
        result = set_reminder(reminder, time)  # Your reminder function

        response = FunctionCallResponse(
            name=request.function_call.name,
            result=json.dumps({"success": result})
        )
        dg_connection.send_function_call_response(response)

def get_weather(location):
    """Mock weather function"""
    return {
        "location": location,
        "temperature": 72,
        "condition": "sunny",
        "humidity": 45
    }

def set_reminder(reminder, time):
    """Mock reminder function"""
    print(f"Setting reminder: {reminder} at {time}")
    return True

# Define available functions
weather_function = Function(
    name="get_weather",
    description="Get current weather information for a location",
    parameters=Parameters(
        type="object",
        properties={
            "location": {"type": "string", "description": "City name or location"}
        },
        required=["location"]
    )
)

reminder_function = Function(
    name="set_reminder",
    description="Set a reminder for the user",
    parameters=Parameters(
        type="object",
        properties={
            "reminder": {"type": "string", "description": "Reminder text"},
            "time": {"type": "string", "description": "Time for the reminder"}
        },
        required=["reminder", "time"]
    )
)

# Configure agent with functions
agent_settings = SettingsOptions(
    agent=Agent(
        think=Think(
            provider=Provider(type="open_ai"),
            model="gpt-4",
            instructions="You are a helpful assistant with access to weather and reminder functions. Use them when appropriate.",
            functions=[weather_function, reminder_function]
        )
        # ... other agent configuration
    )
)

dg_connection = client.agent.websocket.v("1")
dg_connection.on(AgentWebSocketEvents.FunctionCallRequest, on_function_call_request)

if dg_connection.start(agent_settings):
    # Agent can now call functions during conversation
    pass

    # --- added so the example does something when run -------------------------------------
    import threading

    reply_done = threading.Event()
    dg_connection.on(AgentWebSocketEvents.ConversationText, lambda self, text, **kw: print(f"{text.role}: {text.text}"))
    dg_connection.on(AgentWebSocketEvents.AgentAudioDone, lambda self, event, **kw: reply_done.set())
    dg_connection.inject_user_message("What's the weather like in Paris?")
    reply_done.wait(timeout=15)
    dg_connection.close()
