"""WebSocket adapters for :class:`~._bridge.PhoneBridge`: aiohttp, and raw ASGI.

Both reduce their framework's WebSocket to the bridge's ``(receive_text, send_text, close)``
triple; the ASGI one speaks the ASGI WebSocket messages directly (``websocket.connect``,
``websocket.accept``, ``websocket.receive``, ``websocket.send``, ``websocket.close``,
``websocket.disconnect``), so it runs under uvicorn, hypercorn, Starlette or FastAPI with no
dependency on any of them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

if TYPE_CHECKING:
    from ._bridge import PhoneBridge

__all__ = ["AsgiBridge", "serve_aiohttp"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


async def serve_aiohttp(
    bridge: PhoneBridge, request: web.Request, *, protocols: tuple[str, ...] = ()
) -> web.StreamResponse:
    """Serve one call on an aiohttp WebSocket (``bridge.aiohttp_handler``)."""
    # The bridge closes frames over max_frame_bytes with 1009 itself, after reading them whole
    # (closing with unread data makes the kernel reset the connection: the peer would see 1006
    # instead of the close frame); aiohttp's own limit is the hard cap above that.
    ws = web.WebSocketResponse(max_msg_size=4 * bridge.max_frame_bytes, protocols=protocols)
    if not ws.can_prepare(request).ok:
        return web.Response(status=426, text="this endpoint takes a WebSocket (a media stream)\n")
    await ws.prepare(request)

    async def receive() -> str | bytes | None:
        while True:
            msg = await ws.receive()
            if msg.type is aiohttp.WSMsgType.TEXT:
                return str(msg.data)
            if msg.type is aiohttp.WSMsgType.BINARY:
                return bytes(msg.data)
            if msg.type in (aiohttp.WSMsgType.PING, aiohttp.WSMsgType.PONG):
                continue
            if msg.type is aiohttp.WSMsgType.ERROR:
                # e.g. a frame over max_msg_size: aiohttp already closed with 1009
                bridge_log(bridge, f"carrier socket error: {ws.exception()}")
            return None

    async def send(text: str) -> None:
        await ws.send_str(text)

    async def close(code: int, reason: str) -> None:
        await ws.close(code=code, message=reason.encode())

    await bridge.run(receive, send, close)
    if not ws.closed:
        with contextlib.suppress(Exception):
            await ws.close()
    return ws


def bridge_log(bridge: PhoneBridge, text: str) -> None:
    import logging

    logging.getLogger("deepgram_agent.telephony").warning("%s: %s", bridge.carrier.name, text)


class AsgiBridge:
    """The bridge as an ASGI application (``bridge.asgi()``): one WebSocket per call.

    ``lifespan`` events are acknowledged (so a server can run this app alone); plain HTTP
    requests get ``426 Upgrade Required``.
    """

    def __init__(self, bridge: PhoneBridge) -> None:
        self.bridge = bridge

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope.get("type")
        if kind == "lifespan":
            await _lifespan(receive, send)
            return
        if kind == "http":
            await send(
                {
                    "type": "http.response.start",
                    "status": 426,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8")],
                }
            )
            await send(
                {
                    "type": "http.response.body",
                    "body": b"this endpoint takes a WebSocket (a media stream)\n",
                }
            )
            return
        if kind != "websocket":
            return
        first = await receive()
        if first.get("type") != "websocket.connect":
            return
        await send({"type": "websocket.accept"})
        state = {"closed": False}

        async def receive_text() -> str | bytes | None:
            if state["closed"]:
                return None
            msg = await receive()
            if msg.get("type") == "websocket.receive":
                text = msg.get("text")
                if text is not None:
                    return str(text)
                data = msg.get("bytes")
                return bytes(data) if data is not None else b""
            state["closed"] = True  # websocket.disconnect
            return None

        async def send_text(text: str) -> None:
            if state["closed"]:
                raise ConnectionResetError("the carrier's socket is closed")
            await send({"type": "websocket.send", "text": text})

        async def close(code: int, reason: str) -> None:
            if not state["closed"]:
                state["closed"] = True
                with contextlib.suppress(Exception):
                    await send({"type": "websocket.close", "code": code, "reason": reason})

        await self.bridge.run(receive_text, send_text, close)
        await close(1000, "call over")


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        msg = await receive()
        if msg.get("type") == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif msg.get("type") == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
