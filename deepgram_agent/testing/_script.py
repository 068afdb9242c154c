"""The emulator's scripted "brain": plain data mapping what the user says to what the agent does.

A :class:`Script` holds :class:`Rule` objects tried in order against each user turn's text; the
first match decides the turn, otherwise :attr:`Script.default_reply` answers. A rule may think
(``AgentThinking``, sent only when the Settings have ``"experimental": true``, as on the real
server), take its time (``delay``), call functions (:class:`ToolCall`, one
``FunctionCallRequest`` per group) and reply. Replies are ``str.format`` templates or callables taking a :class:`TurnContext`:

* ``{text}``: what the user said;
* ``{result[NAME]}``: the content returned for function ``NAME`` in this turn (``""`` if none);
* ``{args[NAME]}``: the JSON arguments text the emulator sent for ``NAME``;
* ``{match[0]}``, ``{match[1]}``...: regex groups when the rule is a regex.

Scripts load from JSON (``python -m deepgram_agent.testing --script FILE.json``)::

    {
      "rules": [
        {"match": "weather", "thinking": "Need the weather.",
         "tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}],
         "reply": "Here you go: {result[get_weather]}."},
        {"match": "^(hi|hello)\\\\b", "regex": true, "reply": "Hello there! How can I help?"}
      ],
      "default_reply": "You said: {text}",
      "transcripts": ["what is the weather in Paris"],
      "end_of_thought": true,
      "preamble": "Let me check that."
    }

This module does no I/O: it only decides.
"""

from __future__ import annotations

import json
import re
import string
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Rule", "Script", "ToolCall", "TurnContext", "split_sentences"]


@dataclass(kw_only=True)
class ToolCall:
    """One function the scripted LLM calls.

    Attributes:
        name: the function name; it must be declared in ``agent.think.functions`` (or the
            session ends with ``Error NON_EXISTENT_FUNCTION_CALLED``, as the real server does).
        arguments: a dict (JSON-encoded for the wire) or ready JSON text.
        id: the call id; ``None`` makes a fresh ``call_<hex>`` per call.
        result: for a *server-side* function (declared with an ``endpoint``), the content of
            the ``FunctionCallResponse`` the server sends itself (no network is used). Ignored
            for client-side functions, whose result comes from the client.
        thought_signature: optional, copied to the request entry.
    """

    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict)
    id: str | None = None
    result: str = '{"ok": true}'
    thought_signature: str | None = None

    def arguments_text(self) -> str:
        """The ``arguments`` as JSON text."""
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(self.arguments, separators=(",", ":"))

    def new_id(self) -> str:
        """The id to use for one request of this call."""
        return self.id or f"call_{uuid.uuid4().hex[:16]}"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ToolCall:
        """Build from JSON data (``{"name", "arguments"?, "id"?, "result"?}``)."""
        _known(data, {"name", "arguments", "id", "result", "thought_signature"}, "tool call")
        result = data.get("result", '{"ok": true}')
        if not isinstance(result, str):
            result = json.dumps(result, separators=(",", ":"))
        return cls(
            name=str(data["name"]),
            arguments=data.get("arguments", {}),
            id=data.get("id"),
            result=result,
            thought_signature=data.get("thought_signature"),
        )


@dataclass(kw_only=True)
class TurnContext:
    """What a callable reply (or a template) can use.

    Attributes:
        text: the user's words for this turn.
        results: function name -> content returned in this turn.
        arguments: function name -> arguments text sent in this turn.
        match: the regex match when the rule is a regex, else ``None``.
        state: the session's :class:`~deepgram_agent.testing.SessionState`.
    """

    text: str
    results: dict[str, str] = field(default_factory=dict)
    arguments: dict[str, str] = field(default_factory=dict)
    match: re.Match[str] | None = None
    state: Any = None


Reply = str | Callable[[TurnContext], str]


