"""Function tools: schemas from type hints, settings merging, automatic dispatch.

Dispatch tests run real conversations against the emulator over loopback: the scripted brain
calls the registered functions and the responses are inspected where the server sees them.
"""

from __future__ import annotations

import ast
import asyncio
import dataclasses
import enum
import json
import logging
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal, TypedDict

import msgspec
import pytest

from deepgram_agent import FunctionCallResponse, SettingsError
from deepgram_agent import messages as m
from deepgram_agent._validate import check_settings
from deepgram_agent.events import AgentWebSocketEvents
from deepgram_agent.options import (
    Agent,
    Function,
    Provider,
    SettingsOptions,
    Think,
    coerce_settings,
)
from deepgram_agent.testing import AgentEmulator, Rule, Script, ToolCall
from deepgram_agent.tools import (
    ToolCallRecord,
    Tools,
    function_definition,
    parse_docstring,
    tool,
)

from .conftest import PLAIN_SETTINGS, client_for, collect_until, scaled, until

ROOT = Path(__file__).resolve().parent.parent
KEY = "tools-test-key"

BASE: dict[str, Any] = PLAIN_SETTINGS


def settings_with(functions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(json.dumps(BASE))
    if functions is not None:
        data["agent"]["think"]["functions"] = functions
    return data


# ==============================================================================================
# Schemas
# ==============================================================================================


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Priority(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Address(TypedDict):
    street: str
    zip: int


@dataclasses.dataclass
class Point:
    """A point on the map."""

    x: float
    y: float = 0.0


class Item(msgspec.Struct):
    sku: str
    qty: int = 1


class Node(msgspec.Struct):
    children: list[Node] = []


def params_of(fn: Any) -> dict[str, Any]:
    definition = function_definition(fn)
    assert isinstance(definition.parameters, dict)
    return definition.parameters


def only_property(fn: Any) -> tuple[dict[str, Any], list[str]]:
    params = params_of(fn)
    assert params["type"] == "object"
    (prop,) = params["properties"].values()
    return prop, params.get("required", [])


def f_str(a: str) -> None: ...
def f_int(a: int) -> None: ...
def f_float(a: float) -> None: ...
def f_bool(a: bool) -> None: ...
def f_literal(a: Literal["x", "y"]) -> None: ...
def f_literal_int(a: Literal[1, 2]) -> None: ...
def f_enum(a: Color) -> None: ...
def f_int_enum(a: Priority) -> None: ...
def f_optional_default_none(a: int | None = None) -> None: ...
def f_optional_required(a: int | None) -> None: ...
def f_default(a: int = 3) -> None: ...
def f_list(a: list[str]) -> None: ...
def f_dict(a: dict[str, float]) -> None: ...
def f_typeddict(a: Address) -> None: ...
def f_dataclass(a: Point) -> None: ...
def f_struct_list(a: list[Item]) -> None: ...
def f_annotated(a: Annotated[int, msgspec.Meta(ge=1, le=5, description="Stars.")]) -> None: ...
def f_untyped(a) -> None: ...  # type: ignore[no-untyped-def]


@pytest.mark.parametrize(
    ("fn", "expected", "required"),
    [
        (f_str, {"type": "string"}, ["a"]),
        (f_int, {"type": "integer"}, ["a"]),
        (f_float, {"type": "number"}, ["a"]),
        (f_bool, {"type": "boolean"}, ["a"]),
        (f_literal, {"type": "string", "enum": ["x", "y"]}, ["a"]),
        (f_literal_int, {"type": "integer", "enum": [1, 2]}, ["a"]),
        (f_enum, {"type": "string", "enum": ["green", "red"]}, ["a"]),
        (f_int_enum, {"type": "integer", "enum": [1, 2]}, ["a"]),
        (f_optional_default_none, {"type": "integer"}, []),
        (f_optional_required, {"anyOf": [{"type": "integer"}, {"type": "null"}]}, ["a"]),
        (f_default, {"type": "integer", "default": 3}, []),
        (f_list, {"type": "array", "items": {"type": "string"}}, ["a"]),
        (f_dict, {"type": "object", "additionalProperties": {"type": "number"}}, ["a"]),
        (
            f_typeddict,
            {
                "type": "object",
                "properties": {"street": {"type": "string"}, "zip": {"type": "integer"}},
                "required": ["street", "zip"],
            },
            ["a"],
        ),
        (
            f_dataclass,
            {
                "description": "A point on the map.",
                "type": "object",
                "properties": {"x": {"type": "number"}, "y": {"type": "number", "default": 0.0}},
                "required": ["x"],
            },
            ["a"],
        ),
        (
            f_struct_list,
            {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "sku": {"type": "string"},
                        "qty": {"type": "integer", "default": 1},
                    },
                    "required": ["sku"],
                },
            },
            ["a"],
        ),
        (
            f_annotated,
            {"type": "integer", "minimum": 1, "maximum": 5, "description": "Stars."},
            ["a"],
        ),
        (f_untyped, {}, ["a"]),
    ],
)
def test_schema_per_annotation(fn: Any, expected: dict[str, Any], required: list[str]) -> None:
    prop, req = only_property(fn)
    assert prop == expected
    assert req == required
    text = json.dumps(params_of(fn))
    assert "$ref" not in text and "$defs" not in text and '"title"' not in text


def test_schema_of_a_function_without_parameters() -> None:
    def ping() -> str:
        return "pong"

    definition = function_definition(ping)
    assert msgspec.to_builtins(definition) == {
        "name": "ping",
        "parameters": {"type": "object", "properties": {}},
    }


