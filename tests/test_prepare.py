"""The public boundary (``_prepare``): every accepted form of settings and messages becomes the
same wire data, anything else is a clear error, and the typed view of settings this SDK does not
fully know never fails."""

from __future__ import annotations

from typing import Any

import pytest

from deepgram_agent import SettingsError, Speak, UpdatePromptOptions
from deepgram_agent import messages as m
from deepgram_agent._prepare import (
    plain_data,
    prepare_message,
    prepare_settings,
    prepare_update,
    typed_view,
)

AUDIO = {"input": {"encoding": "linear16", "sample_rate": 16000}}


def test_settings_as_a_struct_or_holding_structs_become_the_same_wire_data() -> None:
    struct = m.Settings(
        audio=m.AudioConfig(input=m.AudioInput(encoding="linear16", sample_rate=16000)),
        agent=m.AgentSettings(),
    )
    from_struct = prepare_settings(struct)
    from_dict = prepare_settings({"audio": struct.audio, "agent": {}})  # a struct inside a dict
    assert from_struct.wire == from_dict.wire
    assert from_struct.wire["audio"] == {"input": AUDIO["input"]}
    assert plain_data((struct.audio,)) == [{"input": AUDIO["input"]}]


@pytest.mark.parametrize(
    ("obj", "error", "match"),
    [
        ("[1, 2]", SettingsError, "Settings must be a JSON object, not list"),
        (b"{not json", SettingsError, "not valid JSON"),
        (UpdatePromptOptions(prompt="x"), TypeError, "expected settings, got a UpdatePrompt"),
        (42, TypeError, "settings must be a SettingsOptions, .* not int"),
    ],
)
def test_what_is_not_settings_is_a_clear_error(obj: Any, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        prepare_settings(obj)


class _NotAMessage:
    def to_message(self) -> Any:
        return {"type": "KeepAlive"}


def test_what_is_not_a_message_is_a_clear_error() -> None:
    with pytest.raises(TypeError, match=r"_NotAMessage.to_message\(\) did not return a message"):
        prepare_message(_NotAMessage())
    with pytest.raises(TypeError, match=r"a client message must be .* not float"):
        prepare_message(1.5)
    assert prepare_message(b'{"type": "KeepAlive"}') == m.KeepAlive()


def test_an_update_from_a_classic_option_object() -> None:
    update = prepare_update("UpdateSpeak", "speak", Speak(model="aura-2-luna-en"))
    assert isinstance(update, m.UpdateSpeak)
    assert update.to_dict() == {
        "type": "UpdateSpeak",
        "speak": {"provider": {"type": "deepgram", "model": "aura-2-luna-en"}},
    }


def test_the_typed_view_of_settings_it_cannot_fully_type_falls_back_to_the_defaults() -> None:
    # An agent that is no object at all: the view keeps the server's defaults.
    assert typed_view({"agent": 5}) == m.Settings(audio=m.AudioConfig(), agent=m.AgentSettings())
    # A stored agent id survives beside an audio section that does not fit.
    view = typed_view({"audio": "not an object", "agent": "stored-agent-id"})
    assert view.agent == "stored-agent-id" and view.audio == m.AudioConfig()
    # A value of the wrong type gives the fallback when there is one.
    fallback = m.Settings(audio=m.AudioConfig(), agent="fallback")
    assert typed_view({"audio": {"input": {"encoding": 5}}}, fallback) is fallback
    # An unknown key deep down is left out of the view (it stays in the frame sent).
    wire = {"audio": AUDIO, "agent": {"listen": {"provider": {"type": "deepgram", "x": 1}}}}
    assert typed_view(wire).audio.input.sample_rate == 16000  # type: ignore[union-attr]
