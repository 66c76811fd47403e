"""A held-out retrieval evaluation set, written apart from ``retrieval_quality`` (never tuned on)."""
