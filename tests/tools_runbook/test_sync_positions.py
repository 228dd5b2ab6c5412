from __future__ import annotations

import socket
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from simulator.models import SimOrder
from tests.tools_runbook.conftest import Env, registry_dump, run_tool, write_config


def _stops(env: Env, symbol: str) -> list[SimOrder]:
    return [o for o in env.sim.open_orders() if o.symbol == symbol and o.order_type == "stp" and o.reduce_only]


def test_orphan_dry_run_then_execute_then_idempotent(env: Env) -> None:
    env.sim.open_position_direct("PF_XBTUSD", "long", Decimal("0.01"))
    before_db, before_venue = registry_dump(env.db), env.venue_state()

    dry = run_tool("sync_positions", *env.args("--confirm-wait-s", "0"))
    assert dry.code == 1
    assert "would import orphan PF_XBTUSD long 0.01" in dry.out
    assert registry_dump(env.db) == before_db and env.venue_state() == before_venue

    done = run_tool("sync_positions", *env.args("--confirm-wait-s", "0", "--execute", "--json"))
    assert done.code == 0, done.err
    doc = done.json()
    assert [o["symbol"] for o in doc["orphans"]] == ["PF_XBTUSD"] and not doc["failed"]
    (stop,) = _stops(env, "PF_XBTUSD")
    assert stop.side == "sell" and stop.size == Decimal("0.01")
    assert stop.stop_price is not None and stop.stop_price < env.sim.quote("PF_XBTUSD").mark
    (pos,) = env.registry().active_positions()
    assert (pos.symbol_key, pos.side, pos.remaining_qty, pos.state) == (
        "PF_XBTUSD",
        "long",
        Decimal("0.01"),
        "PROTECTED",
    )
    assert pos.sl_order_id == stop.order_id and pos.origin == "imported"

    after_db, after_venue = registry_dump(env.db), env.venue_state()
    again = run_tool("sync_positions", *env.args("--confirm-wait-s", "0", "--execute"))
    assert again.code == 0 and "in sync" in again.out
    assert registry_dump(env.db) == after_db and env.venue_state() == after_venue


def test_phantom_closed_only_with_execute(env: Env) -> None:
    reg = env.registry()
    pos = reg.import_position(
        symbol="PF_ETHUSD", side="short", qty=Decimal("0.5"), entry_price=Decimal(3200), cause="t"
    )
    reg.close()
    before = registry_dump(env.db)

    dry = run_tool("sync_positions", *env.args("--confirm-wait-s", "0", "--json"))
    assert dry.code == 1 and dry.json()["phantoms"] == [pos.uid]
    assert registry_dump(env.db) == before

    done = run_tool("sync_positions", *env.args("--confirm-wait-s", "0", "--execute"))
    assert done.code == 0 and f"closed phantom {pos.uid}" in done.out
    assert env.registry().get(pos.uid).state == "CLOSED"
    after = registry_dump(env.db)
    assert run_tool("sync_positions", *env.args("--confirm-wait-s", "0", "--execute")).code == 0
    assert registry_dump(env.db) == after


@pytest.mark.parametrize("tool", ["sync_positions", "recover_sl_order_ids", "backfill_historical_data"])
def test_live_keys_refused_before_any_network_call(env: Env, tmp_path: Path, tool: str) -> None:
    live = write_config(tmp_path / "live.toml", "https://futures.kraken.com", db=env.db, mode="live")
    trap = socket.socket()  # every proxy variable points here: any HTTP attempt would knock on it
    trap.bind(("127.0.0.1", 0))
    trap.listen(8)
    trap.settimeout(0.2)
    proxy = f"http://127.0.0.1:{trap.getsockname()[1]}"
    proxies = {k: proxy for k in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy")}
    try:
        run = run_tool(tool, "--config", str(live), "--db", str(env.db), "--execute", env=proxies)
        assert run.code == 3
        assert "I_UNDERSTAND_LIVE=1" in run.err and run.out == ""
        with pytest.raises(TimeoutError):
            trap.accept()
    finally:
        trap.close()
    assert not env.db.exists()


def test_execute_stamps_its_rows_with_the_venues_time_not_the_hosts(env: Env) -> None:
    """The daemon stamps every registry row with the venue's time (lifecycle.clock.VenueClock) and judges its windows
    on it (the stop churn bound's hour); a tool writing with --execute does the same, anchored by the snapshot it
    takes. Before, it stamped the host's time: with the host two hours ahead of the venue, the stop it placed was two
    hours in the daemon's future, counted in the churn window for three hours instead of one."""
    env.clock.set(env.clock.now() - timedelta(hours=2))  # the venue two hours behind the host
    env.sim.open_position_direct("PF_XBTUSD", "long", Decimal("0.01"))
    done = run_tool("sync_positions", *env.args("--confirm-wait-s", "0", "--execute"))
    assert done.code == 0, done.err
    (pos,) = env.registry().active_positions()
    [stop] = [o for o in env.registry().orders(pos.uid) if o.purpose == "stop"]
    for stamp in (pos.created, stop.created):
        assert stamp is not None and abs(stamp - env.clock.now()) < timedelta(minutes=1)
