"""The MCP tools, one module per family; each module's `register` adds its tools to the server."""
