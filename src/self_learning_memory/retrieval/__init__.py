"""Retrieval: the hybrid pipeline over a candidate source (``hybrid``), the ranking
(``ranking``, ``diversity``, ``scores``, ``legacy``), its tokeniser (``tokens``), lexical trust,
the vector index and search, pattern and heuristic matching, and known-failure warnings."""
