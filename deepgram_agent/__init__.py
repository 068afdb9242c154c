"""deepgram_agent: a typed, async-first SDK for Deepgram's Voice Agent API.

One async core (:class:`AgentConnection`) owns the WebSocket; the blocking facade, the
seed-compatible callback API, function tools, audio helpers and the CLI are all views of it.
``deepgram_agent.testing`` ships a protocol-faithful local emulator of the service.
"""

from __future__ import annotations

from . import messages as messages
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

__version__ = "0.1.0"

__all__ = (
    "__version__",
    "messages",
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
