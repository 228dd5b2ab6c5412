"""The stop churn bound holds whatever the host clock does (DST seeds 1016, 1223, 1317, 1868, 2149, 2152, 2451, 2500,
2554, 2573, 2596, 2772, 2982: J5 `stop_churn` after the host clock stepped forward by an hour and back).

The bound counts a position's stop placements of the last hour. Counted on the host clock, an hour's step forward
made the earlier placements look old and the planner placed as many again; once the clock was corrected, the joint
invariant J5 counted them all within one hour. The daemon's clock is now the venue's time (each snapshot's server
time, advanced by a monotonic clock between snapshots: `lifecycle.clock.VenueClock`), so a host step changes
neither the stamps of the placements nor the window they are counted in. Before a process's first snapshot (its
startup snapshot failed) the clock is the host's, and the window ends no later than the newest placement
(`lifecycle.clock.window_end`)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from dst.harness import World, daemon_step
from dst.incidents import enter
from exchange.errors import VenueUnavailable
from lifecycle.values import AccountSnapshot

ETH = "PF_ETHUSD"
HOUR = timedelta(hours=1)


def _stop_placements(w: World, uid: str) -> list[datetime]:
    """The venue's own log (true time) of the stops it accepted for `uid`."""
    return [o.time for o in w.sim.order_log if o.cli_ord_id and o.cli_ord_id.startswith(f"{uid}-stop-")]


@pytest.mark.parametrize(
    "restart", ["none", "while_skewed", "snapshots_failing"], ids=["same_process", "restart", "restart_unanchored"]
)
@pytest.mark.parametrize("step", [HOUR, 2 * HOUR], ids=["1h", "2h"])
def test_a_host_clock_step_does_not_defeat_the_stop_churn_bound(
    tmp_path: Path, step: timedelta, restart: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = World(1016, tmp_path)
    try:
        limit = w.ctx.limits.max_replacements_per_hour
        uid = enter(w, "long", ETH)
        w.dropping[ETH] = 40  # the venue cancels every stop on the symbol, slice after slice
        churn: list[int] = []

        def steps(n: int) -> None:
            for _ in range(n):
                daemon_step(w)
                joint = w.ctx.last_joint
                churn.append(joint.counters()["stop_churn"] if joint is not None else 0)

        steps(8)  # the bound is reached: STOP_CHURN_LIMIT, no more placements this hour
        w.daemon_clock.offset = step  # NTP, a resumed VM, an operator: the host clock jumps ahead
        # "snapshots_failing": the new process's startup snapshot and the next ones fail, so its clock stays the
        # host's for 3 slices, in which protect runs (and the venue keeps dropping the stops).
        failures = [4 if restart == "snapshots_failing" else 0]
        real = w.faults.snapshot

        def failing(fills_since: datetime | None) -> AccountSnapshot:
            if failures[0] > 0:
                failures[0] -= 1
                raise VenueUnavailable("snapshot: HTTP 500 (test)")
            return real(fills_since)

        monkeypatch.setattr(w.faults, "snapshot", failing)
        if restart != "none":
            w.restart()
            assert not w.down
        steps(8)
        assert failures == [0]
        w.daemon_clock.offset = timedelta(0)  # and is corrected
        steps(4)

        placed = sorted(_stop_placements(w, uid))
        worst = max(sum(1 for t in placed if start <= t < start + HOUR) for start in placed)
        assert worst <= limit, f"{worst} stop placements within one real hour (limit {limit}): {placed}"
        assert churn == [0] * len(churn), churn  # J5 never counts more than the bound
    finally:
        w.close()
