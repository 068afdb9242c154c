"""Function calling without boilerplate: plain Python functions as agent tools.

The registry turns each function's type hints and docstring into the definition the LLM sees,
adds it to ``agent.think.functions``, and answers every ``FunctionCallRequest`` for it (sync
functions run in a worker thread, async ones on the event loop; errors and timeouts become an
``{"error": ...}`` result the LLM can read).

Run it against Deepgram (``DEEPGRAM_API_KEY=...``) or against the bundled emulator. The
emulator has no LLM, so give it a script that calls this example's tools: this one, saved as
``examples/scripts/weather_and_time.json``:

    {
      "rules": [
        {"match": "weather",
         "tool_calls": [[{"name": "get_weather", "arguments": {"city": "Paris"}},
                         {"name": "get_local_time", "arguments": {"city": "Paris"}}]],
         "reply": "In Paris it is {result[get_local_time]} and the weather is {result[get_weather]}"}
      ]
    }

then, in one shell::

    python -m deepgram_agent.testing --port 8765 --fast-audio --script examples/scripts/weather_and_time.json

and in another::

    DEEPGRAM_AGENT_URL=ws://127.0.0.1:8765 DEEPGRAM_API_KEY=any-key python examples/function_tools.py
"""

from __future__ import annotations

import asyncio
from typing import Literal

from deepgram_agent import DeepgramClient
from deepgram_agent import messages as m
from deepgram_agent.tools import ToolCallRecord, Tools


def show_result(record: ToolCallRecord) -> None:
    """Called once per finished call (on the connection's event loop)."""
    print(f"  <- {record.name} returned {record.content} ({record.outcome})")


tools = Tools(timeout=10, on_result=show_result)


@tools.tool
def get_weather(city: str, unit: Literal["celsius", "fahrenheit"] = "celsius") -> dict[str, object]:
    """Get the current weather for a city.

    Args:
        city: the city name, e.g. "Paris".
        unit: the temperature unit.
    """
    # A plain function: it runs in a worker thread, so a slow HTTP call here is fine.
    temperature = 21 if unit == "celsius" else 70
    return {"city": city, "condition": "sunny", "temperature": temperature, "unit": unit}


@tools.tool
async def get_local_time(city: str) -> str:
    """Get the local time in a city.

    Args:
        city: the city name.
    """
    await asyncio.sleep(0)  # an async function runs on the event loop
    return "10:30"


SETTINGS = {
    "audio": {
        "input": {"encoding": "linear16", "sample_rate": 16000},
        "output": {"encoding": "linear16", "sample_rate": 24000, "container": "none"},
    },
    "agent": {
        "listen": {"provider": {"type": "deepgram", "model": "nova-3"}},
        "think": {
            "provider": {"type": "open_ai", "model": "gpt-4o-mini"},
            "prompt": "You are a concise travel assistant. Use the tools for facts.",
        },
        "speak": {"provider": {"type": "deepgram", "model": "aura-2-thalia-en"}},
    },
}


async def main() -> None:
    client = DeepgramClient()  # DEEPGRAM_API_KEY and DEEPGRAM_AGENT_URL from the environment
    async with client.agent.connect(SETTINGS, tools=tools) as conn:
        await conn.inject_user_message("What's the weather and the time in Paris?")
        async with asyncio.timeout(60):
            async for msg in conn:
                if isinstance(msg, m.ConversationText):
                    print(f"{msg.role}: {msg.content}")
                elif isinstance(msg, m.FunctionCallRequest):
                    for call in msg.functions:
                        print(f"  -> {call.name}({call.arguments})")
                elif isinstance(msg, m.AgentAudioDone):
                    break
    print(f"{len(tools.calls)} function call(s) answered")


if __name__ == "__main__":
    asyncio.run(main())
