"""Reading the venue's account log into the registry: fees and funding, paged by entry id from the cursor.

Runs as its own job, on the health schedule but never more often than once every `MIN_INTERVAL_S` real seconds:
the log is a history endpoint with a small budget of its own (Kraken: 100 tokens per 10 minutes, a 500-entry page
costs 3, and the evidence lookups of unknown orders draw on the same bucket), and fees and funding are for the
money view, not for any trading decision, so they can wait. Once a minute is 30 tokens per 10 minutes. The
reconciliation snapshot is untouched (its REST calls per cycle stay what `make bench` measures).

A venue failure is one warning line and the job ends; the cursor has not moved, so the next run reads on from
where this one stopped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from exchange.errors import VenueError
from exchange.venue import Venue
from lifecycle.account_log import PAGE, charges
from lifecycle.clock import Clock, to_ms
from store import charges as store
from store.registry import Registry

log = logging.getLogger(__name__)

MIN_INTERVAL_S = 60.0
MAX_PAGES = 20  # per run: a long-stopped daemon catches up over a few runs instead of one long one


@dataclass(frozen=True)
class AccountLogRead:
    entries: int
    new_charges: int
    attributed_later: int
    unattributed: int
    complete: bool
    """False when a page failed or MAX_PAGES was reached: there is more to read next time."""


def ingest(registry: Registry, venue: Venue, clock: Clock, *, max_pages: int = MAX_PAGES) -> AccountLogRead:
    """Read every account-log entry after the cursor (at most `max_pages` pages) and store its fees and funding."""
    db = registry.db
    after = store.last_entry_id(db)
    entries = new = 0
    complete = False
    for _ in range(max_pages):
        try:
            page = venue.account_log(after, PAGE)
        except VenueError as exc:
            log.warning(
                "account log not read this time (%s: %s); the cursor stays at %s", type(exc).__name__, exc, after
            )
            break
        if not page:
            complete = True
            break
        through = max(e.entry_id for e in page)
        new += store.record(db, charges(page), through_entry_id=through, now_ms=to_ms(clock.now()))
        entries += len(page)
        after = through
        if len(page) < PAGE:
            complete = True
            break
    later, still = store.attribute_pending(db)
    return AccountLogRead(entries, new, later, still, complete)


def interval(health_s: float) -> float:
    return max(health_s, MIN_INTERVAL_S)
