"""The public surface is exactly the documented one."""

from __future__ import annotations

import deepgram_agent

DOCUMENTED = {
    # core
    "DeepgramClient", "DeepgramClientOptions", "AgentRouter", "AgentConnection", "AgentEvent", "ConnectOptions",
    "ConnectionStatistics", "SyncAgentConnection", "messages", "__version__", "ReconnectPolicy",
    "ResumingConnection",
    # function tools
    "Tools", "Tool", "ToolCallRecord", "function_definition", "tool",
    # callback API
    "AgentWebSocketClient", "AsyncAgentWebSocketClient", "AgentWebSocketEvents",
    "OpenResponse", "CloseResponse",
    # options (seed classes)
    "SettingsOptions", "Agent", "Listen", "Speak", "Think", "Provider", "Function",
    "Parameters", "Properties", "Header", "Item", "Input", "Output", "Audio", "Endpoint",
    "Context", "Flags", "UpdatePromptOptions", "UpdateSpeakOptions", "UpdateThinkOptions",
    "UpdateListenOptions", "InjectAgentMessageOptions", "InjectUserMessageOptions",
    "FunctionCallResponse", "AgentKeepAlive", "DeepgramAgentWarning",
    # seed response names
    "WelcomeResponse", "SettingsAppliedResponse", "ConversationTextResponse",
    "UserStartedSpeakingResponse", "AgentThinkingResponse", "FunctionCall",
    "FunctionCallRequest", "AgentStartedSpeakingResponse", "AgentAudioDoneResponse",
    "InjectionRefusedResponse", "ErrorResponse", "UnhandledResponse",
    # exceptions
    "DeepgramError", "DeepgramApiError", "AuthenticationError", "SettingsRejected",
    "SettingsError", "ConnectionClosed", "ConnectionClosedOK", "ConnectionClosedError",
    "DeepgramConnectionError", "ProtocolError", "ConcurrencyError", "DeepgramTimeoutError",
    "MissingDependencyError",
}  # fmt: skip


def test_all_is_exactly_the_documented_names() -> None:
    assert isinstance(deepgram_agent.__all__, tuple)
    assert set(deepgram_agent.__all__) == DOCUMENTED
    assert len(deepgram_agent.__all__) == len(DOCUMENTED)


def test_every_public_name_resolves() -> None:
    for name in deepgram_agent.__all__:
        assert getattr(deepgram_agent, name) is not None, name


def test_seed_response_names_are_the_wire_types_not_copies() -> None:
    m = deepgram_agent.messages
    assert deepgram_agent.ConversationTextResponse is m.ConversationText
    assert deepgram_agent.ErrorResponse is m.Error
    assert deepgram_agent.WelcomeResponse is m.Welcome
    assert deepgram_agent.UnhandledResponse is m.Unhandled


def test_the_v4_deep_import_paths_name_the_same_objects() -> None:
    """v4 programs import from deepgram.clients.agent.v1.websocket.*: renamed, they still run."""
    from deepgram_agent.clients.agent.enums import AgentWebSocketEvents
    from deepgram_agent.clients.agent.v1.websocket import AgentWebSocketClient, options, response

    assert AgentWebSocketEvents is deepgram_agent.AgentWebSocketEvents
    assert AgentWebSocketClient is deepgram_agent.AgentWebSocketClient
    for name in options.__all__:
        assert getattr(options, name) is getattr(deepgram_agent, name), name
    for name in response.__all__:
        assert getattr(response, name) is getattr(deepgram_agent, name), name
