"""``deepgram-agent serve``: the browser voice page and the phone routes on one aiohttp server.

:func:`create_app` builds the application (use it in your own aiohttp server or tests);
:func:`app_factory` builds it from the environment for a process manager (gunicorn with
``aiohttp.GunicornWebWorker``); :func:`serve` runs it, as the CLI does.
"""

from __future__ import annotations

from ._app import ServeConfig as ServeConfig
from ._app import app_factory as app_factory
from ._app import create_app as create_app
from ._browser import BrowserBridge as BrowserBridge
from ._serve import is_loopback as is_loopback
from ._serve import serve as serve
from ._serve import serve_command as serve_command

__all__ = (
    "BrowserBridge",
    "ServeConfig",
    "app_factory",
    "create_app",
    "is_loopback",
    "serve",
    "serve_command",
)
