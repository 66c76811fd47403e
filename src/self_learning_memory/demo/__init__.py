"""A runnable demo of the memory on shipped sample data."""
