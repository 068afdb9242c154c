"""The ``deepgram`` v4 SDK's log levels, as plain :mod:`logging` levels.

The v4 SDK shipped a copy of the ``verboselogs`` package; its programs pass these names to
``DeepgramClientOptions(verbose=...)``. Here they are integers on the standard scale, with their
names registered with :mod:`logging` (so a record at level 5 prints as ``SPAM``)::

    SPAM 5 < DEBUG 10 < VERBOSE 15 < INFO 20 < NOTICE 25 < WARNING 30 < SUCCESS 35 < ERROR 40

The SDK itself logs only at the standard levels, under the ``deepgram_agent`` logger, and never
installs a handler: call ``logging.basicConfig()`` (or configure logging your way) to see the
records. :class:`VerboseLogger` and :func:`install` exist for programs that use them directly.
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = [
    "CRITICAL",
    "DEBUG",
    "ERROR",
    "FATAL",
    "INFO",
    "NOTICE",
    "NOTSET",
    "SPAM",
    "SUCCESS",
    "VERBOSE",
    "WARNING",
    "VerboseLogger",
    "add_log_level",
    "install",
    "level_from",
]

NOTSET = logging.NOTSET
#: Below DEBUG: very detailed tracing.
SPAM = 5
DEBUG = logging.DEBUG
#: Between DEBUG and INFO.
VERBOSE = 15
INFO = logging.INFO
#: Between INFO and WARNING.
NOTICE = 25
WARNING = logging.WARNING
#: Between WARNING and ERROR.
SUCCESS = 35
ERROR = logging.ERROR
CRITICAL = logging.CRITICAL
FATAL = logging.FATAL

_NAMES = {"SPAM": SPAM, "VERBOSE": VERBOSE, "NOTICE": NOTICE, "SUCCESS": SUCCESS}


def add_log_level(value: int, name: str) -> None:
    """Register a level ``name`` for ``value`` with :mod:`logging` (what records print)."""
    logging.addLevelName(value, name)


for _name, _value in _NAMES.items():
    add_log_level(_value, _name)


def level_from(verbose: int | str) -> int:
    """The numeric level for a v4 ``verbose`` value: a number or a level name (any case).

    Raises:
        ValueError: an unknown level name.
    """
    if isinstance(verbose, bool) or not isinstance(verbose, int | str):
        raise ValueError(
            f"verbose must be a logging level (e.g. verboselogs.DEBUG), not {verbose!r}"
        )
    if isinstance(verbose, int):
        return verbose
    text = verbose.strip().upper()
    if text.isdigit():
        return int(text)
    value = _NAMES.get(text, logging.getLevelNamesMapping().get(text))
    if value is None:
        known = ", ".join(sorted({*_NAMES, *logging.getLevelNamesMapping()}))
        raise ValueError(f"unknown log level {verbose!r}; use one of {known}")
    return value


class VerboseLogger(logging.Logger):
    """A :class:`logging.Logger` with ``spam()``, ``verbose()``, ``notice()`` and ``success()``."""

    def spam(self, msg: object, *args: Any, **kwargs: Any) -> None:
        """Log at :data:`SPAM`."""
        if self.isEnabledFor(SPAM):
            self._log(SPAM, msg, args, **kwargs)

    def verbose(self, msg: object, *args: Any, **kwargs: Any) -> None:
        """Log at :data:`VERBOSE`."""
        if self.isEnabledFor(VERBOSE):
            self._log(VERBOSE, msg, args, **kwargs)

    def notice(self, msg: object, *args: Any, **kwargs: Any) -> None:
        """Log at :data:`NOTICE`."""
        if self.isEnabledFor(NOTICE):
            self._log(NOTICE, msg, args, **kwargs)

    def success(self, msg: object, *args: Any, **kwargs: Any) -> None:
        """Log at :data:`SUCCESS`."""
        if self.isEnabledFor(SUCCESS):
            self._log(SUCCESS, msg, args, **kwargs)


def install() -> None:
    """Make :class:`VerboseLogger` the class of loggers created from now on (process-wide)."""
    logging.setLoggerClass(VerboseLogger)
