"""operations.account_log over the simulator's own account log (SimVenue, in process) and a real registry file:
idempotent by entry id, attribution when the fill arrives later, funding by symbol and time, a venue failure
leaves the cursor where it was."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from exchange.errors import VenueUnavailable
from lifecycle.account_log import AccountLogEntry, ChargeRow
from lifecycle.clock import FakeClock
from lifecycle.values import OrderRequest, OrderType, Side, VenueFill
from operations import account_log
from operations.trades import load_books, load_unattributed_charges
from simulator.engine import SimConfig, Simulator
from simulator.venue import SimVenue
from specs.lifecycle import Event
from store import charges
from store.registry import Registry


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[tuple[Simulator, SimVenue, Registry, FakeClock]]:
    clock = FakeClock()
    sim = Simulator(SimConfig(seed=5, history_minutes=30, funding_rate_hourly=Decimal("0.0001")), clock=clock)
    reg = Registry.open(tmp_path / "reg.db", clock)
    yield sim, SimVenue(sim), reg, clock
    reg.close()


def _market(venue: SimVenue, coid: str, size: str, side: Side = Side.BUY) -> None:
    result = venue.place_order(OrderRequest("PF_XBTUSD", side, OrderType.MARKET, Decimal(size), coid))
    assert result.fills, result


def test_fees_wait_for_their_fill_then_funding_finds_the_position(
    parts: tuple[Simulator, SimVenue, Registry, FakeClock],
) -> None:
    sim, venue, reg, clock = parts
    _market(venue, "ours-1", "0.01")
    first = account_log.ingest(reg, venue, clock)
    assert (first.new_charges, first.unattributed) == (1, 1)  # the fee is read before its fill is in the ledger
    assert [e.kind for e in load_unattributed_charges()] == ["fee"]  # account money meanwhile, in no trade

    pos = reg.open_intent(symbol="PF_XBTUSD", side="long", target_qty=Decimal("0.01"), stop_price=None, cause="t")
    [fill] = venue.fills_since(None)
    reg.record_venue_fill(pos.uid, fill, is_entry=True)
    second = account_log.ingest(reg, venue, clock)
    assert (second.entries, second.new_charges, second.attributed_later, second.unattributed) == (0, 0, 1, 0)

    sim.advance(3600)  # a full hour: the simulator books funding on the open long
    third = account_log.ingest(reg, venue, clock)
    assert third.new_charges == 1 and third.unattributed == 0
    [book] = load_books()
    kinds = sorted(c.kind for c in book.charges)
    assert kinds == ["fee", "funding"]
    fee = next(c.amount for c in book.charges if c.kind == "fee")
    expected_fee = -(fill.size * fill.price * sim.config.taker_fee)
    assert fee == expected_fee
    funding = next(c.amount for c in book.charges if c.kind == "funding")
    assert funding < 0  # a long pays when the rate is positive

    again = account_log.ingest(reg, venue, clock)
    assert (again.entries, again.new_charges) == (0, 0)
    assert len(charges.rows(reg.db, "fee")) == 1 and len(charges.rows(reg.db, "funding")) == 1


class _Down:
    """A venue whose account log is unreachable (the rest is never asked)."""

    def account_log(self, after_id: int | None, limit: int = 500) -> list[AccountLogEntry]:
        raise VenueUnavailable("connection refused")


def test_a_venue_failure_leaves_the_cursor_and_says_incomplete(
    parts: tuple[Simulator, SimVenue, Registry, FakeClock],
) -> None:
    _sim, venue, reg, clock = parts
    _market(venue, "ours-1", "0.01")
    account_log.ingest(reg, venue, clock)
    cursor = charges.last_entry_id(reg.db)
    assert cursor is not None
    down = account_log.ingest(reg, _Down(), clock)  # type: ignore[arg-type]
    assert not down.complete and down.entries == 0
    assert charges.last_entry_id(reg.db) == cursor


def test_pages_are_read_until_a_short_one(parts: tuple[Simulator, SimVenue, Registry, FakeClock]) -> None:
    _sim, venue, reg, clock = parts
    for i in range(4):
        _market(venue, f"ours-{i}", "0.01")
    # 4 fills book 8 entries (cash and position legs); pages of 3 need 3 reads, the last one short
    calls: list[int | None] = []

    class Paged:
        def account_log(self, after_id: int | None, limit: int = 500) -> list[AccountLogEntry]:
            calls.append(after_id)
            return venue.account_log(after_id, 3)

    monkey = pytest.MonkeyPatch()
    monkey.setattr(account_log, "PAGE", 3)
    try:
        read = account_log.ingest(reg, Paged(), clock)  # type: ignore[arg-type]
    finally:
        monkey.undo()
    assert read.complete and read.entries == 8 and read.new_charges == 4
    assert calls == [None, 3, 6]


def test_funding_after_the_ledger_is_flat_is_not_the_positions_even_when_its_close_is_booked_later(
    parts: tuple[Simulator, SimVenue, Registry, FakeClock],
) -> None:
    """DST seed 210857: a hand closed our position and then traded on; the close was booked (closed_ms) at the next
    cycle, after the full hour, and the funding the venue booked at that hour on the hand's position was put on our
    closed trade. Whether a position held the symbol at the funding instant is its ledger's to say."""
    sim, venue, reg, clock = parts
    _market(venue, "ours-1", "0.01")
    pos = reg.open_intent(symbol="PF_XBTUSD", side="long", target_qty=Decimal("0.01"), stop_price=None, cause="t")
    [entry] = venue.fills_since(None)
    reg.record_venue_fill(pos.uid, entry, is_entry=True)
    reg.apply(pos.uid, Event.ENTRY_FILLED, cause="t")
    sim.advance(30)
    _market(venue, "hand-1", "0.01", Side.SELL)  # a hand closes our long...
    sim.advance(30)
    _market(venue, "hand-2", "0.01", Side.SELL)  # ...and opens its own short
    [close] = [f for f in venue.fills_since(None) if f.client_order_id == "hand-1"]
    reg.record_venue_fill(pos.uid, close, is_entry=False)
    sim.advance(3600)  # a full hour (the simulator's clock is the registry's): funding booked on the hand's short
    reg.apply(pos.uid, Event.POSITION_CLOSED, cause="t")  # booked after the funding instant
    [booked] = [e for e in venue.account_log(None) if e.realized_funding]
    closed = reg.get(pos.uid).closed
    assert closed is not None and closed > booked.time
    account_log.ingest(reg, venue, clock)
    funding = charges.rows(reg.db, "funding")
    assert len(funding) == 1
    assert funding == [(funding[0][0], None)]  # nobody's: the ledger held nothing then


