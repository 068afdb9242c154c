"""The browser bridge: the bundled page's WebSocket, one agent session per page.

The page never sees the API key: it talks to this server only. Its protocol:

* page -> server, **binary**: microphone audio, linear16 at the session's input rate (the
  page's AudioWorklet resamples to it), whole samples, at most one second per frame;
* page -> server, **text**: ``{"type": "drained"}`` when a reply finished playing,
  ``{"type": "stop"}`` to end the session;
* server -> page, **text**: ``{"type": "bridge.ready", "input": {...}, "output": {...}}`` once
  the agent session is ready; every agent message as its ``to_dict()``; ``bridge.flush`` on a
  barge-in (drop what is queued), ``bridge.reply_start`` / ``bridge.reply_done`` around each
  reply's audio, ``bridge.error`` before closing on a failure;
* server -> page, **binary**: agent audio, linear16 at the output rate, only what the barge-in
  gate lets through.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import aiohttp
import msgspec
from aiohttp import web

from ..audio._bargein import BargeIn, BargeInAction
from ..exceptions import DeepgramError

__all__ = ["BrowserBridge"]

log = logging.getLogger("deepgram_agent.web")

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


class BrowserBridge:
    """Serves the page's WebSocket: relays audio and events between one page and one session.

    Args:
        client: the :class:`~deepgram_agent.DeepgramClient` (the key stays on the server).
        settings: a callable returning the Settings for a new page session (linear16 in and
            out; see :func:`deepgram_agent.presets.browser_settings`).
        tools: a function-tool registry for every session.
        max_frame_bytes: the largest frame accepted from the page.
        max_bad_frames: invalid frames tolerated (each logged) before the page is closed.
    """

    def __init__(
        self,
        client: Any,
        settings: Callable[[], Any],
        *,
        tools: Any = None,
        max_frame_bytes: int = 256 * 1024,
        max_bad_frames: int = 20,
    ) -> None:
        self.client = client
        self.settings = settings
        self.tools = tools
        self.max_frame_bytes = max_frame_bytes
        self.max_bad_frames = max_bad_frames
        #: Open page sessions.
        self.sessions = 0
        #: ``{"type": "drained"}`` signals received from pages (replies played to the end).
        self.drained = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """The aiohttp handler of the page's WebSocket."""
        ws = web.WebSocketResponse(max_msg_size=self.max_frame_bytes, heartbeat=20.0)
        if not ws.can_prepare(request).ok:
            return web.Response(status=426, text="this endpoint takes a WebSocket\n")
        await ws.prepare(request)
        self.sessions += 1
        try:
            await self._serve(ws)
        finally:
            self.sessions -= 1
            if not ws.closed:
                with contextlib.suppress(Exception):
                    await ws.close()
        return ws

    async def _send_json(self, ws: web.WebSocketResponse, data: dict[str, Any]) -> bool:
        if ws.closed:
            return False
        try:
            await ws.send_str(_encode(data).decode())
        except (ConnectionError, RuntimeError):
            return False
        return True

    async def _serve(self, ws: web.WebSocketResponse) -> None:
        try:
            conn = await self.client.agent.connect(self.settings(), tools=self.tools)
        except DeepgramError as exc:
            log.warning("browser session: the agent session failed: %s", exc)
            await self._send_json(ws, {"type": "bridge.error", "message": str(exc)})
            await ws.close(code=1011, message=b"agent session failed")
            return
        try:
            in_enc, in_rate = conn.input_format
            out_enc, out_rate = conn.output_format
            ready = {
                "type": "bridge.ready",
                "input": {"encoding": in_enc, "sample_rate": in_rate},
                "output": {"encoding": out_enc, "sample_rate": out_rate},
            }
            if in_enc != "linear16" or out_enc != "linear16":
                message = "the browser page needs linear16 in and out (use browser_settings())"
                await self._send_json(ws, {"type": "bridge.error", "message": message})
                await ws.close(code=1011, message=message.encode()[:120])
                return
            await self._send_json(ws, ready)
            agent = asyncio.create_task(self._from_agent(ws, conn))
            page = asyncio.create_task(self._from_page(ws, conn, in_rate))
            await asyncio.wait({agent, page}, return_when=asyncio.FIRST_COMPLETED)
            for task in (agent, page):
                if not task.done():
                    task.cancel()
            await asyncio.gather(agent, page, return_exceptions=True)
        finally:
            await conn.close()

    async def _from_page(self, ws: web.WebSocketResponse, conn: Any, rate: int) -> None:
        bad = 0
        limit = 2 * rate  # one second of 16-bit audio
        async for msg in ws:
            why = ""
            if msg.type is aiohttp.WSMsgType.BINARY:
                data: bytes = msg.data
                if not data or len(data) % 2 or len(data) > limit:
                    why = f"audio frame of {len(data)} bytes (whole 16-bit samples, <= {limit})"
                else:
                    try:
                        await conn.send_audio(data)
                    except DeepgramError as exc:
                        log.info("browser session: audio not sent (%s)", exc)
                        return
                    continue
            elif msg.type is aiohttp.WSMsgType.TEXT:
                try:
                    frame = _decode(msg.data)
                except msgspec.DecodeError:
                    frame = None
                kind = frame.get("type") if isinstance(frame, dict) else None
                if kind == "stop":
                    return
                if kind == "drained":
                    self.drained += 1
                    continue
                why = f"unknown message {str(msg.data)[:80]!r}"
            else:
                return
            bad += 1
            log.warning("browser session: ignored a frame from the page: %s", why)
            if bad > self.max_bad_frames:
                await ws.close(code=1008, message=b"too many invalid frames")
                return

    async def _from_agent(self, ws: web.WebSocketResponse, conn: Any) -> None:
        gate = BargeIn()
        try:
            async for event in conn:
                action = gate.handle(event)
                if isinstance(event, bytes):
                    if action is BargeInAction.DROP:
                        continue
                    if action is BargeInAction.REPLY_START and not await self._send_json(
                        ws, {"type": "bridge.reply_start"}
                    ):
                        return
                    try:
                        await ws.send_bytes(event)
                    except (ConnectionError, RuntimeError):
                        return
                    continue
                to_dict = getattr(event, "to_dict", None)
                if callable(to_dict) and not await self._send_json(ws, to_dict()):
                    return
                if action is BargeInAction.FLUSH:
                    await self._send_json(ws, {"type": "bridge.flush"})
                elif action is BargeInAction.REPLY_DONE:
                    await self._send_json(ws, {"type": "bridge.reply_done"})
        except DeepgramError as exc:
            await self._send_json(ws, {"type": "bridge.error", "message": str(exc)})
