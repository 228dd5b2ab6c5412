"""Reconciliation: a pure diff of the registry against one venue snapshot, returning a report and typed actions.

Nothing here does I/O or reads a clock: the daemon passes the registry rows, the ledger's fill ids, the order
map, the snapshot and `now`, then executes the returned actions through the registry. The memory that spans
cycles (suspects awaiting a second sighting, issues already logged) is a value passed in and returned.

Rules (DESIGN §3, reliability §13):
- Only a complete snapshot is classified. A missing or partial one yields `complete=False`, zero counters and
  no actions: a failed query is never read as "flat".
- orphaned and phantom need the same evidence in two consecutive complete snapshots before they are counted
  and acted on; the first sighting is only a suspect. Positions younger than `young_grace` are never phantom.
- Quantities are compared per symbol as signed nets (long +, short −) after applying the venue fills that the
  ledger does not yet hold.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from decimal import Decimal

from lifecycle.fills import FillOwners, OrderOwner, attribute, owners_from
from lifecycle.protection import own_stop
from lifecycle.values import (
    AccountSnapshot,
    OrderStatus,
    PositionSide,
    RegistryPosition,
    Side,
    VenueFill,
    VenueOrder,
)
from specs.lifecycle import ACTIVE_STATES, ENTRY_PENDING_STATES, EXPOSED_STATES, State
from specs.reconciliation import REPORT_FIELDS

PENDING_STATES: frozenset[str] = ENTRY_PENDING_STATES
"""Active states without confirmed exposure (PENDING_ENTRY, ENTRY_OPEN), derived from the spec."""

MAX_SNAPSHOT_SKEW = timedelta(seconds=5)
"""Margin and server time further apart than this mean the parts of the snapshot were not taken together."""

DEFAULT_YOUNG_GRACE = timedelta(seconds=30)


# --- inputs -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderRef:
    """What the registry knows about one of our orders, keyed by its client order id."""

    uid: str
    purpose: str  # entry | stop | take_profit | exit
    venue_order_id: str | None = None


# --- outputs ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApplyFill:
    uid: str
    fill: VenueFill
    is_entry: bool


@dataclass(frozen=True)
class AdoptPending:
    """Record these entry fills (may be empty when the ledger already holds them), then `entry_filled`."""

    uid: str
    fills: tuple[VenueFill, ...]


@dataclass(frozen=True)
class ImportOrphan:
    symbol: str
    side: PositionSide
    qty: Decimal
    entry_price: Decimal
    # The snapshot's server time: the venue position includes every fill stamped at or before it. Not part of the
    # finding's identity (the same orphan seen by two snapshots is one finding).
    as_of: datetime | None = field(default=None, compare=False)


@dataclass(frozen=True)
class ClosePhantom:
    """The venue holds nothing for this position. Pending ones: look the entry up by client order id first
    (`Venue.find_order`) and cancel only if it did not fill; exposed ones: close."""

    uid: str


@dataclass(frozen=True)
class CloseFlat:
    """The ledger (with this cycle's fills) says flat and the venue agrees: `position_closed`."""

    uid: str


@dataclass(frozen=True)
class QtyMismatch:
    """Unexplained difference, signed nets for the symbol (long +, short −). Needs an operator, not a guess."""

    uid: str
    registry_qty: Decimal
    venue_qty: Decimal


@dataclass(frozen=True)
class RelinkStop:
    uid: str
    order_id: str


@dataclass(frozen=True)
class MissingStop:
    """An exposed position without a live stop: the protect job must place one (protective, never blocked)."""

    uid: str


Action = ApplyFill | AdoptPending | ImportOrphan | ClosePhantom | CloseFlat | QtyMismatch | RelinkStop | MissingStop


@dataclass(frozen=True, order=True)
class Issue:
    """One reconciliation finding. `key` is stable across cycles as long as the finding is unchanged."""

    cls: str  # orphaned | phantom | qty_mismatch | qty_synced | pending_adopted | stop_relinked | missing_stop
    symbol: str
    uid: str
    detail: str

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.cls, self.symbol, self.uid, self.detail)


@dataclass(frozen=True)
class ReconciliationReport:
    orphaned: int = 0
    phantom: int = 0
    qty_mismatch: int = 0
    qty_synced: int = 0
    pending_adopted: int = 0
    state_adjustments_logged: int = 0
    state_adjustments_deduped: int = 0
    complete: bool = True
    reason: str = ""  # why the snapshot was not classified

    def counters(self) -> dict[str, int]:
        return {name: int(getattr(self, name)) for name in REPORT_FIELDS}


