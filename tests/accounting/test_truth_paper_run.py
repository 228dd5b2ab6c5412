"""The end-to-end truth check: a run of the daemon's jobs against the simulator (fees at its maker/taker rates,
hourly funding), through the real ccxt client over HTTP; the account log read into the registry by the
account_log job; then `python -m tools.report` on the registry file. Its net PnL must equal the change of the
simulator account's equity over the run, to the cent: fills, fees and funding, nothing left out or counted twice.
"""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from operations import account_log
from simulator.engine import SimConfig
from store import charges
from tests.daemon.harness import World, world

ROOT = Path(__file__).resolve().parents[2]


def _equity(w: World) -> Decimal:
    a = w.sim.account()
    return a.balance_value + a.pnl


def _cycle(w: World, seconds: float) -> None:
    w.tick()
    w.protect()
    w.advance(seconds)
    w.exits()
    w.reconcile()


def _report(db: Path) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, "-m", "tools.report", "--db", str(db), "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    doc: dict[str, object] = json.loads(proc.stdout)
    return doc


def test_report_net_pnl_equals_the_simulator_equity_change_to_the_cent(tmp_path: Path) -> None:
    # funding ten times the default, so that each position's funding is worth cents within three hours
    config = SimConfig(seed=11, history_minutes=120, funding_rate_hourly=Decimal("0.0001"))
    with world(tmp_path, seed=11, config=config) as w:
        start = _equity(w)
        w.strategy.entries = {"PF_XBTUSD": "long", "PF_ETHUSD": "short"}
        w.strategy.size = {"PF_XBTUSD": Decimal("0.05"), "PF_ETHUSD": Decimal("1")}
        w.strategy.stop_pct = Decimal("0.2")  # wide: the positions live through several funding hours
        for _ in range(2):
            _cycle(w, 60)
        w.strategy.entries = {}
        assert len(w.registry.active_positions()) == 2
        for _ in range(3):  # 3 simulated hours: hourly funding, and the log read while positions are open
            _cycle(w, 3600)
            read = account_log.ingest(w.registry, w.venue, w.clock)
            assert read.complete
        w.strategy.exits = {"PF_XBTUSD": "test over", "PF_ETHUSD": "test over"}
        for _ in range(6):
            _cycle(w, 60)
            if not w.registry.active_positions():
                break
        assert w.registry.active_positions() == [], "the scripted exits did not close the positions"
        final = account_log.ingest(w.registry, w.venue, w.clock)
        assert final.complete and final.unattributed == 0
        again = account_log.ingest(w.registry, w.venue, w.clock)
        assert again.new_charges == 0  # idempotent: reading on from the cursor finds nothing new
        change = _equity(w) - start
        fees = sum(a for a, _owner in charges.rows(w.registry.db, "fee"))
        funding = [a for a, owner in charges.rows(w.registry.db, "funding") if owner is not None]
        db = w.registry.db.database
    # fees, and funding both paid (the long) and received (the short), each large enough that leaving it out
    # would move the net by at least a cent
    assert fees <= Decimal("-0.01"), fees
    assert sum(a for a in funding if a < 0) <= Decimal("-0.01") and sum(a for a in funding if a > 0) >= Decimal("0.01")
    doc = _report(Path(db))
    summary = doc["summary"]
    assert isinstance(summary, dict)
    assert doc["fees_recorded"] is True
    assert Decimal(str(summary["net_window"])) == change.quantize(Decimal("0.01")), (summary, change)
    assert Decimal(str(summary["net_trades"])) == change.quantize(Decimal("0.01"))
    assert summary["trades"] == 2
