"""recover_sl_order_ids and check_tp_coverage over one imported position with a stop placed by hand."""

from __future__ import annotations

from decimal import Decimal

from store.registry import PositionView
from tests.tools_runbook.conftest import Env, registry_dump, run_tool


def _position_with_unlinked_stop(env: Env, *, stop: bool = True) -> tuple[PositionView, str | None]:
    env.sim.open_position_direct("PF_XBTUSD", "long", Decimal("0.01"))
    order_id = None
    if stop:
        placed = env.sim.place_order(
            symbol="PF_XBTUSD", side="sell", order_type="stp", size=Decimal("0.01"), stop_price=Decimal(60000),
            reduce_only=True,
        )  # fmt: skip
        assert placed.order is not None
        order_id = placed.order.order_id
    reg = env.registry()
    pos = reg.import_position(
        symbol="PF_XBTUSD", side="long", qty=Decimal("0.01"), entry_price=Decimal(65000), cause="t"
    )
    reg.close()
    return pos, order_id


def test_recover_relinks_only_with_execute_and_once(env: Env) -> None:
    pos, stop_id = _position_with_unlinked_stop(env)
    before_db, before_venue = registry_dump(env.db), env.venue_state()

    dry = run_tool("recover_sl_order_ids", *env.args())
    assert dry.code == 1 and f"would relink {pos.uid} PF_XBTUSD: stop - -> {stop_id}" in dry.out
    assert registry_dump(env.db) == before_db and env.venue_state() == before_venue

    done = run_tool("recover_sl_order_ids", *env.args("--execute", "--json"))
    assert done.code == 0 and done.json()["relinked"] == [pos.uid]
    after = env.registry().get(pos.uid)
    assert after.sl_order_id == stop_id and after.state == "PROTECTED"
    assert env.venue_state() == before_venue  # relinking never sends an order

    snapshot = registry_dump(env.db)
    again = run_tool("recover_sl_order_ids", *env.args("--execute"))
    assert again.code == 0 and "every exposed position is linked" in again.out
    assert registry_dump(env.db) == snapshot

    covered = run_tool("check_tp_coverage", *env.args())
    assert covered.code == 0 and f"SL {stop_id} (live)" in covered.out and "COVERED" in covered.out


def test_recover_reports_a_position_with_no_stop_anywhere(env: Env) -> None:
    pos, _ = _position_with_unlinked_stop(env, stop=False)
    run = run_tool("recover_sl_order_ids", *env.args("--execute", "--json"))
    assert run.code == 1
    assert run.json()["missing_stop"] == [{"position": pos.uid, "symbol": "PF_XBTUSD"}]
    assert env.registry().get(pos.uid).sl_order_id is None
    gap = run_tool("check_tp_coverage", *env.args("--json"))
    assert gap.code == 1 and gap.json()["positions"][0]["gaps"] == ["no stop-loss recorded"]


def test_coverage_flags_a_recorded_stop_the_venue_no_longer_has(env: Env) -> None:
    pos, stop_id = _position_with_unlinked_stop(env)
    reg = env.registry()
    reg.set_protection(pos.uid, sl_order_id="gone-0001", tp_order_id=None)
    reg.close()
    offline = run_tool("check_tp_coverage", *env.args("--offline", "--json"))
    assert offline.code == 0 and offline.json()["checked_venue"] is False  # the registry alone cannot tell
    online = run_tool("check_tp_coverage", *env.args("--json"))
    assert online.code == 1
    assert online.json()["positions"][0]["gaps"] == ["stop-loss gone-0001 not live on the venue"]
    fixed = run_tool("recover_sl_order_ids", *env.args("--execute"))
    assert fixed.code == 0 and f"gone-0001 -> {stop_id}" in fixed.out


def test_coverage_expects_take_profit_when_configured(env: Env) -> None:
    pos, stop_id = _position_with_unlinked_stop(env)
    reg = env.registry()
    reg.set_protection(pos.uid, sl_order_id=stop_id)
    reg.close()
    text = env.config.read_text().replace('timeframe = "1m"\n', 'timeframe = "1m"\n[risk]\ntake_profit_r = 2\n')
    env.config.write_text(text)
    run = run_tool("check_tp_coverage", *env.args())
    assert run.code == 1 and "no take-profit recorded" in run.out and f"SL {stop_id} (live)" in run.out
