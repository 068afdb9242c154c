"""``DeepgramClientOptions``: the ``deepgram`` v4 SDK's client configuration, mapped onto ours.

v4 programs configure the client like this::

    config = DeepgramClientOptions(
        url="agent.deepgram.com",
        headers={"x-team": "support"},
        verbose=verboselogs.DEBUG,
        options={"keepalive": "true", "speaker_playback": "true", "microphone_record": "true"},
    )
    deepgram = DeepgramClient("", config)  # "" = take DEEPGRAM_API_KEY from the environment

Mapping (v4 -> deepgram_agent):

* ``api_key`` / ``access_token``: the client's credentials (the ``DeepgramClient`` arguments
  win when given; an empty key falls back to ``DEEPGRAM_API_KEY`` when connecting).
* ``url``: the agent host. With or without a scheme (``agent.deepgram.com`` is
  ``wss://agent.deepgram.com``; ``http``/``https`` become ``ws``/``wss``); a URL without a path
  gets ``/v1/agent/converse``. ``api.deepgram.com`` (the v4 SDK's default, its REST host) and an
  empty url mean the default agent host (or ``DEEPGRAM_AGENT_URL``), as in the v4 SDK, which
  always connected agents to the agent host.
* ``headers``: extra HTTP headers sent with the WebSocket handshake
  (``ConnectOptions.extra_headers``).
* ``verbose``: the level of the ``deepgram_agent`` logger (``verboselogs.SPAM`` ... ``ERROR``,
  or a level name), set when the ``DeepgramClient`` is made and only when you pass it. The SDK
  installs no handler (the v4 SDK added one): configure :mod:`logging` to see the records.
* ``options["keepalive"]``: ``"true"`` keeps the automatic keepalive (a ``KeepAlive`` after 5 s
  with nothing sent); ``"false"`` turns it off. Our keepalive is on by default, so leaving the
  option out keeps it on (the v4 SDK's was off unless asked for).
* ``options["speaker_playback"]`` / ``options["microphone_record"]``: the classic clients'
  ``start()`` plays the agent through :class:`deepgram_agent.audio.Player` and streams the
  microphone through :class:`deepgram_agent.audio.Microphone` (both in the Settings' formats).
  They need the ``audio`` extra (``pip install "deepgram-agent[audio]"``); without it ``start()``
  raises :class:`~deepgram_agent.MissingDependencyError` saying so, before connecting, and a
  device that cannot be opened raises :class:`~deepgram_agent.DeepgramError` naming it, also
  before connecting. The microphone starts with the connection (what it captures before
  ``SettingsApplied`` is held and sent right after it). With both on, the microphone is muted
  while the agent's audio plays (as in the v4 SDK, so the speaker does not talk to the
  microphone). ``speaker_playback_device_index`` /
  ``microphone_record_device_index`` choose the devices; ``speaker_playback_rate`` /
  ``microphone_record_rate`` open the device at that rate and resample. Other v4 options
  (``auto_flush_*``, ``termination_exception*``, ``*_channels``) have no effect here and are
  logged once at INFO.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from ._config import ConnectOptions
from .utils.verboselogs import level_from

__all__ = ["DeepgramClientOptions"]

logger = logging.getLogger("deepgram_agent")

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off", ""})
_AUDIO_OPTIONS = frozenset(
    {
        "speaker_playback",
        "speaker_playback_device_index",
        "speaker_playback_rate",
        "microphone_record",
        "microphone_record_device_index",
        "microphone_record_rate",
    }
)
_KNOWN_OPTIONS = _AUDIO_OPTIONS | {"keepalive"}
#: The v4 SDK's REST host, its default ``url``: agents always went to the agent host.
_V4_DEFAULT_HOSTS = frozenset({"api.deepgram.com"})


def _flag(options: Mapping[str, Any], name: str) -> bool | None:
    """A v4 boolean option (``"true"``/``"false"`` strings or bools); ``None`` when absent."""
    if name not in options or options[name] is None:
        return None
    value = options[name]
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f'DeepgramClientOptions(options={{"{name}": ...}}) must be "true" or "false"')


def _int_option(options: Mapping[str, Any], name: str) -> int | None:
    value = options.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"DeepgramClientOptions(options={{{name!r}: ...}}) must be a whole number, "
            f"not {value!r}"
        ) from None


class DeepgramClientOptions:
    """The v4 SDK's client options: ``DeepgramClientOptions(api_key, url, verbose, headers,
    options)`` (positional order as in v4). See the module docstring for what each one does.

    Attributes:
        url: the ``url`` given (``""`` when none).
        verbose: the log level (an ``int``; ``WARNING`` when not given).
        headers: the extra handshake headers.
        options: the v4 option strings (``keepalive``, ``speaker_playback``, ...).
    """

    def __init__(
        self,
        api_key: str = "",
        url: str = "",
        verbose: int | str | None = None,
        headers: Mapping[str, str] | None = None,
        options: Mapping[str, Any] | None = None,
        *,
        access_token: str = "",
    ) -> None:
        if headers is not None and not isinstance(headers, Mapping):
            raise TypeError(
                f"headers must be a dict of name -> value, not {type(headers).__name__}"
            )
        if options is not None and not isinstance(options, Mapping):
            raise TypeError(f"options must be a dict, not {type(options).__name__}")
        if not isinstance(url, str):
            raise TypeError(f"url must be a string such as 'agent.deepgram.com', not {url!r}")
        self._api_key = api_key or ""
        self._access_token = access_token or ""
        self.url = url
        self.verbose = logging.WARNING if verbose is None else level_from(verbose)
        self._verbose_given = verbose is not None
        self.headers: dict[str, str] = {str(k): str(v) for k, v in (headers or {}).items()}
        self.options: dict[str, Any] = dict(options or {})
        # Fail now, not when connecting, on option values that cannot be understood.
        self.is_keep_alive_enabled()
        self.speaker_playback  # noqa: B018
        self.microphone_record  # noqa: B018
        self.device_settings("speaker")
        self.device_settings("microphone")
        unused = sorted(k for k in self.options if k not in _KNOWN_OPTIONS)
        if unused:
            logger.info(
                "deepgram_agent: DeepgramClientOptions options %s have no effect in this SDK",
                ", ".join(unused),
            )

    def __repr__(self) -> str:
        key = "'***'" if self._api_key else "''"
        return (
            f"DeepgramClientOptions(api_key={key}, url={self.url!r}, verbose={self.verbose}, "
            f"headers={sorted(self.headers)}, options={self.options!r})"
        )

    @property
    def api_key(self) -> str:
        """The API key given here (``""`` when none: ``DEEPGRAM_API_KEY`` is used)."""
        return self._api_key

    @property
    def access_token(self) -> str:
        """The temporary access token given here (``""`` when none)."""
        return self._access_token

    def set_apikey(self, api_key: str) -> None:
        """Replace the API key (for clients created after this call)."""
        self._api_key = api_key or ""

    def is_keep_alive_enabled(self) -> bool:
        """Whether automatic keepalive stays on (on unless ``options["keepalive"]`` is false)."""
        return _flag(self.options, "keepalive") is not False

    @property
    def speaker_playback(self) -> bool:
        """Whether the classic clients play the agent's audio on the speaker."""
        return bool(_flag(self.options, "speaker_playback"))

    @property
    def microphone_record(self) -> bool:
        """Whether the classic clients stream the microphone to the agent."""
        return bool(_flag(self.options, "microphone_record"))

    def device_settings(self, which: str) -> dict[str, Any]:
        """``device_name``/``device_rate`` keyword arguments for the speaker or the microphone."""
        prefix = "speaker_playback" if which == "speaker" else "microphone_record"
        out: dict[str, Any] = {}
        index = _int_option(self.options, f"{prefix}_device_index")
        if index is not None:
            out["device_name"] = index
        rate = _int_option(self.options, f"{prefix}_rate")
        if rate is not None:
            out["device_rate"] = rate
        return out

    # ---------------------------------------------------------------- mapping onto the client

    def base_url(self) -> str | None:
        """The agent base URL this ``url`` means (``None``: the default agent host)."""
        text = self.url.strip()
        if not text:
            return None
        host = urlsplit(text if "://" in text else f"wss://{text}").hostname or ""
        if host.lower() in _V4_DEFAULT_HOSTS:
            return None
        return text

    def connect_options(self, base: ConnectOptions) -> ConnectOptions:
        """``base`` with these options' handshake headers and keepalive applied."""
        fields = {f: getattr(base, f) for f in base.__struct_fields__}
        if self.headers:
            fields["extra_headers"] = {**base.extra_headers, **self.headers}
        if not self.is_keep_alive_enabled():
            fields["keepalive_interval"] = None
        elif base.keepalive_interval is None:
            fields["keepalive_interval"] = ConnectOptions().keepalive_interval
        return ConnectOptions(**fields)

    def apply_logging(self) -> None:
        """Set the ``deepgram_agent`` logger's level to ``verbose`` (only when it was given)."""
        if self._verbose_given:
            logging.getLogger("deepgram_agent").setLevel(self.verbose)
