"""Retrieval: the ranking, its tokeniser, lexical trust, the vector index and search, pattern
and heuristic matching, and known-failure warnings."""
