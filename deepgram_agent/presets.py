"""Settings presets and cheap per-call copies.

* :func:`telephony_settings`: your Settings with ``audio`` set for a phone line (G.711 mu-law at
  8000 Hz in **and** out, ``container: "none"``), so a forgotten output block can never give
  linear16 at 24 kHz (static on the line) again.
* :func:`browser_settings`: linear16 in at 16 kHz and out at 24 kHz, what the bundled browser
  page streams and plays.
* :class:`SettingsTemplate`: base Settings validated once; :meth:`~SettingsTemplate.for_call`
  returns a fresh, deep-merged copy per call (a phone bridge's per-call prompt or greeting)
  in under 0.1 ms. ``connect()`` still validates what it sends (0.2-0.4 ms for a
  typical Settings with five functions, measured), so no rule is skipped.

Why a module of its own: both the phone bridges (``deepgram_agent.telephony``) and the browser
server (``deepgram_agent.web``) use it, and it needs neither aiohttp nor audio libraries.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from .messages import AudioFormat
from .options import coerce_settings

__all__ = [
    "BROWSER_INPUT",
    "BROWSER_OUTPUT",
    "TELEPHONY_FORMAT",
    "SettingsTemplate",
    "browser_settings",
    "deep_merge",
    "settings_dict",
    "telephony_settings",
    "with_audio",
]

#: The phone line's format: G.711 mu-law at 8000 Hz (Twilio Media Streams, most carriers).
TELEPHONY_FORMAT = AudioFormat("mulaw", 8000)
#: What the bundled browser page sends (its AudioWorklet resamples the microphone to this).
BROWSER_INPUT = AudioFormat("linear16", 16000)
#: What the bundled browser page plays.
BROWSER_OUTPUT = AudioFormat("linear16", 24000)

_DEFAULT_AGENT: dict[str, Any] = {
    "listen": {"provider": {"type": "deepgram", "model": "nova-3"}},
    "think": {
        "provider": {"type": "open_ai", "model": "gpt-4o-mini"},
        "prompt": "You are a helpful voice assistant on a phone call. Keep answers short.",
    },
    "speak": {"provider": {"type": "deepgram", "model": "aura-2-thalia-en"}},
}


def settings_dict(settings: Any) -> dict[str, Any]:
    """Any accepted form of Settings (``SettingsOptions``, ``messages.Settings``, dict, JSON) as
    the validated wire dict.

    Raises:
        SettingsError: the settings are invalid (the error names the JSON path).
    """
    return coerce_settings(settings)[1]


def deep_merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A new dict: ``base`` with ``overrides`` merged in, recursively.

    Nested mappings merge key by key; any other value (lists included) replaces; ``None``
    deletes the key. Neither argument is modified.
    """
    out: dict[str, Any] = {k: _copy(v) for k, v in base.items()}
    for key, value in overrides.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = _copy(value)
    return out


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_copy(v) for v in value]
    return value


def with_audio(
    settings: Any, input: AudioFormat | tuple[str, int], output: AudioFormat | tuple[str, int]
) -> dict[str, Any]:
    """The wire dict of ``settings`` with ``audio.input`` and ``audio.output`` replaced
    (``container: "none"``: bare samples). Other audio keys (``bitrate``) are dropped.

    Raises:
        SettingsError: the settings are invalid.
    """
    if settings is None:
        base: Mapping[str, Any] = {"agent": _DEFAULT_AGENT}
    elif isinstance(settings, str | bytes | bytearray):
        base = msgspec.json.decode(settings)  # the audio block may be what is missing
    elif isinstance(settings, Mapping):
        base = settings
    else:
        base = settings_dict(settings)
    data = deep_merge(base, {})
    data["audio"] = {
        "input": {"encoding": input[0], "sample_rate": int(input[1])},
        "output": {"encoding": output[0], "sample_rate": int(output[1]), "container": "none"},
    }
    return settings_dict(data)


def telephony_settings(
    settings: Any = None, *, encoding: str = "mulaw", sample_rate: int = 8000
) -> dict[str, Any]:
    """Settings for a phone line: ``audio`` in and out in the line's format.

    Args:
        settings: your Settings in any accepted form (their ``audio`` block is replaced), or
            ``None`` for a small default agent (nova-3, gpt-4o-mini, aura-2-thalia-en).
        encoding: the line's encoding: ``mulaw`` (Twilio, most US carriers) or ``alaw``.
        sample_rate: the line's rate (8000 for G.711).

    Returns:
        The wire dict (validate it again, or just pass it to ``connect()``).

    Raises:
        SettingsError: ``settings`` are invalid.
    """
    fmt = (encoding, sample_rate)
    return with_audio(settings, fmt, fmt)


def browser_settings(settings: Any = None) -> dict[str, Any]:
    """Settings for the bundled browser page: linear16 16 kHz in, linear16 24 kHz out."""
    return with_audio(settings, BROWSER_INPUT, BROWSER_OUTPUT)


class SettingsTemplate:
    """Base Settings validated once, copied per call with overrides.

    ::

        template = SettingsTemplate(telephony_settings(my_settings))
        settings = template.for_call({"agent": {"greeting": f"Hello {name}!"}})

    Args:
        settings: the base Settings in any accepted form.

    Raises:
        SettingsError: the base settings are invalid (at construction, not per call).
    """

    __slots__ = ("_frozen",)

    def __init__(self, settings: Any) -> None:
        self._frozen = msgspec.json.encode(settings_dict(settings))

    @property
    def base(self) -> dict[str, Any]:
        """A fresh copy of the validated base Settings."""
        data: dict[str, Any] = msgspec.json.decode(self._frozen)
        return data

    def for_call(self, overrides: Mapping[str, Any] | None = None, /) -> dict[str, Any]:
        """A fresh copy of the base with ``overrides`` deep-merged (see :func:`deep_merge`).

        Nothing is validated here; ``connect()`` validates what it sends, and a mistake in an
        override is a :class:`~deepgram_agent.SettingsError` naming its path there.
        """
        data = self.base
        return deep_merge(data, overrides) if overrides else data

    @property
    def input_format(self) -> AudioFormat:
        """The base Settings' user audio format."""
        return coerce_settings(self.base)[0].input_format

    @property
    def output_format(self) -> AudioFormat:
        """The base Settings' agent audio format."""
        return coerce_settings(self.base)[0].output_format
