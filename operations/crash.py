"""Named crash points for the kill -9 tests: `DAEMON_CRASH_AT=after_send:3` exits the process with status 137
(as SIGKILL would) the third time the daemon passes the point named `after_send`.

Unset in production, where `crash_point` is a dictionary lookup and nothing else. The points sit between a
durable write and the venue call that depends on it, the places where a real crash loses the most.

In process (deterministic simulation, dst/): `set_handler(f)` makes every point call `f(name)` instead of reading
the environment, so a test can end the "process" by raising out of the daemon's code at a named point without
leaving the test process. `set_handler(None)` restores the environment hook; production never sets one.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable

ENV_VAR = "DAEMON_CRASH_AT"
POINTS = (
    "after_intent",
    "after_send",
    "after_ack",
    "after_fill",
    "before_stop",
    "after_stop_send",
    "after_stop_recorded",  # the stop's id recorded, the position not yet PROTECTED (two commits)
    "after_exit_requested",  # EXITING, the exit order's intent not yet recorded
)

_lock = threading.Lock()
_passes: dict[str, int] = {}
_handler: Callable[[str], None] | None = None


def set_handler(handler: Callable[[str], None] | None) -> Callable[[str], None] | None:
    """Install an in-process handler for every crash point (None: back to `DAEMON_CRASH_AT`); returns the old one."""
    global _handler
    previous, _handler = _handler, handler
    return previous


def _target() -> tuple[str, int] | None:
    raw = os.environ.get(ENV_VAR, "")
    if not raw:
        return None
    name, _, count = raw.partition(":")
    return name, int(count) if count else 1


def crash_point(name: str) -> None:
    if _handler is not None:
        _handler(name)
        return
    target = _target()
    if target is None or target[0] != name:
        return
    with _lock:
        _passes[name] = _passes.get(name, 0) + 1
        if _passes[name] < target[1]:
            return
    sys.stderr.write(f"crash hook: exiting at {name} (pass {target[1]})\n")
    sys.stderr.flush()
    os._exit(137)
