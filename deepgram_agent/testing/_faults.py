"""Fault injection for one emulated session.

Points in a session are counted in **server frames**: every frame the emulator sends for the
session (JSON text and binary audio alike), not counting frames injected by a fault. ``Welcome``
is frame 1 and ``SettingsApplied`` frame 2 (unless ``delay``/other faults add frames), so
``drop_after=2`` drops the TCP connection right after ``SettingsApplied``. ``0`` means "right
after the handshake, before ``Welcome``".
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Faults"]


@dataclass(frozen=True, kw_only=True)
class Faults:
    """What should go wrong in a session. Every field defaults to "nothing".

    Attributes:
        refuse_status: refuse the WebSocket upgrade with this HTTP status (e.g. 401, 429, 503)
            instead of ``101``. The response carries ``dg-error`` and ``dg-request-id`` headers.
        refuse_body: the body text (and ``dg-error`` header) of a refused upgrade.
        delay_welcome: seconds to wait before sending ``Welcome``.
        delay_settings_applied: extra seconds before ``SettingsApplied``.
        drop_after: after this many server frames, close the TCP connection without a close
            frame (the client sees an abnormal closure, 1006).
        close_after: after this many server frames, close with ``close_code``/``close_reason``.
        close_code: the close code for ``close_after``.
        close_reason: the close reason for ``close_after``.
        garbage_after: after this many frames, send a text frame that is not JSON.
        unknown_type_after: after this many frames, send ``{"type": "EmulatorSurprise", ...}``.
        wrong_types_after: after this many frames, send a ``ConversationText`` whose fields
            have the wrong JSON types.
        huge_frame_after: after this many frames, send one valid ``ConversationText`` of about
            ``huge_frame_bytes`` bytes (aiohttp's default ``max_msg_size`` is 4 MiB).
        huge_frame_bytes: the size of that frame.
        stall_after: after this many frames, stop reading the socket and stop sending for
            ``stall_for`` seconds (the idle timer does not count the stall).
        stall_for: the stall duration in seconds.
        flood_events: right after ``SettingsApplied``, send this many ``ConversationText``
            events as fast as possible (benchmarks).
        flood_audio: and this many 20 ms binary audio frames in the output format.
        invalid_utf8_after: after this many frames, send a ``ConversationText`` text frame whose
            ``content`` string holds bytes that are not UTF-8 (a client must not die on it).
        deep_nesting_after: after this many frames, send a ``ConversationText`` carrying an extra
            key whose value is JSON arrays nested ``deep_nesting_depth`` deep (decoders that
            recurse hit Python's recursion limit at about 1,000).
        deep_nesting_depth: the nesting depth of that frame.
        stop_reading_after: after this many frames, stop reading the socket for good: the
            transport is paused and nothing is read again, so the client's sends back up once
            the TCP buffers are full (about a few MB on loopback). Sending goes on; the idle
            timeout is off. Ends only when the emulator closes (then the TCP connection is
            dropped).
        silent_after: after this many frames, go silent: no more frames, nothing read, and no
            answer to WebSocket pings (the upgrade is made without automatic pongs), while the
            TCP connection stays open. The idle timeout is off. A client needs its own heartbeat
            or receive deadline to notice.
        drop_after_ready: seconds after ``SettingsApplied`` at which the TCP connection is
            dropped without a close frame. Given as one ``Faults`` for every session, every
            session dies shortly after it became ready (a reconnect storm).
    """

    refuse_status: int | None = None
    refuse_body: str = "Emulated handshake refusal."
    delay_welcome: float = 0.0
    delay_settings_applied: float = 0.0
    drop_after: int | None = None
    close_after: int | None = None
    close_code: int = 1011
    close_reason: str = "emulated close"
    garbage_after: int | None = None
    unknown_type_after: int | None = None
    wrong_types_after: int | None = None
    huge_frame_after: int | None = None
    huge_frame_bytes: int = 5 * 1024 * 1024
    stall_after: int | None = None
    stall_for: float = 0.0
    flood_events: int = 0
    flood_audio: int = 0
    invalid_utf8_after: int | None = None
    deep_nesting_after: int | None = None
    deep_nesting_depth: int = 2000
    stop_reading_after: int | None = None
    silent_after: int | None = None
    drop_after_ready: float | None = None

    def __post_init__(self) -> None:
        if self.deep_nesting_depth < 1:
            raise ValueError("deep_nesting_depth must be at least 1")
        if self.drop_after_ready is not None and self.drop_after_ready < 0:
            raise ValueError("drop_after_ready must be a number of seconds >= 0")
