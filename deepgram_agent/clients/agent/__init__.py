"""The v4 SDK's ``deepgram.clients.agent`` (see :mod:`deepgram_agent.clients`)."""

from ...events import AgentWebSocketEvents as AgentWebSocketEvents

__all__ = ("AgentWebSocketEvents",)
