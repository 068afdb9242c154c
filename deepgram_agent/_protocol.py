"""AgentProtocol: the Voice Agent session rules, sans I/O.

This module is where the protocol lives. It knows nothing about sockets, tasks, threads or
clocks: frames go in (:meth:`AgentProtocol.receive_text`, :meth:`AgentProtocol.receive_binary`,
:meth:`AgentProtocol.receive_close`), typed items come out, and the frames to write are
handed back (:meth:`AgentProtocol.prepare`, :meth:`AgentProtocol.take_held`). The connection
(:mod:`deepgram_agent._connection`) owns the socket and calls in; the emulator
(:mod:`deepgram_agent.testing`) reuses the rules both sides share (:class:`PendingCalls`,
:func:`client_order_error`), so each rule has one implementation.

What it owns (docs/protocol.md 3, 5, 6):

* the session phase: ``CONNECTING`` -> ``AWAITING_WELCOME`` -> ``AWAITING_APPLIED`` ->
  ``READY`` -> ``CLOSING`` -> ``CLOSED`` (or ``REJECTED`` when the server answers ``Settings``
  with ``Error``);
* ``Settings`` exactly once, first, after ``Welcome``; everything else held until
  ``SettingsApplied`` and then released in order (held audio is bounded: the oldest chunk goes
  first, counted in ``dropped_before_ready``);
* ``request_id``, the last server ``Error`` code, and the client-side function calls waiting
  for an answer, with the rule that fills in a response's missing ``id`` from the oldest
  pending call of that name;
* decoding: every text frame becomes a typed message or an ``Unhandled`` with the reason,
  whatever the bytes (:func:`deepgram_agent._codec.decode_server` never raises);
* hooks: callbacks run for every item in arrival order, before anyone else sees it (the
  session rules above are hooks too, in one table shared by every protocol object);
* counters for ``statistics()``, and the ``deepgram_agent.wire`` debug log of every frame.
"""

from __future__ import annotations

import enum
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any, TypeAlias

from . import messages as m
from ._codec import decode_server, encode, fast_decoder, message_type_of
from .exceptions import SettingsError, SettingsRejected

__all__ = [
    "AgentProtocol",
    "Phase",
    "PendingCalls",
    "client_order_error",
    "wire_logger",
]

logger = logging.getLogger("deepgram_agent.connection")
#: One DEBUG line per frame in and out (audio summarised once a second); level 5 (``TRACE``;
#: the v4 SDK's verboselogs calls it ``SPAM``) adds a line per audio frame.
wire_logger = logging.getLogger("deepgram_agent.wire")
TRACE = 5

Hook: TypeAlias = Callable[[Any], None]
_Step: TypeAlias = Callable[["AgentProtocol", Any], None]

_fast_decode = fast_decoder.decode


class Phase(enum.IntEnum):
    """Where a session is (docs/protocol.md 3)."""

    CONNECTING = 0
    AWAITING_WELCOME = 1
    AWAITING_APPLIED = 2
    READY = 3
    REJECTED = 4
    CLOSING = 5
    CLOSED = 6


class PendingCalls:
    """Client-side function calls the server asked for and nobody answered yet, oldest first.

    Used by the client (to complete a ``FunctionCallResponse`` that has no ``id``) and by the
    emulator (to check the responses it gets), so both apply the same rule.
    """

    __slots__ = ("_calls",)

    def __init__(self) -> None:
        self._calls: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self._calls)

    def __contains__(self, call_id: object) -> bool:
        return call_id in self._calls

    def add(self, call_id: str, name: str) -> None:
        """Record a requested call (``FunctionCallRequest.functions[i]``)."""
        self._calls[call_id] = name

    def discard(self, call_id: str) -> str | None:
        """Forget a call (answered or cancelled); returns its name if it was pending."""
        return self._calls.pop(call_id, None)

    def resolve(self, name: str, call_id: str | None) -> str | None:
        """The id a response for ``name`` answers, and forget that call.

        A response with an id answers that call. One without answers the oldest pending call
        of the same name (the seed API's ``FunctionCallResponse(name=..., result=...)`` has no
        id). ``None`` when nothing pending matches.
        """
        if call_id:
            return call_id if self._calls.pop(call_id, None) is not None else None
        for pending_id, pending_name in self._calls.items():
            if pending_name == name:
                del self._calls[pending_id]
                return pending_id
        return None

    def as_dict(self) -> dict[str, str]:
        """``{id: name}`` of the pending calls, oldest first (a copy)."""
        return dict(self._calls)


