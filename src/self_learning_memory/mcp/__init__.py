"""The MCP server ``memory-mcp``: the agent's door to the memory (stdio and streamable HTTP)."""