@dataclass(kw_only=True)
class Rule:
    """If the user's text matches, do this.

    Attributes:
        match: a case-insensitive substring, or a regex when ``regex`` is true
            (``re.search``, case-insensitive). ``""`` matches everything.
        regex: treat ``match`` as a regular expression.
        reply: the spoken reply: a template (see the module docstring) or a callable; ``None``
            uses the script's ``default_reply``; ``""`` says nothing.
        tool_calls: functions to call before replying. Each element is one
            ``FunctionCallRequest``: a :class:`ToolCall` alone, or a list of them sent together
            in one request. Requests are sent one after the other, each waiting for its answers.
        thinking: text for an ``AgentThinking`` event, if any (sent only when the Settings
            have ``"experimental": true``).
        once: use this rule for the first matching turn only.
        delay: seconds the scripted LLM takes before it answers. Every
            ``AgentEmulator(slow_think_interval=...)`` seconds of it (5 s, as on the real
            server) the session sends ``Warning SLOW_THINK_REQUEST`` "We have now waited N
            seconds for a think response."
    """

    match: str = ""
    regex: bool = False
    reply: Reply | None = None
    tool_calls: Sequence[ToolCall | Sequence[ToolCall]] = ()
    thinking: str | None = None
    once: bool = False
    delay: float = 0.0

    def search(self, text: str) -> re.Match[str] | bool | None:
        """Match against ``text``: a regex match, ``True`` for a substring hit, else falsy."""
        if self.regex:
            return re.search(self.match, text, re.IGNORECASE)
        return self.match.casefold() in text.casefold()

    def requests(self) -> list[list[ToolCall]]:
        """The tool calls grouped into requests."""
        out: list[list[ToolCall]] = []
        for item in self.tool_calls:
            out.append([item] if isinstance(item, ToolCall) else list(item))
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Rule:
        """Build from JSON data."""
        _known(data, {"match", "regex", "reply", "tool_calls", "thinking", "once", "delay"}, "rule")
        calls: list[ToolCall | list[ToolCall]] = []
        for item in data.get("tool_calls") or []:
            if isinstance(item, list):
                calls.append([ToolCall.from_dict(x) for x in item])
            else:
                calls.append(ToolCall.from_dict(item))
        reply = data.get("reply")
        return cls(
            match=str(data.get("match", "")),
            regex=bool(data.get("regex", False)),
            reply=None if reply is None else str(reply),
            tool_calls=calls,
            thinking=data.get("thinking"),
            once=bool(data.get("once", False)),
            delay=float(data.get("delay", 0.0)),
        )


