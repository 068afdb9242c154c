"""What the bench server and the bench clients agree on: the event mix, the settings, the URLs.

Everything here is plain data built once at import, so the server can pre-encode it and every
client sees exactly the same bytes.
"""

from __future__ import annotations

import json
import math
import struct
from typing import Any, Final

#: The agent path every client appends (or is given): ``/<mode>/<n>/v1/agent/converse``.
AGENT_PATH: Final = "/v1/agent/converse"

#: Bench modes the server understands (the first path segment).
FLOOD: Final = "flood"
LATENCY: Final = "latency"
SINK: Final = "sink"
CALLS: Final = "calls"

#: Settings every client sends (the README's example; valid for our strict local validator).
SETTINGS: Final[dict[str, Any]] = {
    "type": "Settings",
    "audio": {
        "input": {"encoding": "linear16", "sample_rate": 16000},
        "output": {"encoding": "linear16", "sample_rate": 24000, "container": "none"},
    },
    "agent": {
        "listen": {"provider": {"type": "deepgram", "model": "nova-3"}},
        "think": {"provider": {"type": "open_ai", "model": "gpt-4o-mini"}, "prompt": "Be brief."},
        "speak": {"provider": {"type": "deepgram", "model": "aura-2-thalia-en"}},
    },
}

#: The text a client sends after its audio in sink mode; the server then reports its count.
SINK_DONE: Final = "bench-done"

_USER_TEXT = "Hi, I'd like to check on my order number 4417, it was supposed to arrive yesterday."
_AGENT_TEXT = (
    "Your order shipped this morning with UPS and should arrive by Thursday, August fourteenth. "
    "Is there anything else I can help you with today?"
)

#: One spoken turn as the real server sends it (docs/protocol.md 9.2): types and sizes as recorded.
EVENT_MIX: Final[list[dict[str, Any]]] = [
    {"type": "UserStartedSpeaking"},
    {
        "type": "ConversationText",
        "role": "user",
        "content": _USER_TEXT,
        "conversational_behavior": "default",
    },
    {"type": "History", "role": "user", "content": _USER_TEXT},
    {"type": "AgentThinking", "content": "User wants the status of order 4417; call lookup_order."},
    {
        "type": "FunctionCallRequest",
        "functions": [
            {
                "id": "call_Qx7rT2mLs9Vb",
                "name": "lookup_order",
                "arguments": '{"order_id":"4417"}',
                "client_side": False,
            }
        ],
    },
    {
        "type": "History",
        "function_calls": [
            {
                "id": "call_Qx7rT2mLs9Vb",
                "name": "lookup_order",
                "client_side": False,
                "arguments": '{"order_id": "4417"}',
                "response": '{"status":"shipped","carrier":"UPS","eta":"2025-08-14"}',
            }
        ],
    },
    {
        "type": "AgentStartedSpeaking",
        "total_latency": 0.912,
        "tts_latency": 0.318,
        "ttt_latency": 0.594,
    },
    {
        "type": "ConversationText",
        "role": "assistant",
        "content": _AGENT_TEXT,
        "conversational_behavior": "default",
    },
    {"type": "History", "role": "assistant", "content": _AGENT_TEXT},
    {"type": "AgentAudioDone"},
    {
        "type": "LatencyReport",
        "stt_latency": 0.11,
        "ttt_token_latency": 0.33,
        "ttt_text_latency": 0.35,
        "tts_latency": 0.21,
        "total_latency": 0.78,
    },
]

#: The same events, encoded once (compact JSON, as the server sends it).
EVENT_FRAMES: Final[list[bytes]] = [
    json.dumps(e, separators=(",", ":")).encode() for e in EVENT_MIX
]

#: The message types of the mix (for callback clients, which subscribe per type).
EVENT_TYPES: Final[tuple[str, ...]] = tuple(sorted({e["type"] for e in EVENT_MIX}))

#: 20 ms of 24 kHz 16-bit mono agent audio.
AUDIO_FRAME: Final = bytes((i * 37 + 11) & 0xFF for i in range(960))

#: Latency mode: ``LATENCY_PREFIX + str(time.perf_counter_ns()).encode() + LATENCY_SUFFIX``.
LATENCY_PREFIX: Final = b'{"type":"ConversationText","role":"assistant","content":"'
LATENCY_SUFFIX: Final = b'","conversational_behavior":"default"}'


