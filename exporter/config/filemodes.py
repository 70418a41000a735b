"""Which secret files someone other than the exporter can read: worth a warning at start, not a refusal.

"Someone other": any user (others may read), or a group the exporter is not itself in. A file readable by
the exporter's own group is not flagged: that is how Kubernetes lets a non-root pod read a mounted secret
(`fsGroup` plus `defaultMode: 0440`), and warning there would teach everyone to ignore the warning.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path


def readable_by_others(paths: Iterable[Path]) -> list[str]:
    """`path (mode)` for each file that others or a foreign group may read; unreadable paths are skipped."""
    own_groups = {os.getegid(), *os.getgroups()}
    loose = []
    for path in paths:
        try:
            st = os.stat(path)  # follows symlinks: the mode of the file itself counts
        except OSError:
            continue
        if st.st_mode & stat.S_IROTH or (st.st_mode & stat.S_IRGRP and st.st_gid not in own_groups):
            loose.append(f"{path} ({stat.filemode(st.st_mode)})")
    return loose
