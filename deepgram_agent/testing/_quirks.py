"""How far the emulator imitates the live server's irregular habits (docs/protocol.md 9.6).

Live captures show a server less regular than the documented turn order: latency figures
split over several ``LatencyReport`` messages, assistant text before a ``FunctionCallRequest``,
``History`` for function calls arriving late, batched, or marked ``client_side: false``, pending
calls voided without ``FunctionCallCancelled``. Code that leans on one fixed order breaks in
production while passing against a tidy emulator. :class:`Quirks` turns these habits on, each
as a probability decided per turn (or per barge-in) by a random generator of the session.

By default every probability is 0: sessions are deterministic, in the documented order. A seed
makes the random choices repeatable: session *i* of an emulator gets its own generator seeded
from ``(seed, i)``, so a failing run can be replayed. ``Quirks.realistic()`` turns everything
on::

    AgentEmulator(quirks=Quirks.realistic(seed=7))
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

__all__ = ["Quirks"]

_PROBABILITIES = (
    "text_before_function_call",
    "late_function_history",
    "batched_function_history",
    "history_client_side_false",
    "silent_cancel",
)


@dataclass(frozen=True, kw_only=True)
class Quirks:
    """Irregularities of the live server the emulator reproduces (all off by default).

    Attributes:
        latency_report: ``"combined"``: one ``LatencyReport`` per reply, after its audio, with
            every figure (docs/protocol.md 6.17). ``"split"``: one field per message, as live
            captures show: ``stt_latency`` about every ``stt_report_interval`` seconds of user
            audio while it streams, then per reply ``ttt_token_latency`` (and
            ``ttt_tool_latency``) when the "LLM" starts, ``ttt_text_latency`` before the first
            assistant text, ``tts_latency`` and ``total_latency`` after its first audio frame.
        stt_report_interval: seconds of user audio between ``stt_latency`` reports (split).
        text_before_function_call: probability that a turn calling functions first speaks
            ``Script.preamble`` (assistant ``ConversationText``, ``History``, audio,
            ``AgentAudioDone``), then sends the ``FunctionCallRequest``.
        late_function_history: probability that a turn's ``History(function_calls)`` comes
            after its first assistant ``ConversationText`` + ``History`` instead of before.
        batched_function_history: probability that the calls of several requests in one turn
            are reported in one ``History`` at the end instead of one per request.
        history_client_side_false: probability that a ``History(function_calls)`` marks
            client-side calls ``client_side: false``.
        silent_cancel: probability that a barge-in voids pending client-side calls without a
            ``FunctionCallCancelled`` (a late response is then ignored, as always).
        audio_done_after_barge_in: seconds between ``UserStartedSpeaking`` and the
            ``AgentAudioDone`` of the speech it interrupted, or a ``(low, high)`` range drawn
            per barge-in; ``None``: never sent (some reports say it may not come).
        seed: seeds each session's random generator (``None``: unpredictable). Only used by
            probabilities strictly between 0 and 1 and by ranges.
    """

    latency_report: Literal["combined", "split"] = "combined"
    stt_report_interval: float = 0.25
    text_before_function_call: float = 0.0
    late_function_history: float = 0.0
    batched_function_history: float = 0.0
    history_client_side_false: float = 0.0
    silent_cancel: float = 0.0
    audio_done_after_barge_in: float | tuple[float, float] | None = 0.02
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.latency_report not in ("combined", "split"):
            raise ValueError(
                f"latency_report must be 'combined' or 'split', not {self.latency_report!r}"
            )
        if self.stt_report_interval <= 0:
            raise ValueError("stt_report_interval must be a positive number of seconds")
        for name in _PROBABILITIES:
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ValueError(f"{name} is a probability between 0 and 1, not {value!r}")
        delay = self.audio_done_after_barge_in
        low, high = delay if isinstance(delay, tuple) else (delay, delay)
        if low is not None and (high is None or not 0 <= low <= high):
            raise ValueError(
                "audio_done_after_barge_in must be seconds >= 0, a (low, high) range, or None"
            )

    @classmethod
    def realistic(cls, *, seed: int | None = None, probability: float = 0.5) -> Quirks:
        """Every habit of the live captures on: split latency reports, each order variation
        with ``probability`` per turn, ``AgentAudioDone`` 10-180 ms after a barge-in.

        Args:
            seed: makes the choices repeatable (``None``: different every run).
            probability: the chance of each order variation per turn.
        """
        return cls(
            latency_report="split",
            text_before_function_call=probability,
            late_function_history=probability,
            batched_function_history=probability,
            history_client_side_false=probability,
            silent_cancel=probability,
            audio_done_after_barge_in=(0.01, 0.18),
            seed=seed,
        )

    def rng(self, index: int) -> random.Random:
        """The random generator for session ``index``."""
        if self.seed is None:
            return random.Random()
        return random.Random(f"{self.seed}:{index}")
