"""Wire examples shared by several test files: full Settings messages of the kinds docs/protocol.md
5.1.7 describes (every section of Settings in use), and the forms Deepgram's docs use."""

from __future__ import annotations

import json
from typing import Any

# Settings of the kinds docs/protocol.md 5.1.7 describes (our own examples).
FULL_SETTINGS = r"""
{
  "type": "Settings",
  "tags": ["support-line", "tenant:acme"],
  "experimental": false,
  "mip_opt_out": true,
  "flags": { "history": true },
  "audio": {
    "input":  { "encoding": "linear16", "sample_rate": 16000 },
    "output": { "encoding": "linear16", "sample_rate": 24000, "container": "none" }
  },
  "agent": {
    "listen": {
      "provider": { "type": "deepgram", "version": "v1", "model": "nova-3",
                    "language": "en", "keyterms": ["Acme", "Zephyr Pro"], "smart_format": true }
    },
    "think": [
      {
        "provider": { "type": "open_ai", "model": "gpt-4.1-mini", "temperature": 0.4 },
        "prompt": "You are Acme's phone assistant. Keep answers under two sentences.",
        "functions": [
          {
            "name": "lookup_order",
            "description": "Fetch an order's shipping status.",
            "parameters": {
              "type": "object",
              "properties": { "order_id": { "type": "string", "description": "Order number" } },
              "required": ["order_id"]
            }
          },
          {
            "name": "open_ticket",
            "description": "Create a support ticket in the CRM.",
            "parameters": { "type": "object", "properties": { "summary": { "type": "string" } } },
            "endpoint": { "url": "https://crm.acme.example/api/tickets", "method": "POST",
                          "headers": { "authorization": "Bearer crm-secret" } },
            "defer_until_eot": true
          }
        ]
      },
      { "provider": { "type": "anthropic", "model": "claude-haiku-4-5", "temperature": 0.4 } }
    ],
    "speak": [
      { "provider": { "type": "deepgram", "model": "aura-2-thalia-en", "speed": 1.1 } },
      { "provider": { "type": "open_ai", "model": "tts-1", "voice": "nova" },
        "endpoint": { "url": "https://api.openai.com/v1/audio/speech",
                      "headers": { "authorization": "Bearer sk-example" } } }
    ],
    "greeting": "Hi, this is Acme support. How can I help?",
    "context": {
      "messages": [
        { "type": "History", "role": "user", "content": "Where is order 4417?" },
        { "type": "History", "function_calls": [ { "id": "call_b81", "name": "lookup_order",
          "client_side": true, "arguments": "{\"order_id\":\"4417\"}",
          "response": "{\"status\":\"in transit\",\"eta\":\"Friday\"}" } ] },
        { "type": "History", "role": "assistant", "content": "It's in transit and should arrive Friday." }
      ]
    }
  }
}
"""

FLUX_SETTINGS = r"""
{ "type": "Settings",
  "audio": { "input": { "encoding": "mulaw", "sample_rate": 8000 },
             "output": { "encoding": "mulaw", "sample_rate": 8000, "container": "none" } },
  "agent": {
    "listen": { "provider": { "type": "deepgram", "version": "v2", "model": "flux-general-en",
                              "eot_threshold": 0.75, "eot_timeout_ms": 4000 } },
    "think": { "provider": { "type": "google", "model": "gemini-2.5-flash" },
               "prompt": "You book dentist appointments." },
    "speak": { "provider": { "type": "deepgram", "version": "v2", "model": "flux-kit-en" } } } }
"""

STORED_SETTINGS = r"""
{ "type": "Settings",
  "audio": { "input": { "encoding": "linear16", "sample_rate": 16000 } },
  "agent": "3f9c2d1e-8a47-4b6e-9f10-2c5d7e8a1b34" }
"""


def parsed(text: str) -> dict[str, Any]:
    """One of the examples above as a dict."""
    value: dict[str, Any] = json.loads(text)
    return value


