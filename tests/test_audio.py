"""Audio helpers: G.711 conversion, WAV source/sink, Player barge-in, Microphone overflow.

The sound device is an in-memory fake implementing the ``SoundDevice`` boundary (the two
sounddevice factories); nothing of ours is mocked.
"""

from __future__ import annotations

import asyncio
import importlib.util
import threading
import time
import wave
from array import array
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from deepgram_agent import MissingDependencyError
from deepgram_agent import messages as m
from deepgram_agent.audio import (
    Microphone,
    Player,
    Resampler,
    WavWriter,
    alaw_to_linear16,
    convert,
    linear16_to_alaw,
    linear16_to_mulaw,
    load_sounddevice,
    mulaw_to_linear16,
    read_wav_info,
    wav_chunks,
)
from deepgram_agent.cli import default_settings
from deepgram_agent.testing._audio import tone
from tests.conftest import scaled


class FakeStream:
    """One fake device stream; the test (or a thread) drives its callback block by block."""

    def __init__(self, kind: str, **kwargs: Any) -> None:
        self.kind = kind
        self.kwargs = kwargs
        self.callback = kwargs["callback"]
        self.blocksize: int = kwargs["blocksize"]
        self.started = False
        self.closed = False
        self.blocks: list[bytes] = []  # what an output stream "played"

    def start(self) -> None:
        self.started = True

    def stop(self) -> None:
        self.started = False

    def close(self) -> None:
        self.closed = True

    def pull(self) -> bytes:
        """Output: ask the callback for one block, as the device thread would."""
        buf = bytearray(self.blocksize * 2)
        self.callback(buf, self.blocksize, None, None)
        self.blocks.append(bytes(buf))
        return bytes(buf)

    def push(self, data: bytes) -> None:
        """Input: hand one captured block to the callback."""
        self.callback(memoryview(data), len(data) // 2, None, None)


class FakeSoundDevice:
    """An in-memory implementation of the ``SoundDevice`` boundary."""

    def __init__(self) -> None:
        self.streams: list[FakeStream] = []

    def RawOutputStream(self, **kwargs: Any) -> FakeStream:
        stream = FakeStream("output", **kwargs)
        self.streams.append(stream)
        return stream

    def RawInputStream(self, **kwargs: Any) -> FakeStream:
        stream = FakeStream("input", **kwargs)
        self.streams.append(stream)
        return stream


def nonzero_samples(data: bytes) -> int:
    pcm = array("h")
    pcm.frombytes(data)
    return sum(1 for s in pcm if s != 0)


def settings(out_encoding: str = "linear16", out_rate: int = 24000) -> dict[str, Any]:
    data = default_settings()
    data["audio"]["output"] = {"encoding": out_encoding, "sample_rate": out_rate}
    return data


# ---------------------------------------------------------------------------------- G.711


def test_mulaw_round_trip_every_code() -> None:
    codes = bytes(range(256))
    pcm = mulaw_to_linear16(codes)
    assert len(pcm) == 512
    again = mulaw_to_linear16(linear16_to_mulaw(pcm))
    assert again == pcm  # every decoded value encodes back to the same level


def test_alaw_round_trip_every_code() -> None:
    codes = bytes(range(256))
    pcm = alaw_to_linear16(codes)
    assert alaw_to_linear16(linear16_to_alaw(pcm)) == pcm


@pytest.mark.parametrize("law", ["mulaw", "alaw"])
def test_g711_quantisation_error_is_small(law: str) -> None:
    pcm = tone("linear16", 8000, 0.05)
    back = convert(convert(pcm, "linear16", law), law, "linear16")
    a, b = array("h"), array("h")
    a.frombytes(pcm)
    b.frombytes(back)
    assert len(a) == len(b) == 400
    worst = max(abs(x - y) / max(abs(x), 256) for x, y in zip(a, b, strict=True))
    assert worst < 0.07  # G.711 keeps about 6% relative precision


def test_convert_refuses_compressed_formats() -> None:
    with pytest.raises(ValueError, match="linear16, mulaw or alaw"):
        convert(b"\x00\x00", "mp3", "linear16")


# ---------------------------------------------------------------------------------- WAV


def test_wav_writer_converts_mulaw_to_pcm(tmp_path: Path) -> None:
    path = tmp_path / "out.wav"
    with WavWriter(path, "mulaw", 8000) as writer:
        writer.write(linear16_to_mulaw(tone("linear16", 8000, 0.5)))
    with wave.open(str(path)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 8000)
        assert wav.getnframes() == 4000
    assert writer.duration == pytest.approx(0.5)


@pytest.mark.anyio
async def test_wav_chunks_fast_and_realtime(tmp_path: Path) -> None:
    path = tmp_path / "in.wav"
    audio = tone("linear16", 16000, 0.2)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(audio)
    assert read_wav_info(path).duration == pytest.approx(0.2)
    fast = [c async for c in wav_chunks(path, realtime=False)]
    assert b"".join(fast) == audio
    assert len(fast) == 10 and all(len(c) == 640 for c in fast)
    started = time.monotonic()
    paced = [c async for c in wav_chunks(path, realtime=True)]
    assert b"".join(paced) == audio
    assert time.monotonic() - started >= 0.17  # the last chunk goes out at 180 ms


def test_read_wav_info_rejects_non_wav(tmp_path: Path) -> None:
    path = tmp_path / "x.wav"
    path.write_bytes(b"not a wav file at all")
    with pytest.raises(ValueError, match="not a PCM WAV"):
        read_wav_info(path)


# ---------------------------------------------------------------------------------- Player


@pytest.mark.anyio
async def test_player_takes_its_format_from_the_settings() -> None:
    dev = FakeSoundDevice()
    player = Player(settings("mulaw", 8000), device=dev, prebuffer_ms=0)
    async with player:
        (stream,) = dev.streams
        assert stream.kwargs["samplerate"] == 8000
        assert stream.kwargs["dtype"] == "int16"
        pcm = tone("linear16", 8000, 0.02)
        player.handle(linear16_to_mulaw(pcm))
        played = stream.pull()
    assert played == mulaw_to_linear16(linear16_to_mulaw(pcm))
    assert stream.closed


@pytest.mark.anyio
async def test_barge_in_stops_playback_within_one_block() -> None:
    """A device thread plays blocks continuously; count agent samples after the barge-in."""
    dev = FakeSoundDevice()
    player = Player(settings(), device=dev, block_ms=20, prebuffer_ms=40)
    async with player:
        (stream,) = dev.streams
        player.handle(m.AgentStartedSpeaking(total_latency=0.3))
        player.handle(tone("linear16", 24000, 2.0))
        stop = threading.Event()
        lock = threading.Lock()
        target = [5]
        reached = [threading.Event(), threading.Event()]

        def device_thread() -> None:
            while not stop.is_set():
                with lock:
                    stream.pull()
                    n = len(stream.blocks)
                if n >= target[0]:
                    reached[0 if target[0] == 5 else 1].set()
                time.sleep(0.002)  # the scenario: a sound device asking for a block every few ms

        thread = threading.Thread(target=device_thread, daemon=True)
        thread.start()
        try:
            assert await asyncio.to_thread(reached[0].wait, scaled(5))
            assert nonzero_samples(b"".join(stream.blocks)) > 0  # it was playing
            player.handle(m.UserStartedSpeaking())
            with lock:
                after = len(stream.blocks)
                target[0] = after + 10
            # Audio still in flight from the interrupted reply is ignored.
            player.handle(tone("linear16", 24000, 0.5))
            assert await asyncio.to_thread(reached[1].wait, scaled(5))
        finally:
            stop.set()
            thread.join()
        leaked = nonzero_samples(b"".join(stream.blocks[after:]))
        assert leaked <= player.block_frames  # at most one block
        assert player.dropped_samples > 0
        assert player.ignored_samples == 12000
        await player.wait_finished(scaled(1))  # reported as interrupted

        # The next reply plays again.
        player.handle(m.ConversationText(role="assistant", content="Next."))
        player.handle(tone("linear16", 24000, 0.1))
        player.handle(m.AgentAudioDone())
        assert nonzero_samples(stream.pull()) > 0


@pytest.mark.anyio
async def test_playback_finished_when_the_device_drained_not_on_agent_audio_done() -> None:
    dev = FakeSoundDevice()
    reasons: list[str] = []
    player = Player(settings(), device=dev, prebuffer_ms=0, on_finished=reasons.append)
    async with player:
        (stream,) = dev.streams
        player.handle(m.AgentStartedSpeaking())
        player.handle(tone("linear16", 24000, 0.05))  # 2.5 blocks of 20 ms
        player.handle(m.AgentAudioDone())
        for _ in range(3):
            stream.pull()
        await asyncio.sleep(0)  # one loop turn: a wrongly early "finished" would be out by now
        assert reasons == []  # the last samples are still being played
        assert player.playing
        stream.pull()  # the device asks again: the previous block has played
        await player.wait_finished(scaled(1))
    assert reasons == ["drained"]
    assert not player.playing


def test_player_refuses_compressed_output() -> None:
    with pytest.raises(ValueError, match="codec"):
        Player(settings("mp3", 24000), device=FakeSoundDevice())


# ---------------------------------------------------------------------------------- Microphone


@pytest.mark.anyio
async def test_microphone_drops_oldest_on_overflow_and_converts() -> None:
    dev = FakeSoundDevice()
    data = default_settings()
    data["audio"]["input"] = {"encoding": "mulaw", "sample_rate": 8000}
    mic = Microphone(data, device=dev, max_blocks=4)
    async with mic:
        (stream,) = dev.streams
        assert stream.kwargs["samplerate"] == 8000
        blocks = [bytes([i, 0]) * 160 for i in range(10)]

        def capture() -> None:  # the device thread: never waits for the loop
            for block in blocks:
                stream.push(block)

        thread = threading.Thread(target=capture)
        thread.start()
        thread.join(scaled(2))
        assert not thread.is_alive()
        assert mic.dropped_blocks == 6
        got = [await asyncio.wait_for(mic.__anext__(), scaled(1)) for _ in range(4)]
    assert got == [linear16_to_mulaw(b) for b in blocks[6:]]
    with pytest.raises(StopAsyncIteration):
        await mic.__anext__()


@pytest.mark.anyio
async def test_microphone_half_duplex_mute() -> None:
    dev = FakeSoundDevice()
    muted = True
    mic = Microphone(default_settings(), device=dev, mute=lambda: muted)
    async with mic:
        (stream,) = dev.streams
        stream.push(b"\x01\x00" * 320)
        muted = False
        stream.push(b"\x02\x00" * 320)
        chunk = await asyncio.wait_for(mic.__anext__(), scaled(1))
    assert chunk == b"\x02\x00" * 320
    assert mic.muted_blocks == 1


@pytest.mark.skipif(
    importlib.util.find_spec("sounddevice") is not None, reason="sounddevice is installed"
)
def test_missing_extra_names_the_install_command() -> None:
    with pytest.raises(MissingDependencyError, match=r'pip install "deepgram-agent\[audio\]"'):
        load_sounddevice()


# ---------------------------------------------------------------------------------- resampling


def sine(rate: int, seconds: float, freq: float = 1000.0) -> bytes:
    np = pytest.importorskip("numpy")
    t = np.arange(round(rate * seconds)) / rate
    return bytes((np.sin(2 * np.pi * freq * t) * 12000).astype("<i2").tobytes())


def peak_hz(pcm: bytes, rate: int) -> float:
    np = pytest.importorskip("numpy")
    y = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    return float(np.argmax(spectrum) * rate / len(y))


def zero_crossings(pcm: bytes) -> int:
    np = pytest.importorskip("numpy")
    y = np.frombuffer(pcm, dtype="<i2").astype(np.int32)
    return int(np.count_nonzero(np.signbit(y[1:]) != np.signbit(y[:-1])))


@pytest.mark.parametrize("backend", ["soxr", "numpy"])
@pytest.mark.parametrize(("src", "dst"), [(24000, 48000), (16000, 44100), (48000, 16000)])
def test_resampler_keeps_frequency_and_length_across_small_chunks(
    src: int, dst: int, backend: Any
) -> None:
    np = pytest.importorskip("numpy")
    if backend == "soxr":
        pytest.importorskip("soxr")
    audio = sine(src, 3.0)
    resampler = Resampler(src, dst, backend=backend)
    assert resampler.backend == backend
    sizes = np.random.default_rng(7).integers(1, 300, size=len(audio))  # odd sizes too
    out: list[bytes] = []
    pos = 0
    for size in sizes:
        if pos >= len(audio):
            break
        out.append(resampler.process(audio[pos : pos + 2 * int(size)]))
        pos += 2 * int(size)
    got = b"".join(out)
    assert abs(len(got) // 2 - 3.0 * dst) <= 1
    assert peak_hz(got, dst) == pytest.approx(1000.0, abs=2.0)
    # The stream is `delay` late (silence first): 2 crossings per cycle of what came out.
    assert zero_crossings(got) == pytest.approx(2000 * (3.0 - resampler.delay), abs=4)
    # Chunk boundaries leave no trace: the same as converting the whole stream at once
    # (soxr works in floats: within 2 LSB).
    whole = Resampler(src, dst, backend=backend).process(audio)
    y = np.frombuffer(got, dtype="<i2").astype(np.int32)
    assert np.abs(y - np.frombuffer(whole, dtype="<i2")).max() <= (2 if backend == "soxr" else 0)
    start = round(dst * (resampler.delay + 0.01))
    assert np.abs(np.diff(y[start:])).max() < 12000 * 2 * np.pi * 1000 / dst + 40
    assert resampler.underflows == 0


@pytest.mark.parametrize("backend", ["soxr", "numpy"])
def test_resampler_keeps_aliases_out(backend: Any) -> None:
    """A 5 kHz tone has no place at 8 kHz: linear interpolation let it through at -6 dB."""
    np = pytest.importorskip("numpy")
    if backend == "soxr":
        pytest.importorskip("soxr")
    resampler = Resampler(24000, 8000, backend=backend)
    tone5k = sine(24000, 1.0, freq=5000.0)
    out = b"".join(resampler.process(tone5k[i : i + 960]) for i in range(0, len(tone5k), 960))
    y = np.frombuffer(out, dtype="<i2").astype(np.float64)[2000:]
    level_db = 20 * np.log10(np.sqrt(np.mean(y**2)) / (12000 / np.sqrt(2)))
    assert level_db < -60


def test_resampler_count_is_exact_on_a_long_stream() -> None:
    pytest.importorskip("numpy")
    resampler = Resampler(16000, 44100)
    block = b"\x10\x00" * 160
    total = sum(len(resampler.process(block)) // 2 for _ in range(20000))  # 200 s of 10 ms
    assert total == resampler.expected_output(20000 * 160) == 200 * 44100


@pytest.mark.anyio
async def test_player_resamples_to_the_device_rate() -> None:
    pytest.importorskip("numpy")
    dev = FakeSoundDevice()
    player = Player(settings(), device=dev, device_rate=48000, prebuffer_ms=0)
    async with player:
        (stream,) = dev.streams
        assert stream.kwargs["samplerate"] == 48000
        assert stream.blocksize == 960 == player.block_frames  # 20 ms at 48 kHz
        player.handle(m.AgentStartedSpeaking())
        player.handle(sine(24000, 0.2))
        player.handle(m.AgentAudioDone())
        assert player.queued_samples == 9600
        played = b"".join(stream.pull() for _ in range(10))
        assert peak_hz(played, 48000) == pytest.approx(1000.0, abs=5.0)
        # Barge-in drops the queue and the resampler's state: the next reply starts clean.
        player.handle(m.AgentStartedSpeaking())
        player.handle(sine(24000, 0.2))
        player.handle(m.UserStartedSpeaking())
        assert player.queued_samples == 0
        assert nonzero_samples(stream.pull()) == 0
        player.handle(m.AgentStartedSpeaking())
        player.handle(b"\x00\x40" * 480)
        assert player.queued_samples == 960
        first = stream.pull()
    # A fresh stream: exactly what a new resampler makes of the new reply, nothing of the
    # interrupted one (with linear interpolation this was the ramp [0, 0x2000, 0x4000, ...]).
    assert first == Resampler(24000, 48000).process(b"\x00\x40" * 480)


@pytest.mark.anyio
async def test_microphone_resamples_from_the_device_rate() -> None:
    pytest.importorskip("numpy")
    dev = FakeSoundDevice()
    mic = Microphone(default_settings(), device=dev, device_rate=48000)  # wire: 16 kHz
    async with mic:
        (stream,) = dev.streams
        assert stream.kwargs["samplerate"] == 48000
        assert stream.blocksize == 960
        captured = sine(48000, 0.5)
        for i in range(0, len(captured), 1920):
            stream.push(captured[i : i + 1920])
        chunks = [await asyncio.wait_for(mic.__anext__(), scaled(1)) for _ in range(25)]
    assert all(len(c) == 640 for c in chunks)  # 20 ms at 16 kHz
    assert peak_hz(b"".join(chunks), 16000) == pytest.approx(1000.0, abs=5.0)


def test_resampler_rejects_bad_rates() -> None:
    pytest.importorskip("numpy")
    with pytest.raises(ValueError, match="positive"):
        Resampler(0, 16000)
    with pytest.raises(ValueError, match="quality"):
        Resampler(8000, 16000, quality="best")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="backend"):
        Resampler(8000, 16000, backend="scipy")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------- blocking use


def test_player_and_microphone_without_an_event_loop() -> None:
    """The helpers also serve blocking code (the SyncAgentConnection facade)."""
    dev = FakeSoundDevice()
    with Player(settings(), device=dev, prebuffer_ms=0) as player:
        (speaker,) = dev.streams
        player.handle(m.AgentStartedSpeaking())
        player.handle(tone("linear16", 24000, 0.02))
        player.handle(m.AgentAudioDone())
        assert nonzero_samples(speaker.pull()) > 0
        assert not player.wait_finished_sync(0)
        speaker.pull()
        assert player.wait_finished_sync(scaled(1))
    mic = Microphone(default_settings(), device=dev)
    with mic:
        source = dev.streams[1]
        got: list[bytes] = []

        def consume() -> None:
            got.extend(mic)

        thread = threading.Thread(target=consume)
        thread.start()
        source.push(b"\x05\x00" * 320)
        source.push(b"\x06\x00" * 320)
    thread.join(scaled(2))
    assert not thread.is_alive()
    assert got == [b"\x05\x00" * 320, b"\x06\x00" * 320]


@pytest.mark.anyio
async def test_stream_audio_feeds_any_async_source_in_order(tmp_path: Path) -> None:
    from deepgram_agent import DeepgramClient
    from deepgram_agent.audio import stream_audio, stream_audio_sync, wav_chunks
    from deepgram_agent.testing import AgentEmulator

    pcm = bytes(range(256)) * 25  # 6400 bytes = 0.2 s of 16 kHz linear16
    path = tmp_path / "in.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm)

    async def generated() -> AsyncIterator[bytes]:
        for i in range(5):
            yield bytes([i]) * 64

    settings = {"audio": {"input": {"encoding": "linear16", "sample_rate": 16000}}, "agent": {}}
    async with AgentEmulator(realtime_audio=False) as emu:
        client = DeepgramClient(api_key="k", base_url=emu.url)
        async with client.agent.connect(settings, keepalive_interval=None) as conn:
            assert await stream_audio(conn, wav_chunks(path, realtime=False)) == len(pcm)
            assert await stream_audio(conn, generated()) == 320
            await conn.keep_alive()
            session = emu.sessions[0]
            await session.wait_for_received("KeepAlive", timeout=scaled(5))
            assert session.audio_bytes_received == len(pcm) + 320
            sizes = [f for f in session.received if isinstance(f, int)]
            assert sizes[-5:] == [64] * 5
    with AgentEmulator.run_in_thread(realtime_audio=False) as emu2:
        client = DeepgramClient(api_key="k", base_url=emu2.url)
        with client.agent.connect_sync(settings, keepalive_interval=None) as sconn:
            assert stream_audio_sync(sconn, [b"\x01\x00" * 10, b"", b"\x02\x00" * 10]) == 40
            sconn.keep_alive()
            emu2.call(emu2.sessions[0].wait_for_received("KeepAlive", timeout=scaled(5)))
            assert emu2.sessions[0].audio_bytes_received == 40
