"""Everything the SDK sends validates against the official deepgram-sdk 7.16.0 models.

The official Pydantic models allow extra fields and ``null``; the real server allows neither
(docs/protocol.md 2, 9.4). So each model's JSON Schema is made strict before use: every object that
declares ``properties`` gets ``additionalProperties: false`` and ``null`` is removed from every
union. Free-form objects (function ``parameters``, ``headers``) keep their own rules. The
negative tests at the bottom prove the strict copy really refuses extras and nulls.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonschema
import pytest

pytest.importorskip("deepgram")

from deepgram.agent.v1 import types as dg

from deepgram_agent import messages as m
from deepgram_agent._codec import encode
from deepgram_agent.options import SettingsOptions, coerce_client_message, coerce_settings

from .test_options import (
    GOLDEN_MESSAGES,
    GOLDEN_SETTINGS,
    golden_settings_seed_style,
    golden_settings_wire_style,
    seed_example_1,
    seed_example_2,
    seed_example_4,
    seed_example_5,
)
from .wire_examples import FLUX_SETTINGS, FULL_SETTINGS, STORED_SETTINGS, parsed

MODELS: dict[str, Any] = {
    "Settings": dg.AgentV1Settings,
    "UpdatePrompt": dg.AgentV1UpdatePrompt,
    "UpdateSpeak": dg.AgentV1UpdateSpeak,
    "UpdateThink": dg.AgentV1UpdateThink,
    "UpdateListen": dg.AgentV1UpdateListen,
    "UpdateThink_Live": dg.AgentV1UpdateThinkLive,
    "InjectUserMessage": dg.AgentV1InjectUserMessage,
    "InjectAgentMessage": dg.AgentV1InjectAgentMessage,
    "FunctionCallResponse": dg.AgentV1SendFunctionCallResponse,
    "KeepAlive": dg.AgentV1KeepAlive,
    "ForceEndTurn": dg.AgentV1ForceEndTurn,
}


def _strict(node: Any) -> Any:
    if isinstance(node, dict):
        out = {k: _strict(v) for k, v in node.items()}
        if "properties" in out and isinstance(out["properties"], dict):
            out["additionalProperties"] = False
        for key in ("anyOf", "oneOf"):
            if key in out:
                out[key] = [alt for alt in out[key] if alt != {"type": "null"}]
        return out
    if isinstance(node, list):
        return [_strict(v) for v in node]
    return node


_VALIDATORS: dict[str, jsonschema.Draft202012Validator] = {}


def strict_validator(kind: str) -> jsonschema.Draft202012Validator:
    if kind not in _VALIDATORS:
        schema = _strict(MODELS[kind].model_json_schema())
        schema.setdefault("required", [])
        schema["required"] = [*schema["required"], "type"]
        jsonschema.Draft202012Validator.check_schema(schema)
        _VALIDATORS[kind] = jsonschema.Draft202012Validator(schema)
    return _VALIDATORS[kind]


def assert_conforms(data: dict[str, Any]) -> None:
    errors = sorted(strict_validator(data["type"]).iter_errors(data), key=lambda e: e.path)
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors]
    # and the official (lenient) model itself parses it
    MODELS[data["type"]].model_validate(data)


# ---- JSON the SDK produces -------------------------------------------------------------------

# docs/protocol.md 5.1.7 examples (shared with the emulator tests)
EXAMPLE_FULL = parsed(FULL_SETTINGS)
EXAMPLE_FLUX = parsed(FLUX_SETTINGS)
EXAMPLE_STORED = parsed(STORED_SETTINGS)
EXAMPLES_5_1_7 = [EXAMPLE_FULL, EXAMPLE_FLUX, EXAMPLE_STORED]


@pytest.mark.parametrize("example", EXAMPLES_5_1_7, ids=["full", "flux", "stored"])
def test_5_1_7_examples_round_trip_through_our_structs(example: dict[str, Any]) -> None:
    typed, sent = coerce_settings(example)
    assert sent == example
    assert json.loads(encode(typed)) == example
    assert_conforms(json.loads(encode(typed)))
    # and through the option classes
    assert_conforms(SettingsOptions.from_dict(example).to_dict())


@pytest.mark.parametrize(
    "build",
    [
        seed_example_2,
        seed_example_4,
        seed_example_5,
        golden_settings_seed_style,
        golden_settings_wire_style,
    ],
)
def test_seed_and_golden_settings_conform(build: Any) -> None:
    assert_conforms(build().to_dict())
    typed, _ = coerce_settings(build())
    assert_conforms(json.loads(encode(typed)))


def test_seed_example_1_conforms() -> None:
    with pytest.warns(UserWarning, match="interim_results"):
        opts = seed_example_1()
    assert_conforms(opts.to_dict())


def test_golden_settings_dict_conforms() -> None:
    assert_conforms(GOLDEN_SETTINGS)


@pytest.mark.parametrize(
    ("name", "seed", "wire", "expected"), GOLDEN_MESSAGES, ids=[g[0] for g in GOLDEN_MESSAGES]
)
def test_golden_messages_conform(name: str, seed: Any, wire: Any, expected: dict[str, Any]) -> None:
    assert_conforms(expected)
    assert_conforms(seed().to_dict())
    assert_conforms(json.loads(encode(coerce_client_message(wire()))))


def test_other_client_structs_conform() -> None:
    for msg in (
        m.ForceEndTurn(),
        m.KeepAlive(),
        m.UpdateThinkLive(
            think_live=m.ThinkLiveSettings(
                provider=m.ThinkLiveProvider(version="v1", agent_backchannel_sensitivity=0.3)
            )
        ),
        m.FunctionCallResponse(name="f", content="{}"),
    ):
        assert_conforms(json.loads(encode(coerce_client_message(msg))))


# ---- the strict copy is really strict --------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "mutate"),
    [
        ("top level", lambda d: d.__setitem__("surprise", 1)),
        ("agent", lambda d: d["agent"].__setitem__("tags", ["x"])),
        ("listen provider", lambda d: d["agent"]["listen"]["provider"].__setitem__("foo", 1)),
        ("function", lambda d: d["agent"]["think"]["functions"][0].__setitem__("url", "https://x")),
        ("audio input", lambda d: d["audio"]["input"].__setitem__("channels", 1)),
        ("null", lambda d: d["agent"].__setitem__("greeting", None)),
        ("flat listen", lambda d: d["agent"].__setitem__("listen", {"model": "nova-3"})),
    ],
)
def test_strict_schema_refuses_extras_and_nulls(where: str, mutate: Any) -> None:
    data = copy.deepcopy(GOLDEN_SETTINGS)
    mutate(data)
    assert list(strict_validator("Settings").iter_errors(data)), f"extra at {where} accepted"


def test_strict_schema_refuses_extra_on_small_messages() -> None:
    bad = {"type": "InjectAgentMessage", "message": "x", "content": "y"}
    assert list(strict_validator("InjectAgentMessage").iter_errors(bad))
    bad = {"type": "FunctionCallResponse", "function_call_id": "c", "output": "o"}
    assert list(strict_validator("FunctionCallResponse").iter_errors(bad))


def test_official_models_alone_are_lenient() -> None:
    # Why the strict copy is needed: the official model accepts the extra key silently.
    data = {**GOLDEN_SETTINGS, "surprise": 1}
    dg.AgentV1Settings.model_validate(data)
