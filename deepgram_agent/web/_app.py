"""``deepgram-agent serve``: one aiohttp application for the browser page and phone calls.

Routes:

* ``GET /``: the browser voice page (shipped in the package; no CDN, works offline), and its
  assets under ``/static/``;
* ``GET /agent``: the page's WebSocket (:class:`~._browser.BrowserBridge`);
* ``GET /twilio``: Twilio Media Streams (:class:`~deepgram_agent.telephony.TwilioBridge`);
* ``POST /twilio/voice``: the voice webhook, answering ``<Connect><Stream>`` TwiML that points
  at ``/twilio`` on the host the request came to (``wss://`` behind TLS, ``ws://`` on plain
  HTTP);
* ``GET /telnyx``: Telnyx media streaming (:class:`~deepgram_agent.telephony.TelnyxBridge`);
* ``GET /healthz``: ``ok`` and the number of calls and page sessions in progress.

Security: the server spends the Deepgram key, so it is not an open relay. With an access
``token``, the page's WebSocket needs ``?token=`` (the page passes on its own), the webhook
needs ``?token=`` on its URL (or a valid ``X-Twilio-Signature`` when ``twilio_auth_token`` is
set), and every phone stream must carry a ticket the webhook put in its TwiML (a
``<Parameter>``: the token itself, or an HMAC of the call's id when only Twilio's signature is
checked). Without either, the app must only be reachable from this machine (the CLI binds
127.0.0.1 and refuses other addresses).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import importlib.resources
import logging
import os
import secrets
from collections.abc import AsyncIterator, Mapping
from typing import Any

from aiohttp import web

from .._client import DeepgramClient
from ..presets import SettingsTemplate, browser_settings, deep_merge, telephony_settings
from ..telephony import TelnyxBridge, TwilioBridge, twiml_connect_stream, valid_twilio_signature
from ..telephony._carrier import CallInfo
from ._browser import BrowserBridge

__all__ = ["ServeConfig", "app_factory", "create_app"]

log = logging.getLogger("deepgram_agent.web")

_STATIC = {
    "index.html": "text/html",
    "app.js": "text/javascript",
    "worklet.js": "text/javascript",
    "style.css": "text/css",
}


class ServeConfig:
    """What a serving application was built with (``app[CONFIG]``).

    Attributes:
        token: the access token, or ``None``.
        twilio_auth_token: the Twilio auth token used to check webhook signatures, or ``None``.
        emulator: whether calls go to the bundled emulator (no ``DEEPGRAM_API_KEY``).
        agent_url: where agent sessions go (never includes a credential).
    """

    def __init__(self, *, token: str | None, twilio_auth_token: str | None, emulator: bool) -> None:
        self.token = token or None
        self.twilio_auth_token = twilio_auth_token or None
        self.emulator = emulator
        self.agent_url = ""
        self.ticket_secret = secrets.token_bytes(32)

    def __repr__(self) -> str:
        return (
            f"ServeConfig(token={'***' if self.token else None}, "
            f"twilio_auth_token={'***' if self.twilio_auth_token else None}, "
            f"emulator={self.emulator}, agent_url={self.agent_url!r})"
        )

    @property
    def protected(self) -> bool:
        """Whether requests are checked at all (a token or Twilio signatures)."""
        return bool(self.token or self.twilio_auth_token)

    def ticket(self, call_id: str) -> str:
        """The per-call ticket the webhook hands out when only Twilio signatures are checked."""
        return hmac.new(self.ticket_secret, call_id.encode(), hashlib.sha256).hexdigest()

    def token_ok(self, given: str | None) -> bool:
        """Constant-time check of an access token."""
        return bool(self.token and given and hmac.compare_digest(given, self.token))

    def call_ok(self, info: CallInfo) -> bool:
        """Whether a phone stream carries a valid token or ticket (always, when unprotected)."""
        if not self.protected:
            return True
        params = info.custom_parameters
        if self.token_ok(params.get("token") or params.get("client_state")):
            return True
        ticket = params.get("ticket")
        return bool(ticket and hmac.compare_digest(ticket, self.ticket(info.call_id)))


#: What the default agent says first.
DEFAULT_GREETING = "Hello! I am a voice agent. How can I help?"

CONFIG = web.AppKey("deepgram_agent.serve.config", ServeConfig)
CLIENT = web.AppKey("deepgram_agent.serve.client", DeepgramClient)
TWILIO = web.AppKey("deepgram_agent.serve.twilio", TwilioBridge)
TELNYX = web.AppKey("deepgram_agent.serve.telnyx", TelnyxBridge)
BROWSER = web.AppKey("deepgram_agent.serve.browser", BrowserBridge)


def create_app(
    settings: Any = None,
    *,
    client: DeepgramClient | None = None,
    token: str | None = None,
    twilio_auth_token: str | None = None,
    emulator: bool | None = None,
    emulator_options: Mapping[str, Any] | None = None,
    tools: Any = None,
    max_calls: int = 1000,
) -> web.Application:
    """The ``serve`` application (aiohttp): the browser page and the phone routes.

    Args:
        settings: your Settings (any accepted form) or ``None`` for a small default agent
            that greets the caller (:data:`DEFAULT_GREETING`).
            Their ``audio`` block is set per route: mu-law 8000 for phones, linear16 for the
            page (:mod:`deepgram_agent.presets`).
        client: the client agent sessions use; ``None``: ``DeepgramClient()`` when
            ``DEEPGRAM_API_KEY`` is set, else the bundled emulator, started with the app.
        token: an access token required from the page, the webhook and every phone stream.
        twilio_auth_token: check the webhook's ``X-Twilio-Signature`` with it.
        emulator: ``True`` forces the emulator even with a key; ``False`` never uses it.
        emulator_options: ``AgentEmulator`` options when the emulator is used.
        tools: a function-tool registry for every session (with the emulator and no tools,
            the demo's ``get_weather`` is registered so function calls show).
        max_calls: phone calls and page sessions served at once; more get HTTP 503.

    Raises:
        SettingsError: the settings are invalid.
    """
    use_emulator = (
        emulator
        if emulator is not None
        else (client is None and not os.environ.get("DEEPGRAM_API_KEY"))
    )
    config = ServeConfig(token=token, twilio_auth_token=twilio_auth_token, emulator=use_emulator)
    if settings is None:
        settings = deep_merge(telephony_settings(), {"agent": {"greeting": DEFAULT_GREETING}})
    phone = SettingsTemplate(telephony_settings(settings))
    page = SettingsTemplate(browser_settings(settings))
    app = web.Application(middlewares=[_limit(max_calls)])
    app[CONFIG] = config
    if use_emulator and tools is None:
        tools = _demo_tools()

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            agent_client = client
            if agent_client is None and use_emulator:
                from ..cli import demo_script
                from ..testing import AgentEmulator

                script = demo_script()
                script.default_transcript = "Hello."
                script.transcripts = ["What's the weather in Paris?", "Tell me a long story."]
                options = {"script": script, "ms_per_char": 45.0, **(emulator_options or {})}
                emu = await stack.enter_async_context(AgentEmulator(**options))
                agent_client = DeepgramClient(api_key=emu.api_key, base_url=emu.url)
            elif agent_client is None:
                agent_client = DeepgramClient()
            config.agent_url = agent_client.url
            app[CLIENT] = agent_client
            authorize = config.call_ok
            app[TWILIO] = TwilioBridge(
                agent_client, lambda info: phone.for_call(), tools=tools, authorize=authorize
            )
            app[TELNYX] = TelnyxBridge(
                agent_client, lambda info: phone.for_call(), tools=tools, authorize=authorize
            )
            app[BROWSER] = BrowserBridge(agent_client, page.for_call, tools=tools)
            yield

    app.cleanup_ctx.append(lifecycle)
    app.router.add_get("/", _index)
    app.router.add_get("/static/{name}", _static)
    app.router.add_get("/healthz", _health)
    app.router.add_get("/agent", _browser_ws)
    app.router.add_get("/twilio", _twilio_ws)
    app.router.add_post("/twilio/voice", _twilio_voice)
    app.router.add_get("/telnyx", _telnyx_ws)
    return app


def app_factory() -> web.Application:
    """The ``serve`` application from the environment, for process managers::

        gunicorn 'deepgram_agent.web:app_factory()' -k aiohttp.GunicornWebWorker -w 2 \\
            --bind 0.0.0.0:8080

    Reads ``DEEPGRAM_AGENT_SERVE_SETTINGS`` (a Settings JSON file),
    ``DEEPGRAM_AGENT_SERVE_TOKEN`` and ``TWILIO_AUTH_TOKEN``. A process manager may bind any
    address, so one of the two tokens is required, unless ``DEEPGRAM_AGENT_SERVE_INSECURE=1``
    says the server is only reachable from this machine.

    Raises:
        RuntimeError: neither token is set (and no opt-out).
    """
    token = os.environ.get("DEEPGRAM_AGENT_SERVE_TOKEN")
    twilio = os.environ.get("TWILIO_AUTH_TOKEN")
    if not (token or twilio) and os.environ.get("DEEPGRAM_AGENT_SERVE_INSECURE") != "1":
        raise RuntimeError(
            "set DEEPGRAM_AGENT_SERVE_TOKEN (or TWILIO_AUTH_TOKEN): a process manager may "
            "expose this server, which spends your Deepgram key; DEEPGRAM_AGENT_SERVE_INSECURE=1 "
            "skips the check for a server only this machine can reach"
        )
    settings = None
    path = os.environ.get("DEEPGRAM_AGENT_SERVE_SETTINGS")
    if path:
        from ..cli import load_settings_file

        settings = load_settings_file(path)
    return create_app(settings, token=token, twilio_auth_token=twilio)


# ----------------------------------------------------------------------------- middleware


def _limit(max_calls: int) -> Any:
    @web.middleware
    async def limit(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path in ("/agent", "/twilio", "/telnyx"):
            app = request.app
            busy = len(app[TWILIO].calls) + len(app[TELNYX].calls) + app[BROWSER].sessions
            if busy >= max_calls:
                return web.Response(status=503, text="too many calls in progress\n")
        response: web.StreamResponse = await handler(request)
        return response

    return limit


# ----------------------------------------------------------------------------- handlers


def _asset(name: str) -> bytes:
    return (importlib.resources.files("deepgram_agent.web") / "static" / name).read_bytes()


async def _index(request: web.Request) -> web.StreamResponse:
    return web.Response(
        body=_asset("index.html"),
        content_type="text/html",
        charset="utf-8",
        headers={"Cache-Control": "no-store"},
    )


async def _static(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    kind = _STATIC.get(name)
    if kind is None or name == "index.html":
        raise web.HTTPNotFound(text="no such file\n")
    return web.Response(
        body=_asset(name), content_type=kind, charset="utf-8", headers={"Cache-Control": "no-store"}
    )


async def _health(request: web.Request) -> web.StreamResponse:
    app = request.app
    return web.json_response(
        {
            "status": "ok",
            "calls": len(app[TWILIO].calls) + len(app[TELNYX].calls),
            "browser_sessions": app[BROWSER].sessions,
            "emulator": app[CONFIG].emulator,
        }
    )


def _forbidden(what: str) -> web.StreamResponse:
    log.warning("refused %s: missing or wrong access token", what)
    return web.Response(status=403, text="forbidden: missing or wrong access token\n")


async def _browser_ws(request: web.Request) -> web.StreamResponse:
    config = request.app[CONFIG]
    if config.protected and not config.token_ok(request.query.get("token")):
        return _forbidden("a page session")
    return await request.app[BROWSER].handle(request)


async def _twilio_ws(request: web.Request) -> web.StreamResponse:
    return await request.app[TWILIO].aiohttp_handler(request)


async def _telnyx_ws(request: web.Request) -> web.StreamResponse:
    return await request.app[TELNYX].aiohttp_handler(request)


def _public_scheme(request: web.Request) -> str:
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    if forwarded in ("http", "https"):
        return forwarded
    return "https" if request.secure else "http"


async def _twilio_voice(request: web.Request) -> web.StreamResponse:
    """Twilio's voice webhook: answer TwiML connecting the call to ``/twilio``."""
    config = request.app[CONFIG]
    form = await request.post()
    params = {k: str(v) for k, v in form.items()}
    scheme = _public_scheme(request)
    host = request.headers.get("X-Forwarded-Host", request.host)
    stream: dict[str, str] = {}
    if config.twilio_auth_token:
        url = f"{scheme}://{host}{request.path_qs}"
        signature = request.headers.get("X-Twilio-Signature")
        if not valid_twilio_signature(config.twilio_auth_token, url, params, signature):
            log.warning("refused a Twilio webhook: bad or missing X-Twilio-Signature")
            return web.Response(status=403, text="forbidden: bad X-Twilio-Signature\n")
        call_id = params.get("CallSid", "")
        if not call_id:
            return web.Response(status=400, text="a voice webhook carries CallSid\n")
        stream["ticket"] = config.ticket(call_id)
    elif config.token:
        if not config.token_ok(request.query.get("token")):
            return _forbidden("a Twilio webhook")
        stream["token"] = config.token
    ws_scheme = "wss" if scheme == "https" else "ws"
    twiml = twiml_connect_stream(f"{ws_scheme}://{host}/twilio", stream)
    return web.Response(text=twiml, content_type="text/xml", charset="utf-8")


def _demo_tools() -> Any:
    from ..tools import Tools

    tools = Tools(timeout=10)

    @tools.tool
    def get_weather(city: str) -> str:
        """Get the current weather for a city.

        Args:
            city: the city name, e.g. "Paris".
        """
        return f"sunny and 21 degrees Celsius in {city}"

    return tools
