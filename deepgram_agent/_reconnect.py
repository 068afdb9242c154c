"""Reconnect with context: the policy, and the conversation history (no I/O here).

When a session drops abnormally, :mod:`deepgram_agent._resume` opens a new socket and sends the original
``Settings`` with ``agent.context.messages`` rebuilt from what this module recorded and without
the greeting, so the agent continues the conversation instead of starting over
(docs/protocol.md 3 rule 7, 5.1.6, 6.19).
"""

from __future__ import annotations

import copy
import random
from collections import deque
from typing import Any

import msgspec

from . import messages as m

__all__ = ["ReconnectPolicy", "ConversationHistory", "RECONNECT_ERROR_CODES"]

#: Server ``Error`` codes after which a reconnect makes sense (the close that follows is often
#: a normal 1000, so the code decides, not the close).
RECONNECT_ERROR_CODES = frozenset(
    {"SERVER_GOING_AWAY", "MAXIMUM_SESSION_LENGTH_REACHED", "INTERNAL_SERVER_ERROR"}
)


class ReconnectPolicy(msgspec.Struct, kw_only=True, frozen=True):
    """How an abnormally closed session is brought back.

    Reconnects happen on a dropped TCP connection, an abnormal close code (1001, 1006, 1011,
    ...), or a server ``Error`` whose code is in ``RECONNECT_ERROR_CODES``. Never on 401/403 or
    a rejected ``Settings``; ``CLIENT_MESSAGE_TIMEOUT`` only with ``on_idle_timeout=True``.

    Attributes:
        max_attempts: attempts per outage before giving up.
        initial_delay: seconds before the first attempt; doubles (``multiplier``) each time.
        max_delay: cap of one delay, seconds.
        multiplier: backoff growth factor.
        jitter: each delay is multiplied by a random factor in ``[1 - jitter, 1 + jitter]``.
        max_total_time: seconds one outage may last in all before giving up.
        on_idle_timeout: also reconnect after ``CLIENT_MESSAGE_TIMEOUT``.
        buffer_seconds: microphone audio kept during an outage (seconds of the input format);
            older audio is dropped and counted.
        max_queued_messages: control messages kept during an outage; one more fails with
            ``ConnectionClosedError`` naming what was not sent.
        max_history: conversation items kept for the context (oldest dropped first).
        healthy_after: seconds a resumed socket must live (or carry a user turn) before it
            counts as healthy. Until then a drop continues the same outage: the attempt count,
            the backoff and ``max_total_time`` carry on, so a server that accepts each session
            and drops it at once cannot make the client reconnect forever.
    """

    max_attempts: int = 5
    initial_delay: float = 0.25
    max_delay: float = 5.0
    multiplier: float = 2.0
    jitter: float = 0.2
    max_total_time: float = 60.0
    on_idle_timeout: bool = False
    buffer_seconds: float = 5.0
    max_queued_messages: int = 100
    max_history: int = 500
    healthy_after: float = 5.0

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before attempt number ``attempt`` (1-based)."""
        base = min(self.max_delay, self.initial_delay * self.multiplier ** max(0, attempt - 1))
        r = (rng or random).uniform(1 - self.jitter, 1 + self.jitter) if self.jitter else 1.0
        return max(0.0, base * r)

    def reconnects_after(self, error_code: str | None) -> bool:
        """Whether a session ended by a server ``Error`` with this code is brought back."""
        if error_code is None:
            return True
        if error_code == "CLIENT_MESSAGE_TIMEOUT":
            return self.on_idle_timeout
        return error_code in RECONNECT_ERROR_CODES


class ConversationHistory:
    """Keeps the conversation as ``History`` items, to replay as ``agent.context.messages``.

    ``History`` events are the source (they include function calls with their responses); when
    the server's history flag is off, ``ConversationText`` is used instead. Each kind is used
    only if the other was never seen, so nothing is recorded twice.
    """

    def __init__(self, max_items: int = 500) -> None:
        self.items: deque[dict[str, Any]] = deque(maxlen=max_items)
        self._saw_history = False
        # Runtime updates sent so far, applied to the Settings of a resumed session.
        self._updates: dict[str, Any] = {}
        # Injections sent and not acknowledged yet: (role, text, frame). The server
        # acknowledges them with ConversationText (or InjectionRefused for an agent message).
        self.unacked: deque[tuple[str, str, bytes]] = deque(maxlen=1000)

    # -- what the client sent

    def on_update(self, msg: m.ClientMessage) -> None:
        """Remember a runtime update, so a resumed session starts with it applied."""
        if isinstance(msg, m.UpdatePrompt):
            self._updates["prompt"] = msg.prompt
        elif isinstance(msg, m.UpdateSpeak):
            self._updates["speak"] = msgspec.to_builtins(msg.speak)
        elif isinstance(msg, m.UpdateThink):
            self._updates["think"] = msgspec.to_builtins(msg.think)
            self._updates.pop("prompt", None)  # a full replacement carries its own prompt
        elif isinstance(msg, m.UpdateListen):
            self._updates["listen"] = msgspec.to_builtins(msg.listen)

    def on_sent_injection(self, frame: bytes) -> None:
        """Track an injection that went out on a socket, until the server acknowledges it."""
        try:
            data = msgspec.json.decode(frame)
        except msgspec.DecodeError:
            return
        if data.get("type") == "InjectUserMessage":
            self.unacked.append(("user", str(data.get("content", "")), frame))
        elif data.get("type") == "InjectAgentMessage" and "message" in data:
            self.unacked.append(("assistant", str(data["message"]), frame))

    def ack_text(self, msg: m.ConversationText) -> None:
        """A ``ConversationText`` acknowledges the oldest matching injection."""
        for i, (role, text, _) in enumerate(self.unacked):
            if role == msg.role and text.strip() == msg.content.strip():
                del self.unacked[i]
                return

    def ack_refused(self, msg: m.InjectionRefused) -> None:
        """An ``InjectionRefused`` answers the oldest agent injection (refused, not lost)."""
        for i, (role, _, _) in enumerate(self.unacked):
            if role == "assistant":
                del self.unacked[i]
                return

    def take_unacked(self) -> list[bytes]:
        """Injections to send again on the new session (the list is emptied)."""
        frames = [frame for _, _, frame in self.unacked]
        self.unacked.clear()
        return frames

    def on_history(self, msg: m.History) -> None:
        """Record a ``History`` event."""
        if not self._saw_history:
            self._saw_history = True
            self.items.clear()  # History is the better source: drop the fallback copy
        if msg.function_calls is not None:
            calls = []
            for c in msg.function_calls:
                item: dict[str, Any] = {
                    "id": c.id,
                    "name": c.name,
                    # Required in agent.context; the server omitted it: a call it recorded
                    # with a response was answered, by us unless it said otherwise.
                    "client_side": c.client_side if c.client_side is not None else True,
                    "arguments": c.arguments,
                    "response": c.response,
                }
                if c.thought_signature:
                    item["thought_signature"] = c.thought_signature
                calls.append(item)
            self.items.append({"type": "History", "function_calls": calls})
        elif msg.role in ("user", "assistant") and msg.content is not None:
            self.items.append({"type": "History", "role": msg.role, "content": msg.content})

    def on_conversation_text(self, msg: m.ConversationText) -> None:
        """Record a ``ConversationText`` (used only while no ``History`` was seen)."""
        if self._saw_history or msg.role not in ("user", "assistant"):
            return
        if msg.conversational_behavior not in ("default", ""):
            return
        self.items.append({"type": "History", "role": msg.role, "content": msg.content})

    def resume_settings(self, wire: dict[str, Any]) -> dict[str, Any]:
        """The original ``Settings`` (wire dict) rebuilt to continue this conversation."""
        out = copy.deepcopy(wire)
        agent = out.get("agent")
        if not isinstance(agent, dict):
            return out  # a stored agent configuration id: nothing to add
        agent.pop("greeting", None)
        for key in ("speak", "listen", "think"):
            if key in self._updates:
                agent[key] = copy.deepcopy(self._updates[key])
        if "prompt" in self._updates and isinstance(agent.get("think"), dict | list):
            entries = agent["think"] if isinstance(agent["think"], list) else [agent["think"]]
            for entry in entries:
                if isinstance(entry, dict):
                    entry["prompt"] = self._updates["prompt"]
        if self.items:
            context = agent.setdefault("context", {})
            prior = list(context.get("messages") or [])
            context["messages"] = prior + list(self.items)
        return out
