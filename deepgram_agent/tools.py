"""Function calling without boilerplate: Python functions as agent tools.

Register plain or ``async`` functions; their type hints and Google-style docstrings become the
function definitions the LLM sees (``agent.think.functions``), and every client-side
``FunctionCallRequest`` for them is answered automatically::

    tools = Tools()

    @tools.tool
    async def get_weather(city: str, unit: Literal["C", "F"] = "C") -> dict[str, object]:
        \"\"\"Current weather for a city.

        Args:
            city: the city name, e.g. "Paris".
            unit: temperature unit.
        \"\"\"
        return {"city": city, "temperature": 21, "unit": unit}

    async with client.agent.connect(settings, tools=tools) as conn:
        ...  # calls are answered while you iterate (or even if you do not)

What happens on a ``FunctionCallRequest`` (docs/protocol.md 6.6 and 7):

* Each entry with ``client_side: true`` whose name is registered (with ``auto=True``, the
  default) runs in its own task on the connection's loop, so several entries of one request run
  concurrently and the socket keeps being read. A plain (non-``async``) function runs in a
  daemon worker thread, so it never blocks the reader and a hung one never blocks interpreter
  exit.
* The ``arguments`` JSON text is decoded and converted to the annotated types
  (``msgspec.convert``, lenient: ``"3"`` is accepted for an ``int``, a ``null`` for a parameter
  that has a default means "use the default"; unknown keys are ignored).
* Exactly one ``FunctionCallResponse {id, name, content}`` is sent per call: a ``str`` return
  value as is, anything else as JSON (dataclasses, msgspec Structs, TypedDicts, enums, ...).
* A function that raises, runs past its timeout (registry default 30 s, per-tool override), gets
  arguments that are not JSON or fail validation, or returns something that cannot be encoded
  is answered with ``{"error": "..."}`` the LLM can read, and a warning is logged on the
  ``deepgram_agent`` logger. The session goes on.
* ``FunctionCallCancelled`` cancels the matching running calls and their responses are not
  sent. A connection that closes cancels its running calls. (A plain function already running
  in its thread cannot be interrupted: it finishes in the background and its result is dropped.)
* The messages still reach your iterator and ``on(...)`` handlers; the tools only watch.
  ``tools.calls`` keeps a history of :class:`ToolCallRecord`, and ``on_result`` is called with
  each record.

Which requests are answered, precisely:

* a registered name with ``auto=True``: run and answered;
* a name registered with ``auto=False`` (or a server-side function): left to you;
* a name not registered but declared by hand in the ``Settings`` the connection was opened with
  (``agent.think.functions``, any fallback entry): left to you, as in the classic callback
  example (with a stored agent configuration, ``agent`` being an id, every name that is not
  registered is left to you);
* any other name (e.g. a function you added later with ``UpdateThink`` and did not register):
  answered with ``{"error": "unknown function '<name>'"}`` so the LLM is not left waiting. Register
  such a function with ``auto=False`` to answer it yourself.

Entries with ``client_side: false`` (server-side functions) are never answered by the client.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import json
import logging
import re
import threading
import time
import types
import typing
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

import msgspec
from msgspec import UNSET, UnsetType

from . import messages as m
from .exceptions import DeepgramError, SettingsError

if TYPE_CHECKING:
    from ._connection import AgentConnection
    from ._prepare import PreparedSettings

__all__ = [
    "Tools",
    "Tool",
    "ToolCallRecord",
    "tool",
    "function_definition",
    "parse_docstring",
]

logger = logging.getLogger("deepgram_agent")

F = TypeVar("F", bound=Callable[..., Any])
S = TypeVar("S")

#: The default per-call timeout of a registry, in seconds.
DEFAULT_TIMEOUT = 30.0

_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_TOOL_ATTR = "__deepgram_agent_tool__"

Outcome = Literal[
    "ok", "error", "timeout", "invalid_arguments", "unknown_function", "cancelled", "closed"
]


# ----------------------------------------------------------------------------------------------
# Docstrings
# ----------------------------------------------------------------------------------------------

_ARGS_HEADERS = frozenset(
    {"args", "arguments", "parameters", "params", "keyword args", "keyword arguments"}
)
_OTHER_HEADERS = frozenset(
    {
        "returns",
        "return",
        "yields",
        "yield",
        "raises",
        "examples",
        "example",
        "note",
        "notes",
        "attributes",
        "see also",
        "todo",
        "warning",
        "warnings",
        "references",
    }
)
_HEADER_RE = re.compile(r"^([A-Za-z][A-Za-z ]*):\s*$")
_ENTRY_RE = re.compile(r"^\*{0,2}([A-Za-z_][A-Za-z0-9_]*)\s*(?:\([^)]*\))?\s*:\s*(.*)$")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """Split a Google-style docstring into its summary and its parameter descriptions.

    The summary is the first paragraph (lines joined with single spaces). Parameter
    descriptions come from an ``Args:`` (or ``Arguments:``/``Parameters:``) section:
    ``name: text`` or ``name (type): text``, continuation lines indented deeper.

    Returns:
        ``(summary, {parameter: description})``; ``("", {})`` for no docstring.
    """
    if not doc:
        return "", {}
    lines = inspect.cleandoc(doc).splitlines()
    summary: list[str] = []
    for line in lines:
        stripped = line.strip()
        if not stripped:
            if summary:
                break
            continue
        header = _HEADER_RE.match(stripped)
        if header and header.group(1).lower() in _ARGS_HEADERS | _OTHER_HEADERS:
            break
        summary.append(stripped)
    params: dict[str, str] = {}
    i = 0
    while i < len(lines):
        line = lines[i]
        header = _HEADER_RE.match(line.strip())
        if not (header and header.group(1).lower() in _ARGS_HEADERS):
            i += 1
            continue
        base = _indent(line)
        i += 1
        entry_indent: int | None = None
        current: str | None = None
        while i < len(lines):
            line = lines[i]
            if not line.strip():
                i += 1
                continue
            ind = _indent(line)
            if ind <= base:
                break
            if entry_indent is None:
                entry_indent = ind
            match = _ENTRY_RE.match(line.strip())
            if ind <= entry_indent and match:
                current = match.group(1)
                params[current] = match.group(2).strip()
            elif current is not None:
                params[current] = f"{params[current]} {line.strip()}".strip()
            i += 1
    return " ".join(summary), params


# ----------------------------------------------------------------------------------------------
# Schemas
# ----------------------------------------------------------------------------------------------

#: Keys whose value is a schema, a list of schemas, or a mapping of name -> schema.
_SCHEMA_KEYS = frozenset({"items", "additionalProperties", "not", "contains", "propertyNames"})
_SCHEMA_LIST_KEYS = frozenset({"anyOf", "oneOf", "allOf", "prefixItems"})
_SCHEMA_MAP_KEYS = frozenset({"properties", "patternProperties"})
#: Noise for an LLM: titles, and OpenAPI's discriminator (its refs would dangle once inlined).
_DROP_KEYS = frozenset({"title", "discriminator", "$defs"})


def _inline(node: Any, defs: Mapping[str, Any], stack: tuple[str, ...]) -> Any:
    """Return ``node`` with every ``$ref`` replaced by its definition and titles dropped."""
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    ref = node.get("$ref")
    if isinstance(ref, str):
        name = ref.rsplit("/", 1)[-1]
        if name in stack:
            raise TypeError(
                f"the type {name!r} refers to itself; a recursive type cannot be inlined into "
                "a function schema (LLM providers reject $ref): flatten it, or take a dict"
            )
        out.update(_inline(defs[name], defs, (*stack, name)))
    for key, value in node.items():
        if key == "$ref" or key in _DROP_KEYS:
            continue
        if key in _SCHEMA_KEYS:
            out[key] = _inline(value, defs, stack)
        elif key in _SCHEMA_LIST_KEYS and isinstance(value, list):
            out[key] = [_inline(v, defs, stack) for v in value]
        elif key in _SCHEMA_MAP_KEYS and isinstance(value, dict):
            out[key] = {k: _inline(v, defs, stack) for k, v in value.items()}
        else:
            out[key] = value
    values = out.get("enum")
    if isinstance(values, list) and values and "type" not in out:
        # Literal/Enum: some providers (Gemini) want the type next to the enum.
        if all(isinstance(v, str) for v in values):
            out = {"type": "string", **out}
        elif all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            out = {"type": "integer", **out}
    return out


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """``X | None`` -> ``X`` for a parameter whose default is ``None`` (omitted means None)."""
    options = schema.get("anyOf")
    if not isinstance(options, list):
        return schema
    rest = [o for o in options if o != {"type": "null"}]
    if len(rest) == len(options) or not rest:
        return schema
    out = {k: v for k, v in schema.items() if k != "anyOf"}
    if len(rest) == 1 and isinstance(rest[0], dict):
        return {**rest[0], **out}
    return {"anyOf": rest, **out}


def _accepts_none(annotation: Any) -> bool:
    if annotation is Any or annotation is None or annotation is type(None):
        return True
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _accepts_none(typing.get_args(annotation)[0])
    if origin is typing.Union or origin is types.UnionType:
        return any(_accepts_none(a) for a in typing.get_args(annotation))
    if origin is Literal:
        return None in typing.get_args(annotation)
    return False


class _Param(msgspec.Struct, frozen=True):
    name: str
    annotation: Any
    has_default: bool
    default: Any
    positional_only: bool


#: Longest ``arguments`` text a tool is called with; longer ones are answered with an error.
MAX_ARGUMENT_CHARS = 1_000_000


class _Signature:
    """What the registry needs to know about one function's parameters."""

    def __init__(self, fn: Callable[..., Any], label: str) -> None:
        try:
            sig = inspect.signature(fn)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"cannot read the signature of {label}: {exc}") from None
        try:
            hints = typing.get_type_hints(fn, include_extras=True)
        except Exception as exc:
            raise TypeError(
                f"cannot resolve the type hints of {label} ({exc}); define the types it uses "
                "at module level, before the function"
            ) from None
        params: list[_Param] = []
        for p in sig.parameters.values():
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                raise TypeError(
                    f"{label} takes *{p.name}: a tool takes named parameters only (the LLM sends "
                    "a JSON object); spell each parameter out"
                )
            params.append(
                _Param(
                    name=p.name,
                    annotation=hints.get(p.name, Any),
                    has_default=p.default is not p.empty,
                    default=None if p.default is p.empty else p.default,
                    positional_only=p.kind is p.POSITIONAL_ONLY,
                )
            )
        self.params = params
        fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
        for param in params:
            if param.has_default:
                fields.append((param.name, typing.Union[param.annotation, UnsetType], UNSET))  # noqa: UP007
            else:
                fields.append((param.name, param.annotation))
        try:
            self.struct: type[msgspec.Struct] = msgspec.defstruct(
                "_ToolArguments", fields, kw_only=True
            )
        except TypeError as exc:
            raise TypeError(f"cannot build an argument model for {label}: {exc}") from None
        self._label = label

    def schema(self, descriptions: Mapping[str, str]) -> dict[str, Any]:
        """The inlined JSON schema of the parameters object."""
        try:
            (ref,), defs = msgspec.json.schema_components(
                [self.struct], ref_template="#/$defs/{name}"
            )
        except TypeError as exc:
            raise TypeError(
                f"a parameter of {self._label} has a type with no JSON schema ({exc}); use str, "
                "int, float, bool, Literal, Enum, list, dict, TypedDict, dataclass or "
                "msgspec.Struct"
            ) from None
        schema: dict[str, Any] = _inline(ref, defs, ())
        props: dict[str, Any] = schema.setdefault("properties", {})
        for p in self.params:
            prop = props.get(p.name)
            if prop is None:  # pragma: no cover - msgspec always lists every field
                continue
            if p.has_default and p.default is None:
                prop = _without_null(prop)
            elif p.has_default:
                try:
                    prop["default"] = msgspec.to_builtins(p.default)
                except TypeError:
                    pass
            text = descriptions.get(p.name)
            if text:
                prop["description"] = text
            props[p.name] = prop
        if not schema.get("required"):
            schema.pop("required", None)
        return schema

    def bind(self, raw: str) -> tuple[list[Any], dict[str, Any], dict[str, Any]]:
        """Decode and validate the wire ``arguments``.

        Returns:
            ``(positional, keyword, decoded)`` to call the function with, and the decoded
            JSON object.

        Raises:
            ValueError: not a JSON object, or it does not fit the annotations.
        """
        text = raw.strip()
        if len(text) > MAX_ARGUMENT_CHARS:
            raise ValueError(
                f"the arguments are {len(text)} characters long, more than the "
                f"{MAX_ARGUMENT_CHARS} this function accepts"
            )
        try:
            decoded = msgspec.json.decode(text) if text else {}
        except msgspec.DecodeError as exc:
            raise ValueError(f"the arguments are not valid JSON ({exc})") from None
        except RecursionError:
            raise ValueError("the arguments are nested too deeply to decode") from None
        if decoded is None:
            decoded = {}
        if not isinstance(decoded, dict):
            raise ValueError(
                f"the arguments must be a JSON object, not {type(decoded).__name__}"
            ) from None
        data = dict(decoded)
        for p in self.params:
            # LLMs often send null for "not given": the default applies.
            if p.has_default and data.get(p.name, UNSET) is None:
                if not _accepts_none(p.annotation):
                    del data[p.name]
        try:
            obj = msgspec.convert(data, self.struct, strict=False)
        except msgspec.ValidationError as exc:
            raise ValueError(str(exc)) from None
        except RecursionError:
            raise ValueError("the arguments are nested too deeply to convert") from None
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        for p in self.params:
            value = getattr(obj, p.name)
            if value is UNSET:
                continue
            if p.positional_only:
                args.append(value)
            else:
                kwargs[p.name] = value
        return args, kwargs, decoded