def test_funding_at_a_reversals_instant_is_the_position_carried_into_it(
    parts: tuple[Simulator, SimVenue, Registry, FakeClock],
) -> None:
    """A backtest's bar boundary is a funding instant, and the jobs run at it: the engine books the funding on the
    position it holds (after the step's triggers, before anything the jobs send), then a strategy exit closes that
    position and the tick enters the next one, all in the funding's millisecond. The funding is the first one's."""
    _sim, _venue, reg, clock = parts
    hour = clock.now().replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)

    def fill(uid: str, fid: str, side: Side, at: datetime, *, is_entry: bool) -> None:
        f = VenueFill(fid, f"o-{fid}", None, "PF_XBTUSD", side, Decimal("0.01"), Decimal(60000), at)
        reg.record_venue_fill(uid, f, is_entry=is_entry)

    first = reg.open_intent(symbol="PF_XBTUSD", side="long", target_qty=Decimal("0.01"), stop_price=None, cause="t")
    fill(first.uid, "f1", Side.BUY, hour - timedelta(minutes=30), is_entry=True)
    fill(first.uid, "f2", Side.SELL, hour, is_entry=False)  # the exit, in the funding's millisecond
    reg.apply(first.uid, Event.ENTRY_FILLED, cause="t")
    clock.advance((hour - clock.now()).total_seconds())  # the jobs of the funding instant
    reg.apply(first.uid, Event.POSITION_CLOSED, cause="t")
    second = reg.open_intent(symbol="PF_XBTUSD", side="short", target_qty=Decimal("0.01"), stop_price=None, cause="t")
    fill(second.uid, "f3", Side.SELL, hour, is_entry=True)  # the reversal's entry, the same millisecond
    funding = ChargeRow(1, "funding", Decimal("-0.5"), hour, "PF_XBTUSD", None)
    charges.record(reg.db, [funding], through_entry_id=1, now_ms=1)
    [(amount, owner)] = charges.rows(reg.db, "funding")
    pk = reg.db.execute_sql('SELECT "id" FROM "position" WHERE "uid" = ?', (first.uid,)).fetchone()[0]  # type: ignore[no-untyped-call]
    assert (amount, owner) == (Decimal("-0.5"), pk)


def test_a_fee_without_a_fill_is_nobodys_even_while_a_position_holds_its_symbol(
    parts: tuple[Simulator, SimVenue, Registry, FakeClock],
) -> None:
    """A fee entry the log books without an execution (no fill of ours can explain it) is account money in no
    trade: it is never given to whichever position holds the contract at that time, as funding would be."""
    sim, venue, reg, clock = parts
    _market(venue, "ours-1", "0.01")
    pos = reg.open_intent(symbol="PF_XBTUSD", side="long", target_qty=Decimal("0.01"), stop_price=None, cause="t")
    [entry] = venue.fills_since(None)
    reg.record_venue_fill(pos.uid, entry, is_entry=True)
    sim.advance(60)
    fee = ChargeRow(999, "fee", Decimal("-1.5"), clock.now(), "PF_XBTUSD", None)
    charges.record(reg.db, [fee], through_entry_id=999, now_ms=1)
    assert charges.rows(reg.db, "fee") == [(Decimal("-1.5"), None)]
