"""Command groups of memory-cli, one module each."""
