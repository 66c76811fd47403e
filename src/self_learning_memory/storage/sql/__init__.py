"""One SQL layer for the SQL stores: a :class:`~.dialect.Dialect` says how SQLite and PostgreSQL
spell what differs, the store logic is written once as programs (:mod:`.program`) that both a
blocking connection (SQLite, Turso) and an async one (PostgreSQL) run."""