# Forms Deepgram's docs use in Settings JSON that the official 7.16.0 models lack or forbid
# (docs/protocol.md 5.1.1, 5.1.5, 12 #22-23). Every one must pass local validation and the emulator.
_AUDIO = {"input": {"encoding": "linear16", "sample_rate": 16000}}

DOCS_FORMS: dict[str, dict[str, Any]] = {
    # Multilingual page: OpenAI TTS takes language "multi".
    "open_ai speak language": {
        "type": "Settings",
        "audio": _AUDIO,
        "agent": {
            "speak": {
                "provider": {
                    "type": "open_ai",
                    "model": "tts-1",
                    "voice": "nova",
                    "language": "multi",
                },
                "endpoint": {"url": "https://api.openai.com/v1/audio/speech"},
            }
        },
    },
    # TTS-controls page: Cartesia speed in agent sessions.
    "cartesia speed": {
        "type": "Settings",
        "audio": _AUDIO,
        "agent": {
            "speak": {
                "provider": {
                    "type": "cartesia",
                    "model_id": "sonic-2",
                    "voice": {"mode": "id", "id": "a0e99841-438c-4a64-b679-ae501e7d6091"},
                    "speed": 1.2,
                },
                "endpoint": {"url": "https://api.cartesia.ai/tts/bytes"},
            }
        },
    },
    # Multilingual page: the singular language_hint on Flux (sent as language_hints).
    "flux language_hint": {
        "type": "Settings",
        "audio": _AUDIO,
        "agent": {
            "listen": {
                "provider": {
                    "type": "deepgram",
                    "version": "v2",
                    "model": "flux-general-multi",
                    "language_hint": "es",
                }
            }
        },
    },
    "flux language_hint list": {
        "type": "Settings",
        "audio": _AUDIO,
        "agent": {
            "listen": {
                "provider": {
                    "type": "deepgram",
                    "version": "v2",
                    "model": "flux-general-multi",
                    "language_hint": ["en", "es"],
                }
            }
        },
    },
    # LLM-models page: a custom Google endpoint carries the model in its URL; no model key.
    "google custom endpoint without model": {
        "type": "Settings",
        "audio": _AUDIO,
        "agent": {
            "think": {
                "provider": {"type": "google", "temperature": 0.5},
                "endpoint": {
                    "url": "https://generativelanguage.googleapis.com/v1beta/models/"
                    "gemini-2.5-flash:streamGenerateContent?alt=sse",
                    "headers": {"x-goog-api-key": "sk-example"},
                },
            }
        },
    },
    # Early-access Deepgram think provider, model left to the server.
    "deepgram think without model": {
        "type": "Settings",
        "audio": _AUDIO,
        "agent": {"think": {"provider": {"type": "deepgram", "temperature": 0.3}}},
    },
    # aws_polly with the deprecated language_code alias instead of language.
    "aws_polly language_code": {
        "type": "Settings",
        "audio": _AUDIO,
        "agent": {
            "speak": {
                "provider": {
                    "type": "aws_polly",
                    "voice": "Joanna",
                    "language_code": "en-US",
                    "engine": "neural",
                    "credentials": {
                        "type": "iam",
                        "region": "us-east-1",
                        "access_key_id": "AKIAEXAMPLE",
                        "secret_access_key": "secret-example",
                    },
                },
                "endpoint": {"url": "https://polly.us-east-1.amazonaws.com/v1/speech"},
            }
        },
    },
    # REC 2025: a listen provider without version is v1; Dec 2025: no listen at all.
    "listen without version, no think/speak": {
        "type": "Settings",
        "audio": _AUDIO,
        "agent": {"listen": {"provider": {"type": "deepgram", "model": "nova-3"}}},
    },
    "no listen": {"type": "Settings", "audio": _AUDIO, "agent": {"greeting": "Hi."}},
    # docs/protocol.md 4.1 / 4.2: every documented encoding and container.
    "telephony and compressed audio": {
        "type": "Settings",
        "audio": {
            "input": {"encoding": "ogg-opus", "sample_rate": 48000},
            "output": {
                "encoding": "mp3",
                "sample_rate": 24000,
                "bitrate": 48000,
                "container": "ogg",
            },
        },
        "agent": {},
    },
}