# The spec owns the field list; this class must not drift from it.
if tuple(f.name for f in fields(ReconciliationReport))[: len(REPORT_FIELDS)] != REPORT_FIELDS:
    raise RuntimeError("ReconciliationReport fields drifted from specs.reconciliation.REPORT_FIELDS")


@dataclass(frozen=True)
class IssueDeduper:
    """Logged vs deduped: an issue identical to one logged last cycle (and still present) is deduped.

    Only the keys present in the previous classified cycle are remembered, so an issue that disappears and
    comes back is logged again, and a changed one (different detail) is new."""

    present: frozenset[tuple[str, str, str, str]] = frozenset()

    def classify(self, issues: Sequence[Issue]) -> tuple[tuple[Issue, ...], tuple[Issue, ...], IssueDeduper]:
        logged = tuple(i for i in issues if i.key not in self.present)
        deduped = tuple(i for i in issues if i.key in self.present)
        return logged, deduped, IssueDeduper(frozenset(i.key for i in issues))


@dataclass(frozen=True)
class ReconcileMemory:
    suspects: frozenset[tuple[str, str, str]] = frozenset()  # (class, symbol, uid) seen in the last cycle
    deduper: IssueDeduper = field(default_factory=IssueDeduper)


@dataclass(frozen=True)
class Reconciliation:
    report: ReconciliationReport
    actions: tuple[Action, ...]
    issues: tuple[Issue, ...]
    logged: tuple[Issue, ...]  # emit one RECONCILIATION_ISSUE each
    suspected: tuple[tuple[str, str, str], ...]  # first sightings awaiting confirmation
    unmatched_fills: tuple[VenueFill, ...]  # venue fills not in the ledger that are not ours (manual trades)
    memory: ReconcileMemory


# --- helpers ------------------------------------------------------------------------------------------------


def _sign(side: PositionSide) -> int:
    return 1 if side is PositionSide.LONG else -1


def _adding_side(side: PositionSide) -> Side:
    return Side.BUY if side is PositionSide.LONG else Side.SELL


def venue_nets(snapshot: AccountSnapshot) -> dict[str, Decimal]:
    """Symbol -> the venue's signed net (long positive), what the registry's positions on it are compared with."""
    net: dict[str, Decimal] = {}
    for vp in snapshot.positions:
        net[vp.symbol] = net.get(vp.symbol, Decimal(0)) + _sign(vp.side) * vp.size
    return net


def snapshot_problem(snapshot: AccountSnapshot | None) -> str:
    """Why this snapshot must not be classified, or "" when it is complete.

    The venue adapter marks a partly failed fetch with `extra["partial"] = "<what failed>"`."""
    if snapshot is None:
        return "no snapshot (venue query failed)"
    partial = snapshot.extra.get("partial", "")
    if partial:
        return f"partial snapshot: {partial}"
    if abs(snapshot.margin.time - snapshot.server_time) > MAX_SNAPSHOT_SKEW:
        return "snapshot parts more than 5 s apart"
    return ""


def _owners(active: Mapping[str, RegistryPosition], orders: Mapping[str, OrderRef]) -> FillOwners:
    # Orders of positions no longer active are judged as strays (terminal) by the attribution rule.
    owned = [
        (coid, OrderOwner(ref.uid, ref.purpose, _state_of(active, ref.uid), ref.venue_order_id))
        for coid, ref in orders.items()
    ]
    return owners_from(owned, list(active.values()))


def _state_of(active: Mapping[str, RegistryPosition], uid: str) -> str:
    return active[uid].state if uid in active else State.CLOSED


# --- the diff -----------------------------------------------------------------------------------------------


