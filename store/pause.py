"""The operator's pause of new entries, durable in the registry (`entry_pause`, schema version 3).

Raw SQL on purpose: the bot's thread writes it while the jobs' thread uses the peewee models, and a query that
never binds a model cannot disturb what the models point at. One row per change, never edited; the newest row
is the state, so a restart finds it and the table is the record of who paused and resumed, and when.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import peewee as pw

from lifecycle.clock import from_ms


@dataclass(frozen=True)
class PauseRecord:
    paused: bool
    by: str | None
    at: datetime | None


NEVER_PAUSED = PauseRecord(False, None, None)


def load(db: pw.Database) -> PauseRecord:
    """The current state: the newest row, or not paused when nobody ever asked."""
    cursor = db.execute_sql(  # type: ignore[no-untyped-call]
        'SELECT "paused", "by", "at_ms" FROM "entry_pause" ORDER BY "id" DESC LIMIT 1'
    )
    row = cursor.fetchone()
    if row is None:
        return NEVER_PAUSED
    return PauseRecord(bool(row[0]), str(row[1]), from_ms(int(row[2])))


def record(db: pw.Database, *, paused: bool, by: str, at_ms: int) -> PauseRecord:
    """Append one change (committed before it returns)."""
    with db.atomic("IMMEDIATE"):
        db.execute_sql(  # type: ignore[no-untyped-call]
            'INSERT INTO "entry_pause" ("paused", "by", "at_ms") VALUES (?, ?, ?)', (int(paused), by, at_ms)
        )
    return PauseRecord(paused, by, from_ms(at_ms))


def history(db: pw.Database) -> list[PauseRecord]:
    cursor = db.execute_sql(  # type: ignore[no-untyped-call]
        'SELECT "paused", "by", "at_ms" FROM "entry_pause" ORDER BY "id"'
    )
    return [PauseRecord(bool(r[0]), str(r[1]), from_ms(int(r[2]))) for r in cursor.fetchall()]