def stamp_of(content: str | bytes) -> int:
    """The ``perf_counter_ns`` stamp a latency-mode ``ConversationText.content`` carries."""
    return int(content)


def raw_stamp_of(frame: bytes) -> int:
    """The stamp of a latency-mode frame, read straight from its bytes (no JSON decoding)."""
    start = len(LATENCY_PREFIX)
    return int(frame[start : frame.index(b'"', start)])


def frame_header(opcode: int, length: int) -> bytes:
    """The header of one unmasked, final server-to-client WebSocket frame (RFC 6455 5.2)."""
    first = 0x80 | opcode
    if length < 126:
        return struct.pack("!BB", first, length)
    if length < 1 << 16:
        return struct.pack("!BBH", first, 126, length)
    return struct.pack("!BBQ", first, 127, length)


def flood_stream(n: int) -> bytes:
    """The wire bytes of a flood: ``n`` events interleaved with ``n`` audio frames."""
    text = [frame_header(0x1, len(f)) + f for f in EVENT_FRAMES]
    audio = frame_header(0x2, len(AUDIO_FRAME)) + AUDIO_FRAME
    k = len(text)
    return b"".join(text[i % k] + audio for i in range(n))


def bench_url(base: str, mode: str, n: int) -> str:
    """The base URL a client is given for ``mode`` (the SDKs append ``/v1/agent/converse``)."""
    return f"{base.rstrip('/')}/{mode}/{n}"