def client_order_error(phase: Phase, message_type: str, *, binary: bool = False) -> m.Error | None:
    """The ``Error`` the server answers a client frame with, when it breaks the session order.

    Args:
        phase: the server's view of the session (``AWAITING_WELCOME``/``AWAITING_APPLIED`` mean
            no ``Settings`` was accepted yet; ``READY`` means it was).
        message_type: the frame's ``type`` (ignored for binary frames).
        binary: the frame is audio.

    Returns:
        The error (code and the server's recorded description), or ``None`` when the frame is
        in order (docs/protocol.md 3 rules 2-3, 9.6).
    """
    settled = phase >= Phase.READY
    if binary:
        if settled:
            return None
        return m.Error(
            code="BINARY_MESSAGE_BEFORE_SETTINGS",
            description="Received binary message before Settings.",
        )
    if message_type == "Settings":
        if settled:
            return m.Error(
                code="SETTINGS_ALREADY_APPLIED",
                description="Settings have already been applied to this session; open a new "
                "connection to change them wholesale, or use the Update* messages.",
            )
        return None
    if not settled:
        return m.Error(
            code="NON_SETTINGS_MESSAGE_BEFORE_SETTINGS",
            description=f"Received {message_type} before Settings.",
        )
    return None


class _AudioMeter:
    """Summarises audio frames for the debug log: one line a second per direction."""

    __slots__ = ("bytes", "frames", "since")

    def __init__(self) -> None:
        self.frames = 0
        self.bytes = 0
        self.since = time.monotonic()

    def add(self, direction: str, size: int) -> None:
        self.frames += 1
        self.bytes += size
        now = time.monotonic()
        elapsed = now - self.since
        if elapsed >= 1.0:
            wire_logger.debug(
                "%s audio: %d frames, %d bytes in %.1f s (%.0f B/s)",
                direction,
                self.frames,
                self.bytes,
                elapsed,
                self.bytes / elapsed,
            )
            self.frames = self.bytes = 0
            self.since = now


def _excerpt(frame: bytes, limit: int = 160) -> str:
    text = frame[:limit].decode("utf-8", "replace")
    return text + ("..." if len(frame) > limit else "")


