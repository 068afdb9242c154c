"""The classic ``deepgram`` v4 SDK's deep import paths, kept so v4 programs run with only the
top-level package renamed (``deepgram.clients.agent.v1.websocket.options`` ->
``deepgram_agent.clients.agent.v1.websocket.options``). Every name here is the one in
:mod:`deepgram_agent`; prefer importing from there."""
