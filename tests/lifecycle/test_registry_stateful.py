"""Model-based test: random positions, legal and illegal events, fills that are partial, duplicated and out of
order, against a small reference model compared after every step (and the registry audit, which must stay
clean for every history the registry accepts)."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, precondition, rule

from lifecycle.clock import FakeClock, to_ms
from lifecycle.errors import GuardFailed, IllegalTransition, OverfillError
from lifecycle.symbols import canonical_key
from lifecycle.units import qty_to_units, units_to_qty
from specs import lifecycle as spec
from store.anchors import audit_and_anchor
from store.audit import run_audit
from store.registry import DuplicateActivePosition, FillOnTerminalPosition, Registry, RegistryUsageError
from tests.lifecycle.helpers import as_event
from tests.safety.properties import Position, check_state

SPELLINGS = [
    "PF_XBTUSD", "btc/usd:usd", "xbtusd", "PF_ETHUSD", "ETH/USD:USD", "PI_XBTUSD", "BTC/USD:BTC", "solusd",
    "FF_XBTUSD_260925", "BTC/USD:USD-260925",
]  # fmt: skip
EVENTS = [*spec.EVENTS, "no_such_event"]


@dataclass
class ModelPosition:
    key: str
    side: str
    state: str
    has_stop: bool = False
    fills: dict[str, tuple[bool, int]] = field(default_factory=dict)  # delivered: fill id -> (is_entry, units)

    @property
    def remaining(self) -> int:
        return sum(u if e else -u for e, u in self.fills.values())

    @property
    def entries(self) -> int:
        return sum(1 for e, _ in self.fills.values() if e)


# The reference model's own reading of each condition, written independently of lifecycle.machine.
def guard_holds(cond: str, p: ModelPosition) -> bool:
    return {
        "": True,
        "has_fills": p.entries > 0,
        "has_no_fills": p.entries == 0,
        "has_stop_order": p.has_stop,
        "has_open_qty": p.remaining > 0,
        "is_flat": p.remaining == 0,
    }[cond]


@dataclass(frozen=True)
class PendingFill:
    fill_id: str
    uid: str
    coid: str
    side: str
    is_entry: bool
    units: int
    price: Decimal
    offset_s: int


class RegistryVsModel(RuleBasedStateMachine):
    positions = Bundle("positions")

    @initialize()
    def setup(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="regsm-"))
        self.clock = FakeClock()
        self.reg = Registry.open(self.dir / "reg.db", self.clock)
        self.model: dict[str, ModelPosition] = {}
        self.pending: list[PendingFill] = []
        self.delivered: list[PendingFill] = []
        self.n = 0

    def teardown(self) -> None:
        if hasattr(self, "reg"):
            self.reg.close()
            shutil.rmtree(self.dir, ignore_errors=True)

    def _active_on(self, key: str) -> bool:
        return any(p.key == key and p.state in spec.ACTIVE_STATES for p in self.model.values())

    @rule(target=positions, symbol=st.sampled_from(SPELLINGS), side=st.sampled_from(["long", "short"]))
    def open_intent(self, symbol: str, side: str) -> str:
        key = canonical_key(symbol)
        self.clock.advance(1)
        if self._active_on(key):
            with pytest.raises(DuplicateActivePosition):
                self.reg.open_intent(symbol=symbol, side=side, target_qty=Decimal(1), stop_price=None, cause="t")
            return "missing"
        view = self.reg.open_intent(symbol=symbol, side=side, target_qty=Decimal(1), stop_price=None, cause="t")
        self.model[view.uid] = ModelPosition(key, side, "PENDING_ENTRY")
        return view.uid

    @rule(target=positions, symbol=st.sampled_from(SPELLINGS), units=st.integers(1, 20))
    def import_position(self, symbol: str, units: int) -> str:
        key = canonical_key(symbol)
        self.clock.advance(1)
        if self._active_on(key):
            with pytest.raises(DuplicateActivePosition):
                self.reg.import_position(
                    symbol=symbol, side="long", qty=units_to_qty(units), entry_price=Decimal(100), cause="t"
                )
            return "missing"
        view = self.reg.import_position(
            symbol=symbol, side="long", qty=units_to_qty(units), entry_price=Decimal(100), cause="t"
        )
        self.model[view.uid] = ModelPosition(key, "long", "OPEN", fills={f"import:{view.uid}": (True, units)})
        return view.uid

    @rule(uid=positions, event=st.sampled_from(EVENTS))
    def apply(self, uid: str, event: str) -> None:
        if uid not in self.model:
            return
        p = self.model[uid]
        self.clock.advance(1)
        target = spec.TABLE.get((p.state, event))
        if target is None:
            with pytest.raises(IllegalTransition) as exc:
                self.reg.apply(uid, as_event(event), cause="random")
            assert not isinstance(exc.value, GuardFailed)
            return
        cond = next(t.condition for t in spec.TRANSITIONS if (t.source, t.event) == (p.state, event))
        if not guard_holds(cond, p):
            with pytest.raises(GuardFailed):
                self.reg.apply(uid, as_event(event), cause="random")
            return
        view = self.reg.apply(uid, as_event(event), cause="random")
        assert view.state == target
        p.state = target

    @rule(uid=positions, data=st.data())
    def apply_legal(self, uid: str, data: st.DataObject) -> None:
        """Random events rarely hit a legal edge; this one picks among the spec's edges out of the model state."""
        if uid not in self.model:
            return
        legal = [e for (s, e) in spec.TABLE if s == self.model[uid].state]
        if legal:
            self.apply(uid, data.draw(st.sampled_from(legal)))

    @rule(uid=positions, leave=st.integers(0, 2))
    def venue_exits_nearly_all(self, uid: str, leave: int) -> None:
        """An exit for all but `leave` units: the flat / not-quite-flat boundary is where guards go wrong."""
        if uid not in self.model or self.model[uid].remaining - leave <= 0:
            return
        self.venue_fills(uid, False, [self.model[uid].remaining - leave], 0)

    @rule(uid=positions, stop=st.booleans())
    def set_protection(self, uid: str, stop: bool) -> None:
        if uid not in self.model:
            return
        p = self.model[uid]
        if stop:
            self.reg.set_protection(uid, sl_order_id=f"sl-{uid}")
            p.has_stop = True
        elif p.state == "PROTECTED":
            with pytest.raises(RegistryUsageError):
                self.reg.set_protection(uid, clear=True)
        else:
            self.reg.set_protection(uid, clear=True)
            p.has_stop = False

    @rule(
        uid=positions,
        is_entry=st.booleans(),
        parts=st.lists(st.integers(1, 10), min_size=1, max_size=3),
        offset=st.integers(-3600, 3600),
    )
    def venue_fills(self, uid: str, is_entry: bool, parts: list[int], offset: int) -> None:
        """The venue fills an order of ours in `parts` (partial fills); they are queued, not yet seen."""
        if uid not in self.model:
            return
        p = self.model[uid]
        buy = (p.side == "long") == is_entry
        side = "buy" if buy else "sell"
        order = self.reg.record_order_intent(
            uid, purpose="entry" if is_entry else "exit", side=side, order_type="market", qty=units_to_qty(sum(parts))
        )
        for units in parts:
            self.n += 1
            self.pending.append(
                PendingFill(f"F{self.n}", uid, order.client_order_id, side, is_entry, units, Decimal(100 + self.n),
                            offset + self.n)
            )  # fmt: skip

    @rule(uid=positions, is_entry=st.booleans(), units=st.integers(1, 10))
    def fill_seen_at_once(self, uid: str, is_entry: bool, units: int) -> None:
        """The common case: one fill of a fresh order, seen right away."""
        if uid not in self.model:
            return
        self.venue_fills(uid, is_entry, [units], 0)
        f = self.pending.pop()
        self._deliver(f)

    def _deliver(self, f: PendingFill) -> None:
        p = self.model[f.uid]
        duplicate = f.fill_id in p.fills
        kwargs = {
            "fill_id": f.fill_id,
            "client_order_id": f.coid,
            "side": f.side,
            "qty": units_to_qty(f.units),
            "price": f.price,
            "fill_time": self.clock.now() + timedelta(seconds=f.offset_s),
        }
        if duplicate:
            assert self.reg.record_fill(**kwargs) is False  # type: ignore[arg-type]
        elif f.is_entry and p.state in spec.TERMINAL_STATES:
            with pytest.raises(FillOnTerminalPosition):
                self.reg.record_fill(**kwargs)  # type: ignore[arg-type]
        elif not f.is_entry and f.units > p.remaining:
            with pytest.raises(OverfillError):
                self.reg.record_fill(**kwargs)  # type: ignore[arg-type]
        else:
            assert self.reg.record_fill(**kwargs) is True  # type: ignore[arg-type]
            p.fills[f.fill_id] = (f.is_entry, f.units)
            self.delivered.append(f)

    @precondition(lambda self: bool(self.pending))
    @rule(i=st.integers(0, 1000), keep=st.booleans())
    def deliver_fill(self, i: int, keep: bool) -> None:
        """Deliver a random queued fill (out of order); `keep` leaves it queued so it arrives again later."""
        f = self.pending[i % len(self.pending)]
        if not keep:
            self.pending.remove(f)
        self._deliver(f)

    @precondition(lambda self: bool(self.delivered))
    @rule(i=st.integers(0, 1000))
    def duplicate_fill(self, i: int) -> None:
        self._deliver(self.delivered[i % len(self.delivered)])

    @invariant()
    def registry_matches_model(self) -> None:
        if not hasattr(self, "reg"):
            return
        for uid, p in self.model.items():
            v = self.reg.get(uid)
            assert (v.state, v.symbol_key, v.side) == (p.state, p.key, p.side)
            assert v.remaining_qty == units_to_qty(p.remaining)
            assert (v.closed is not None) == (p.state in spec.TERMINAL_STATES)
            assert (v.sl_order_id is not None) == p.has_stop
        expected_ids = {fid for p in self.model.values() for fid in p.fills}
        assert self.reg.known_fill_ids() == expected_ids
        assert {v.uid for v in self.reg.active_positions()} == {
            u for u, p in self.model.items() if p.state in spec.ACTIVE_STATES
        }

    @invariant()
    def safety_properties_hold(self) -> None:
        """The hand-written properties of tests/safety (not read from the spec), on the registry's own rows."""
        if not hasattr(self, "reg"):
            return
        for v in self.reg.positions():
            entries = sum(1 for f in self.reg.fills(v.uid) if f["is_entry"])
            units = qty_to_units(v.remaining_qty)
            check_state(Position(v.state, entries, units, has_stop=v.sl_order_id is not None))

    @invariant()
    def audit_is_clean(self) -> None:
        if not hasattr(self, "reg"):
            return
        report = run_audit(self.reg.db)
        assert report.violations_total == 0, report.summary()
        # The daemon's audit from the anchors the previous step left: on a legal history it agrees with the full
        # one, and moves the anchors to the same heads.
        anchored = audit_and_anchor(self.reg.db, to_ms(self.clock.now()), full_every_ms=10**15)
        assert anchored.violations_total == 0, anchored.summary()
        assert anchored.heads == report.heads


TestRegistryVsModel = RegistryVsModel.TestCase
