"""A protocol-faithful local emulator of Deepgram's Voice Agent API, for tests and demos.

``AgentEmulator`` serves ``ws://127.0.0.1:<port>/v1/agent/converse`` and behaves like the real
service as described in docs/protocol.md: the handshake and its 401, ``Welcome``, strict
``Settings`` validation with the server's own error texts, idle timeout, scripted turns in the
real event order, function calls (client- and server-side), agent audio in the negotiated
format, an energy VAD with barge-in, runtime updates, injections, and fault injection.

Quick start::

    from deepgram_agent.testing import AgentEmulator, Rule, Script, ToolCall

    script = Script(rules=[Rule(match="weather", tool_calls=[ToolCall(name="get_weather")],
                                reply="It is {result[get_weather]}.")])
    async with AgentEmulator(script=script, realtime_audio=False) as emu:
        ...  # point the client at emu.url with any API key
        session = await emu.wait_for_session()

``FakeCall`` (:mod:`deepgram_agent.testing.phone`) plays a phone carrier (Twilio, Telnyx) against
your phone bridge: caller audio at real-time pace, agent audio played on a simulated line,
marks echoed, ``clear`` honoured.

From a shell: ``python -m deepgram_agent.testing [--port N] [--api-key K] [--script FILE.json]
[--fast-audio]`` prints the URL on its first line and serves until Ctrl-C.
"""

from __future__ import annotations

from ._audio import DEFAULT_MS_PER_CHAR as DEFAULT_MS_PER_CHAR
from ._faults import Faults as Faults
from ._quirks import Quirks as Quirks
from ._script import Rule as Rule
from ._script import Script as Script
from ._script import ToolCall as ToolCall
from ._script import TurnContext as TurnContext
from ._server import AGENT_PATH as AGENT_PATH
from ._server import AgentEmulator as AgentEmulator
from ._server import serve as serve
from ._server import serve_forever as serve_forever
from ._session import EmulatorSession as EmulatorSession
from ._session import SessionState as SessionState
from .phone import FakeCall as FakeCall

__all__ = (
    "AGENT_PATH",
    "DEFAULT_MS_PER_CHAR",
    "AgentEmulator",
    "EmulatorSession",
    "FakeCall",
    "Faults",
    "Quirks",
    "Rule",
    "Script",
    "SessionState",
    "ToolCall",
    "TurnContext",
    "serve",
    "serve_forever",
)
