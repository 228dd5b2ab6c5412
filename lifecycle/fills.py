"""Fills: the ONE attribution rule (which position a venue fill belongs to) and the ONE consequence rule (which
lifecycle event a position's facts call for once its fills are in).

Every path that learns of fills — the exits job's fill poll, an entry's own answer, reconciliation's snapshot,
the order stream, startup recovery, the operator tools — asks these two functions and nothing else, so a fill
means the same thing whichever door it came through. Pure: the caller passes the registry's facts in.

Attribution, in order of the evidence's strength:
1. the fill carries the client order id of one of our orders: it belongs to that order's position;
2. its venue order id is one we recorded (an order row, or the position's stop / take-profit id): the same;
3. neither, on a symbol a position of ours holds exposure on, stamped after that exposure began: somebody else's
   trade on our position (a manual close on the venue, a liquidation, a hand-placed order). A fill on the
   position's closing side is an **external close**; on its adding side, an **external add**. A close larger than
   what the position holds took it through zero on the venue: the part that closes it is booked (the position
   closes, its protective orders are cancelled) and the rest is unowned, exposure nobody here opened, which
   reconciliation adopts as an orphan once the venue shows it.
   A position holds exposure once it is exposed, or, still pending, once its entry has filled (`exposure_began`):
   a lost reply can leave an entry pending while its fill is already on the venue for a hand to trade against.
An order owned by a terminal position can still fill (a stray the close could not cancel): its fill moved the
venue's exposure on that symbol all the same, so it is judged by rule 3 against whoever holds the symbol now
instead of being booked on the closed position. So is an exit order's fill larger than what is left of a position
an earlier fill of the same batch already brought to zero (a hand closed it before its stop, still resting, filled).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from lifecycle.values import PositionSide, RegistryPosition, Side, VenueFill
from specs.lifecycle import ENTRY_PENDING_STATES, EXPOSED_STATES, TERMINAL_STATES, Event, fill_side


class FillRole(StrEnum):
    OWN = "own"  # one of our orders
    EXTERNAL_CLOSE = "external_close"  # not ours, reduces a position we hold
    EXTERNAL_ADD = "external_add"  # not ours, adds to a position we hold
    UNOWNED = "unowned"  # nothing we hold explains it (reconciliation judges: orphan or mismatch)


@dataclass(frozen=True)
class OrderOwner:
    """One of our orders, as the registry recorded it."""

    uid: str
    purpose: str  # entry | stop | take_profit | exit
    position_state: str
    venue_order_id: str | None = None


@dataclass(frozen=True)
class Attributed:
    fill: VenueFill
    role: FillRole
    uid: str | None  # the owning position; None for UNOWNED
    is_entry: bool  # for the ledger: an entry (adds) or an exit (reduces) fill of `uid`


@dataclass(frozen=True)
class FillOwners:
    """Everything attribution needs, built once per batch from the registry."""

    by_client_id: Mapping[str, OrderOwner]
    by_venue_id: Mapping[str, OrderOwner]
    holders: Sequence[RegistryPosition]


def adding_side(side: PositionSide) -> Side:
    """The fill side that grows a position of this side (its entries); the other one reduces it (the spec's
    `fill_side` is the one rule)."""
    return Side(fill_side(side.value, is_entry=True))


def closing_side(side: PositionSide) -> Side:
    """The side of every order that reduces a position of this side: its stop, take-profit and exits."""
    return Side(fill_side(side.value, is_entry=False))


def owners_from(orders: Sequence[tuple[str, OrderOwner]], holders: Sequence[RegistryPosition]) -> FillOwners:
    """`orders`: (client order id, owner) for every order we recorded (of active and terminal positions)."""
    by_client: dict[str, OrderOwner] = {}
    by_venue: dict[str, OrderOwner] = {}
    for coid, owner in orders:
        by_client[coid] = owner
        if owner.venue_order_id:
            by_venue[owner.venue_order_id] = owner
    for h in holders:
        for oid, purpose in ((h.sl_order_id, "stop"), (h.tp_order_id, "take_profit")):
            if oid:
                by_venue.setdefault(oid, OrderOwner(h.uid, purpose, h.state, oid))
    return FillOwners(by_client, by_venue, tuple(holders))


def attribute(fills: Sequence[VenueFill], owners: FillOwners) -> tuple[Attributed, ...]:
    """Attribute each fill, oldest first (within one stamp, see `_judging_order`). External closes are capped by the
    remaining quantity as it stands after the earlier fills of the same batch, so two manual partial closes in one
    batch are judged in order; a close beyond it is split (the closing part booked, the rest unowned), so one fill
    can give two results with the same fill id and the sizes of its parts."""
    remaining = {h.uid: h.remaining_qty for h in owners.holders}
    holders = {h.uid: h for h in owners.holders}
    flat_at: dict[str, datetime] = {}  # uid -> when an earlier fill of this batch brought it to zero
    out: list[Attributed] = []

    def moved(uid: str, delta: Decimal, at: datetime) -> None:
        remaining[uid] += delta
        if remaining[uid] <= 0:
            flat_at[uid] = at
        else:
            flat_at.pop(uid, None)

    owned = _with_owners(fills, owners)  # each fill's order looked up once, for its start and its judgement
    began = _began(owned, owners.holders)
    for fill, owner in _judging_order(owned, owners.holders, began):
        if owner is not None and owner.purpose != "entry" and owner.uid in flat_at and fill.size > remaining[owner.uid]:
            # Our exit order of a position an earlier fill of this batch already brought to zero (a hand closed it;
            # its stop still rested and filled against later exposure): a stray's fill, judged by rule 3 like one of
            # a closed position's orders (DST seed 2016).
            owner = None
        if owner is not None and owner.position_state not in TERMINAL_STATES and owner.uid in holders:
            is_entry = owner.purpose == "entry"
            out.append(Attributed(fill, FillRole.OWN, owner.uid, is_entry))
            moved(owner.uid, fill.size if fill.side is adding_side(holders[owner.uid].side) else -fill.size, fill.time)
            continue
        holder = _exposed_holder(fill, owners.holders, flat_at, began)
        if holder is None:
            out.append(Attributed(fill, FillRole.UNOWNED, None, False))
            continue
        if fill.side is adding_side(holder.side):
            out.append(Attributed(fill, FillRole.EXTERNAL_ADD, holder.uid, True))
            moved(holder.uid, fill.size, fill.time)
        elif fill.size <= remaining[holder.uid]:
            out.append(Attributed(fill, FillRole.EXTERNAL_CLOSE, holder.uid, False))
            moved(holder.uid, -fill.size, fill.time)
        elif remaining[holder.uid] > 0:
            # Through zero: the venue's net went past our position. Booking the whole fill would flip the position
            # in the ledger; leaving it all unowned kept a position the venue no longer held, its reduce-only stop on
            # the wrong side of the venue's net (DST seed 2587).
            closing = remaining[holder.uid]
            out.append(Attributed(replace(fill, size=closing), FillRole.EXTERNAL_CLOSE, holder.uid, False))
            out.append(Attributed(replace(fill, size=fill.size - closing), FillRole.UNOWNED, None, False))
            moved(holder.uid, -closing, fill.time)
        else:
            out.append(Attributed(fill, FillRole.UNOWNED, None, False))
    return tuple(out)


def _with_owners(fills: Sequence[VenueFill], owners: FillOwners) -> list[tuple[VenueFill, OrderOwner | None]]:
    return [(f, order_owner(f, owners)) for f in fills]


def _judging_order(
    owned: Sequence[tuple[VenueFill, OrderOwner | None]],
    holders: Sequence[RegistryPosition],
    began: Mapping[str, datetime],
) -> list[tuple[VenueFill, OrderOwner | None]]:
    """The fills with their orders' owners, oldest first. The venue does not publish the order of fills that share
    a stamp (and a fill id says nothing about it), so within one stamp: our own orders' fills first (certain
    evidence; a hand's is judged against what they leave), then a hand's adds before its closes. Adds first cap no
    close: a hand's short and its liquidation in one instant net to nothing, as on the venue; read close first, the
    close was larger than the position and the liquidation's buy was booked as an add the venue never held (DST
    seed 2587)."""
    held = {symbol: h.side for symbol, h in _oldest_exposed(holders, began).items()}

    def key(pair: tuple[VenueFill, OrderOwner | None]) -> tuple[datetime, bool, bool, str]:
        fill, owner = pair
        side = held.get(fill.symbol)
        reduces = side is not None and fill.side is closing_side(side)
        return fill.time, owner is None, owner is None and reduces, fill.fill_id

    return sorted(owned, key=key)


def order_owner(fill: VenueFill, owners: FillOwners) -> OrderOwner | None:
    """Our order this fill is of (by client order id, else venue order id), or None."""
    if fill.client_order_id is not None and fill.client_order_id in owners.by_client_id:
        return owners.by_client_id[fill.client_order_id]
    return owners.by_venue_id.get(fill.order_id)


def _exposed_holder(
    fill: VenueFill,
    holders: Sequence[RegistryPosition],
    flat_at: Mapping[str, datetime],
    began: Mapping[str, datetime],
) -> RegistryPosition | None:
    """The position on the fill's symbol whose exposure existed when the fill happened (`began`; the oldest, if
    several), unless an earlier fill of the batch had brought it to zero before this one (strictly: the venue's order
    of fills with one stamp is unknown). A closed position is not added to: a hand's trade after our take-profit closed
    it is someone else's new position (DST seed 2350)."""
    for h in sorted((h for h in holders if h.uid in began), key=lambda h: (began[h.uid], h.uid)):
        closed_before = h.uid in flat_at and flat_at[h.uid] < fill.time
        if h.symbol_key == fill.symbol and fill.time >= began[h.uid] and not closed_before:
            return h
    return None