def _is_async(fn: Callable[..., Any]) -> bool:
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(fn, "__call__", None)  # noqa: B004 - an instance with async __call__
    return call is not None and inspect.iscoroutinefunction(call)


# ----------------------------------------------------------------------------------------------
# Tool, records
# ----------------------------------------------------------------------------------------------


class Tool:
    """One registered function (see :meth:`Tools.add`).

    Attributes:
        name: the name the LLM calls.
        description: what the LLM reads about it.
        parameters: the JSON schema of its arguments object.
        fn: the Python function, or ``None`` for a server-side function.
        auto: whether calls are answered automatically.
        timeout: seconds a call may take (``None``: the registry's default).
        definition: the wire definition (``messages.FunctionDefinition``).
    """

    __slots__ = (
        "_signature",
        "auto",
        "definition",
        "description",
        "fn",
        "is_async",
        "name",
        "parameters",
        "timeout",
    )

    def __init__(
        self,
        *,
        name: str,
        description: str,
        parameters: dict[str, Any],
        fn: Callable[..., Any] | None,
        auto: bool,
        timeout: float | None,
        definition: m.FunctionDefinition,
        signature: _Signature | None,
    ) -> None:
        self.name = name
        self.description = description
        self.parameters = parameters
        self.fn = fn
        self.auto = auto
        self.timeout = timeout
        self.definition = definition
        self.is_async = fn is not None and _is_async(fn)
        self._signature = signature

    def __repr__(self) -> str:
        kind = "server-side" if self.fn is None else ("async" if self.is_async else "sync")
        return f"<Tool {self.name!r} {kind} auto={self.auto}>"

    @property
    def server_side(self) -> bool:
        """True for a function the server calls (declared with an endpoint)."""
        return self.fn is None


