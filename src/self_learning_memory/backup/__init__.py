"""Backups of the embedded store that really round-trip: create, list, verify, restore.

- **create** takes a consistent snapshot while the memory is in use: SQLite's online backup API
  (through apsw) copies the database under one read transaction, so writers in this or other
  processes carry on and the copy is the store as of one instant. The ``sqlite`` format keeps
  that copy; ``json``, ``jsonl`` and ``sql`` are exports read from it (see
  :mod:`.backup_export`). Files may be gzip-compressed. A ``manifest.json`` records the id,
  time, format, counts, schema and package versions, and each file's size and sha256. A backup
  is written into a hidden ``.partial`` directory and renamed when complete, so a crash never
  leaves a half backup that looks whole.
- **verify** checks the manifest, every file's size and checksum, and (deep) that the content
  reads back with the counts the manifest promises.
- **restore** verifies first, rebuilds the store in a staging directory next to the target,
  checks it (integrity, foreign keys, counts, opens with the library's migrations), and only
  then swaps it in. A corrupt backup is refused before anything is overwritten. The target's
  LMDB cache is dropped (it is rebuilt from SQL on use), so it can never serve stale episodes.
  Restore while no process has the target data directory open.

Layout: ``<dest>/<backup_id>/{manifest.json, memory.db[.gz] | memory.json[.gz] | ...}``.
"""

from .create import create_backup
from .listing import list_backups, resolve_backup
from .manifest import (
    BackupCounts,
    BackupFile,
    BackupFormat,
    BackupInfo,
    BackupManifest,
    RestoreReport,
    VerifyReport,
)
from .restore import restore_backup
from .verify import verify_backup

__all__ = [
    "BackupCounts",
    "BackupFile",
    "BackupFormat",
    "BackupInfo",
    "BackupManifest",
    "RestoreReport",
    "VerifyReport",
    "create_backup",
    "list_backups",
    "resolve_backup",
    "restore_backup",
    "verify_backup",
]
