"""The memory core: data model, lifecycle, learning and retrieval."""
