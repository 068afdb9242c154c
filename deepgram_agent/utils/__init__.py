"""Helpers kept for programs written for the ``deepgram`` v4 SDK.

``from deepgram_agent.utils import verboselogs`` gives the v4 SDK's log level names
(``verboselogs.SPAM``, ``.VERBOSE``, ``.NOTICE``, ``.SUCCESS`` and the standard ones), for
``DeepgramClientOptions(verbose=...)``.
"""

from __future__ import annotations

from . import verboselogs as verboselogs

__all__ = ["verboselogs"]