class AgentProtocol:
    """The state and rules of one Voice Agent session (one socket), with no I/O.

    Args:
        settings_frame: the exact ``Settings`` JSON to send once ``Welcome`` arrived.
        max_held_audio: bytes of audio held until ``SettingsApplied`` (oldest dropped beyond).
        hooks: per-type hooks to start with (a resumed session passes its predecessor's);
            ``None`` starts with none.
        all_hooks: hooks for every item (audio ``bytes`` included), as ``hooks``.

    The caller feeds frames in arrival order. ``on_phase`` (settable) is called after every
    phase change; the connection uses it to wake whoever waits for the handshake.
    """

    __slots__ = (
        "_all_hooks",
        "_audio_in",
        "_audio_out",
        "_garbage",
        "_held",
        "_max_held_audio",
        "_settings_frame",
        "_trace",
        "audio_bytes_received",
        "audio_bytes_sent",
        "audio_frames_received",
        "audio_frames_sent",
        "close_code",
        "close_reason",
        "dropped_before_ready",
        "held_audio_bytes",
        "keepalives_sent",
        "last_error",
        "messages_received",
        "messages_sent",
        "on_phase",
        "pending",
        "phase",
        "plain",
        "redact",
        "rejection",
        "request_id",
        "steps",
        "unhandled_received",
    )

    def __init__(
        self,
        settings_frame: bytes,
        *,
        max_held_audio: int = 5 * 48_000 * 2,
        hooks: dict[type, tuple[Hook, ...]] | None = None,
        all_hooks: tuple[Hook, ...] = (),
    ) -> None:
        self._settings_frame = settings_frame
        self._max_held_audio = max_held_audio
        #: What runs per message type: the session rules, then the hooks, as (proto, item)
        #: callables, found with one lookup; a type missing here needs no step. Shared by
        #: every protocol until a hook is added.
        self.steps: dict[type, tuple[_Step, ...]] = _RULES_TABLE
        self._all_hooks = all_hooks
        for kind, added in (hooks or {}).items():
            for hook in added:
                self.add_hook(kind, hook)
        self.phase = Phase.CONNECTING
        self.on_phase: Callable[[Phase], None] | None = None
        #: Removes our own credential from server texts that echo it (set by the connection).
        self.redact: Callable[[str], str] | None = None
        self.request_id: str | None = None
        #: The last server ``Error`` (any phase).
        self.last_error: m.Error | None = None
        #: Why the server refused ``Settings`` (phase ``REJECTED``).
        self.rejection: SettingsRejected | None = None
        self.pending = PendingCalls()
        # Frames held until SettingsApplied, in order: (is_audio, payload); made on first use.
        self._held: deque[tuple[bool, bytes]] | None = None
        self.held_audio_bytes = 0
        self.dropped_before_ready = 0
        self.close_code: int | None = None
        self.close_reason = ""
        self.messages_received = 0
        self.audio_frames_received = 0
        self.audio_bytes_received = 0
        self.unhandled_received = 0
        self.messages_sent = 0
        self.audio_frames_sent = 0
        self.audio_bytes_sent = 0
        self.keepalives_sent = 0
        self._trace = wire_logger.isEnabledFor(logging.DEBUG)
        #: Nothing watches frames as a whole (no wire log, no catch-all hook): a frame whose
        #: type has no step in ``steps`` needs nothing but decoding and counting, which the
        #: connection's hot path then does without calling us (see ``_Reader.stream``).
        self.plain = not (self._trace or self._all_hooks)
        self._audio_in: _AudioMeter | None = None
        self._audio_out: _AudioMeter | None = None
        self._garbage: _GarbageLog | None = None

    def __repr__(self) -> str:
        return f"<AgentProtocol {self.phase.name} request_id={self.request_id!r}>"

    # ------------------------------------------------------------------ hooks

    def add_hook(self, message_type: type | None, hook: Hook) -> None:
        """Call ``hook(item)`` for every item of ``message_type`` (``None``: every item).

        Hooks run in arrival order before the item is handed on; one that raises is logged and
        the stream goes on.
        """
        if message_type is None:
            self._all_hooks = (*self._all_hooks, hook)
            self.plain = False
            return
        if self.steps is _RULES_TABLE:
            self.steps = dict(_RULES_TABLE)
        self.steps[message_type] = (*self.steps.get(message_type, ()), _guarded(hook))

    def _run_hooks(self, hooks: tuple[Hook, ...], item: Any) -> None:
        for hook in hooks:
            try:
                hook(item)
            except Exception:
                logger.exception("a message hook raised; the stream goes on")

    # ------------------------------------------------------------------ frames in

    def connection_made(self) -> None:
        """The socket is open: the server speaks first (``Welcome``)."""
        self._set_phase(Phase.AWAITING_WELCOME)

    def receive_text(self, data: bytes) -> Any:
        """Take one text frame; return the typed message (or ``Unhandled``). Never raises."""
        try:
            item: Any = _fast_decode(data)
        except Exception:
            item = decode_server(data)
        return self.received_text(item, data)

    def received_text(self, item: Any, data: bytes) -> Any:
        """The rules for one text frame already decoded (``receive_text``'s second half: the
        connection's hot path decodes a frame itself when :attr:`plain`)."""
        self.messages_received += 1
        if self._trace:
            kind = item.type if type(item) is not m.Unhandled else f"{item.message_type}(Unhandled)"
            text = _excerpt(data)
            wire_logger.debug(
                "<- %s %d B %s", kind, len(data), self.redact(text) if self.redact else text
            )
        steps = self.steps.get(type(item))
        if steps is not None:
            for step in steps:
                step(self, item)
        if self._all_hooks:
            self._run_hooks(self._all_hooks, item)
        return item

    def receive_binary(self, data: bytes) -> bytes:
        """Take one binary frame (agent audio); return it unchanged."""
        self.audio_frames_received += 1
        self.audio_bytes_received += len(data)
        if self._trace:
            self._meter_in(len(data))
        if self._all_hooks:
            self._run_hooks(self._all_hooks, data)
        return data

    def receive_close(self, code: int | None, reason: str) -> None:
        """The server's close frame arrived."""
        self.close_code = code
        self.close_reason = reason
        if self._trace:
            wire_logger.debug("<- close %s %r", code, reason)

    def connection_lost(self) -> None:
        """The socket is gone; nothing more comes in or goes out."""
        if self._garbage is not None:
            self._garbage.flush()
        self._set_phase(Phase.CLOSED)

    # ------------------------------------------------------------------ frames out

    @property
    def settings_frame(self) -> bytes:
        """The ``Settings`` JSON this session sends after ``Welcome``."""
        return self._settings_frame

    def settings_sent(self) -> None:
        """The ``Settings`` frame was written."""
        self.messages_sent += 1
        if self._trace:
            wire_logger.debug("-> Settings %d B %s", len(self._settings_frame), _redacted(self))
        self._set_phase(Phase.AWAITING_APPLIED)

    @property
    def ready(self) -> bool:
        """``SettingsApplied`` arrived and the socket is up."""
        return self.phase is Phase.READY

    def prepare(self, message: m.ClientMessage) -> bytes | None:
        """Encode a client message, applying the session rules; ``None``: nothing to send.

        ``Settings`` is refused (the server accepts it once, and the connection sends it); a
        ``FunctionCallResponse`` without an ``id`` gets the id of the oldest pending call of
        its name.

        Raises:
            SettingsError: a second ``Settings``, or a response without an id that no pending
                call of its name can take.
        """
        if isinstance(message, m.Settings):
            raise SettingsError(
                "type",
                "Settings can only be sent once, when connecting (the server answers a second "
                "one with SETTINGS_ALREADY_APPLIED); open a new connection to change them "
                "wholesale, or use update_prompt/update_speak/update_think/update_listen",
                code="SETTINGS_ALREADY_APPLIED",
            )
        if isinstance(message, m.FunctionCallResponse):
            call_id = message.id if isinstance(message.id, str) else None
            resolved = self.pending.resolve(message.name, call_id)
            if call_id is None:
                if resolved is None:
                    raise SettingsError(
                        "id",
                        f"no pending FunctionCallRequest for function {message.name!r}, so the "
                        "response has no id to answer; pass id=<the request's functions[i].id>",
                    )
                message = m.FunctionCallResponse(
                    id=resolved, name=message.name, content=message.content
                )
        return encode(message)

    def text_sent(self, frame: bytes) -> None:
        """A text frame went out."""
        self.messages_sent += 1
        if self._trace:
            kind = message_type_of(frame) or "text"
            wire_logger.debug("-> %s %d B %s", kind, len(frame), _excerpt(frame))

    def audio_sent(self, size: int) -> None:
        """An audio frame of ``size`` bytes went out."""
        self.audio_frames_sent += 1
        self.audio_bytes_sent += size
        if self._trace:
            self._meter_out(size)

    # ------------------------------------------------------------------ held until ready

    @property
    def held(self) -> int:
        """Frames waiting for ``SettingsApplied``."""
        return len(self._held) if self._held is not None else 0

    def hold(self, is_audio: bool, payload: bytes) -> None:
        """Keep a frame until the session is ready (bounded for audio: oldest dropped first)."""
        if self._held is None:
            self._held = deque()
        self._held.append((is_audio, payload))
        if not is_audio:
            return
        self.held_audio_bytes += len(payload)
        while self.held_audio_bytes > self._max_held_audio:
            for i, (audio, chunk) in enumerate(self._held):
                if audio:
                    del self._held[i]
                    self.held_audio_bytes -= len(chunk)
                    self.dropped_before_ready += 1
                    break
            else:  # pragma: no cover - only text frames left
                break

    def take_held(self) -> tuple[bool, bytes] | None:
        """The oldest held frame, or ``None``; put it back with :meth:`unhold` if not written."""
        if not self._held:
            return None
        is_audio, payload = self._held.popleft()
        if is_audio:
            self.held_audio_bytes -= len(payload)
        return is_audio, payload

    def unhold(self, is_audio: bool, payload: bytes) -> None:
        """Put a frame back at the front of the held queue (its write failed)."""
        if self._held is None:
            self._held = deque()
        self._held.appendleft((is_audio, payload))
        if is_audio:
            self.held_audio_bytes += len(payload)

    def held_frames(self) -> list[tuple[bool, bytes]]:
        """Everything still held, in order (emptied): what a resumed session sends first."""
        frames = list(self._held or ())
        self._held = None
        self.held_audio_bytes = 0
        return frames

    # ------------------------------------------------------------------ internals

    def _set_phase(self, phase: Phase) -> None:
        if self.phase is phase:
            return
        self.phase = phase
        callback = self.on_phase
        if callback is not None:
            callback(phase)

    def _meter_in(self, size: int) -> None:
        if wire_logger.isEnabledFor(TRACE):
            wire_logger.log(TRACE, "<- audio %d B", size)
        if self._audio_in is None:
            self._audio_in = _AudioMeter()
        self._audio_in.add("<-", size)

    def _meter_out(self, size: int) -> None:
        if wire_logger.isEnabledFor(TRACE):
            wire_logger.log(TRACE, "-> audio %d B", size)
        if self._audio_out is None:
            self._audio_out = _AudioMeter()
        self._audio_out.add("->", size)

    def refresh_logging(self) -> None:
        """Re-read whether the wire log is on (cached: the check costs too much per frame)."""
        self._trace = wire_logger.isEnabledFor(logging.DEBUG)
        self.plain = not (self._trace or self._all_hooks)


