"""Running the ``serve`` application: the address check, the start banner, the loop."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import sys
from typing import Any, TextIO

from aiohttp import web

from ._app import CONFIG, create_app

__all__ = ["is_loopback", "serve", "serve_command"]


def is_loopback(host: str) -> bool:
    """Whether ``host`` is only reachable from this machine (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _refusal(host: str) -> str:
    return (
        f"refusing to bind {host}: this server spends your Deepgram key, so on an address other "
        "machines can reach it needs --token TOKEN (or DEEPGRAM_AGENT_SERVE_TOKEN) for the "
        "browser page and phone streams, or --twilio-auth-token (or TWILIO_AUTH_TOKEN) to check "
        "Twilio's webhook signatures"
    )


async def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    settings: Any = None,
    token: str | None = None,
    twilio_auth_token: str | None = None,
    emulator: bool | None = None,
    client: Any = None,
    out: TextIO | None = None,
    ready: asyncio.Event | None = None,
) -> None:
    """Serve the browser page and the phone routes until cancelled.

    Raises:
        ValueError: ``host`` is not loopback and neither token is given.
        OSError: the address cannot be bound.
    """
    if not is_loopback(host) and not (token or twilio_auth_token):
        raise ValueError(_refusal(host))
    out = out if out is not None else sys.stdout
    app = create_app(
        settings,
        client=client,
        token=token,
        twilio_auth_token=twilio_auth_token,
        emulator=emulator,
    )
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = port
        for address in runner.addresses:
            if isinstance(address, tuple) and len(address) >= 2:
                bound = int(address[1])
                break
        config = app[CONFIG]
        shown = f"[{host}]" if ":" in host else host
        base = f"http://{shown}:{bound}"
        query = "?token=<TOKEN>" if config.token else ""
        agent = (
            f"the bundled emulator ({config.agent_url}); set DEEPGRAM_API_KEY for Deepgram"
            if config.emulator
            else config.agent_url
        )
        if config.protected:
            checks = []
            if config.token:
                checks.append("an access token (?token=...) from the page, the webhook and streams")
            if config.twilio_auth_token:
                checks.append("Twilio's X-Twilio-Signature on the webhook")
            access = "requires " + " and ".join(checks)
        else:
            access = f"open, to this machine only (bound to {host})"
        lines = [
            f"deepgram-agent serve: listening on {base}",
            f"  browser page     {base}/{query}",
            f"  Twilio stream    ws://{shown}:{bound}/twilio   (behind TLS: wss://HOST/twilio)",
            f"  Twilio webhook   POST {base}/twilio/voice{query}",
            f"  Telnyx stream    ws://{shown}:{bound}/telnyx",
            f"  agent            {agent}",
            f"  access           {access}",
        ]
        print("\n".join(lines), file=out, flush=True)
        if ready is not None:
            ready.set()
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def serve_command(args: argparse.Namespace) -> int:
    """``deepgram-agent serve``: the CLI's entry (returns the exit status).

    Raises:
        UsageError: a bad address/token combination or an unreadable settings file.
    """
    from ..cli import UsageError, load_settings_file

    settings = load_settings_file(args.settings) if args.settings else None
    token = args.token or os.environ.get("DEEPGRAM_AGENT_SERVE_TOKEN")
    twilio = args.twilio_auth_token or os.environ.get("TWILIO_AUTH_TOKEN")
    if not is_loopback(args.host) and not (token or twilio):
        raise UsageError(_refusal(args.host))
    emulator = True if getattr(args, "emulator", False) else None
    client = None
    if not emulator and os.environ.get("DEEPGRAM_API_KEY") and getattr(args, "url", None):
        from .._client import DeepgramClient

        client = DeepgramClient(base_url=args.url)  # the key comes from the environment
    try:
        asyncio.run(
            serve(
                host=args.host,
                port=args.port,
                settings=settings,
                token=token,
                twilio_auth_token=twilio,
                emulator=emulator,
                client=client,
            )
        )
    except KeyboardInterrupt:
        pass
    return 0
