"""Refuse secret-bearing files that other local users can read or change (the OpenSSH convention).

An API key that can trade is worth stealing; a config file left at the default 0644 hands it to every account
on the host. We check the mode bits only: ownership and ACLs are the operator's business, the common mistake
is the umask.
"""

from __future__ import annotations

import stat
from pathlib import Path

GROUP_OTHER_BITS = 0o077


def permission_problem(path: Path) -> str | None:
    """A message telling the operator how to fix `path`'s mode, or None when only its owner can use it."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & GROUP_OTHER_BITS == 0:
        return None
    return f"{path} holds secrets but its mode is {mode:04o} (group/others can access it); run: chmod 600 {path}"