class ToolCallRecord(msgspec.Struct, frozen=True, kw_only=True):
    """What happened to one function call (``tools.calls``, ``on_result``).

    Attributes:
        id: the call id (``FunctionCallRequest.functions[i].id``).
        name: the function name.
        arguments: the decoded arguments (``{}`` when they were not a JSON object).
        raw_arguments: the arguments JSON text as received.
        outcome: ``"ok"``, ``"error"`` (the function raised or returned something that cannot
            be encoded), ``"timeout"``, ``"invalid_arguments"``, ``"unknown_function"``,
            ``"cancelled"`` (``FunctionCallCancelled``; nothing was sent) or ``"closed"`` (the
            connection closed first; nothing was sent).
        result: the function's return value (``None`` unless ``outcome`` is ``"ok"``).
        content: the ``FunctionCallResponse.content`` sent, or ``None`` if nothing was sent.
        error: why the call failed, or ``None``.
        duration: seconds from the request to the response (or to the cancellation).
    """

    id: str
    name: str
    arguments: dict[str, Any]
    raw_arguments: str
    outcome: Outcome
    result: Any = None
    content: str | None = None
    error: str | None = None
    duration: float = 0.0

    @property
    def ok(self) -> bool:
        """True when the function ran and its result was sent."""
        return self.outcome == "ok"


