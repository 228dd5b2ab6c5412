"""protect: every exposed position has a live reduce-only stop within one cycle (and a TP where configured).

A thin schedule: one read of the venue's open orders and marks, then `operations.protection` — the planner
(`lifecycle.protection.plan`) decides and the executor sends — for each OPEN or PROTECTED position. Runs even when
halted: protection is what a halt must never stop.
"""

from __future__ import annotations

from operations import protection
from operations.context import DaemonContext


def run(ctx: DaemonContext) -> None:
    protection.run(ctx)