def _redacted(proto: AgentProtocol) -> str:
    from .recording import redact_settings

    try:
        import msgspec

        data = msgspec.json.decode(proto.settings_frame)
        return _excerpt(encode(redact_settings(data)), 400)
    except Exception:
        return "(not JSON)"


# ---------------------------------------------------------------------- the session rules


def _on_welcome(proto: AgentProtocol, msg: m.Welcome) -> None:
    proto.request_id = msg.request_id or None
    if proto.phase is Phase.AWAITING_WELCOME:
        # The connection writes proto.settings_frame when it sees this phase.
        proto._set_phase(Phase.AWAITING_APPLIED)


def _on_settings_applied(proto: AgentProtocol, msg: m.SettingsApplied) -> None:
    msg.applied_ = proto._settings_frame  # SettingsApplied.settings (the seed API's)
    if proto.phase in (Phase.AWAITING_APPLIED, Phase.AWAITING_WELCOME):
        proto._set_phase(Phase.READY)


def _redact_description(proto: AgentProtocol, msg: m.Error | m.Warning) -> None:
    """A server text that echoes our credential never reaches the app, a log or an error."""
    if proto.redact is not None and msg.description:
        msg.description = proto.redact(msg.description)


def _on_error(proto: AgentProtocol, msg: m.Error) -> None:
    _redact_description(proto, msg)
    proto.last_error = msg
    if proto.phase < Phase.READY and proto.rejection is None:
        proto.rejection = SettingsRejected(
            msg.description or "the server rejected the Settings",
            code=msg.code or None,
            request_id=proto.request_id,
        )
        proto._set_phase(Phase.REJECTED)