def exposure_began(fills: Sequence[VenueFill], owners: FillOwners) -> dict[str, datetime]:
    """Position uid -> when the exposure it holds began: what rule 3 judges a fill that is not ours against. A position
    holds exposure from its first entry fill: in the ledger already (`RegistryPosition.created`, dated by the daemon's
    rule; an import's from its import fill), or the first of this batch's fills of its own entry order, if older. So an
    entry still pending holds exposure once its entry has filled: a lost reply can leave it pending while its fill is
    on the venue, and a hand's trade through zero in that window was left unowned, the adopted entry compared with the
    venue's new net (one cycle of `qty_mismatch`), and the closing part booked a cycle later. Keys of positions that
    are not holders (an order of a closed position) are ignored by every reader, which walk the holders."""
    return _began(_with_owners(fills, owners), owners.holders)


def _began(
    owned: Sequence[tuple[VenueFill, OrderOwner | None]], holders: Sequence[RegistryPosition]
) -> dict[str, datetime]:
    began = _standing_exposure(holders)
    for fill, owner in owned:
        if owner is not None and owner.purpose == "entry":
            began[owner.uid] = min(began.get(owner.uid, fill.time), fill.time)
    return began


def _standing_exposure(holders: Iterable[RegistryPosition]) -> dict[str, datetime]:
    """`exposure_began` before any new fill: the exposed positions, and the pending entries already holding a part."""
    return {
        h.uid: h.created
        for h in holders
        if h.state in EXPOSED_STATES or (h.state in ENTRY_PENDING_STATES and h.remaining_qty > 0)
    }


