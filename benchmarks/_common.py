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
