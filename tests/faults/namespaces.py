"""Private mount namespaces for the read-only cases: root ignores file modes, so a read-only
file system (a tmpfs or bind mount remounted ``ro`` inside ``unshare -m``) is the real trigger."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest


def unshare_works() -> bool:
    """True when this process may make a mount namespace and mount a tmpfs in it."""
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", "mount -t tmpfs none /mnt && umount /mnt"],
        capture_output=True,
    )
    return probe.returncode == 0


# Skipped only outside CI: under CI=true a machine without mount namespaces fails these tests.
needs_unshare = pytest.mark.skipif(
    os.environ.get("CI") != "true" and not unshare_works(),
    reason="needs unshare -m and tmpfs mounts (root)",
)
