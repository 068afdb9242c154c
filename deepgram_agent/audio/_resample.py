"""Streaming sample-rate conversion of mono linear16, for devices that run at another rate.

Part of the ``audio`` extra: it uses numpy, imported only when a :class:`Resampler` is made.
"""

from __future__ import annotations

from math import gcd
from typing import Any

from ..exceptions import MissingDependencyError
from ._device import INSTALL_HINT

__all__ = ["Resampler", "load_numpy"]


def load_numpy() -> Any:
    """Import ``numpy`` (a dependency of the ``audio`` extra).

    Raises:
        MissingDependencyError: numpy is not installed.
    """
    try:
        import numpy
    except ImportError as exc:
        raise MissingDependencyError(
            f"resampling audio (device_rate=...) needs numpy, part of the 'audio' extra: "
            f"{INSTALL_HINT}"
        ) from exc
    return numpy


class Resampler:
    """Converts a stream of mono linear16 from one sample rate to another, chunk by chunk.

    Linear interpolation whose fractional position is carried from one chunk to the next, so
    chunk boundaries are seamless and the output does not depend on how the input was split.
    Output sample ``k`` sits at input position ``k * in_rate / out_rate``, computed in exact
    integers, one input sample behind the newest one: after ``n`` input samples exactly
    ``ceil(n * out_rate / in_rate)`` samples have come out, however long the stream. When
    downsampling, a moving average over ``round(in_rate / out_rate)`` samples (also carried
    across chunks) runs first, to keep most of the aliasing out.

    Args:
        in_rate: the sample rate of the input, in Hz.
        out_rate: the sample rate wanted, in Hz.

    Raises:
        ValueError: a rate is not a positive integer.
        MissingDependencyError: numpy is missing.
    """

    def __init__(self, in_rate: int, out_rate: int) -> None:
        if in_rate <= 0 or out_rate <= 0:
            raise ValueError(f"sample rates must be positive, got {in_rate} -> {out_rate}")
        self._np = load_numpy()
        g = gcd(in_rate, out_rate)
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._up = out_rate // g  # output samples per ``_down`` input samples
        self._down = in_rate // g
        self._taps = max(1, round(in_rate / out_rate)) if in_rate > out_rate else 1
        self.reset()

    def reset(self) -> None:
        """Forget the stream so far (the next chunk starts a new stream)."""
        self._k = 0  # index of the next output sample
        self._n = 0  # input samples consumed (both rebased together, see process)
        self._prev = 0.0  # the last input sample of the previous chunk (after the filter)
        self._tail = self._np.zeros(self._taps - 1, dtype=self._np.float64)

    def expected_output(self, input_samples: int) -> int:
        """How many samples a fresh stream yields after ``input_samples`` input samples."""
        return -(-input_samples * self._up // self._down)

    def process(self, pcm: bytes | bytearray | memoryview) -> bytes:
        """Convert the next chunk (little-endian int16 bytes; an odd trailing byte is ignored).

        Returns:
            The converted samples available so far, as int16 bytes.
        """
        np = self._np
        x = np.frombuffer(bytes(pcm[: len(pcm) // 2 * 2]), dtype="<i2").astype(np.float64)
        if not len(x):
            return b""
        if self._taps > 1:  # streaming moving average (anti-aliasing before downsampling)
            joined = np.concatenate((self._tail, x))
            self._tail = joined[len(joined) - (self._taps - 1) :].copy()
            sums = np.cumsum(np.concatenate(([0.0], joined)))
            x = (sums[self._taps :] - sums[: len(sums) - self._taps]) / self._taps
        n_new = self._n + len(x)
        k_end = -(-n_new * self._up // self._down)
        ks = np.arange(self._k, k_end, dtype=np.int64)
        pos = ks * self._down
        local = pos // self._up - self._n  # index of x[i] in this chunk: 0 .. len(x) - 1
        frac = (pos % self._up) / self._up
        ext = np.concatenate(([self._prev], x))  # ext[j] is x[j - 1]; ext[0] the carried one
        y = ext[local] * (1.0 - frac) + ext[local + 1] * frac
        self._prev = float(x[-1])
        self._k, self._n = k_end, n_new
        rebase = self._k // self._up  # keep the integers small on endless streams
        self._k -= rebase * self._up
        self._n -= rebase * self._down
        out = np.clip(np.rint(y), -32768, 32767).astype("<i2")
        return bytes(out.tobytes())
