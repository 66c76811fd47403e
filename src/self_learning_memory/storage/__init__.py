"""Durable stores, the embedded cache, and the protocol they share."""
