"""`memory-cli storage` (alias `st`): status (stats), sync, vacuum, verify, backup, health,
connections, reindex, migrate, rebuild-from-cache. The work is done by ``storage/maintenance.py``
and ``storage/cache_sync.py``; these commands open the memory, call one of them and format the
result.

``status.py`` reads what the store holds and what has it open, ``sync.py`` refreshes the cache,
``maintenance.py`` vacuums, verifies and reindexes, ``migration.py`` copies a memory to another
store and ``rebuild.py`` writes lost episodes back from the cache."""

from __future__ import annotations

import typer

from .. import backup as backup_commands
from . import maintenance, migration, rebuild, status, sync

__all__ = ["app"]

app = typer.Typer(
    help="Inspect and maintain the store and its cache (alias: st).",
    no_args_is_help=True,
)

# in help order
app.command("status")(status.status)
app.command("stats", hidden=True)(status.stats)
app.command("sync")(sync.sync)
app.command("vacuum")(maintenance.vacuum)
app.command("verify")(maintenance.verify)
# `storage backup` is `backup create` itself (same options, help and output).
backup_commands.add_create_command(app, "backup")
app.command("rebuild-from-cache")(rebuild.rebuild_from_cache)
app.command("health")(status.health)
app.command("connections")(status.connections)
app.command("reindex")(maintenance.reindex)
app.command("migrate")(migration.migrate)
