"""The operator's pause of new entries (`/pause`, `/resume`): durable, logged with who asked, read every tick.

Only new entries stop. Exits, stop-loss maintenance and reconciliation never look at it: a paused daemon still
protects and closes what it holds, which is the point of pausing instead of stopping it.

The bot's thread writes and the jobs' thread reads, so the state lives behind a lock; the registry row is written
before the in-memory state changes, so a crash never leaves the daemon paused with no record of it (or the other
way round) and a restart comes back in the state the operator left it.
"""

from __future__ import annotations

import threading

import peewee as pw

from lifecycle.clock import Clock, to_ms
from lifecycle.events import Ev, emit
from store import pause as store

PAUSED_LABEL = "paused_operator"


class EntryPause:
    def __init__(self, db: pw.Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock
        self._lock = threading.Lock()
        self._state = store.load(db)

    @property
    def paused(self) -> bool:
        with self._lock:
            return self._state.paused

    @property
    def state(self) -> store.PauseRecord:
        with self._lock:
            return self._state

    def set(self, paused: bool, *, by: str) -> bool:
        """Pause (or resume) new entries on behalf of `by`. False when it already was: nothing written or logged."""
        with self._lock:
            if self._state.paused == paused:
                return False
            self._state = store.record(self._db, paused=paused, by=by, at_ms=to_ms(self._clock.now()))
        emit(Ev.ENTRIES_PAUSED if paused else Ev.ENTRIES_RESUMED, by=by)
        return True

    def label(self, safety_state: str) -> str:
        """The CYCLE_SUMMARY `state`: the safety state, with the operator's pause added when it is on."""
        if not self.paused:
            return safety_state
        return PAUSED_LABEL if safety_state == "trading" else f"{safety_state},{PAUSED_LABEL}"