def _error_content(message: str) -> str:
    return msgspec.json.encode({"error": message}).decode()


def _encode_result(value: Any) -> str:
    if isinstance(value, str):
        return value
    return msgspec.json.encode(value).decode()


class _ToolOptions(msgspec.Struct, frozen=True, kw_only=True):
    name: str | None = None
    description: str | None = None
    auto: bool = True
    timeout: float | None = None
    defer_until_eot: bool | None = None


def function_definition(
    fn: Callable[..., Any],
    *,
    name: str | None = None,
    description: str | None = None,
    defer_until_eot: bool | None = None,
) -> m.FunctionDefinition:
    """The wire definition (``agent.think.functions[i]``) of a Python function.

    The description is the docstring's first paragraph; each parameter's description comes from
    its ``Args:`` section; the ``parameters`` JSON schema comes from the type hints (inlined,
    no ``$ref``, no titles). A parameter with a default is not required.

    Raises:
        TypeError: a parameter's type has no JSON schema, or the function takes ``*args``.
        ValueError: the name is not 1-64 letters, digits, ``_`` or ``-``.
    """
    return _build_tool(
        fn, _ToolOptions(name=name, description=description, defer_until_eot=defer_until_eot)
    ).definition


def _label(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ValueError(
            f"invalid function name {name!r}: use 1-64 letters, digits, '_' or '-' (what LLM "
            "providers accept); pass name=... to choose another"
        )


def _build_tool(fn: Callable[..., Any], opts: _ToolOptions) -> Tool:
    if not callable(fn):
        raise TypeError(f"a tool must be a function, not {type(fn).__name__}")
    label = _label(fn)
    name = opts.name or getattr(fn, "__name__", None)
    if not name:
        raise ValueError(f"{label} has no __name__; pass name=...")
    _check_name(name)
    summary, described = parse_docstring(inspect.getdoc(fn))
    description = opts.description if opts.description is not None else summary
    sig = _Signature(fn, label)
    params = sig.schema(described)
    definition = m.FunctionDefinition(name=name, parameters=params)
    if description:
        definition = msgspec.structs.replace(definition, description=description)
    if opts.defer_until_eot is not None:
        definition = msgspec.structs.replace(definition, defer_until_eot=opts.defer_until_eot)
    if opts.timeout is not None and not opts.timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {opts.timeout!r}")
    return Tool(
        name=name,
        description=description,
        parameters=params,
        fn=fn,
        auto=opts.auto,
        timeout=opts.timeout,
        definition=definition,
        signature=sig,
    )


@overload
def tool(fn: F, /) -> F: ...


@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    auto: bool = True,
    timeout: float | None = None,
    defer_until_eot: bool | None = None,
) -> Callable[[F], F]: ...


def tool(
    fn: F | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    auto: bool = True,
    timeout: float | None = None,
    defer_until_eot: bool | None = None,
) -> F | Callable[[F], F]:
    """Mark a function as a tool, to be collected later by ``Tools(fn, ...)``.

    Usable bare (``@tool``) or with options (``@tool(timeout=5)``); the function itself is
    returned unchanged. The options are those of :meth:`Tools.add`.
    """
    opts = _ToolOptions(
        name=name,
        description=description,
        auto=auto,
        timeout=timeout,
        defer_until_eot=defer_until_eot,
    )

    def mark(f: F) -> F:
        _build_tool(f, opts)  # fail at decoration time, not at connect time
        setattr(f, _TOOL_ATTR, opts)
        return f

    return mark(fn) if fn is not None else mark


# ----------------------------------------------------------------------------------------------
# Settings merging
# ----------------------------------------------------------------------------------------------


def _name_of(fn: Any) -> Any:
    if isinstance(fn, Mapping):
        return fn.get("name")
    name = getattr(fn, "name", None)
    return None if name is UNSET else name


def _plain_function(fn: Any) -> Any:
    if isinstance(fn, msgspec.Struct):
        return msgspec.to_builtins(fn)
    to_dict = getattr(fn, "to_dict", None)
    if callable(to_dict):
        try:
            return to_dict()
        except DeepgramError:
            return None
    if isinstance(fn, Mapping):
        return dict(fn)
    return None


# ----------------------------------------------------------------------------------------------
# Dispatch
# ----------------------------------------------------------------------------------------------


class _Call:
    __slots__ = (
        "arguments",
        "content",
        "error",
        "item",
        "outcome",
        "result",
        "sending",
        "started",
        "stop_reason",
        "task",
        "tool",
    )

    def __init__(self, item: m.FunctionCallRequestItem, tool: Tool | None) -> None:
        self.item = item
        self.tool = tool
        self.task: asyncio.Task[None] | None = None
        self.started = time.perf_counter()
        self.sending = False
        self.outcome: Outcome = "cancelled"
        self.result: Any = None
        self.content: str | None = None
        self.error: str | None = None
        self.arguments: dict[str, Any] = {}
        self.stop_reason: Outcome = "cancelled"


def _set_result(fut: asyncio.Future[Any], value: Any) -> None:
    if not fut.done():
        fut.set_result(value)


def _set_exception(fut: asyncio.Future[Any], exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc)


