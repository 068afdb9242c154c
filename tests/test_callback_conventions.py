"""The callback API's edges: every handler calling convention, subscribing and unsubscribing,
handlers that fail, start() called twice or without settings, and send_settings() before
start, with bad settings, or with changes no runtime update carries. Both clients, blocking
and async, against the emulator over loopback."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from deepgram_agent import (
    AgentWebSocketClient,
    AgentWebSocketEvents,
    AsyncAgentWebSocketClient,
    DeepgramError,
    SettingsOptions,
)
from deepgram_agent import messages as m
from deepgram_agent.testing import AgentEmulator

from .conftest import KEY, SETTINGS, client_for, scaled

W = AgentWebSocketEvents


@pytest.fixture
def emu() -> Iterator[AgentEmulator]:
    with AgentEmulator.run_in_thread(api_key=KEY, realtime_audio=False) as emulator:
        yield emulator


class _Recorder:
    """Bound-method handlers: ``self`` is the recorder, the client is not passed."""

    def __init__(self) -> None:
        self.got: dict[str, Any] = {}

    def one(self, event: Any) -> None:
        self.got["bound(event)"] = event

    def one_and_kwargs(self, event: Any, **kwargs: Any) -> None:
        self.got["bound(event, **kw)"] = (event, kwargs)


class _NoSignature:
    """A callable whose signature cannot be read: called ``handler(client, event)``."""

    __signature__ = "not a signature"  # inspect.signature() raises TypeError on it

    def __init__(self) -> None:
        self.calls: list[tuple[Any, Any]] = []

    def __call__(self, client: Any, event: Any) -> None:
        self.calls.append((client, event))


def test_every_handler_convention_gets_the_welcome(emu: AgentEmulator) -> None:
    dg = client_for(emu).agent.websocket.v("1")
    got: dict[str, Any] = {}
    recorder = _Recorder()
    odd = _NoSignature()
    errors: list[Any] = []

    def client_and_kwargs(client: Any, **kwargs: Any) -> None:  # the v4 SDK's convention
        got["(client, **kw)"] = (client, kwargs)

    def keyword_only(*, welcome: Any) -> None:
        got["(*, welcome)"] = welcome

    def kwargs_only(**kwargs: Any) -> None:
        got["(**kw)"] = kwargs

    def nothing() -> None:  # cannot take the event: reported as an Error event
        got["()"] = True

    def never(client: Any, event: Any) -> None:
        got["off"] = event

    dg.on(W.Welcome, client_and_kwargs)
    dg.on(W.Welcome, recorder.one)
    dg.on(W.Welcome, recorder.one_and_kwargs)
    dg.on(W.Welcome, lambda event: got.setdefault("lambda(event)", event))
    dg.on(W.Welcome, keyword_only)
    dg.on(W.Welcome, kwargs_only)
    dg.on(W.Welcome, nothing)
    dg.on(W.Welcome, odd)
    dg.on("Welcome", never)
    dg.off(W.Welcome, never)
    dg.off("Welcome", lambda e: None)  # not subscribed: nothing happens
    dg.on(W.Error, lambda client, error: errors.append(error))
    assert repr(dg) == "<AgentWebSocketClient conn=None>" and dg.connection is None
    assert dg.start(SETTINGS) is True
    try:
        assert "conn=<SyncAgentConnection" in repr(dg) and dg.connection is not None
        welcome = got["(*, welcome)"]
        assert isinstance(welcome, m.Welcome)
        assert got["(client, **kw)"] == (dg, {"welcome": welcome})
        assert recorder.got["bound(event)"] is welcome
        assert recorder.got["bound(event, **kw)"] == (welcome, {})
        assert got["lambda(event)"] is welcome
        assert got["(**kw)"] == {"welcome": welcome}
        assert odd.calls == [(dg, welcome)]
        assert "off" not in got and "()" not in got
        (error,) = errors
        assert error.code == "CLIENT_HANDLER_ERROR" and "nothing" in error.description
    finally:
        dg.close()


def test_subscribing_to_an_unknown_event_or_a_non_callable_is_refused() -> None:
    dg = AgentWebSocketClient(lambda *a, **k: None)
    with pytest.raises(ValueError, match="unknown event 'Nope'"):
        dg.on("Nope", print)
    with pytest.raises(TypeError, match="handler must be callable, got int"):
        dg.on(W.Welcome, 5)  # type: ignore[arg-type]


def test_start_twice_is_an_error_and_no_settings_means_the_defaults(emu: AgentEmulator) -> None:
    dg = client_for(emu).agent.websocket.v("1")
    assert dg.start() is True  # SettingsOptions() with its defaults
    try:
        session = emu.sessions[0]
        assert session.settings is not None and session.settings["type"] == "Settings"
        with pytest.raises(DeepgramError, match="start\\(\\) was already called"):
            dg.start(SETTINGS)
    finally:
        assert dg.close() is True
    assert AgentWebSocketClient(lambda *a, **k: None).close() is True  # never started


def test_an_error_handler_that_raises_is_logged_and_the_session_goes_on(
    emu: AgentEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    dg = client_for(emu).agent.websocket.v("1")
    done = threading.Event()

    def bad_text(client: Any, text: Any) -> None:
        raise RuntimeError("text handler bug")

    def bad_error(client: Any, error: Any) -> None:
        raise RuntimeError("error handler bug")

    dg.on(W.ConversationText, bad_text)
    dg.on(W.Error, bad_error)
    dg.on(W.AgentAudioDone, lambda client, event: done.set())
    assert dg.start(SETTINGS) is True
    try:
        assert dg.inject_user_message("hello") is True
        assert done.wait(scaled(10))
    finally:
        dg.close()
    assert "an Error handler raised RuntimeError('error handler bug')" in caplog.text


def test_an_async_handler_on_the_blocking_client_is_awaited(emu: AgentEmulator) -> None:
    dg = client_for(emu).agent.websocket.v("1")
    seen: list[str] = []

    async def on_welcome(client: Any, welcome: Any) -> None:
        await asyncio.sleep(0)  # an async handler that really awaits
        seen.append(welcome.type)

    dg.on(W.Welcome, on_welcome)
    assert dg.start(SETTINGS) is True
    dg.close()
    assert seen == ["Welcome"]


def test_send_settings_before_start_starts_and_bad_settings_send_nothing(
    emu: AgentEmulator,
) -> None:
    dg = client_for(emu).agent.websocket.v("1")
    errors: list[Any] = []
    dg.on(W.Error, lambda client, error: errors.append(error))
    assert dg.send_settings(SETTINGS) is True  # not started yet: starts with them
    try:
        assert dg.is_connected()
        assert dg.send_settings(3.5) is False  # logged; not settings at all
        bad = {**SETTINGS, "audio": {"input": {"encoding": "linear16", "sample_rate": -1}}}
        assert dg.send_settings(bad) is False
        assert errors and "sample_rate" in errors[-1].description
        # A stored agent id in place of the agent object: no runtime update can carry it.
        assert dg.send_settings({**SETTINGS, "agent": "stored-agent-id"}) is False
        assert errors[-1].code == "CLIENT_SETTINGS_NOT_UPDATABLE"
        assert "agent" in errors[-1].description
        # A think change beyond the prompt is an UpdateThink.
        think = dict(SETTINGS["agent"]["think"], provider={"type": "open_ai", "model": "gpt-4o"})
        assert dg.send_settings({**SETTINGS, "agent": {**SETTINGS["agent"], "think": think}})
        emu.run_sync(emu.sessions[0].wait_for_received("UpdateThink", timeout=scaled(5)))
    finally:
        dg.close()
    assert [s for s in emu.sessions[0].sent_types if s == "Error"] == []


@pytest.mark.anyio
async def test_the_async_client_edges() -> None:
    async with AgentEmulator(api_key=KEY, realtime_audio=False) as emu:
        dg = client_for(emu).agent.asyncwebsocket.v("1")
        assert isinstance(dg, AsyncAgentWebSocketClient)
        assert repr(dg) == "<AsyncAgentWebSocketClient conn=None>" and dg.connection is None
        assert await dg.finish() is True  # never started
        errors: list[Any] = []
        done = asyncio.Event()

        async def bad_text(client: Any, text: Any) -> None:
            raise RuntimeError("text handler bug")

        def bad_error(client: Any, error: Any) -> None:
            errors.append(error)
            raise RuntimeError("error handler bug")

        dg.on(W.ConversationText, bad_text)
        dg.on(W.Error, bad_error)
        dg.on(W.AgentAudioDone, lambda client, event: done.set())
        assert await dg.send_settings(SETTINGS) is True  # before start: starts with them
        try:
            assert dg.connection is not None and "conn=<" in repr(dg)
            with pytest.raises(DeepgramError, match="already called"):
                await dg.start(SETTINGS)
            await dg.inject_user_message("hello")
            async with asyncio.timeout(scaled(10)):
                await done.wait()
            assert errors and errors[0].code == "CLIENT_HANDLER_ERROR"
            bad = {**SETTINGS, "audio": {"input": {"encoding": "linear16", "sample_rate": 0}}}
            assert await dg.send_settings(bad) is False
            assert "sample_rate" in errors[-1].description
            assert await dg.send_settings({**SETTINGS, "agent": "stored-id"}) is False
            assert errors[-1].code == "CLIENT_SETTINGS_NOT_UPDATABLE"
            assert await dg.send_function_call_response({"id": "x", "name": "f"}) is False
        finally:
            await dg.finish()


@pytest.mark.anyio
async def test_the_async_client_starts_with_the_default_settings() -> None:
    async with AgentEmulator(api_key=KEY, realtime_audio=False) as emu:
        dg = client_for(emu).agent.asyncwebsocket.v("1")
        assert await dg.start() is True
        try:
            assert emu.sessions[0].settings == SettingsOptions().to_dict()
        finally:
            await dg.finish()