def _on_function_call_request(proto: AgentProtocol, msg: m.FunctionCallRequest) -> None:
    for item in msg.functions:
        # client_side omitted (None): possibly ours, so a response by name can find it.
        if item.client_side is not False and item.id:
            proto.pending.add(item.id, item.name)


def _stamp(proto: AgentProtocol, msg: m.UserStartedSpeaking | m.AgentStartedSpeaking) -> None:
    msg.received_ = time.time()  # the seed API's .timestamp


def _on_function_call_cancelled(proto: AgentProtocol, msg: m.FunctionCallCancelled) -> None:
    for item in msg.functions:
        proto.pending.discard(item.id)


class _GarbageLog:
    """Logs a session's undecodable frames: the first few one by one, then a summary every 10 s.

    A server that sends 100,000 garbage frames must not print 100,000 lines.
    """

    FIRST = 5
    PERIOD = 10.0

    def __init__(self) -> None:
        self.logged = 0
        self.suppressed = 0
        self.window_start = -self.PERIOD

    def report(self, msg: m.Unhandled) -> None:
        now = time.monotonic()
        if now - self.window_start >= self.PERIOD:
            self.flush(now)
            self.window_start = now
            self.logged = 0
        if self.logged >= self.FIRST:
            self.suppressed += 1
            return
        self.logged += 1
        logger.warning(
            "undecodable %s frame from the server (%s); delivered as Unhandled%s",
            msg.message_type or "text",
            (msg.reason or "")[:200],
            "" if self.logged < self.FIRST else " (more in the next 10 s are only counted)",
        )

    def flush(self, now: float | None = None) -> None:
        """Log the count of the frames only counted so far (at the end of a window, and when
        a session ends: a burst that stops must not leave its count unsaid)."""
        if not self.suppressed:
            return
        elapsed = (now if now is not None else time.monotonic()) - self.window_start
        logger.warning(
            "%d more undecodable frames from the server in the last %.0f s; each was "
            "delivered as Unhandled",
            self.suppressed,
            elapsed,
        )
        self.suppressed = 0


def _on_unhandled(proto: AgentProtocol, msg: m.Unhandled) -> None:
    proto.unhandled_received += 1
    if msg.reason is not None:
        if proto._garbage is None:  # made on the first bad frame: none for a healthy session
            proto._garbage = _GarbageLog()
        proto._garbage.report(msg)


def _guarded(hook: Hook) -> _Step:
    """A user hook as a table step: called with the item; an exception is logged, not raised."""

    def step(proto: AgentProtocol, item: Any) -> None:
        try:
            hook(item)
        except Exception:
            logger.exception("a message hook raised; the stream goes on")

    return step


#: The session rules, run before any hook (a protocol's table starts as this one, shared).
_RULES_TABLE: dict[type, tuple[_Step, ...]] = {
    m.Welcome: (_on_welcome,),
    m.SettingsApplied: (_on_settings_applied,),
    m.Error: (_on_error,),
    m.Warning: (_redact_description,),
    m.FunctionCallRequest: (_on_function_call_request,),
    m.FunctionCallCancelled: (_on_function_call_cancelled,),
    m.Unhandled: (_on_unhandled,),
    m.UserStartedSpeaking: (_stamp,),
    m.AgentStartedSpeaking: (_stamp,),
}