def reconcile(
    registry: Sequence[RegistryPosition],
    known_fill_ids: frozenset[str],
    orders: Mapping[str, OrderRef],
    snapshot: AccountSnapshot | None,
    now: datetime,
    memory: ReconcileMemory | None = None,
    *,
    young_grace: timedelta = DEFAULT_YOUNG_GRACE,
) -> Reconciliation:
    memory = memory or ReconcileMemory()
    problem = snapshot_problem(snapshot)
    if snapshot is None or problem:
        # Evidence must be consecutive; a blind cycle breaks the chain. Logged issues are kept: we did not
        # see them disappear.
        return Reconciliation(
            report=ReconciliationReport(complete=False, reason=problem),
            actions=(),
            issues=(),
            logged=(),
            suspected=(),
            unmatched_fills=(),
            memory=ReconcileMemory(frozenset(), memory.deduper),
        )

    active = {p.uid: p for p in sorted(registry, key=lambda p: (p.created, p.uid)) if p.state in ACTIVE_STATES}
    ref_by_venue_id = {ref.venue_order_id: ref for ref in orders.values() if ref.venue_order_id}

    # Venue fills the ledger lacks, grouped by owning position, oldest first: the one attribution rule decides.
    new_fills: dict[str, list[VenueFill]] = {}
    unmatched: list[VenueFill] = []
    for a in attribute([f for f in snapshot.fills if f.fill_id not in known_fill_ids], _owners(active, orders)):
        if a.uid is None:
            unmatched.append(a.fill)
        else:
            new_fills.setdefault(a.uid, []).append(a.fill)

    effective: dict[str, Decimal] = {}
    for uid, p in active.items():
        qty = p.remaining_qty
        for f in new_fills.get(uid, ()):
            qty += f.size if f.side is _adding_side(p.side) else -f.size
        effective[uid] = qty

    entry_open: set[str] = set()
    for o in snapshot.open_orders:
        if o.status is not OrderStatus.OPEN:
            continue
        ref = orders.get(o.client_order_id) if o.client_order_id else None
        ref = ref or ref_by_venue_id.get(o.order_id)
        if ref is not None and ref.purpose == "entry":
            entry_open.add(ref.uid)

    venue_net = venue_nets(snapshot)
    venue_price: dict[str, Decimal] = {}
    for vp in snapshot.positions:
        venue_price.setdefault(vp.symbol, vp.entry_price)

    by_symbol: dict[str, list[RegistryPosition]] = {}
    for p in active.values():
        by_symbol.setdefault(p.symbol_key, []).append(p)

    actions: list[Action] = []
    issues: list[Issue] = []
    candidates: list[tuple[str, str, str]] = []
    counts = dict.fromkeys(REPORT_FIELDS, 0)
    closing: set[str] = set()

    def suspect(cls: str, symbol: str, uid: str) -> bool:
        key = (cls, symbol, uid)
        candidates.append(key)
        return key in memory.suspects

    for symbol in sorted(set(venue_net) | set(by_symbol)):
        vnet = venue_net.get(symbol, Decimal(0))
        positions = by_symbol.get(symbol, [])
        if not positions:
            if vnet != 0 and suspect("orphaned", symbol, ""):
                side = PositionSide.LONG if vnet > 0 else PositionSide.SHORT
                actions.append(ImportOrphan(symbol, side, abs(vnet), venue_price[symbol], snapshot.server_time))
                issues.append(Issue("orphaned", symbol, "", f"{side.value} {abs(vnet)}"))
                counts["orphaned"] += 1
            continue

        compared: list[RegistryPosition] = []
        synced: list[RegistryPosition] = []
        in_flight = False
        for p in positions:
            fills = new_fills.get(p.uid, [])
            eq = effective[p.uid]
            young = now - p.created < young_grace
            if p.state in PENDING_STATES:
                if p.uid in entry_open:
                    in_flight = True
                    actions.extend(ApplyFill(p.uid, f, f.side is _adding_side(p.side)) for f in fills)
                    if fills:
                        synced.append(p)
                    compared.append(p)
                elif eq > 0 or fills:
                    entries = tuple(f for f in fills if f.side is _adding_side(p.side))
                    actions.append(AdoptPending(p.uid, entries))
                    actions.extend(ApplyFill(p.uid, f, False) for f in fills if f.side is not _adding_side(p.side))
                    issues.append(Issue("pending_adopted", symbol, p.uid, ",".join(f.fill_id for f in entries)))
                    counts["pending_adopted"] += 1
                    if eq == 0:
                        # Its entry filled and this cycle's fills brought it back to zero (a hand's trade while a lost
                        # reply left it pending): the fill door closes it, as an exposed position's.
                        if vnet == 0:
                            actions.append(CloseFlat(p.uid))
                        closing.add(p.uid)
                    elif vnet != 0:
                        compared.append(p)
                    # else: adopted but absent on the venue; next cycle judges it as an exposed position.
                elif not young and suspect("phantom", symbol, p.uid):
                    # No fills, no live entry order: nothing of this position exists on the venue.
                    actions.append(ClosePhantom(p.uid))
                    issues.append(Issue("phantom", symbol, p.uid, f"{p.state} entry not on venue"))
                    counts["phantom"] += 1
                    closing.add(p.uid)
                continue

            actions.extend(ApplyFill(p.uid, f, f.side is _adding_side(p.side)) for f in fills)
            if fills and eq != p.remaining_qty:
                synced.append(p)
            if vnet == 0 and eq == 0:
                actions.append(CloseFlat(p.uid))
                closing.add(p.uid)
            elif eq == 0 and fills:
                # This cycle's fills bring it to zero (a hand's trade through zero, or the venue's position lagging
                # its fills): the fill door closes it. Compared at zero beside the symbol's other positions.
                closing.add(p.uid)
            elif vnet == 0 and eq > 0:
                if not young and suspect("phantom", symbol, p.uid):
                    actions.append(ClosePhantom(p.uid))
                    issues.append(Issue("phantom", symbol, p.uid, f"{p.state} {p.side.value} {eq} not on venue"))
                    counts["phantom"] += 1
                    closing.add(p.uid)
                continue
            compared.append(p)

        if vnet != 0 and all(p.uid in closing for p in positions):
            # Every position on the symbol closes this cycle, so what the venue holds belongs to none of them: a
            # first orphan sighting (not a mismatch); the next snapshot, the symbol empty in the registry, imports it.
            suspect("orphaned", symbol, "")
            continue
        rnet_after = sum((_sign(p.side) * effective[p.uid] for p in compared), Decimal(0))
        rnet_before = sum((_sign(p.side) * p.remaining_qty for p in compared), Decimal(0))
        if rnet_after == vnet:
            for p in synced:
                if rnet_before != vnet:
                    ids = ",".join(f.fill_id for f in new_fills[p.uid])
                    issues.append(Issue("qty_synced", symbol, p.uid, ids))
                    counts["qty_synced"] += 1
        elif compared and not in_flight:
            first = compared[0]
            actions.append(QtyMismatch(first.uid, rnet_after, vnet))
            issues.append(Issue("qty_mismatch", symbol, first.uid, f"registry {rnet_after} venue {vnet}"))
            counts["qty_mismatch"] += 1

    actions.extend(_stop_actions(active, effective, closing, venue_net, orders, snapshot.open_orders, issues))

    logged, deduped, deduper = memory.deduper.classify(issues)
    report = ReconciliationReport(
        orphaned=counts["orphaned"],
        phantom=counts["phantom"],
        qty_mismatch=counts["qty_mismatch"],
        qty_synced=counts["qty_synced"],
        pending_adopted=counts["pending_adopted"],
        state_adjustments_logged=len(logged),
        state_adjustments_deduped=len(deduped),
    )
    confirmed = {(i.cls, i.symbol, i.uid) for i in issues if i.cls in ("orphaned", "phantom")}
    return Reconciliation(
        report=report,
        actions=tuple(actions),
        issues=tuple(issues),
        logged=logged,
        suspected=tuple(k for k in candidates if k not in confirmed),
        unmatched_fills=tuple(unmatched),
        memory=ReconcileMemory(frozenset(candidates), deduper),
    )


