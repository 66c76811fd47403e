"""Unit and property tests: fast, hermetic, no network."""
