"""exits: the fill poll. Venue fills since the cursor go through the one door (`operations.fills.ingest`), which
records them and applies their consequence: a stop, take-profit or exit fill that brings a position to zero closes
it through `operations.close`, cancelling its other protective order on the venue in the same run.

A position already flat in the ledger but still exposed in the registry (its closing fill was recorded by a path
that stopped before the close, e.g. a crash) is closed here too, by the same close operation.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from lifecycle.fills import PositionFacts, consequence
from operations.close import close_position
from operations.context import DaemonContext
from operations.exit_order import settle_exits
from operations.fills import ingest
from specs.lifecycle import Event

log = logging.getLogger(__name__)

FILL_LOOKBACK = timedelta(minutes=5)


def fills_window_start(ctx: DaemonContext) -> datetime | None:
    """Where to read venue fills from: a lookback before the cursor, because a fill stamped in the cursor's own
    millisecond may be published late; the ledger's unique fill ids make re-reading harmless."""
    return ctx.fills_cursor - FILL_LOOKBACK if ctx.fills_cursor else None


def close_flat_positions(ctx: DaemonContext) -> list[str]:
    closed: list[str] = []
    for pos in ctx.registry.active_positions():
        if consequence(PositionFacts(pos.state, pos.remaining_qty, True)) is Event.POSITION_CLOSED:
            close_position(ctx, pos.uid, cause="closing fills brought the quantity to zero", reason="exits")
            closed.append(pos.uid)
    return closed


def run(ctx: DaemonContext) -> None:
    fills = ctx.venue.fills_since(fills_window_start(ctx))
    if fills:
        ctx.recent_fills = tuple(fills)
        ctx.fills_cursor = max(f.time for f in fills)
    ingest(ctx, fills, source="exits")
    close_flat_positions(ctx)
    settle_exits(ctx)
