"""``python -m deepgram_agent.testing``: run the Voice Agent emulator until Ctrl-C.

``--replay FILE`` plays back the server side of a session recording instead of a script.
``--realistic [--seed N]`` turns on the live server's irregular habits (:class:`Quirks`),
``--accept-any-settings`` skips validation (``AgentEmulator(strict=False)``), and ``-v`` logs
connections, handshakes, Settings accepted or rejected, and closes to standard error.

The first line on standard output is the base WebSocket URL (flushed), e.g.
``ws://127.0.0.1:54321``; the socket path is ``/v1/agent/converse``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from ._quirks import Quirks
from ._replay import Recording
from ._script import Script
from ._server import serve_forever


def build_parser() -> argparse.ArgumentParser:
    """The command-line options (shared with ``deepgram-agent emulate``)."""
    parser = argparse.ArgumentParser(
        prog="python -m deepgram_agent.testing",
        description="Run a local emulator of Deepgram's Voice Agent API.",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="interface to bind (default %(default)s)"
    )
    parser.add_argument("--port", type=int, default=0, help="TCP port (default: a free one)")
    parser.add_argument(
        "--api-key", default=None, help="the only key to accept (default: accept any key)"
    )
    parser.add_argument("--script", default=None, help="a JSON script file (rules, replies, ...)")
    parser.add_argument(
        "--fast-audio", action="store_true", help="send agent audio as fast as possible"
    )
    parser.add_argument(
        "--idle-timeout", type=float, default=10.0, help="seconds of client silence allowed"
    )
    parser.add_argument(
        "--replay",
        default=None,
        metavar="FILE",
        help="play back the server side of a session recording (JSON lines) instead of a script",
    )
    parser.add_argument(
        "--replay-timeout",
        type=float,
        default=10.0,
        help="seconds to wait for a client frame the recording expects (default %(default)s)",
    )
    parser.add_argument(
        "--replay-realtime",
        action="store_true",
        help="keep the recorded timing between server frames",
    )
    parser.add_argument(
        "--realistic",
        action="store_true",
        help="imitate the live server's irregular habits: split latency reports, varied order "
        "within a turn, late AgentAudioDone after a barge-in",
    )
    parser.add_argument(
        "--seed", type=int, default=None, help="make --realistic's random choices repeatable"
    )
    parser.add_argument(
        "--accept-any-settings",
        action="store_true",
        help="accept any Settings JSON object unchecked (to test validate=False)",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="log connections, handshakes, Settings accepted or rejected, closes and every frame",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    args = build_parser().parse_args(argv)
    if args.verbose:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger = logging.getLogger("deepgram_agent.emulator")
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    return serve_from_args(args)


def serve_from_args(args: argparse.Namespace) -> int:
    """Serve with options parsed by :func:`build_parser` (also ``deepgram-agent emulate``)."""
    try:
        script = Script.load(args.script) if args.script else None
    except (OSError, ValueError) as exc:
        print(f"error: cannot load script {args.script!r}: {exc}", file=sys.stderr)
        return 2
    replay = None
    if args.replay:
        try:
            replay = Recording.load(args.replay)
        except (OSError, ValueError) as exc:
            print(f"error: cannot load recording {args.replay!r}: {exc}", file=sys.stderr)
            return 2
    serve_forever(
        host=args.host,
        port=args.port,
        api_key=args.api_key,
        script=script,
        realtime_audio=not args.fast_audio,
        idle_timeout=args.idle_timeout,
        replay=replay,
        replay_timeout=args.replay_timeout,
        replay_realtime=args.replay_realtime,
        quirks=Quirks.realistic(seed=args.seed) if args.realistic else Quirks(seed=args.seed),
        strict=not args.accept_any_settings,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
