"""Barge-in: which agent audio may play, decided from the connection's own events.

One small object, no I/O, no threads, no clock: the speaker :class:`~deepgram_agent.audio.Player`,
the phone bridges (``deepgram_agent.telephony``) and the browser bridge feed it every event of
the connection and act on what it answers.
"""

from __future__ import annotations

import enum
from typing import Any

from .. import messages as m

__all__ = ["BargeIn", "BargeInAction"]


class BargeInAction(enum.StrEnum):
    """What to do with one event (the answer of :meth:`BargeIn.handle`)."""

    #: Agent audio of the reply in progress: play it.
    PLAY = "play"
    #: The first agent audio of a new reply: play it (and note that a reply started).
    REPLY_START = "reply_start"
    #: Agent audio of an interrupted reply, still arriving after the barge-in: drop it.
    DROP = "drop"
    #: The user started speaking: drop everything queued for playback now.
    FLUSH = "flush"
    #: The reply that was playing has no more audio to come (``AgentAudioDone``).
    REPLY_DONE = "reply_done"
    #: Nothing to do for this event.
    IGNORE = "ignore"


class BargeIn:
    """Barge-in rules for any transport (speaker, phone line, browser).

    * ``UserStartedSpeaking``: answer :attr:`~BargeInAction.FLUSH` (drop whatever is queued) and
      mute: agent audio still arriving from the interrupted reply is answered
      :attr:`~BargeInAction.DROP`.
    * Muted, the next reply is recognised by its audio, never by ``AgentStartedSpeaking``
      (the real server sends that only with ``"experimental": true``, docs/protocol.md 8, 9.6): an
      assistant ``ConversationText`` (the reply's text comes before its audio), or the end of
      the user's turn (their ``ConversationText``), arms the gate, and the first agent audio
      after that unmutes it (:attr:`~BargeInAction.REPLY_START`). ``AgentStartedSpeaking``,
      when it does come, arms it the same way.
    * ``AgentAudioDone`` while muted belongs to the interrupted reply (it may come after the
      barge-in, or never): :attr:`~BargeInAction.IGNORE`. Otherwise it ends the reply in
      progress: :attr:`~BargeInAction.REPLY_DONE`.
    * ``Reconnected``: the old session's reply is over (:attr:`~BargeInAction.REPLY_DONE` if it
      was playing) and the gate starts afresh.

    Not thread-safe: call it from one thread (or under the caller's lock).

    Attributes:
        replies: replies that started playing.
        interruptions: barge-ins that cut a reply while its audio was still arriving.
        dropped_bytes: agent audio bytes answered ``DROP``.
    """

    __slots__ = ("_armed", "_muted", "_speaking", "dropped_bytes", "interruptions", "replies")

    def __init__(self) -> None:
        self._muted = False
        self._armed = False
        self._speaking = False
        self.replies = 0
        self.interruptions = 0
        self.dropped_bytes = 0

    def __repr__(self) -> str:
        state = "muted" if self._muted else ("speaking" if self._speaking else "idle")
        return f"<BargeIn {state} replies={self.replies} interruptions={self.interruptions}>"

    @property
    def muted(self) -> bool:
        """True from a barge-in until the next reply's first audio."""
        return self._muted

    @property
    def speaking(self) -> bool:
        """True while a reply's audio is arriving (first audio until ``AgentAudioDone``)."""
        return self._speaking

    def handle(self, event: Any) -> BargeInAction:
        """Classify one connection event (agent audio ``bytes`` or a server message)."""
        if isinstance(event, bytes | bytearray | memoryview):
            return self.audio(len(event))
        if isinstance(event, m.UserStartedSpeaking):
            return self.barge_in()
        if isinstance(event, m.ConversationText | m.AgentStartedSpeaking):
            if self._muted:
                self._armed = True
            return BargeInAction.IGNORE
        if isinstance(event, m.AgentAudioDone):
            if self._muted:
                return BargeInAction.IGNORE  # the interrupted reply's, late (or a duplicate)
            self._speaking = False
            return BargeInAction.REPLY_DONE
        if isinstance(event, m.Reconnected):
            was = self._speaking
            self._muted = self._armed = self._speaking = False
            return BargeInAction.REPLY_DONE if was else BargeInAction.IGNORE
        return BargeInAction.IGNORE

    def audio(self, size: int = 0) -> BargeInAction:
        """Classify one chunk of agent audio of ``size`` bytes."""
        if self._muted:
            if not self._armed:
                self.dropped_bytes += size
                return BargeInAction.DROP
            self._muted = self._armed = False
        if self._speaking:
            return BargeInAction.PLAY
        self._speaking = True
        self.replies += 1
        return BargeInAction.REPLY_START

    def barge_in(self) -> BargeInAction:
        """The user started speaking (or the app decided so): flush and mute."""
        if self._speaking:
            self.interruptions += 1
        self._speaking = False
        self._muted = True
        self._armed = False
        return BargeInAction.FLUSH
