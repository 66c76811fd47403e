"""The PostgreSQL backend (extra ``postgres``): psycopg 3 with an async connection pool.

Import it only when a ``postgresql://`` URL is configured; :func:`..factory.open_store`
turns a missing ``psycopg`` into a :class:`CapabilityUnavailableError` saying how to install it.
"""

from .notify import EpisodeChange
from .storage import PostgresStorage

__all__ = ["EpisodeChange", "PostgresStorage"]