def test_docstring_summary_and_google_args() -> None:
    def book(city: str, nights: int = 1, *, breakfast: bool = False) -> str:
        """Book a hotel room
        in a city.

        Only for cities we have partners in.

        Args:
            city: where to stay; spelled
                as the user said it.
            nights (int): how many nights.
            breakfast: include breakfast.

        Returns:
            A confirmation code.
        """
        return "ok"

    definition = function_definition(book)
    assert definition.description == "Book a hotel room in a city."
    assert definition.parameters == {
        "type": "object",
        "properties": {
            "city": {
                "type": "string",
                "description": "where to stay; spelled as the user said it.",
            },
            "nights": {"type": "integer", "default": 1, "description": "how many nights."},
            "breakfast": {"type": "boolean", "default": False, "description": "include breakfast."},
        },
        "required": ["city"],
    }
    assert parse_docstring(None) == ("", {})
    assert parse_docstring("Summary only.") == ("Summary only.", {})


def test_overrides_and_options() -> None:
    def fn(x: str) -> str:
        """Ignored summary."""
        return x

    definition = function_definition(
        fn, name="renamed-fn", description="Custom.", defer_until_eot=True
    )
    assert definition.name == "renamed-fn"
    assert definition.description == "Custom."
    assert definition.defer_until_eot is True


def test_registration_errors_are_clear() -> None:
    tools = Tools()

    @tools.tool
    def dup(x: int) -> int:
        return x

    with pytest.raises(ValueError, match="already registered"):
        tools.add(dup)
    tools.add(dup, name="dup2")
    assert [t.name for t in tools] == ["dup", "dup2"]

    def star(*args: int) -> None: ...

    with pytest.raises(TypeError, match="named parameters only"):
        tools.add(star)

    class Opaque:
        pass

    def weird(x: Opaque) -> None: ...

    with pytest.raises(TypeError, match="weird"):
        tools.add(weird)

    def recursive(node: Node) -> None: ...

    with pytest.raises(TypeError, match="refers to itself"):
        tools.add(recursive)

    with pytest.raises(ValueError, match="invalid function name"):
        tools.add(dup, name="has space")
    with pytest.raises(ValueError, match="timeout"):
        tools.add(dup, name="dup3", timeout=0)


def test_module_level_tool_decorator_and_constructor() -> None:
    @tool(timeout=2, auto=False)
    def marked(x: int) -> int:
        """Marked for later."""
        return x

    @tool
    def bare(x: int) -> int:
        return x

    assert marked(3) == 3  # the function itself is returned
    tools = Tools(marked, bare)
    assert tools["marked"].timeout == 2 and tools["marked"].auto is False
    assert tools["bare"].auto is True
    assert "bare" in tools and len(tools) == 2


def test_server_function_definition() -> None:
    tools = Tools()
    tools.add_server_function(
        "open_ticket",
        url="https://example.com/tickets",
        description="Open a support ticket.",
        parameters={"type": "object", "properties": {"topic": {"type": "string"}}},
        headers={"authorization": "Bearer x"},
    )
    assert tools.to_dicts() == [
        {
            "name": "open_ticket",
            "description": "Open a support ticket.",
            "parameters": {"type": "object", "properties": {"topic": {"type": "string"}}},
            "endpoint": {
                "url": "https://example.com/tickets",
                "method": "POST",
                "headers": {"authorization": "Bearer x"},
            },
        }
    ]
    assert tools["open_ticket"].server_side


# ==============================================================================================
# Merging into settings
# ==============================================================================================


def weather_tools() -> Tools:
    tools = Tools()

    @tools.tool
    def get_weather(city: str) -> str:
        """Weather for a city."""
        return "sunny"

    return tools


