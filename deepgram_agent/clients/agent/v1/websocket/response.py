"""The v4 SDK's ``deepgram.clients.agent.v1.websocket.response``: the response classes, which
here are the wire types of :mod:`deepgram_agent.messages` under the seed's names."""

from .....events import CloseResponse as CloseResponse
from .....events import OpenResponse as OpenResponse
from .....messages import AgentAudioDone as AgentAudioDoneResponse
from .....messages import AgentStartedSpeaking as AgentStartedSpeakingResponse
from .....messages import AgentThinking as AgentThinkingResponse
from .....messages import ConversationText as ConversationTextResponse
from .....messages import Error as ErrorResponse
from .....messages import FunctionCall as FunctionCall
from .....messages import FunctionCallRequest as FunctionCallRequest
from .....messages import InjectionRefused as InjectionRefusedResponse
from .....messages import SettingsApplied as SettingsAppliedResponse
from .....messages import Unhandled as UnhandledResponse
from .....messages import UserStartedSpeaking as UserStartedSpeakingResponse
from .....messages import Welcome as WelcomeResponse

__all__ = (
    "AgentAudioDoneResponse",
    "AgentStartedSpeakingResponse",
    "AgentThinkingResponse",
    "CloseResponse",
    "ConversationTextResponse",
    "ErrorResponse",
    "FunctionCall",
    "FunctionCallRequest",
    "InjectionRefusedResponse",
    "OpenResponse",
    "SettingsAppliedResponse",
    "UnhandledResponse",
    "UserStartedSpeakingResponse",
    "WelcomeResponse",
)
