"""The data model: episodes, steps, contexts, outcomes, patterns, heuristics, pattern usage,
the records a store takes and returns, sandbox run records and the limits that validate them.
Imports nothing of the package but ``errors``."""
