"""Which secret files others can read: worth a warning at start, not a refusal.

Kubernetes mounts secrets 0644 unless told otherwise (`defaultMode: 0400`), and some set-ups need group read
(fsGroup), so refusing to start would break working deployments; saying so once lets the owner decide.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path


def readable_by_others(paths: Iterable[Path]) -> list[str]:
    """`path (mode)` for each file that its group or anyone else may read; unreadable paths are skipped."""
    loose = []
    for path in paths:
        try:
            mode = os.stat(path).st_mode  # follows symlinks: the mode of the file itself counts
        except OSError:
            continue
        if mode & (stat.S_IRGRP | stat.S_IROTH):
            loose.append(f"{path} ({stat.filemode(mode)})")
    return loose
