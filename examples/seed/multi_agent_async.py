"""The seed's "multi-agent async" example, unchanged but for the import line."""

from deepgram_agent import DeepgramClient, SettingsOptions, Agent, Think, Provider
import asyncio

async def create_agent(client, agent_id, instructions):
    """Create and configure an agent"""
    settings = SettingsOptions(
        agent=Agent(
            think=Think(
                provider=Provider(type="open_ai"),
                model="gpt-4",
                instructions=f"Agent {agent_id}: {instructions}"
            )
            # ... other configuration
        )
    )

    connection = client.agent.asyncwebsocket.v("1")
    await connection.start(settings)
    return connection

async def multi_agent_example():
    client = DeepgramClient(api_key="your-api-key")

    # Create multiple agents with different roles
    moderator = await create_agent(
        client, "Moderator",
        "You are a meeting moderator. Keep discussions on track and summarize key points."
    )

    expert1 = await create_agent(
        client, "Expert1",
        "You are a technical expert. Provide detailed technical insights."
    )

    expert2 = await create_agent(
        client, "Expert2",
        "You are a business expert. Focus on practical business implications."
    )

    # Coordinate conversation between agents
    # This would involve managing turn-taking and message passing
    # between the different agent connections

    # Close connections when done
    await moderator.close()
    await expert1.close()
    await expert2.close()

# Run multi-agent example
asyncio.run(multi_agent_example())