async def _in_thread(fn: Callable[..., Any], args: list[Any], kwargs: dict[str, Any]) -> Any:
    """Run ``fn`` in a daemon thread; the awaiting task can be cancelled or time out at once.

    A daemon thread (rather than the loop's default executor, whose threads are joined at
    interpreter exit) so that a function that never returns cannot keep the process alive.
    """
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[Any] = loop.create_future()
    ctx = contextvars.copy_context()

    def work() -> None:
        try:
            value = ctx.run(fn, *args, **kwargs)
        except BaseException as exc:  # SystemExit & co. too: the call must still be answered
            callback: Callable[..., None] = _set_exception
            payload: Any = (
                exc
                if isinstance(exc, Exception)
                else RuntimeError(f"the function raised {type(exc).__name__}: {exc}")
            )
        else:
            callback, payload = _set_result, value
        try:
            loop.call_soon_threadsafe(callback, fut, payload)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            pass

    name = getattr(fn, "__name__", "tool")
    threading.Thread(target=work, name=f"deepgram-agent-tool-{name}", daemon=True).start()
    return await fut


class _Attachment:
    """The dispatcher of one registry on one connection."""

    def __init__(self, tools: Tools, conn: AgentConnection) -> None:
        self.tools = tools
        self.conn = conn
        self.calls: dict[str, _Call] = {}
        self.closed = False

    def declared_by_hand(self) -> set[str]:
        """Function names declared in the connection's Settings (any think entry)."""
        settings = self.conn.settings
        agent = settings.agent if isinstance(settings, m.Settings) else None
        if not isinstance(agent, m.AgentSettings) or isinstance(agent.think, UnsetType):
            return set()
        entries = agent.think if isinstance(agent.think, list) else [agent.think]
        names: set[str] = set()
        for entry in entries:
            if isinstance(entry.functions, list):
                names.update(f.name for f in entry.functions if isinstance(f.name, str) and f.name)
        return names

    def stored_agent(self) -> bool:
        settings = self.conn.settings
        return isinstance(settings, m.Settings) and isinstance(settings.agent, str)

    # Hooks: they run in the reader, so they only start tasks.

    def on_request(self, msg: m.FunctionCallRequest) -> None:
        if self.closed:
            return
        loop = asyncio.get_running_loop()
        registry = self.tools._tools
        for item in msg.functions:
            found = registry.get(item.name)
            if item.client_side is False or (
                item.client_side is None and found is not None and found.server_side
            ):
                continue  # the server runs it and sends its own FunctionCallResponse
            if found is not None:
                if not found.auto or found.fn is None:
                    continue  # the user answers it
            elif item.name in self.declared_by_hand() or self.stored_agent():
                continue  # declared by hand (or in a stored agent config): the user answers
            if not item.id:
                logger.warning(
                    "deepgram_agent: FunctionCallRequest for %r has no id; it cannot be "
                    "answered automatically",
                    item.name,
                )
                continue
            if item.id in self.calls:
                # Asked again (e.g. by a resumed session) while it still runs: the running
                # call answers it, once, on whichever session is current then.
                continue
            call = _Call(item, found)
            self.calls[item.id] = call
            task = loop.create_task(self._run(call), name=f"deepgram-agent-tool-{item.name}")
            call.task = task
            task.add_done_callback(functools.partial(self._done, call))

    def on_cancelled(self, msg: m.FunctionCallCancelled) -> None:
        for item in msg.functions:
            call = self.calls.get(item.id)
            if call is None or call.task is None or call.sending:
                continue  # unknown, or the response is already on its way
            call.stop_reason = "cancelled"
            call.task.cancel()

    def on_close(self, _error: BaseException | None) -> None:
        self.closed = True
        for call in list(self.calls.values()):
            if call.task is not None and not call.task.done():
                call.stop_reason = "closed"
                call.task.cancel()

    # The call itself.

    async def _run(self, call: _Call) -> None:
        item = call.item
        found = call.tool
        if found is None:
            call.outcome = "unknown_function"
            call.error = f"unknown function {item.name!r}"
            logger.warning(
                "deepgram_agent: the agent called %r, which is neither registered in the tools "
                "nor declared in the Settings; answered with an error",
                item.name,
            )
            call.content = _error_content(call.error)
        else:
            await self._execute(call, found)
        call.sending = True
        content = call.content if call.content is not None else ""
        try:
            await self.conn.send(
                m.FunctionCallResponse(id=item.id, name=item.name, content=content)
            )
        except DeepgramError as exc:
            call.stop_reason = "closed"
            call.outcome = "closed"
            call.content = None
            logger.warning(
                "deepgram_agent: could not send the result of %r (call %s): %s",
                item.name,
                item.id,
                exc,
            )

    async def _execute(self, call: _Call, found: Tool) -> None:
        item = call.item
        sig = found._signature
        fn = found.fn
        assert sig is not None and fn is not None
        try:
            args, kwargs, call.arguments = sig.bind(item.arguments)
        except ValueError as exc:
            call.outcome = "invalid_arguments"
            call.error = f"invalid arguments for {item.name!r}: {exc}"
            self._warn(call, None)
            call.content = _error_content(call.error)
            return
        timeout = found.timeout if found.timeout is not None else self.tools.timeout
        try:
            async with asyncio.timeout(timeout) as deadline:
                if found.is_async:
                    value = await fn(*args, **kwargs)
                else:
                    value = await _in_thread(fn, args, kwargs)
                if inspect.isawaitable(value):
                    value = await value
        except TimeoutError as exc:
            if deadline.expired():
                call.outcome = "timeout"
                call.error = f"{item.name!r} did not finish within {timeout:g} s"
                self._warn(call, None)
            else:
                self._failed(call, exc)
            call.content = _error_content(call.error or "")
            return
        except asyncio.CancelledError as exc:
            task = asyncio.current_task()
            if task is not None and task.cancelling() > 0:
                raise  # a real cancellation: FunctionCallCancelled or the connection closing
            # The tool let a CancelledError of its own escape (e.g. it awaited a task that was
            # cancelled): that is a failure of the tool, and the call still gets its answer.
            self._failed(call, exc)
            call.content = _error_content(call.error or "")
            return
        except Exception as exc:
            self._failed(call, exc)
            call.content = _error_content(call.error or "")
            return
        except (KeyboardInterrupt, SystemExit, GeneratorExit) as exc:
            # Raised by the tool, not by us: it must neither kill the event loop (the blocking
            # facade's loop thread is shared) nor leave the call unanswered.
            self._failed(call, exc)
            call.content = _error_content(call.error or "")
            return
        try:
            call.content = _encode_result(value)
        except (TypeError, msgspec.EncodeError) as exc:
            call.outcome = "error"
            call.error = (
                f"{item.name!r} returned a {type(value).__name__}, which cannot be sent as "
                f"JSON ({exc})"
            )
            self._warn(call, None)
            call.content = _error_content(call.error)
            return
        call.outcome = "ok"
        call.result = value

    def _failed(self, call: _Call, exc: BaseException) -> None:
        call.outcome = "error"
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        call.error = (
            f"{call.item.name!r} failed: {detail}"
            if self.tools.error_details
            else f"{call.item.name!r} failed"
        )
        self._warn(call, exc)

    @staticmethod
    def _warn(call: _Call, exc: BaseException | None) -> None:
        logger.warning(
            "deepgram_agent: function call %s (%s) answered with an error: %s",
            call.item.id,
            call.outcome,
            call.error,
            exc_info=exc,
        )

    def _done(self, call: _Call, task: asyncio.Task[None]) -> None:
        self.calls.pop(call.item.id, None)
        if task.cancelled():
            call.outcome = call.stop_reason
            call.content = None
            call.result = None
            call.error = (
                "cancelled by FunctionCallCancelled"
                if call.stop_reason == "cancelled"
                else "the connection closed before the result was sent"
            )
        elif task.exception() is not None:  # pragma: no cover - _run catches what it expects
            exc = task.exception()
            logger.error("deepgram_agent: function dispatch failed", exc_info=exc)
            call.outcome = "error"
            call.error = repr(exc)
        if not call.arguments:
            try:
                call.arguments = call.item.parsed_arguments()
            except (ValueError, RecursionError):
                call.arguments = {}
        record = ToolCallRecord(
            id=call.item.id,
            name=call.item.name,
            arguments=call.arguments,
            raw_arguments=call.item.arguments,
            outcome=call.outcome,
            result=call.result,
            content=call.content,
            error=call.error,
            duration=time.perf_counter() - call.started,
        )
        self.tools._record(record)


