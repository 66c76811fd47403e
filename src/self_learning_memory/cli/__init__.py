"""``memory-cli``: the person's door to the memory (typer + rich)."""
