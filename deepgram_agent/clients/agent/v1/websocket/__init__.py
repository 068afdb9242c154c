"""The v4 SDK's ``deepgram.clients.agent.v1.websocket`` (see :mod:`deepgram_agent.clients`)."""

from .....events import AgentWebSocketClient as AgentWebSocketClient
from .....events import AsyncAgentWebSocketClient as AsyncAgentWebSocketClient
from .options import *  # noqa: F403
from .options import __all__ as _options
from .response import *  # noqa: F403
from .response import __all__ as _responses

__all__ = ("AgentWebSocketClient", "AsyncAgentWebSocketClient", *_options, *_responses)
