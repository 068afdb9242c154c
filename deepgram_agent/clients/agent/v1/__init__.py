"""The v4 SDK's ``deepgram.clients.agent.v1`` (see :mod:`deepgram_agent.clients`)."""