# ----------------------------------------------------------------------------------------------
# The registry
# ----------------------------------------------------------------------------------------------


class Tools:
    """A registry of functions the agent may call, answered automatically.

    Pass it to ``client.agent.connect(settings, tools=tools)``,
    ``client.agent.connect_sync(settings, tools=tools)`` or the callback client's
    ``start(settings, tools=tools)``: the definitions are added to ``agent.think.functions`` and
    every call is answered (see the module documentation for the exact rules).

    Args:
        *functions: functions to register now (plain, or marked with :func:`tool`).
        timeout: default seconds a call may take before it is answered with a timeout error
            (``None``: no limit; a per-tool ``timeout=`` wins).
        on_result: called with each :class:`ToolCallRecord` once the call is over (on the
            connection's event loop: keep it quick; a coroutine function is run as a task).
            For the blocking APIs, do not call blocking SDK methods from it.
        error_details: put the exception text in the error result the LLM reads (``True``);
            ``False`` sends only ``"<name> failed"`` (the full error is logged either way).
        declare: add the definitions to the Settings (``True``). ``False`` for functions
            declared elsewhere, e.g. in a stored agent configuration (``agent`` is an id).
        history: how many :class:`ToolCallRecord` ``calls`` keeps (oldest dropped first).

    Example::

        tools = Tools()

        @tools.tool
        def lookup_order(order_id: str) -> dict[str, str]:
            \"\"\"Look an order up by its number.\"\"\"
            return {"status": "shipped"}
    """

    def __init__(
        self,
        *functions: Callable[..., Any],
        timeout: float | None = DEFAULT_TIMEOUT,
        on_result: Callable[[ToolCallRecord], Any] | None = None,
        error_details: bool = True,
        declare: bool = True,
        history: int = 1000,
    ) -> None:
        if timeout is not None and not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self.timeout = timeout
        self.on_result = on_result
        self.error_details = error_details
        self.declare = declare
        self._tools: dict[str, Tool] = {}
        self._calls: deque[ToolCallRecord] = deque(maxlen=history)
        self._attached: dict[int, _Attachment] = {}
        self._callback_tasks: set[asyncio.Task[Any]] = set()
        for fn in functions:
            opts = getattr(fn, _TOOL_ATTR, None)
            self._register(
                _build_tool(fn, opts if isinstance(opts, _ToolOptions) else _ToolOptions())
            )

    def __repr__(self) -> str:
        return f"<Tools {list(self._tools)}>"

    def __len__(self) -> int:
        return len(self._tools)

    def __iter__(self) -> Iterator[Tool]:
        return iter(list(self._tools.values()))

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __getitem__(self, name: str) -> Tool:
        return self._tools[name]

    # --------------------------------------------------------------------------- registering

    def _register(self, entry: Tool) -> Tool:
        if entry.name in self._tools:
            raise ValueError(
                f"a function named {entry.name!r} is already registered; pass name=... to "
                "register this one under another name"
            )
        self._tools[entry.name] = entry
        return entry

    @overload
    def tool(self, fn: F, /) -> F: ...

    @overload
    def tool(
        self,
        /,
        *,
        name: str | None = None,
        description: str | None = None,
        auto: bool = True,
        timeout: float | None = None,
        defer_until_eot: bool | None = None,
    ) -> Callable[[F], F]: ...

    def tool(
        self,
        fn: F | None = None,
        /,
        *,
        name: str | None = None,
        description: str | None = None,
        auto: bool = True,
        timeout: float | None = None,
        defer_until_eot: bool | None = None,
    ) -> F | Callable[[F], F]:
        """Decorator: register the function (bare ``@tools.tool`` or ``@tools.tool(...)``).

        The function is returned unchanged. Options as in :meth:`add`.
        """

        def register(f: F) -> F:
            self.add(
                f,
                name=name,
                description=description,
                auto=auto,
                timeout=timeout,
                defer_until_eot=defer_until_eot,
            )
            return f

        return register(fn) if fn is not None else register

    def add(
        self,
        fn: Callable[..., Any],
        /,
        *,
        name: str | None = None,
        description: str | None = None,
        auto: bool = True,
        timeout: float | None = None,
        defer_until_eot: bool | None = None,
    ) -> Tool:
        """Register a plain or ``async`` function.

        Args:
            fn: the function. Its parameters are what the LLM passes; their type hints make
                the JSON schema (str, int, float, bool, Literal, Enum, ``X | None``, list,
                dict, TypedDict, dataclass, msgspec.Struct, ``Annotated[..., msgspec.Meta]``).
            name: the name the LLM calls (default: the function's ``__name__``).
            description: what the LLM reads (default: the docstring's first paragraph).
            auto: answer calls automatically (``False``: you answer them yourself; the function
                only provides the definition).
            timeout: seconds a call may take (default: the registry's ``timeout``).
            defer_until_eot: hold calls until the user's turn is confirmed (for irreversible
                actions; docs/protocol.md 5.1.3).

        Returns:
            The registered :class:`Tool`.

        Raises:
            ValueError: the name is taken or invalid.
            TypeError: a parameter type has no JSON schema, or the function takes ``*args``.
        """
        opts = _ToolOptions(
            name=name,
            description=description,
            auto=auto,
            timeout=timeout,
            defer_until_eot=defer_until_eot,
        )
        return self._register(_build_tool(fn, opts))

    def add_server_function(
        self,
        name: str,
        *,
        url: str,
        description: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        method: str = "POST",
        headers: Mapping[str, str] | None = None,
        defer_until_eot: bool | None = None,
    ) -> Tool:
        """Declare a function the *server* calls over HTTP (``endpoint``; docs/protocol.md 5.1.3).

        The client never answers these: the server sends its own ``FunctionCallResponse``.

        Args:
            name: the name the LLM calls.
            url: the endpoint the server calls.
            description: what the LLM reads.
            parameters: the JSON schema of the arguments (default: an empty object).
            method: the HTTP method.
            headers: headers the server sends (e.g. an authorization for your endpoint).
            defer_until_eot: hold calls until the user's turn is confirmed.
        """
        _check_name(name)
        if not url:
            raise ValueError("a server-side function needs url=...")
        endpoint = m.FunctionEndpoint(url=url, method=method)
        if headers:
            endpoint = msgspec.structs.replace(endpoint, headers=dict(headers))
        params = (
            dict(parameters) if parameters is not None else {"type": "object", "properties": {}}
        )
        definition = m.FunctionDefinition(name=name, parameters=params, endpoint=endpoint)
        if description:
            definition = msgspec.structs.replace(definition, description=description)
        if defer_until_eot is not None:
            definition = msgspec.structs.replace(definition, defer_until_eot=defer_until_eot)
        return self._register(
            Tool(
                name=name,
                description=description or "",
                parameters=params,
                fn=None,
                auto=False,
                timeout=None,
                definition=definition,
                signature=None,
            )
        )

    def remove(self, name: str) -> None:
        """Unregister ``name`` (``KeyError`` if it is not registered)."""
        del self._tools[name]

    # --------------------------------------------------------------------------- definitions

    def definitions(self) -> list[m.FunctionDefinition]:
        """The wire definitions of every registered function, in registration order."""
        return [t.definition for t in self._tools.values()]

    def to_dicts(self) -> list[dict[str, Any]]:
        """:meth:`definitions` as plain JSON data."""
        return [msgspec.to_builtins(d) for d in self.definitions()]

    @overload
    def merge_into(self, settings: str) -> str: ...

    @overload
    def merge_into(self, settings: bytes) -> bytes: ...

    @overload
    def merge_into(self, settings: S) -> S: ...

    def merge_into(self, settings: Any) -> Any:
        """Return ``settings`` with the registered definitions added to ``agent.think.functions``.

        Works with ``SettingsOptions``, ``messages.Settings``, a dict and JSON text (``str`` or
        ``bytes``); the result has the same type and the argument is not modified. With a think
        fallback list the definitions go into every entry. Functions already declared by hand
        are kept; the same definition declared again is left as is (so merging twice is
        harmless). The merge itself works on one shape, the Settings JSON.

        Raises:
            SettingsError: there is no ``agent.think`` to put them in; the agent is a stored
                configuration id; or a function declared by hand has the name of a registered
                one but a different definition.
        """
        if not self.declare or not self._tools:
            return settings
        if isinstance(settings, str | bytes | bytearray):
            try:
                data = json.loads(settings)
            except ValueError as exc:
                raise SettingsError("", f"not valid JSON ({exc}); pass a JSON object") from None
            if not isinstance(data, dict):
                raise SettingsError("", f"expected a JSON object, got {type(data).__name__}")
            text = json.dumps(self.merge_wire(data), separators=(",", ":"), ensure_ascii=False)
            return text if isinstance(settings, str) else text.encode()
        if isinstance(settings, m.Settings):
            return msgspec.convert(self.merge_wire(msgspec.to_builtins(settings)), m.Settings)
        if isinstance(settings, Mapping):
            from ._prepare import plain_data

            return self.merge_wire(plain_data(settings))
        if hasattr(settings, "to_dict") and hasattr(settings, "from_dict"):  # SettingsOptions
            return type(settings).from_dict(self.merge_wire(settings.to_dict()))
        raise TypeError(
            "settings must be a SettingsOptions, a deepgram_agent.messages.Settings, a dict or a "
            f"JSON string, not {type(settings).__name__}"
        )

    def merge_into_prepared(self, prepared: PreparedSettings) -> PreparedSettings:
        """The prepared Settings of a connection with the registered definitions added."""
        if not self.declare or not self._tools:
            return prepared
        from ._prepare import PreparedSettings, typed_view
        from ._validate import check_settings

        wire = self.merge_wire(prepared.wire)
        typed = check_settings(wire) if prepared.validated else typed_view(wire)
        return PreparedSettings(wire, typed, prepared.validated)

    def merge_wire(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """The Settings JSON ``data`` with the definitions added (``data`` is not modified)."""
        out = dict(data)
        agent = out.get("agent")
        if isinstance(agent, str):
            raise SettingsError(
                "agent",
                "agent is the id of a stored agent configuration, so function definitions "
                "cannot be added to it: declare them in the stored configuration and create the "
                "registry with Tools(declare=False)",
            )
        if agent is not None and not isinstance(agent, Mapping):
            raise SettingsError("agent", "agent must be an Agent(...), a dict or a stored agent id")
        think = agent.get("think") if agent is not None else None
        if think is None:
            raise SettingsError(
                "agent.think",
                f"function tools ({', '.join(self._tools)}) need a think provider to be declared "
                "in: add agent.think, e.g. Think(provider=Provider(type='open_ai'), "
                "model='gpt-4o-mini') or {'provider': {'type': 'open_ai', 'model': 'gpt-4o-mini'}}",
            )
        assert agent is not None
        new_agent = dict(agent)
        if isinstance(think, list | tuple):
            new_agent["think"] = [
                self._into_think(t, f"agent.think[{i}]") for i, t in enumerate(think)
            ]
        else:
            new_agent["think"] = self._into_think(think, "agent.think")
        out["agent"] = new_agent
        return out

    def _into_think(self, think: Any, path: str) -> dict[str, Any]:
        if not isinstance(think, Mapping):
            raise SettingsError(
                path, f"expected a Think, a dict or a list, not {type(think).__name__}"
            )
        out = dict(think)
        out["functions"] = self._merged(think.get("functions"), path)
        return out

    def _merged(self, existing: Any, path: str) -> list[Any]:
        current = list(existing) if existing is not None else []
        by_name: dict[Any, tuple[int, Any]] = {_name_of(f): (i, f) for i, f in enumerate(current)}
        out = list(current)
        for entry in self._tools.values():
            plain = msgspec.to_builtins(entry.definition)
            if entry.name in by_name:
                index, declared = by_name[entry.name]
                if _plain_function(declared) == plain:
                    continue  # merged before: nothing to add
                raise SettingsError(
                    f"{path}.functions[{index}].name",
                    f"a function named {entry.name!r} is declared in the Settings and also "
                    "registered in the tools; remove one of them (or register it under another "
                    "name with name=...)",
                )
            out.append(plain)
        return out

    # --------------------------------------------------------------------------- dispatching

    def attach(self, conn: AgentConnection) -> None:
        """Answer this registry's calls on ``conn`` (done for you by ``connect(tools=...)``).

        Installs reader hooks for ``FunctionCallRequest`` and ``FunctionCallCancelled`` and a
        close hook; call it before the connection is started. Attaching twice does nothing.
        """
        key = id(conn)
        if key in self._attached and self._attached[key].conn is conn:
            return
        attachment = _Attachment(self, conn)
        self._attached[key] = attachment
        conn.add_hook(m.FunctionCallRequest, attachment.on_request)
        conn.add_hook(m.FunctionCallCancelled, attachment.on_cancelled)

        def closed(error: BaseException | None) -> None:
            attachment.on_close(error)
            if self._attached.get(key) is attachment:
                del self._attached[key]

        conn.add_close_hook(closed)

    @property
    def calls(self) -> list[ToolCallRecord]:
        """Finished calls, oldest first (at most ``history`` of them)."""
        return list(self._calls)

    def running(self) -> list[str]:
        """Ids of the calls running right now, on every attached connection."""
        return [cid for a in self._attached.values() for cid in a.calls]

    def _record(self, record: ToolCallRecord) -> None:
        self._calls.append(record)
        callback = self.on_result
        if callback is None:
            return
        try:
            outcome = callback(record)
        except Exception:
            logger.exception("deepgram_agent: the tools' on_result callback raised")
            return
        if inspect.isawaitable(outcome):
            task = asyncio.ensure_future(_guarded(outcome))
            self._callback_tasks.add(task)
            task.add_done_callback(self._callback_tasks.discard)


async def _guarded(aw: Awaitable[Any]) -> None:
    try:
        await aw
    except Exception:
        logger.exception("deepgram_agent: the tools' on_result callback raised")
