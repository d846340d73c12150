"""The floor: a one-tool MCPServer on the same SDK, doing nothing but answer. Run as a stdio server."""

from mcp.server import MCPServer

mcp = MCPServer("bare")


@mcp.tool()
def echo(text: str) -> str:
    """Echo the text."""
    return text


if __name__ == "__main__":
    mcp.run()
