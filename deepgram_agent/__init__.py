"""deepgram_agent: a typed, async-first SDK for Deepgram's Voice Agent API.

One async core (:class:`AgentConnection`) owns the WebSocket; the blocking facade, the
seed-compatible callback API, function tools, audio helpers and the CLI are all views of it.
``deepgram_agent.testing`` ships a protocol-faithful local emulator of the service.
"""

from __future__ import annotations

from . import messages as messages
from ._client import AgentRouter as AgentRouter
from ._client import DeepgramClient as DeepgramClient
from ._client_options import DeepgramClientOptions as DeepgramClientOptions
from ._config import ConnectOptions as ConnectOptions
from ._connection import AgentConnection as AgentConnection
from ._connection import AgentEvent as AgentEvent
from ._connection import ConnectionStatistics as ConnectionStatistics
from ._reconnect import ReconnectPolicy as ReconnectPolicy
from ._resume import ResumingConnection as ResumingConnection
from .events import AgentWebSocketClient as AgentWebSocketClient
from .events import AgentWebSocketEvents as AgentWebSocketEvents
from .events import AsyncAgentWebSocketClient as AsyncAgentWebSocketClient
from .events import CloseResponse as CloseResponse
from .events import OpenResponse as OpenResponse
from .exceptions import AuthenticationError as AuthenticationError
from .exceptions import ConcurrencyError as ConcurrencyError
from .exceptions import ConnectionClosed as ConnectionClosed
from .exceptions import ConnectionClosedError as ConnectionClosedError
from .exceptions import ConnectionClosedOK as ConnectionClosedOK
from .exceptions import DeepgramApiError as DeepgramApiError
from .exceptions import DeepgramConnectionError as DeepgramConnectionError
from .exceptions import DeepgramError as DeepgramError
from .exceptions import DeepgramTimeoutError as DeepgramTimeoutError
from .exceptions import MissingDependencyError as MissingDependencyError
from .exceptions import ProtocolError as ProtocolError
from .exceptions import SettingsError as SettingsError
from .exceptions import SettingsRejected as SettingsRejected

# --- seed response names: aliases of the wire types, not a second model ----------------------
from .messages import AgentAudioDone as AgentAudioDoneResponse
from .messages import AgentStartedSpeaking as AgentStartedSpeakingResponse
from .messages import AgentThinking as AgentThinkingResponse
from .messages import ConversationText as ConversationTextResponse
from .messages import Error as ErrorResponse
from .messages import FunctionCall as FunctionCall
from .messages import FunctionCallRequest as FunctionCallRequest
from .messages import InjectionRefused as InjectionRefusedResponse
from .messages import SettingsApplied as SettingsAppliedResponse
from .messages import Unhandled as UnhandledResponse
from .messages import UserStartedSpeaking as UserStartedSpeakingResponse
from .messages import Welcome as WelcomeResponse
from .options import Agent as Agent
from .options import AgentKeepAlive as AgentKeepAlive
from .options import Audio as Audio
from .options import Context as Context
from .options import DeepgramAgentWarning as DeepgramAgentWarning
from .options import Endpoint as Endpoint
from .options import Flags as Flags
from .options import Function as Function
from .options import FunctionCallResponse as FunctionCallResponse
from .options import Header as Header
from .options import InjectAgentMessageOptions as InjectAgentMessageOptions
from .options import InjectUserMessageOptions as InjectUserMessageOptions
from .options import Input as Input
from .options import Item as Item
from .options import Listen as Listen
from .options import Output as Output
from .options import Parameters as Parameters
from .options import Properties as Properties
from .options import Provider as Provider
from .options import SettingsOptions as SettingsOptions
from .options import Speak as Speak
from .options import Think as Think
from .options import UpdateListenOptions as UpdateListenOptions
from .options import UpdatePromptOptions as UpdatePromptOptions
from .options import UpdateSpeakOptions as UpdateSpeakOptions
from .options import UpdateThinkOptions as UpdateThinkOptions
from .sync import SyncAgentConnection as SyncAgentConnection
from .tools import Tool as Tool
from .tools import ToolCallRecord as ToolCallRecord
from .tools import Tools as Tools
from .tools import function_definition as function_definition
from .tools import tool as tool

__version__ = "0.1.0"

__all__ = (
    "__version__",
    "messages",
    # core
    "AgentConnection",
    "AgentEvent",
    "AgentRouter",
    "ConnectOptions",
    "ConnectionStatistics",
    "DeepgramClient",
    "DeepgramClientOptions",
    "SyncAgentConnection",
    "ReconnectPolicy",
    "ResumingConnection",
    # function tools
    "Tool",
    "ToolCallRecord",
    "Tools",
    "function_definition",
    "tool",
    # callback API
    "AgentWebSocketClient",
    "AgentWebSocketEvents",
    "AsyncAgentWebSocketClient",
    "CloseResponse",
    "OpenResponse",
    # exceptions
    "AuthenticationError",
    "ConcurrencyError",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "DeepgramApiError",
    "DeepgramConnectionError",
    "DeepgramError",
    "DeepgramTimeoutError",
    "MissingDependencyError",
    "ProtocolError",
    "SettingsError",
    "SettingsRejected",
    # options (the seed's classes, mapped onto the wire)
    "Agent",
    "AgentKeepAlive",
    "Audio",
    "Context",
    "DeepgramAgentWarning",
    "Endpoint",
    "Flags",
    "Function",
    "FunctionCallResponse",
    "Header",
    "InjectAgentMessageOptions",
    "InjectUserMessageOptions",
    "Input",
    "Item",
    "Listen",
    "Output",
    "Parameters",
    "Properties",
    "Provider",
    "SettingsOptions",
    "Speak",
    "Think",
    "UpdateListenOptions",
    "UpdatePromptOptions",
    "UpdateSpeakOptions",
    "UpdateThinkOptions",
    # seed response names
    "AgentAudioDoneResponse",
    "AgentStartedSpeakingResponse",
    "AgentThinkingResponse",
    "ConversationTextResponse",
    "ErrorResponse",
    "FunctionCall",
    "FunctionCallRequest",
    "InjectionRefusedResponse",
    "SettingsAppliedResponse",
    "UnhandledResponse",
    "UserStartedSpeakingResponse",
    "WelcomeResponse",
)