def _stop_actions(
    active: Mapping[str, RegistryPosition],
    effective: Mapping[str, Decimal],
    closing: set[str],
    venue_net: Mapping[str, Decimal],
    orders: Mapping[str, OrderRef],
    open_orders: Sequence[VenueOrder],
    issues: list[Issue],
) -> list[Action]:
    """Every exposed position the venue confirms must have a live reduce-only stop on the closing side."""
    out: list[Action] = []
    for p in active.values():
        if p.state not in EXPOSED_STATES or p.uid in closing or effective[p.uid] <= 0:
            continue
        if venue_net.get(p.symbol_key, Decimal(0)) == 0:
            continue  # a phantom suspect: nothing to protect on the venue
        # The one ownership rule (lifecycle.protection.own_stop): other positions' orders are claimed.
        claimed = frozenset(
            i for coid, ref in orders.items() if ref.uid != p.uid for i in (coid, ref.venue_order_id) if i
        ) | frozenset(i for q in active.values() if q.uid != p.uid for i in (q.sl_order_id, q.tp_order_id) if i)
        match = own_stop(p, open_orders, claimed)
        if match is not None and match.order_id == p.sl_order_id:
            continue
        if match is not None:
            out.append(RelinkStop(p.uid, match.order_id))
            issues.append(Issue("stop_relinked", p.symbol_key, p.uid, f"{p.sl_order_id or '-'} -> {match.order_id}"))
        else:
            out.append(MissingStop(p.uid))
            issues.append(Issue("missing_stop", p.symbol_key, p.uid, f"{p.state} {p.side.value} {effective[p.uid]}"))
    return out
