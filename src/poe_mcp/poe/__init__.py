"""Talking to Poe: knows nothing of MCP."""