def held_since(holders: Iterable[RegistryPosition], began: Mapping[str, datetime] | None = None) -> dict[str, datetime]:
    """Symbol -> when the exposure held on it began (`began`, from `exposure_began`; by default the holders' standing
    exposure): the fills on a symbol we hold that `must_be_accounted` counts. The one map for the fill door and joint
    J3. Of two holders of one symbol, the older: attribution judges a hand's fill against the oldest
    (`_exposed_holder`), so the registry accounts for the symbol's fills from that one's start."""
    holders = list(holders)
    starts = _standing_exposure(holders) if began is None else began
    return {symbol: starts[h.uid] for symbol, h in _oldest_exposed(holders, starts).items()}


def _oldest_exposed(holders: Iterable[RegistryPosition], began: Mapping[str, datetime]) -> dict[str, RegistryPosition]:
    """Symbol -> the oldest position holding exposure on it (by when that began, then uid): the one rule 3 judges a
    hand's fill against, so the one whose side orders a stamp's hand fills and whose start dates the symbol's fills."""
    oldest: dict[str, RegistryPosition] = {}
    for h in sorted((h for h in holders if h.uid in began), key=lambda h: (began[h.uid], h.uid)):
        oldest.setdefault(h.symbol_key, h)
    return oldest


def must_be_accounted(fill: VenueFill, ours: Collection[str], held_since: Mapping[str, datetime]) -> bool:
    """A fill the registry must account for: one of our orders' (`ours`: their client and venue order ids), or one
    on a symbol a position of ours holds exposure on, stamped at or after that exposure began (`held_since`: symbol ->
    when).
    Each ends in the ledger, or, when no position can own it, recorded as unowned and reported (the fill door);
    joint J3 `unbooked_fills` counts those in neither. The one definition for both."""
    if (fill.client_order_id or "") in ours or fill.order_id in ours:
        return True
    began = held_since.get(fill.symbol)
    return began is not None and fill.time >= began


