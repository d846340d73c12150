"""What the MCP tools and the CLI share: conversations with Poe, media generation, usage."""
