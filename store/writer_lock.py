"""One writing process per registry file: the daemon, or a runbook tool run with `--execute`, never two at once.

SQLite serialises single transactions, not the read-decide-write cycles around them. Two daemons on one registry
would each place entries and stops (duplicate orders); a tool importing orphans while the daemon reconciles could
race it into two active positions for one symbol. The writer takes an exclusive `flock` on `<registry>.lock` for
its lifetime and writes its pid and role there, so a refusal can name the holder. The kernel drops the lock when
the process ends, however it ends (exit, kill -9, power loss): there is nothing stale to clean up, and the file
itself may stay.
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from lifecycle.errors import LifecycleError


class WriterLockError(LifecycleError):
    """The writer lock could not be taken; the message says why and what to do."""


class WriterLockHeld(WriterLockError):
    """Another process writes this registry. `holder` is what it wrote into the lock file (pid and role)."""

    def __init__(self, registry: Path, holder: str) -> None:
        self.registry = registry
        self.holder = holder
        super().__init__(
            f"registry {registry} is in use by another process ({holder or 'holder unknown'}): only one daemon or "
            "--execute tool may write it at a time. Stop the other one first (systemctl stop trading-bot), then "
            "run this again"
        )


@dataclass
class WriterLock:
    """Held until `release()` or the end of the process."""

    path: Path
    _file: IO[str]

    def release(self) -> None:
        if not self._file.closed:
            self._file.close()  # closing the descriptor drops the flock


def lock_path(registry: Path) -> Path:
    return registry.with_name(registry.name + ".lock")


def acquire(registry: Path, role: str) -> WriterLock:
    """Take the writer lock of `registry` without waiting; raise WriterLockHeld when another process has it,
    WriterLockError when the lock file cannot be opened (a missing or read-only folder)."""
    path = lock_path(registry)
    try:
        # "a+" neither truncates (the holder's pid stays readable until we own the lock) nor fails on a new file.
        lock_file = path.open("a+", encoding="utf-8")
    except OSError as exc:
        raise WriterLockError(f"cannot take the writer lock {path}: {exc.strerror}") from None
    try:
        fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock_file.seek(0)
        holder = lock_file.read().strip()
        lock_file.close()
        raise WriterLockHeld(registry, holder) from None
    except BaseException:
        lock_file.close()
        raise
    lock_file.seek(0)
    lock_file.truncate()
    lock_file.write(f"pid {os.getpid()} ({role})\n")
    lock_file.flush()
    return WriterLock(path, lock_file)