def unowned_reason(
    fill: VenueFill, owners: FillOwners, began: Mapping[str, datetime] | None = None
) -> tuple[str | None, str]:
    """Why an unowned fill has no owner, for its record and report: (the closed position whose order it is, or None;
    one line). `began`: the batch's `exposure_began` (by default the holders' standing exposure)."""
    owner = order_owner(fill, owners)
    if owner is not None:
        return owner.uid, f"a stray: an order of position {owner.uid} ({owner.position_state}), no longer holding it"
    starts = _standing_exposure(owners.holders) if began is None else began
    for h in owners.holders:
        if h.symbol_key == fill.symbol and h.uid in starts:
            return None, (
                f"beyond what position {h.uid} held on {fill.symbol} when it filled: exposure no position owns"
                " (reconciliation adopts it as an orphan)"
            )
    return None, "no position holds its symbol"


@dataclass(frozen=True)
class PositionFacts:
    """What the consequence rule reads about one position after its fills are recorded."""

    state: str
    remaining_qty: Decimal
    has_entry_fills: bool
    entry_order_live: bool = False  # the entry order still rests on the venue (a partial fill may grow)


def consequence(facts: PositionFacts) -> Event | None:
    """The lifecycle event these facts call for, or None.

    - an entry pending with fills and no live entry order left: `entry_filled` (a partly filled entry still on
      the book stays ENTRY_OPEN until it fills or ends), also when a hand's trade has already brought it back to zero
      (the door then asks again: `position_closed`);
    - an exposed position brought to zero by fills: `position_closed` (whoever closed it: our stop, take-profit
      or exit, a liquidation, a hand on the venue — the ledger's fills are the evidence).
    """
    if facts.state in ENTRY_PENDING_STATES:
        if facts.has_entry_fills and not facts.entry_order_live:
            return Event.ENTRY_FILLED
        return None
    if facts.state in EXPOSED_STATES and facts.remaining_qty == 0:
        return Event.POSITION_CLOSED
    return None


def fills_by_position(attributed: Sequence[Attributed]) -> dict[str, list[Attributed]]:
    grouped: dict[str, list[Attributed]] = {}
    for a in attributed:
        if a.uid is not None:
            grouped.setdefault(a.uid, []).append(a)
    return grouped
