"""Joint invariants (registry x venue): the pure evaluation of `specs.reconciliation.JOINT_INVARIANTS`.

Reconciliation calls `evaluate` every cycle, after its actions ran, with the snapshot it already took (no extra
REST call) and what the registry says about the orders and fills in it. A finding counts only once it has lasted
longer than its invariant's grace (consecutive cycles); the memory carrying those streaks is a value passed in and
returned. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from lifecycle.protection import live_stops
from lifecycle.stops import stop_problem
from lifecycle.values import AccountSnapshot, OrderStatus, RegistryPosition, VenueFill
from specs.lifecycle import PROTECTABLE_STATES, TERMINAL_STATES
from specs.reconciliation import JOINT_FIELDS, JOINT_INVARIANTS


@dataclass(frozen=True)
class OrderRow:
    """One of our order rows as the registry holds it."""

    client_order_id: str
    venue_order_id: str | None
    uid: str
    position_state: str
    status: str


@dataclass(frozen=True)
class JointInputs:
    positions: Sequence[RegistryPosition]  # non-terminal positions, after this cycle's actions
    rows: Sequence[OrderRow]  # rows named by the snapshot's open orders, plus every row recorded `open`
    snapshot: AccountSnapshot
    unbooked: Sequence[VenueFill]  # snapshot fills of ours / on held symbols the ledger still lacks
    marks: Mapping[str, Decimal]  # the last marks the protect job read (empty: the side check is skipped)
    stop_placements: Mapping[str, int]  # per position, in the last hour
    churn_limit: int
    max_stop_distance_pct: Decimal = Decimal(25)


@dataclass(frozen=True)
class Finding:
    field: str
    key: str
    detail: str


@dataclass(frozen=True)
class JointMemory:
    streaks: Mapping[tuple[str, str], int] = field(default_factory=dict)


@dataclass(frozen=True)
class JointReport:
    counts: Mapping[str, int]
    findings: tuple[Finding, ...]  # past their grace
    pending: tuple[Finding, ...]  # within their grace (not counted yet)

    def counters(self) -> dict[str, int]:
        return {f: int(self.counts.get(f, 0)) for f in JOINT_FIELDS}


GRACE = {j.field: j.grace_cycles for j in JOINT_INVARIANTS}


def evaluate(inputs: JointInputs, memory: JointMemory | None = None) -> tuple[JointReport, JointMemory]:
    memory = memory or JointMemory()
    raw = [*_stray_orders(inputs), *_unprotected(inputs), *_unbooked(inputs), *_drift(inputs), *_churn(inputs)]
    streaks: dict[tuple[str, str], int] = {}
    counted: list[Finding] = []
    pending: list[Finding] = []
    for f in raw:
        key = (f.field, f.key)
        streak = memory.streaks.get(key, 0) + 1
        streaks[key] = streak
        (counted if streak > GRACE[f.field] else pending).append(f)
    counts = {name: sum(1 for f in counted if f.field == name) for name in JOINT_FIELDS}
    return JointReport(counts, tuple(counted), tuple(pending)), JointMemory(streaks)


def _owner_index(rows: Sequence[OrderRow]) -> dict[str, OrderRow]:
    index: dict[str, OrderRow] = {}
    for r in rows:
        index[r.client_order_id] = r
        if r.venue_order_id:
            index[r.venue_order_id] = r
    return index


def _stray_orders(inputs: JointInputs) -> list[Finding]:
    owners = _owner_index(inputs.rows)
    held = {p.symbol_key for p in inputs.positions if p.state not in TERMINAL_STATES}
    adopted = {i for p in inputs.positions for i in (p.sl_order_id, p.tp_order_id) if i}
    out: list[Finding] = []
    for o in inputs.snapshot.open_orders:
        if o.status is not OrderStatus.OPEN:
            continue
        row = owners.get(o.client_order_id or "") or owners.get(o.order_id)
        if row is not None and row.position_state in TERMINAL_STATES:
            out.append(Finding("stray_venue_orders", o.order_id, f"{o.symbol} order of {row.position_state} {row.uid}"))
        elif row is None and o.reduce_only and o.symbol in held and o.order_id not in adopted:
            out.append(Finding("stray_venue_orders", o.order_id, f"{o.symbol} reduce-only order of no position"))
    return out


def _unprotected(inputs: JointInputs) -> list[Finding]:
    venue_held = {vp.symbol for vp in inputs.snapshot.positions if vp.size > 0}
    out: list[Finding] = []
    for p in inputs.positions:
        if p.state not in PROTECTABLE_STATES or p.remaining_qty <= 0 or p.symbol_key not in venue_held:
            continue
        stops = [
            s
            for s in live_stops(p, inputs.snapshot.open_orders)
            if s.order_id == p.sl_order_id or (s.client_order_id or "").startswith(f"{p.uid}-stop-")
        ]
        if len(stops) != 1:
            out.append(Finding("unprotected_exposure", p.uid, f"{p.symbol_key}: {len(stops)} live stops of its own"))
            continue
        stop = stops[0]
        covered = stop.size - stop.filled
        mark = inputs.marks.get(p.symbol_key)
        problem = None
        if stop.trigger_price is not None and mark is not None:
            problem = stop_problem(p.side, None, stop.trigger_price, mark, inputs.max_stop_distance_pct)
        if covered < p.remaining_qty:
            out.append(Finding("unprotected_exposure", p.uid, f"stop covers {covered} of {p.remaining_qty}"))
        elif problem is not None:
            out.append(Finding("unprotected_exposure", p.uid, problem))
    return out


def _unbooked(inputs: JointInputs) -> list[Finding]:
    return [
        Finding("unbooked_fills", f.fill_id, f"{f.symbol} {f.side.value} {f.size} @ {f.price}") for f in inputs.unbooked
    ]


def _drift(inputs: JointInputs) -> list[Finding]:
    live = {o.order_id for o in inputs.snapshot.open_orders if o.status is OrderStatus.OPEN}
    live_coids = {o.client_order_id for o in inputs.snapshot.open_orders if o.client_order_id}
    out: list[Finding] = []
    for r in inputs.rows:
        on_book = (r.venue_order_id in live) or (r.client_order_id in live_coids)
        if r.status == "open" and not on_book:
            out.append(Finding("order_status_drift", r.client_order_id, "recorded open, not on the venue's book"))
        elif r.status in ("filled", "cancelled", "rejected") and on_book:
            out.append(Finding("order_status_drift", r.client_order_id, f"recorded {r.status}, resting on the book"))
    return out


def _churn(inputs: JointInputs) -> list[Finding]:
    return [
        Finding("stop_churn", uid, f"{n} stop placements in the last hour (limit {inputs.churn_limit})")
        for uid, n in sorted(inputs.stop_placements.items())
        if n > inputs.churn_limit
    ]
