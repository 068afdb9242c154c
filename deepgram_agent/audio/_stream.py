"""Feed any source of PCM chunks into a connection's ``send_audio``."""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable
from typing import Any

__all__ = ["stream_audio", "stream_audio_sync"]


async def stream_audio(conn: Any, chunks: AsyncIterable[bytes]) -> int:
    """Send every chunk of an async iterator (a :class:`Microphone`, :func:`wav_chunks`, your
    own generator) with ``await conn.send_audio(chunk)``, in order.

    Args:
        conn: an async connection (``client.agent.connect(...)``).
        chunks: PCM chunks already in the ``audio.input`` format of the Settings.

    Returns:
        The number of bytes sent. Cancelling is safe: sending stops after the current chunk.
    """
    sent = 0
    async for chunk in chunks:
        if chunk:
            await conn.send_audio(chunk)
            sent += len(chunk)
    return sent


def stream_audio_sync(conn: Any, chunks: Iterable[bytes]) -> int:
    """The blocking twin of :func:`stream_audio` (``conn`` from ``connect_sync(...)``)."""
    sent = 0
    for chunk in chunks:
        if chunk:
            conn.send_audio(chunk)
            sent += len(chunk)
    return sent
