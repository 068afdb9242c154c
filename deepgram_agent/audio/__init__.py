"""Audio helpers: WAV sources and sinks, G.711 conversion, a speaker player and a microphone.

Everything but the devices and resampling is stdlib only (G.711 uses numpy's fancy indexing when
numpy is installed). :class:`BargeIn` holds the barge-in rules the :class:`Player`, the phone
bridges and the browser bridge share. :class:`Player` and :class:`Microphone` use
``sounddevice`` (the ``audio`` extra: ``pip install "deepgram-agent[audio]"``), imported only
when a stream opens; pass ``device=`` to use another implementation of :class:`SoundDevice`
(tests use an in-memory one). Pass ``device_rate=`` when the device cannot run at the
Settings' rate: audio is then resampled on the fly (:class:`Resampler`, numpy).

:func:`stream_audio` feeds any async iterator of PCM chunks (a microphone, a WAV file, your own
generator) into ``send_audio``; :func:`stream_audio_sync` does the same for the blocking facade.

A conversation with barge-in::

    async with client.agent.connect(settings) as conn:
        async with Player(conn) as player, Microphone(conn) as mic:
            async def pump() -> None:
                async for chunk in mic:
                    await conn.send_audio(chunk)
            task = asyncio.create_task(pump())
            async for event in conn:
                player.handle(event)   # audio, UserStartedSpeaking, AgentAudioDone, ...
"""

from __future__ import annotations

from ._bargein import BargeIn as BargeIn
from ._bargein import BargeInAction as BargeInAction
from ._convert import StreamConverter as StreamConverter
from ._convert import alaw_to_linear16 as alaw_to_linear16
from ._convert import convert as convert
from ._convert import linear16_to_alaw as linear16_to_alaw
from ._convert import linear16_to_mulaw as linear16_to_mulaw
from ._convert import mulaw_to_linear16 as mulaw_to_linear16
from ._convert import to_linear16 as to_linear16
from ._device import SoundDevice as SoundDevice
from ._device import Stream as Stream
from ._device import load_sounddevice as load_sounddevice
from ._mic import Microphone as Microphone
from ._player import Player as Player
from ._resample import Resampler as Resampler
from ._stream import stream_audio as stream_audio
from ._stream import stream_audio_sync as stream_audio_sync
from ._wav import WavInfo as WavInfo
from ._wav import WavWriter as WavWriter
from ._wav import read_wav_info as read_wav_info
from ._wav import wav_chunks as wav_chunks

__all__ = (
    "BargeIn",
    "BargeInAction",
    "Microphone",
    "Player",
    "Resampler",
    "SoundDevice",
    "StreamConverter",
    "Stream",
    "WavInfo",
    "WavWriter",
    "alaw_to_linear16",
    "convert",
    "linear16_to_alaw",
    "linear16_to_mulaw",
    "load_sounddevice",
    "mulaw_to_linear16",
    "read_wav_info",
    "stream_audio",
    "stream_audio_sync",
    "to_linear16",
    "wav_chunks",
)
