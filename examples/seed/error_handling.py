"""The seed's "error handling" example, unchanged but for the import line."""

from deepgram_agent import DeepgramClient, DeepgramApiError, SettingsOptions, AgentWebSocketEvents

client = DeepgramClient(api_key="your-api-key")

def on_error(self, error, **kwargs):
    """Handle various error types"""
    print(f"Agent error: {error}")

    # Implement error-specific recovery logic
    if "connection" in str(error).lower():
        print("Connection error - attempting to reconnect...")
        # Implement reconnection logic
    elif "authentication" in str(error).lower():
        print("Authentication error - check API key")
    else:
        print("Unknown error - logging for investigation")

def on_injection_refused(self, refusal, **kwargs):
    """Handle message injection refusals"""
    print(f"Message injection refused: {refusal.message}")
    # Implement fallback logic

try:
    settings = SettingsOptions(
        # ... agent configuration
    )

    dg_connection = client.agent.websocket.v("1")
    dg_connection.on(AgentWebSocketEvents.Error, on_error)
    dg_connection.on(AgentWebSocketEvents.InjectionRefused, on_injection_refused)

    if dg_connection.start(settings):
        # Connection successful
        print("Agent started successfully")

        # Implement connection health monitoring
        # dg_connection.keep_alive()  # Send periodically
    else:
        print("Failed to start agent connection")

except DeepgramApiError as e:
    print(f"API Error: {e}")
except Exception as e:
    print(f"Unexpected error: {e}")
finally:
    if 'dg_connection' in locals():
        dg_connection.close()