@dataclass(kw_only=True)
class Script:
    """The whole scripted behaviour of an emulated agent.

    Attributes:
        rules: tried in order for every user turn.
        default_reply: the reply when no rule matches.
        transcripts: what the user "said" in successive *audio* turns (the emulator has no
            recogniser): each utterance detected by the VAD pops the next one.
        default_transcript: used when ``transcripts`` is exhausted; ``None`` ignores such
            utterances (``UserStartedSpeaking`` is still sent).
        thinking: ``AgentThinking`` text for turns whose rule gives none (``None``: no event).
            Sent only when the Settings have ``"experimental": true`` (docs/protocol.md 9.6).
        end_of_thought: send the undocumented ``EndOfThought`` after the user's text, as the
            real server did in the 2025 recordings; like the real server, only when the
            Settings have ``"experimental": true``.
        preamble: what the agent says before its function calls when the
            ``Quirks.text_before_function_call`` variation happens.
        filler: what the dynamic ``InjectAgentMessage`` (``is_dynamic``) says.
        latency: the figures reported in ``AgentStartedSpeaking``/``LatencyReport`` (seconds).
    """

    rules: list[Rule] = field(default_factory=list)
    default_reply: Reply = "You said: {text}"
    transcripts: list[str] = field(default_factory=list)
    default_transcript: str | None = "Hello."
    thinking: str | None = None
    end_of_thought: bool = True
    filler: str = "One moment, please."
    preamble: str = "Let me check that."
    latency: dict[str, float] = field(
        default_factory=lambda: {"ttt_latency": 0.25, "tts_latency": 0.1, "stt_latency": 0.05}
    )

    def copy(self) -> Script:
        """A copy whose mutable parts (transcripts, once-rules) are independent."""
        return Script(
            rules=list(self.rules),
            default_reply=self.default_reply,
            transcripts=list(self.transcripts),
            default_transcript=self.default_transcript,
            thinking=self.thinking,
            end_of_thought=self.end_of_thought,
            filler=self.filler,
            preamble=self.preamble,
            latency=dict(self.latency),
        )

    def choose(self, text: str) -> tuple[Rule | None, re.Match[str] | None]:
        """The rule for ``text`` (removing it when it is a ``once`` rule) and its regex match."""
        for i, rule in enumerate(self.rules):
            hit = rule.search(text)
            if hit:
                if rule.once:
                    del self.rules[i]
                return rule, hit if isinstance(hit, re.Match) else None
        return None, None

    def next_transcript(self) -> str | None:
        """Pop the next expected transcript for an audio turn."""
        if self.transcripts:
            return self.transcripts.pop(0)
        return self.default_transcript

    def render(self, reply: Reply | None, ctx: TurnContext) -> str:
        """Produce the reply text for one turn."""
        if reply is None:
            reply = self.default_reply
        if callable(reply):
            return str(reply(ctx))
        groups: Sequence[str] = ()
        if ctx.match is not None:
            groups = [ctx.match.group(0), *(g or "" for g in ctx.match.groups())]
        try:
            return _Formatter().vformat(
                reply,
                (),
                {
                    "text": ctx.text,
                    "result": _Lenient(ctx.results),
                    "args": _Lenient(ctx.arguments),
                    "match": _Lenient(dict(enumerate(groups))),
                },
            )
        except (KeyError, IndexError, ValueError, AttributeError):
            return reply

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Script:
        """Build from JSON data (see the module docstring)."""
        _known(
            data,
            {
                "rules",
                "default_reply",
                "transcripts",
                "default_transcript",
                "thinking",
                "end_of_thought",
                "filler",
                "preamble",
                "latency",
            },
            "script",
        )
        script = cls(rules=[Rule.from_dict(r) for r in data.get("rules") or []])
        if "default_reply" in data:
            script.default_reply = str(data["default_reply"])
        script.transcripts = [str(t) for t in data.get("transcripts") or []]
        if "default_transcript" in data:
            dt = data["default_transcript"]
            script.default_transcript = None if dt is None else str(dt)
        script.thinking = data.get("thinking")
        script.end_of_thought = bool(data.get("end_of_thought", True))
        if "filler" in data:
            script.filler = str(data["filler"])
        if "preamble" in data:
            script.preamble = str(data["preamble"])
        if "latency" in data:
            script.latency.update({k: float(v) for k, v in data["latency"].items()})
        return script

    @classmethod
    def from_json(cls, text: str | bytes) -> Script:
        """Parse a JSON script."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("a script must be a JSON object with 'rules', 'default_reply', ...")
        return cls.from_dict(data)

    @classmethod
    def load(cls, path: str | Path) -> Script:
        """Read a JSON script file."""
        return cls.from_json(Path(path).read_text(encoding="utf-8"))


def _known(data: Mapping[str, Any], keys: set[str], what: str) -> None:
    unknown = sorted(set(data) - keys)
    if unknown:
        raise ValueError(
            f"unknown key(s) {', '.join(unknown)} in {what}; accepted: {', '.join(sorted(keys))}"
        )


class _Lenient(dict[Any, str]):
    """A mapping that yields ``""`` for a missing key, so templates never fail on them."""

    def __missing__(self, key: Any) -> str:
        if isinstance(key, str) and key.isdigit():
            return self.get(int(key), "")
        return ""


class _Formatter(string.Formatter):
    def get_value(self, key: int | str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        if isinstance(key, str):
            return kwargs.get(key, "")
        return super().get_value(key, args, kwargs)


_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def split_sentences(text: str) -> list[str]:
    """Split a reply into the sentence-sized pieces the server reports one by one."""
    return [s for s in (p.strip() for p in _SENTENCE.split(text.strip())) if s]