def percentile(sorted_values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of already sorted values, nearest-rank."""
    if not sorted_values:
        return float("nan")
    rank = min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))
    return sorted_values[rank]


# ------------------------------------------------------------------------------------- calls
#
# The ``calls`` scenario: a phone bridge's load. Each call sends one 20 ms frame of 8 kHz mu-law
# (160 bytes) every 20 ms; the server sends agent audio at the same pace while the agent speaks
# (2 s on, 1 s off) and one JSON event every 500 ms. Every event carries the server's
# ``time.monotonic_ns()`` at the write (CLOCK_MONOTONIC is shared by every process of the
# machine) as the last 20 digits of a string field, so a client reads it with ``stamp_in``.

#: Frame period of both directions, in nanoseconds (20 ms).
CALL_PERIOD_NS: Final = 20_000_000
#: One cycle of the agent's side, in 20 ms ticks: speaking for ``CALL_SPEAK_TICKS``, then quiet.
CALL_CYCLE_TICKS: Final = 150
CALL_SPEAK_TICKS: Final = 100
#: One JSON event every this many ticks (500 ms).
CALL_EVENT_TICKS: Final = 25
#: 20 ms of 8 kHz mu-law, both directions (silence-ish bytes; nobody decodes them here).
CALL_FRAME: Final = bytes(0xFF ^ ((i * 7) & 0x0F) for i in range(160))
#: The function every call is asked to run once per cycle (client side).
CALL_FUNCTION: Final = "lookup_order"
CALL_FUNCTION_RESULT: Final[dict[str, str]] = {"status": "shipped", "carrier": "UPS"}
#: How a call ends (every step in order on the socket, so nothing is counted before it lands):
#: the client sends ``bench-done`` (``SINK_DONE``) after its last frame; the server stops
#: sending and reports what it sent and got (``bench-report {json}``, a ``ConversationText``);
#: the client reads up to that report, answering every function call on the way, and sends
#: ``bench-answered``; the server reports the answers it got (``bench-answers {json}``) and
#: closes.
CALL_REPORT_PREFIX: Final = "bench-report "
CALL_ANSWERS_PREFIX: Final = "bench-answers "
CALL_ANSWERED: Final = "bench-answered"

#: Settings of a telephony call: mu-law 8 kHz both ways.
CALL_SETTINGS: Final[dict[str, Any]] = {
    **SETTINGS,
    "audio": {
        "input": {"encoding": "mulaw", "sample_rate": 8000},
        "output": {"encoding": "mulaw", "sample_rate": 8000, "container": "none"},
    },
}

_STAMP = "@@STAMP@@"

#: The event of each 500 ms slot of a cycle (protocol.md section 6 shapes); ``_STAMP`` marks
#: where the send time goes (20 zero-padded digits of ``monotonic_ns``).
CALL_EVENTS: Final[list[dict[str, Any]]] = [
    {
        "type": "ConversationText",
        "role": "assistant",
        "content": f"{_AGENT_TEXT} {_STAMP}",
        "conversational_behavior": "default",
    },
    {"type": "History", "role": "assistant", "content": f"{_AGENT_TEXT} {_STAMP}"},
    {
        "type": "FunctionCallRequest",
        "functions": [
            {
                "id": f"call_{_STAMP}",
                "name": CALL_FUNCTION,
                "arguments": '{"order_id":"4417"}',
                "client_side": True,
            }
        ],
    },
    {"type": "AgentThinking", "content": f"User wants order 4417's status. {_STAMP}"},
    {
        "type": "ConversationText",
        "role": "user",
        "content": f"{_USER_TEXT} {_STAMP}",
        "conversational_behavior": "default",
    },
    {"type": "History", "role": "user", "content": f"{_USER_TEXT} {_STAMP}"},
]
#: Which slot is the client-side function call.
CALL_FUNCTION_SLOT: Final = 2


def _call_event_parts(event: dict[str, Any]) -> tuple[bytes, bytes]:
    """The wire bytes of one event around its stamp: (frame header + head, tail)."""
    text = json.dumps(event, separators=(",", ":")).encode()
    head, tail = text.split(_STAMP.encode())
    return frame_header(0x1, len(head) + 20 + len(tail)) + head, tail


#: ``(header + head, tail)`` per slot: ``head + b"%020d" % monotonic_ns() + tail`` is the frame.
CALL_EVENT_WIRE: Final[list[tuple[bytes, bytes]]] = [_call_event_parts(e) for e in CALL_EVENTS]


def stamp_in(text: str) -> int:
    """The ``monotonic_ns`` send time a calls-mode event carries at the end of ``text``."""
    return int(text[-20:])


class Histogram:
    """Durations in fixed buckets, so a client's memory does not grow with what it measures.

    10 us buckets up to 100 ms, 1 ms buckets up to 10 s, then one overflow bucket; quantiles
    are reported as the upper edge of their bucket, the maximum exactly.
    """

    __slots__ = ("counts", "max_ns", "n")

    FINE_NS = 10_000
    FINE = 10_000  # 10_000 x 10 us = 100 ms
    COARSE_NS = 1_000_000
    COARSE = 9_900  # up to 10 s
    SIZE = FINE + COARSE + 1

    def __init__(self) -> None:
        self.counts = [0] * self.SIZE
        self.n = 0
        self.max_ns = 0

    def add(self, ns: int) -> None:
        """Count one duration (negative durations count as 0)."""
        if ns < 100_000_000:
            i = ns // 10_000 if ns > 0 else 0
        else:
            i = 10_000 + min((ns - 100_000_000) // 1_000_000, 9_900)
        self.counts[i] += 1
        self.n += 1
        if ns > self.max_ns:
            self.max_ns = ns

    def merge(self, other: Histogram) -> None:
        """Add ``other``'s counts to these."""
        counts = self.counts
        for i, c in enumerate(other.counts):
            if c:
                counts[i] += c
        self.n += other.n
        self.max_ns = max(self.max_ns, other.max_ns)

    @classmethod
    def _upper_ms(cls, i: int) -> float:
        if i < cls.FINE:
            return (i + 1) * cls.FINE_NS / 1e6
        return (cls.FINE * cls.FINE_NS + (i - cls.FINE + 1) * cls.COARSE_NS) / 1e6

    def quantile_ms(self, q: float) -> float:
        """The ``q`` quantile (0..1, nearest rank) in milliseconds; NaN when empty."""
        if not self.n:
            return float("nan")
        rank = max(1, math.ceil(q * self.n))
        seen = 0
        for i, c in enumerate(self.counts):
            seen += c
            if seen >= rank:
                return min(self._upper_ms(i), self.max_ns / 1e6)
        return self.max_ns / 1e6

    def summary(self) -> dict[str, float]:
        """Count, p50, p99 and max in milliseconds."""
        return {
            "n": self.n,
            "p50_ms": self.quantile_ms(0.50),
            "p99_ms": self.quantile_ms(0.99),
            "max_ms": self.max_ns / 1e6,
        }
