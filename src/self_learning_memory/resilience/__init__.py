"""Resilience composed around a primary store: retries with backoff (``retry.py``), a circuit
breaker (``circuit_breaker.py``), the outbox that journals writes while the primary is down
(``outbox.py``, ``outbox_view.py``, ``outbox_marker.py``), degraded reads from the local cache
(``degraded.py``), and the wrapper that puts them together (``resilient.py``)."""
