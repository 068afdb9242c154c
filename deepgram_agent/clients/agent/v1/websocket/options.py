"""The v4 SDK's ``deepgram.clients.agent.v1.websocket.options``: the option classes
(:mod:`deepgram_agent.options`)."""

from ....._client_options import DeepgramClientOptions as DeepgramClientOptions
from .....options import Agent as Agent
from .....options import AgentKeepAlive as AgentKeepAlive
from .....options import Audio as Audio
from .....options import Context as Context
from .....options import Endpoint as Endpoint
from .....options import Flags as Flags
from .....options import Function as Function
from .....options import FunctionCallResponse as FunctionCallResponse
from .....options import Header as Header
from .....options import InjectAgentMessageOptions as InjectAgentMessageOptions
from .....options import InjectUserMessageOptions as InjectUserMessageOptions
from .....options import Input as Input
from .....options import Item as Item
from .....options import Listen as Listen
from .....options import Output as Output
from .....options import Parameters as Parameters
from .....options import Properties as Properties
from .....options import Provider as Provider
from .....options import SettingsOptions as SettingsOptions
from .....options import Speak as Speak
from .....options import Think as Think
from .....options import UpdatePromptOptions as UpdatePromptOptions
from .....options import UpdateSpeakOptions as UpdateSpeakOptions

__all__ = (
    "Agent",
    "AgentKeepAlive",
    "Audio",
    "Context",
    "DeepgramClientOptions",
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
    "UpdatePromptOptions",
    "UpdateSpeakOptions",
)