WEATHER_DEF = {
    "name": "get_weather",
    "description": "Weather for a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
HAND = {"name": "set_reminder", "description": "Set a reminder."}


def sent_functions(settings: Any) -> Any:
    _typed, wire = coerce_settings(settings)
    think = wire["agent"]["think"]
    if isinstance(think, list):
        return [t.get("functions") for t in think]
    return think.get("functions")


def test_merge_into_dict_keeps_hand_declared_and_does_not_mutate() -> None:
    tools = weather_tools()
    original = settings_with([HAND])
    snapshot = json.dumps(original)
    merged = tools.merge_into(original)
    assert json.dumps(original) == snapshot
    assert sent_functions(merged) == [HAND, WEATHER_DEF]
    check_settings(merged)
    # merging twice is harmless
    assert sent_functions(tools.merge_into(merged)) == [HAND, WEATHER_DEF]


def test_merge_into_json_text_and_bytes() -> None:
    tools = weather_tools()
    text = tools.merge_into(json.dumps(settings_with()))
    assert isinstance(text, str)
    assert sent_functions(text) == [WEATHER_DEF]
    raw = tools.merge_into(json.dumps(settings_with()).encode())
    assert isinstance(raw, bytes)
    assert sent_functions(raw) == [WEATHER_DEF]


def test_merge_into_messages_settings() -> None:
    tools = weather_tools()
    typed = check_settings(settings_with())
    merged = tools.merge_into(typed)
    assert isinstance(merged, m.Settings)
    assert sent_functions(merged) == [WEATHER_DEF]
    assert isinstance(typed.agent, m.AgentSettings)
    assert isinstance(typed.agent.think, m.ThinkSettings)
    assert typed.agent.think.functions is msgspec.UNSET  # the original is untouched


def test_merge_into_settings_options_both_spellings() -> None:
    tools = weather_tools()
    hand = Function(name="set_reminder", description="Set a reminder.")
    nested = SettingsOptions(
        agent=Agent(
            think=Think(provider=Provider(type="open_ai"), model="gpt-4o-mini", functions=[hand])
        )
    )
    merged = tools.merge_into(nested)
    assert isinstance(merged, SettingsOptions)
    assert sent_functions(merged) == [HAND, WEATHER_DEF]
    assert sent_functions(nested) == [HAND]  # the original is untouched
    shortcut = SettingsOptions(think=Think(provider=Provider(type="open_ai"), model="gpt-4o-mini"))
    assert sent_functions(tools.merge_into(shortcut)) == [WEATHER_DEF]


def test_merge_into_every_fallback_entry() -> None:
    tools = weather_tools()
    data = settings_with()
    data["agent"]["think"] = [
        {"provider": {"type": "open_ai", "model": "gpt-4o-mini"}, "functions": [HAND]},
        {"provider": {"type": "anthropic", "model": "claude-haiku-4-5"}},
    ]
    assert sent_functions(tools.merge_into(data)) == [[HAND, WEATHER_DEF], [WEATHER_DEF]]


def test_merge_errors() -> None:
    tools = weather_tools()
    no_think = settings_with()
    del no_think["agent"]["think"]
    with pytest.raises(SettingsError, match="think provider") as info:
        tools.merge_into(no_think)
    assert info.value.path == "agent.think"
    with pytest.raises(SettingsError, match="think provider"):
        tools.merge_into(SettingsOptions())
    clash = settings_with([{"name": "get_weather", "description": "Mine."}])
    with pytest.raises(SettingsError, match="declared in the Settings and also registered") as info:
        tools.merge_into(clash)
    assert info.value.path == "agent.think.functions[0].name"
    stored = settings_with()
    stored["agent"] = "5a2a1c6e-5bcb-4b36-8f0a-4f4b3c1e2d11"
    with pytest.raises(SettingsError, match="declare=False"):
        tools.merge_into(stored)
    silent = Tools(declare=False)
    silent.add(lambda city: city, name="get_weather")
    assert silent.merge_into(stored) is stored


# ==============================================================================================
# Dispatch against the emulator
# ==============================================================================================


class Recorder:
    """on_result callback collecting records, with bounded waits (async tests)."""

    def __init__(self) -> None:
        self.records: list[ToolCallRecord] = []
        self._changed = asyncio.Event()

    def __call__(self, record: ToolCallRecord) -> None:
        self.records.append(record)
        self._changed.set()

    async def wait_for(self, call_id: str) -> ToolCallRecord:
        async with asyncio.timeout(scaled(10)):
            while True:
                for record in self.records:
                    if record.id == call_id:
                        return record
                self._changed.clear()
                await self._changed.wait()


def audio_done(msg: Any) -> bool:
    return isinstance(msg, m.AgentAudioDone)


def assistant_text(msgs: list[Any]) -> str:
    return " ".join(
        x.content for x in msgs if isinstance(x, m.ConversationText) and x.role == "assistant"
    )


def response_for(session: Any, call_id: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [
        r for r in session.received_json("FunctionCallResponse") if r.get("id") == call_id
    ]
    assert len(found) == 1, session.received_json("FunctionCallResponse")
    return found[0]


CONVERSATION = Script(
    rules=[
        Rule(
            match="weather and time",
            tool_calls=[
                [
                    ToolCall(name="get_weather", id="call_w", arguments={"city": "Paris"}),
                    ToolCall(name="get_time", id="call_t", arguments={"zone": "CET"}),
                ]
            ],
            reply="Weather {result[get_weather]} and time {result[get_time]}",
        ),
        Rule(
            match="order",
            tool_calls=[ToolCall(name="lookup_order", id="call_o", arguments={"order_id": "4417"})],
            reply="Your order: {result[lookup_order]}",
        ),
    ]
)


@dataclasses.dataclass
class OrderStatus:
    order_id: str
    status: Literal["shipped", "pending"]


@pytest.mark.anyio
async def test_conversation_runs_sync_and_async_tools_concurrently() -> None:
    tools = Tools()
    time_started = threading.Event()
    weather_threads: list[str] = []

    @tools.tool
    def get_weather(city: str) -> dict[str, Any]:
        """Weather for a city."""
        weather_threads.append(threading.current_thread().name)
        # Only returns once get_time is running: proves the two calls run concurrently.
        assert time_started.wait(scaled(5))
        return {"city": city, "sky": "clear"}

    @tools.tool
    async def get_time(zone: str) -> str:
        """Time in a zone."""
        time_started.set()
        return f"10:30 {zone}"

    @tools.tool
    async def lookup_order(order_id: str) -> OrderStatus:
        """Look an order up."""
        return OrderStatus(order_id=order_id, status="shipped")

    async with AgentEmulator(api_key=KEY, realtime_audio=False, script=CONVERSATION) as emu:
        client = client_for(emu)
        async with client.agent.connect(BASE, tools=tools) as conn:
            session = await emu.wait_for_session()
            # The generated definitions passed the emulator's strict Settings validation.
            assert session.settings is not None
            assert session.settings["agent"]["think"]["functions"] == tools.to_dicts()

            await conn.inject_user_message("weather and time please")
            first = await collect_until(conn, audio_done)
            requests = [x for x in first if isinstance(x, m.FunctionCallRequest)]
            assert [[f.id for f in r.functions] for r in requests] == [["call_w", "call_t"]]
            assert response_for(session, "call_w") == {
                "type": "FunctionCallResponse",
                "id": "call_w",
                "name": "get_weather",
                "content": '{"city":"Paris","sky":"clear"}',
            }
            assert response_for(session, "call_t")["content"] == "10:30 CET"
            assert assistant_text(first) == (
                'Weather {"city":"Paris","sky":"clear"} and time 10:30 CET'
            )
            assert weather_threads and weather_threads[0].startswith("deepgram-agent-tool-")

            await conn.inject_user_message("where is my order")
            second = await collect_until(conn, audio_done)
            expected = '{"order_id":"4417","status":"shipped"}'
            assert response_for(session, "call_o")["content"] == expected
            assert assistant_text(second) == f"Your order: {expected}"
            assert conn.pending_function_calls == {}

    by_id = {r.id: r for r in tools.calls}
    assert set(by_id) == {"call_w", "call_t", "call_o"}
    assert all(r.ok and r.error is None for r in by_id.values())
    assert by_id["call_w"].arguments == {"city": "Paris"}
    assert by_id["call_w"].result == {"city": "Paris", "sky": "clear"}
    assert by_id["call_o"].result == OrderStatus(order_id="4417", status="shipped")
    assert by_id["call_t"].duration >= 0


FAILURES = Script(
    rules=[
        Rule(
            match="explode",
            tool_calls=[ToolCall(name="explode", id="call_x")],
            reply="E {result[explode]}",
        ),
        Rule(
            match="hang", tool_calls=[ToolCall(name="hang", id="call_h")], reply="H {result[hang]}"
        ),
        Rule(
            match="garbled",
            tool_calls=[ToolCall(name="add", id="call_g", arguments="{not json")],
            reply="G {result[add]}",
        ),
        Rule(
            match="mistyped",
            tool_calls=[ToolCall(name="add", id="call_v", arguments={"a": "seven", "b": 1})],
            reply="V {result[add]}",
        ),
        Rule(
            match="lenient",
            tool_calls=[ToolCall(name="add", id="call_l", arguments={"a": "2", "b": None})],
            reply="L {result[add]}",
        ),
        Rule(match="wait", tool_calls=[ToolCall(name="wait_forever", id="call_c")], reply="never"),
        Rule(match="unencodable", tool_calls=[ToolCall(name="opaque", id="call_e")], reply="O"),
    ]
)


@pytest.mark.anyio
async def test_failures_become_error_results_and_the_session_survives(
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder = Recorder()
    tools = Tools(on_result=recorder)
    wait_started = asyncio.Event()
    wait_cancelled = asyncio.Event()

    @tools.tool
    def explode() -> str:
        """Always fails."""
        raise RuntimeError("kaboom")

    @tools.tool(timeout=0.2)
    async def hang() -> str:
        """Never finishes."""
        await asyncio.Event().wait()
        return "unreachable"

    @tools.tool
    def add(a: int, b: int = 10) -> int:
        """Add two numbers."""
        return a + b

    @tools.tool
    async def wait_forever() -> str:
        """Waits until cancelled."""
        wait_started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            wait_cancelled.set()
            raise
        return "unreachable"

    @tools.tool
    def opaque() -> object:
        """Returns something that is not JSON."""
        return object()

    caplog.set_level(logging.WARNING, logger="deepgram_agent")
    async with AgentEmulator(api_key=KEY, realtime_audio=False, script=FAILURES) as emu:
        client = client_for(emu)
        async with client.agent.connect(BASE, tools=tools) as conn:
            session = await emu.wait_for_session()

            async def turn(text: str, call_id: str) -> tuple[dict[str, Any], ToolCallRecord]:
                await conn.inject_user_message(text)
                await collect_until(conn, audio_done)
                record = await recorder.wait_for(call_id)
                content = json.loads(response_for(session, call_id)["content"])
                return content, record

            content, record = await turn("explode now", "call_x")
            assert content == {"error": "'explode' failed: RuntimeError: kaboom"}
            assert record.outcome == "error" and record.content == json.dumps(
                content, separators=(",", ":")
            )

            content, record = await turn("hang around", "call_h")
            assert content == {"error": "'hang' did not finish within 0.2 s"}
            assert record.outcome == "timeout"

            content, record = await turn("garbled args", "call_g")
            assert record.outcome == "invalid_arguments"
            assert content["error"].startswith(
                "invalid arguments for 'add': the arguments are not valid JSON"
            )

            content, record = await turn("mistyped args", "call_v")
            assert record.outcome == "invalid_arguments"
            assert content == {
                "error": "invalid arguments for 'add': Expected `int`, got `str` - at `$.a`"
            }

            # "2" is accepted for an int; null for a parameter with a default means the default.
            await conn.inject_user_message("lenient args")
            await collect_until(conn, audio_done)
            assert response_for(session, "call_l")["content"] == "12"

            content, record = await turn("unencodable result", "call_e")
            assert record.outcome == "error" and "cannot be sent as JSON" in content["error"]

            # Unknown name: neither registered nor declared (pushed as the server would).
            # Entries the client must not answer ride along: a server-side one and one
            # without an id (logged, since it cannot be answered).
            await session.send(
                m.FunctionCallRequest(
                    functions=[
                        m.FunctionCallRequestItem(id="call_srv", name="add", client_side=False),
                        m.FunctionCallRequestItem(id="", name="add", arguments="{}"),
                        m.FunctionCallRequestItem(id="call_u", name="mystery", arguments="{}"),
                    ]
                )
            )
            record = await recorder.wait_for("call_u")
            assert record.outcome == "unknown_function"
            await session.wait_for_received("FunctionCallResponse", count=7, timeout=scaled(5))
            assert json.loads(response_for(session, "call_u")["content"]) == {
                "error": "unknown function 'mystery'"
            }

            # Cancelled: the user speaks again while the call runs -> FunctionCallCancelled.
            await conn.inject_user_message("wait for it")
            async with asyncio.timeout(scaled(10)):
                await wait_started.wait()
            await conn.inject_user_message("never mind, hello")
            after = await collect_until(conn, audio_done)
            cancelled = [x for x in after if isinstance(x, m.FunctionCallCancelled)]
            assert [f.id for f in cancelled[0].functions] == ["call_c"]
            record = await recorder.wait_for("call_c")
            assert record.outcome == "cancelled" and record.content is None
            assert wait_cancelled.is_set()
            assert assistant_text(after) == "You said: never mind, hello"

            # The session is alive and well.
            await conn.inject_user_message("still there?")
            last = await collect_until(conn, audio_done)
            assert assistant_text(last) == "You said: still there?"
            assert not conn.closed

        ids = [r["id"] for r in session.received_json("FunctionCallResponse")]
        assert "call_c" not in ids
        assert len(ids) == len(set(ids)) == 7  # exactly one response per answered call
        assert session.state.error is None

    warned = [r for r in caplog.records if r.levelno == logging.WARNING]
    text = "\n".join(r.getMessage() for r in warned)
    for call_id in ("call_x", "call_h", "call_g", "call_v", "call_e"):
        assert call_id in text
    assert "mystery" in text
    assert "has no id" in text


@pytest.mark.anyio
async def test_hand_declared_and_manual_functions_are_left_to_the_user() -> None:
    tools = Tools()

    @tools.tool(auto=False)
    def manual(x: int) -> int:
        """Answered by hand."""
        return x

    script = Script(
        rules=[
            Rule(
                match="manual",
                tool_calls=[ToolCall(name="manual", id="call_m", arguments={"x": 1})],
                reply="M {result[manual]}",
            ),
            Rule(
                match="hand",
                tool_calls=[ToolCall(name="set_reminder", id="call_r")],
                reply="R {result[set_reminder]}",
            ),
        ]
    )
    async with AgentEmulator(api_key=KEY, realtime_audio=False, script=script) as emu:
        client = client_for(emu)
        async with client.agent.connect(settings_with([HAND]), tools=tools) as conn:
            session = await emu.wait_for_session()
            for text, name, answer in (
                ("manual one", "manual", "41"),
                ("by hand", "set_reminder", "ok"),
            ):
                await conn.inject_user_message(text)
                msgs = await collect_until(conn, lambda x: isinstance(x, m.FunctionCallRequest))
                request = msgs[-1]
                assert request.functions[0].name == name
                assert conn.pending_function_calls == {request.functions[0].id: name}
                # Nobody answered for us.
                answered = session.received_json("FunctionCallResponse")
                assert all(r["name"] != name for r in answered)
                await conn.send_function_call_response(name=name, content=answer)
                done = await collect_until(conn, audio_done)
                assert answer in assistant_text(done)
    assert tools.calls == []


@pytest.mark.anyio
async def test_a_tool_leaking_its_own_cancelled_error_still_gets_an_answer() -> None:
    """A tool whose own helper's CancelledError escapes is still answered.

    Broke: such a tool was taken for a cancelled call and never answered, so the agent waited
    for a FunctionCallResponse that never came.
    """
    tools = Tools(timeout=5)

    @tools.tool
    async def get_time() -> str:
        """Current time."""
        helper = asyncio.ensure_future(asyncio.sleep(10))
        helper.cancel()
        await helper  # raises CancelledError inside the tool, not a cancellation of the call
        return "never"

    script = Script(rules=[Rule(match="time", tool_calls=[ToolCall(name="get_time")], reply="ok")])
    settings = {
        "audio": {},
        "agent": {"think": {"provider": {"type": "open_ai", "model": "gpt-4o"}}},
    }
    async with AgentEmulator(api_key=KEY, script=script, realtime_audio=False) as emu:
        client = client_for(emu)
        async with client.agent.connect(settings, tools=tools) as conn:
            await conn.inject_user_message("what time is it")
            await until(conn, lambda x: isinstance(x, m.AgentAudioDone))
            (response,) = emu.sessions[0].received_json("FunctionCallResponse")
            assert "error" in response["content"] and "CancelledError" in response["content"]
            assert tools.calls[0].outcome == "error"


@pytest.mark.anyio
async def test_closing_cancels_running_calls() -> None:
    recorder = Recorder()
    tools = Tools(on_result=recorder)
    started = asyncio.Event()

    @tools.tool
    async def slow() -> str:
        """Slow."""
        started.set()
        await asyncio.Event().wait()
        return "unreachable"

    script = Script(rules=[Rule(match="slow", tool_calls=[ToolCall(name="slow", id="call_s")])])
    async with AgentEmulator(api_key=KEY, realtime_audio=False, script=script) as emu:
        client = client_for(emu)
        async with client.agent.connect(BASE, tools=tools) as conn:
            session = await emu.wait_for_session()
            await conn.inject_user_message("slow please")
            async with asyncio.timeout(scaled(10)):
                await started.wait()
            assert tools.running() == ["call_s"]
        record = await recorder.wait_for("call_s")
        assert record.outcome == "closed" and record.content is None
        assert tools.running() == []
        assert session.received_json("FunctionCallResponse") == []


# ==============================================================================================
# The blocking facade and the callback API
# ==============================================================================================


def blocking_tools() -> Tools:
    tools = Tools()

    @tools.tool
    def get_weather(city: str) -> dict[str, str]:
        """Weather for a city."""
        return {"city": city, "sky": "clear"}

    @tools.tool
    async def get_time(zone: str) -> str:
        """Time in a zone."""
        await asyncio.sleep(0)  # an async tool that really awaits
        return f"10:30 {zone}"

    return tools


@pytest.fixture
def threaded_emu() -> Iterator[AgentEmulator]:
    script = Script(
        rules=[
            Rule(
                match="weather",
                tool_calls=[
                    [
                        ToolCall(name="get_weather", id="call_w", arguments={"city": "Oslo"}),
                        ToolCall(name="get_time", id="call_t", arguments={"zone": "CET"}),
                    ]
                ],
                reply="Weather {result[get_weather]} at {result[get_time]}",
            ),
            Rule(
                match="remind",
                tool_calls=[ToolCall(name="set_reminder", id="call_r")],
                reply="Reminder {result[set_reminder]}",
            ),
        ]
    )
    with AgentEmulator.run_in_thread(api_key=KEY, realtime_audio=False, script=script) as emu:
        yield emu


def test_blocking_facade(threaded_emu: AgentEmulator) -> None:
    tools = blocking_tools()
    client = client_for(threaded_emu)
    with client.agent.connect_sync(BASE, tools=tools) as conn:
        conn.inject_user_message("weather in Oslo")
        texts: list[str] = []
        saw_request = False
        for msg in conn:
            saw_request = saw_request or isinstance(msg, m.FunctionCallRequest)
            if isinstance(msg, m.ConversationText) and msg.role == "assistant":
                texts.append(msg.content)
            if isinstance(msg, m.AgentAudioDone):
                break
    assert saw_request
    assert texts == ['Weather {"city":"Oslo","sky":"clear"} at 10:30 CET']
    session = threaded_emu.sessions[0]
    assert response_for(session, "call_w")["content"] == '{"city":"Oslo","sky":"clear"}'
    assert response_for(session, "call_t")["content"] == "10:30 CET"
    assert sorted(r.id for r in tools.calls) == ["call_t", "call_w"]


def test_callback_api_seed_style_handler_with_automatic_tools(threaded_emu: AgentEmulator) -> None:
    """The seed's handler observes every FunctionCallRequest and answers only its own function."""
    tools = blocking_tools()
    client = client_for(threaded_emu)
    dg_connection = client.agent.websocket.v("1")
    seen: list[str] = []
    replies: list[str] = []
    errors: list[Any] = []
    first_reply = threading.Event()
    done = threading.Event()

    def on_function_call_request(self: Any, request: Any, **kwargs: Any) -> None:
        seen.extend(f.name for f in request.functions)
        if request.function_call.name == "set_reminder":
            self.send_function_call_response(
                FunctionCallResponse(name="set_reminder", result=json.dumps({"success": True}))
            )

    def on_conversation_text(self: Any, text: Any, **kwargs: Any) -> None:
        if text.role == "assistant":
            replies.append(text.content)
            (first_reply if len(replies) == 1 else done).set()

    dg_connection.on(AgentWebSocketEvents.FunctionCallRequest, on_function_call_request)
    dg_connection.on(AgentWebSocketEvents.ConversationText, on_conversation_text)
    dg_connection.on(AgentWebSocketEvents.Error, lambda self, error, **kw: errors.append(error))
    settings = SettingsOptions(
        agent=Agent(
            think=Think(
                provider=Provider(type="open_ai"),
                model="gpt-4o-mini",
                functions=[Function(name="set_reminder", description="Set a reminder.")],
            )
        )
    )
    assert dg_connection.start(settings, tools=tools)
    try:
        dg_connection.inject_user_message("weather in Oslo")
        assert first_reply.wait(scaled(10)), replies
        dg_connection.inject_user_message("remind me")
        assert done.wait(scaled(10)), replies
    finally:
        dg_connection.close()
    assert errors == []
    assert seen == ["get_weather", "get_time", "set_reminder"]
    assert replies[0] == 'Weather {"city":"Oslo","sky":"clear"} at 10:30 CET'
    assert replies[1] == 'Reminder {"success": true}'
    session = threaded_emu.sessions[0]
    names = [r["name"] for r in session.received_json("FunctionCallResponse")]
    assert sorted(names) == ["get_time", "get_weather", "set_reminder"]
    declared = [f["name"] for f in session.settings["agent"]["think"]["functions"]]  # type: ignore[index]
    assert declared == ["set_reminder", "get_weather", "get_time"]


# ==============================================================================================
# The example
# ==============================================================================================

EXAMPLE = ROOT / "examples" / "function_tools.py"


def example_script() -> Script:
    doc = ast.get_docstring(ast.parse(EXAMPLE.read_text()))
    assert doc is not None
    found = re.search(r"\n(    \{\n.*?\n    \})\n", doc, flags=re.S)
    assert found, "the example's docstring must carry the emulator script JSON"
    return Script.from_json(found.group(1))


def test_example_runs_against_the_emulator() -> None:
    with AgentEmulator.run_in_thread(
        api_key=None, realtime_audio=False, script=example_script()
    ) as emu:
        env = dict(os.environ, DEEPGRAM_AGENT_URL=emu.url, DEEPGRAM_API_KEY="example-key")
        env["PYTHONUNBUFFERED"] = "1"
        out = subprocess.run(
            [sys.executable, str(EXAMPLE)],
            env=env,
            capture_output=True,
            text=True,
            timeout=scaled(60),
            cwd=str(ROOT),
            check=False,
        )
        assert out.returncode == 0, out.stderr
        session = emu.sessions[0]
        names = sorted(r["name"] for r in session.received_json("FunctionCallResponse"))
    lines = out.stdout.splitlines()
    weather = '{"city":"Paris","condition":"sunny","temperature":21,"unit":"celsius"}'
    assert "user: What's the weather and the time in Paris?" in lines
    assert '  -> get_weather({"city":"Paris"})' in lines
    assert f"  <- get_weather returned {weather} (ok)" in lines
    assert "  <- get_local_time returned 10:30 (ok)" in lines
    assert f"assistant: In Paris it is 10:30 and the weather is {weather}" in lines
    assert lines[-1] == "2 function call(s) answered"
    assert names == ["get_local_time", "get_weather"]
    assert "example-key" not in out.stdout + out.stderr


# ==============================================================================================
# Odds and ends
# ==============================================================================================


_SENTINEL = object()


def test_schema_corner_cases() -> None:
    def many(a: int | str | None = None, b: Any = _SENTINEL, /) -> None: ...

    params = params_of(many)
    assert params == {
        "type": "object",
        "properties": {"a": {"anyOf": [{"type": "integer"}, {"type": "string"}]}, "b": {}},
    }
    with pytest.raises(TypeError, match="must be a function"):
        function_definition(42)  # type: ignore[arg-type]


def test_registry_housekeeping() -> None:
    tools = weather_tools()
    assert repr(tools) == "<Tools ['get_weather']>"
    assert repr(tools["get_weather"]) == "<Tool 'get_weather' sync auto=True>"
    server = tools.add_server_function("remote", url="https://example.com/x", defer_until_eot=True)
    assert repr(server) == "<Tool 'remote' server-side auto=False>"
    assert server.definition.defer_until_eot is True
    tools.remove("remote")
    assert [t.name for t in tools] == ["get_weather"]
    with pytest.raises(ValueError, match="url"):
        tools.add_server_function("remote", url="")
    with pytest.raises(ValueError, match="timeout"):
        Tools(timeout=-1)
    with pytest.raises(TypeError, match="SettingsOptions"):
        tools.merge_into(42)
    with pytest.raises(SettingsError, match="not valid JSON"):
        tools.merge_into("{nope")
    with pytest.raises(SettingsError, match="JSON object"):
        tools.merge_into("[1]")
    with pytest.raises(SettingsError, match="agent must be"):
        tools.merge_into({"agent": 3})
    with pytest.raises(SettingsError, match="expected a Think"):
        tools.merge_into({"agent": {"think": 3}})
    with pytest.raises(SettingsError, match="think provider"):
        tools.merge_into(SettingsOptions(agent=Agent(greeting="Hi")))
    assert Tools().merge_into(BASE) is BASE  # nothing registered: nothing to add


ODDS = Script(
    rules=[
        Rule(match="secret", tool_calls=[ToolCall(name="leaky", id="call_s")], reply="S"),
        Rule(
            match="own timeout", tool_calls=[ToolCall(name="own_timeout", id="call_o")], reply="O"
        ),
        Rule(
            match="positional",
            tool_calls=[
                [
                    ToolCall(name="positional", id="call_p", arguments={"a": 2, "b": 3}),
                    ToolCall(name="positional", id="call_e", arguments=""),
                    ToolCall(name="positional", id="call_n", arguments="null"),
                ]
            ],
            reply="P",
        ),
        Rule(match="blocking", tool_calls=[ToolCall(name="blocking", id="call_b")], reply="B"),
    ]
)


@pytest.mark.anyio
async def test_error_details_off_own_timeouts_positional_and_threads(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[str] = []
    recorder = Recorder()

    async def on_result(record: ToolCallRecord) -> None:
        seen.append(record.id)
        recorder(record)
        if record.id == "call_s":
            raise RuntimeError("callback trouble")

    tools = Tools(on_result=on_result, error_details=False)
    release = threading.Event()

    @tools.tool
    def leaky() -> str:
        """Fails with a secret in the message."""
        raise ValueError("password=hunter2")

    @tools.tool
    async def own_timeout() -> str:
        """Raises TimeoutError itself."""
        raise TimeoutError("upstream timed out")

    @tools.tool
    def positional(a: int = 1, b: int = 1, /) -> int:
        """Multiply."""
        return a * b

    @tools.tool(timeout=0.2)
    def blocking() -> str:
        """Blocks its thread until released."""
        release.wait(scaled(10))
        return "late"

    caplog.set_level(logging.WARNING, logger="deepgram_agent")
    async with AgentEmulator(api_key=KEY, realtime_audio=False, script=ODDS) as emu:
        client = client_for(emu)
        async with client.agent.connect(BASE, tools=tools) as conn:
            session = await emu.wait_for_session()
            for text in ("secret", "own timeout", "positional", "blocking"):
                await conn.inject_user_message(text)
                await collect_until(conn, audio_done)
            release.set()
            for call_id in ("call_s", "call_o", "call_p", "call_e", "call_n", "call_b"):
                await recorder.wait_for(call_id)

            def content(call_id: str) -> Any:
                return json.loads(response_for(session, call_id)["content"])

            assert content("call_s") == {"error": "'leaky' failed"}
            # The function's own TimeoutError is an error, not the registry's timeout.
            assert content("call_o") == {"error": "'own_timeout' failed"}
            assert [r.outcome for r in recorder.records if r.id == "call_o"] == ["error"]
            assert [content(i) for i in ("call_p", "call_e", "call_n")] == [6, 1, 1]
            assert content("call_b") == {"error": "'blocking' did not finish within 0.2 s"}
    assert sorted(seen) == sorted(["call_s", "call_o", "call_p", "call_e", "call_n", "call_b"])
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "on_result callback raised" in logged
    # The full error is logged even when the LLM does not see it.
    assert any("hunter2" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)


@pytest.mark.anyio
async def test_async_callback_client_passes_tools_through() -> None:
    tools = blocking_tools()
    script = Script(
        rules=[
            Rule(
                match="weather",
                tool_calls=[ToolCall(name="get_weather", id="call_w", arguments={"city": "Rome"})],
                reply="Weather {result[get_weather]}",
            )
        ]
    )
    replies: list[str] = []
    replied = asyncio.Event()

    async def on_text(self: Any, text: Any, **kwargs: Any) -> None:
        if text.role == "assistant":
            replies.append(text.content)
            replied.set()

    async with AgentEmulator(api_key=KEY, realtime_audio=False, script=script) as emu:
        client = client_for(emu)
        dg_connection = client.agent.asyncwebsocket.v("1")
        dg_connection.on(AgentWebSocketEvents.ConversationText, on_text)
        assert await dg_connection.start(BASE, tools=tools)
        try:
            await dg_connection.inject_user_message("weather in Rome")
            async with asyncio.timeout(scaled(10)):
                await replied.wait()
        finally:
            await dg_connection.close()
        session = emu.sessions[0]
        assert response_for(session, "call_w")["content"] == '{"city":"Rome","sky":"clear"}'
    assert replies == ['Weather {"city":"Rome","sky":"clear"}']


@pytest.mark.anyio
async def test_arguments_that_are_no_object_or_null_for_optional_parameters() -> None:
    """``null`` stays ``None`` where the annotation takes ``None`` (directly, in a union, in
    ``Annotated`` or in a ``Literal``) and gives the default elsewhere; anything but a JSON
    object is answered with an invalid-arguments error."""
    tools = Tools()

    @tools.tool
    def pick(
        city: str,
        unit: Annotated[str | None, msgspec.Meta(description="C or F")] = "C",
        mode: Literal["fast", None] = "fast",
        n: int | None = 3,
        size: int = 7,
    ) -> dict[str, Any]:
        """Pick something."""
        return {"city": city, "unit": unit, "mode": mode, "n": n, "size": size}

    nulls = '{"city": "Oslo", "unit": null, "mode": null, "n": null, "size": null}'
    script = Script(
        rules=[
            Rule(match="list", tool_calls=[ToolCall(name="pick", id="c_l", arguments="[1, 2]")]),
            Rule(match="nulls", tool_calls=[ToolCall(name="pick", id="c_n", arguments=nulls)]),
            Rule(match="nothing", tool_calls=[ToolCall(name="pick", id="c_0", arguments="null")]),
        ]
    )
    async with AgentEmulator(api_key=KEY, realtime_audio=False, script=script) as emu:
        async with client_for(emu).agent.connect(BASE, tools=tools) as conn:
            for text in ("a list please", "nulls please", "nothing please"):
                await conn.inject_user_message(text)
                await collect_until(conn, audio_done)
    by_id = {r.id: r for r in tools.calls}
    assert by_id["c_l"].outcome == "invalid_arguments"
    assert "must be a JSON object, not list" in (by_id["c_l"].error or "")
    assert by_id["c_n"].outcome == "ok"
    assert by_id["c_n"].result == {"city": "Oslo", "unit": None, "mode": None, "n": None, "size": 7}
    assert by_id["c_0"].outcome == "invalid_arguments"  # null is {}: city is missing
    assert "city" in (by_id["c_0"].error or "")


def test_merging_keeps_the_same_definition_declared_as_a_struct_or_an_option() -> None:
    from deepgram_agent.options import Function

    tools = Tools()

    @tools.tool
    def get_time(zone: str) -> str:
        """Current time in a zone."""
        return zone

    (definition,) = tools.definitions()
    as_struct = {"agent": {"think": {"functions": [definition]}}}
    merged = tools.merge_wire(as_struct)
    assert merged["agent"]["think"]["functions"] == [definition]  # already there: kept once
    same = Function.from_dict(msgspec.to_builtins(definition))
    assert tools.merge_wire({"agent": {"think": {"functions": [same]}}})["agent"]["think"][
        "functions"
    ] == [same]
    other = Function(name="get_time", description="Something else.")
    with pytest.raises(SettingsError, match="declared in the Settings and also registered"):
        tools.merge_wire({"agent": {"think": {"functions": [other]}}})
    broken = Function(name="get_time")  # no description: its to_dict() fails
    with pytest.raises(SettingsError, match="declared in the Settings and also registered"):
        tools.merge_wire({"agent": {"think": {"functions": [broken]}}})
    with pytest.raises(SettingsError, match="expected a Think, a dict or a list, not int"):
        tools.merge_wire({"agent": {"think": 5}})


def test_what_cannot_be_a_tool_is_refused_when_registered() -> None:
    import functools

    def f(a: int) -> int:
        return a

    with pytest.raises(ValueError, match=r"has no __name__; pass name=\.\.\."):
        Tools().add(functools.partial(f))

    class Opaque:
        __signature__ = "not a signature"

        def __call__(self, a: int) -> int:
            return a

    with pytest.raises(TypeError, match="cannot read the signature of"):
        Tools().add(Opaque(), name="opaque", description="d")

    def lock(a: threading.Lock) -> int:
        return 1

    with pytest.raises(TypeError, match=r"a parameter of .*lock has a type with no JSON schema"):
        Tools().add(lock, description="d")


def test_the_blocking_callback_client_declares_and_answers_tools(
    threaded_emu: AgentEmulator,
) -> None:
    tools = blocking_tools()
    dg = client_for(threaded_emu).agent.websocket.v("1")
    done = threading.Event()
    dg.on(AgentWebSocketEvents.AgentAudioDone, lambda client, event: done.set())
    assert dg.start(BASE, tools=tools) is True
    try:
        declared = threaded_emu.sessions[-1].settings["agent"]["think"]["functions"]
        assert {f["name"] for f in declared} == {"get_weather", "get_time"}
        dg.inject_user_message("weather in Paris")
        assert done.wait(scaled(10))
    finally:
        dg.close()
    assert sorted(r.outcome for r in tools.calls) == ["ok", "ok"]  # get_weather, get_time
