"""poe-mcp: the whole of Poe for every MCP client."""

__version__ = "0.1.0"
