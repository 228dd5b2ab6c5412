"""The position lifecycle, as data: the single source of states, transitions and invariants.

The state machines (`lifecycle.machine`), the registry audit (`store.audit`), the generated document
(`specs/lifecycle.md`) and the Hypothesis strategies all read this module. It imports nothing from the rest
of the project so that it can be read, diffed and reviewed on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True)
class StateSpec:
    name: str
    terminal: bool
    meaning: str


@dataclass(frozen=True)
class TransitionSpec:
    event: str
    source: str
    target: str
    condition: str
    """What must be true for the transition; the name of a guard in `lifecycle.machine` or `""` for none."""
    why: str
    """One line: why this edge is legal (surprising edges especially)."""


@dataclass(frozen=True)
class CreationSpec:
    """A way a position comes into existence (no source state)."""

    event: str
    target: str
    why: str


@dataclass(frozen=True)
class InvariantSpec:
    id: str
    report_field: str
    meaning: str


STATES: tuple[StateSpec, ...] = (
    StateSpec("PENDING_ENTRY", False, "intent recorded; entry order not yet acknowledged by the venue"),
    StateSpec("ENTRY_OPEN", False, "entry order live on the venue, possibly partly filled"),
    StateSpec("OPEN", False, "position held; protection not yet confirmed on the venue"),
    StateSpec("PROTECTED", False, "position held with a live stop-loss (and take-profit where configured)"),
    StateSpec("EXITING", False, "exit submitted or stop triggered; waiting for the closing fills"),
    StateSpec("CLOSED", True, "position flat; every fill accounted for"),
    StateSpec("CANCELLED", True, "entry never filled and its order is gone"),
    StateSpec("REJECTED", True, "the venue definitively refused the entry order"),
)

CREATIONS: tuple[CreationSpec, ...] = (
    CreationSpec("open_intent", "PENDING_ENTRY", "a strategy decided to enter; intent is recorded before any order"),
    CreationSpec("import", "OPEN", "a venue position we did not track is adopted by sync or reconciliation"),
)

TRANSITIONS: tuple[TransitionSpec, ...] = (
    TransitionSpec("entry_acknowledged", "PENDING_ENTRY", "ENTRY_OPEN", "", "the venue accepted the entry order"),
    TransitionSpec("entry_rejected", "PENDING_ENTRY", "REJECTED", "has_no_fills", "the venue refused the entry order"),
    TransitionSpec(
        "entry_filled",
        "PENDING_ENTRY",
        "OPEN",
        "has_fills",
        "fills can arrive before the acknowledgement (market orders, or a crash before the ack was recorded)",
    ),
    TransitionSpec(
        "entry_filled", "ENTRY_OPEN", "OPEN", "has_fills", "the entry order filled (fully, or partly then ended)"
    ),
    TransitionSpec(
        "entry_cancelled",
        "PENDING_ENTRY",
        "CANCELLED",
        "has_no_fills",
        "proven by evidence that the entry order never reached the book",
    ),
    TransitionSpec(
        "entry_cancelled", "ENTRY_OPEN", "CANCELLED", "has_no_fills", "the unfilled entry order was cancelled"
    ),
    TransitionSpec("protection_confirmed", "OPEN", "PROTECTED", "has_stop_order", "a stop-loss is live on the venue"),
    TransitionSpec(
        "protection_lost",
        "PROTECTED",
        "OPEN",
        "",
        "the venue cancelled our stop (silently, or it was rejected on edit); protect must re-place it",
    ),
    TransitionSpec(
        "exit_requested",
        "OPEN",
        "EXITING",
        "",
        "we are sending a reduce-only exit: the strategy's exit signal, an entry that slipped past"
        " risk.max_entry_slippage_r, or a crossed stop level with protect.on_crossed_stop = exit (EXITING is kept"
        " because these exits are ours to send and can fail, which exit_failed must be able to say)",
    ),
    TransitionSpec(
        "exit_requested",
        "PROTECTED",
        "EXITING",
        "",
        "we are sending a reduce-only exit (the strategy's exit signal); the stop stays live until the exit fills",
    ),
    TransitionSpec(
        "exit_failed", "EXITING", "OPEN", "has_open_qty", "the exit order was refused or cancelled; still exposed"
    ),
    TransitionSpec("position_closed", "EXITING", "CLOSED", "is_flat", "closing fills brought the quantity to zero"),
    TransitionSpec(
        "position_closed",
        "PROTECTED",
        "CLOSED",
        "is_flat",
        "the stop-loss or take-profit filled on the venue without a prior exit request",
    ),
    TransitionSpec(
        "position_closed",
        "OPEN",
        "CLOSED",
        "is_flat",
        "the position was closed on the venue while we were not watching (phantom resolved by evidence)",
    ),
)


class State(StrEnum):
    """The states by name, so code says `State.OPEN` and a typo fails `mypy` (the table above stays the source)."""

    PENDING_ENTRY = "PENDING_ENTRY"
    ENTRY_OPEN = "ENTRY_OPEN"
    OPEN = "OPEN"
    PROTECTED = "PROTECTED"
    EXITING = "EXITING"
    CLOSED = "CLOSED"
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"


class Event(StrEnum):
    """Every event of the lifecycle (creations and transitions), so `registry.apply(uid, Event.ENTRY_FILLED)` is
    checked by `mypy`; `_check_vocabulary` below proves it names exactly the events of the tables."""

    OPEN_INTENT = "open_intent"
    IMPORT = "import"
    ENTRY_ACKNOWLEDGED = "entry_acknowledged"
    ENTRY_REJECTED = "entry_rejected"
    ENTRY_FILLED = "entry_filled"
    ENTRY_CANCELLED = "entry_cancelled"
    PROTECTION_CONFIRMED = "protection_confirmed"
    PROTECTION_LOST = "protection_lost"
    EXIT_REQUESTED = "exit_requested"
    EXIT_FAILED = "exit_failed"
    POSITION_CLOSED = "position_closed"


TERMINAL_STATES: frozenset[str] = frozenset(s.name for s in STATES if s.terminal)
ACTIVE_STATES: frozenset[str] = frozenset(s.name for s in STATES if not s.terminal)
STATE_NAMES: tuple[str, ...] = tuple(s.name for s in STATES)
EVENTS: tuple[str, ...] = tuple(dict.fromkeys(t.event for t in TRANSITIONS))
CREATION_EVENTS: tuple[str, ...] = tuple(c.event for c in CREATIONS)

# (source, event) -> target. Built once; every consumer reads the same table.
TABLE: dict[tuple[str, str], str] = {(t.source, t.event): t.target for t in TRANSITIONS}

# States in which the position carries exposure on the venue (a stop-loss must exist within one cycle).
EXPOSED_STATES: frozenset[str] = frozenset({State.OPEN, State.PROTECTED, State.EXITING})
# Active states without confirmed exposure: the entry is still being decided.
ENTRY_PENDING_STATES: frozenset[str] = ACTIVE_STATES - EXPOSED_STATES
# Exposed states in which protection is maintained (EXITING waits for its exit's fills instead).
PROTECTABLE_STATES: frozenset[str] = frozenset({State.OPEN, State.PROTECTED})


# --- the order lifecycle, as data ------------------------------------------------------------------------------


class OrderStatus(StrEnum):
    """An order row's status: what the registry knows of one of our orders on the venue."""

    INTENT = "intent"  # recorded, not (yet) known to be sent
    OPEN = "open"  # the venue acknowledged it and it rests on the book (partly filled or not)
    FILLED = "filled"
    CANCELLED = "cancelled"  # by us, by the venue, or never sent (`not_sent:` reason)
    REJECTED = "rejected"  # the venue refused it
    UNKNOWN = "unknown"  # sent, outcome not known: resolved by evidence, never by a re-send


ORDER_STATUSES: tuple[str, ...] = tuple(OrderStatus)
ORDER_STATUS_MEANINGS: dict[str, str] = {
    OrderStatus.INTENT: "recorded, not (yet) known to be sent",
    OrderStatus.OPEN: "acknowledged by the venue, resting on the book (partly filled or not)",
    OrderStatus.FILLED: "filled (in full, or partly and then ended)",
    OrderStatus.CANCELLED: "cancelled by us or the venue, or never sent (`not_sent:` reason)",
    OrderStatus.REJECTED: "refused by the venue",
    OrderStatus.UNKNOWN: "sent, outcome unknown: resolved by evidence, never by a re-send",
}
ORDER_TERMINAL_STATUSES: frozenset[str] = frozenset({OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED})
ORDER_UNRESOLVED_STATUSES: tuple[str, ...] = (OrderStatus.INTENT, OrderStatus.UNKNOWN, OrderStatus.OPEN)


@dataclass(frozen=True)
class OrderEdge:
    source: str
    target: str
    why: str


ORDER_TRANSITIONS: tuple[OrderEdge, ...] = (
    OrderEdge("intent", "open", "the venue acknowledged the order"),
    OrderEdge("intent", "filled", "a market order's answer already carries its fills"),
    OrderEdge("intent", "cancelled", "never sent (our own check or the open breaker), or absent by evidence"),
    OrderEdge("intent", "rejected", "the venue refused it"),
    OrderEdge("intent", "unknown", "sent, and the reply was lost"),
    OrderEdge("unknown", "open", "evidence: the venue shows it resting"),
    OrderEdge("unknown", "filled", "evidence: the venue shows it filled"),
    OrderEdge("unknown", "cancelled", "evidence: the venue shows it cancelled, or it is absent twice"),
    OrderEdge("unknown", "rejected", "evidence: the venue refused it"),
    OrderEdge("open", "open", "a partial fill, or the venue's id recorded again"),
    OrderEdge("open", "filled", "it filled (a stop or take-profit triggered, an entry completed)"),
    OrderEdge("open", "cancelled", "cancelled by us (a close, a replacement) or silently by the venue"),
    OrderEdge(
        "cancelled",
        "filled",
        "the venue's answer said cancelled with filled=0 but its fills arrived later (ccxt issue 28210): the fills"
        " are the stronger evidence",
    ),
)
ORDER_TABLE: frozenset[tuple[str, str]] = frozenset((e.source, e.target) for e in ORDER_TRANSITIONS)


def order_edge_legal(source: str, target: str) -> bool:
    """Whether an order row may move from `source` to `target` (the same status again is always legal: an idempotent
    re-record)."""
    return source == target or (source, target) in ORDER_TABLE


def _check_vocabulary() -> None:
    # The enums and the tables must name the same things: an edge for an event the enum lacks (or the reverse)
    # would otherwise only fail where someone happens to use it.
    if set(State) != set(STATE_NAMES):
        raise RuntimeError("specs.lifecycle: State enum and STATES differ")
    if set(Event) != set(EVENTS) | set(CREATION_EVENTS):
        raise RuntimeError("specs.lifecycle: Event enum and the transition/creation tables differ")
    for e in ORDER_TRANSITIONS:
        if e.source not in ORDER_STATUSES or e.target not in ORDER_STATUSES:
            raise RuntimeError(f"specs.lifecycle: order edge {e} names an unknown status")


_check_vocabulary()


# The values a position row may hold where the audit checks them (the registry writes only these).
POSITION_SIDES: tuple[str, ...] = ("long", "short")
ORIGINS: tuple[str, ...] = ("strategy", "imported")
# The side of a position's entry fills; its exit fills are on the other side.
ENTRY_FILL_SIDE: dict[str, str] = {"long": "buy", "short": "sell"}


def fill_side(position_side: str, is_entry: bool) -> str:
    """The side of a fill of a `position_side` position: its entry side, or the other one for an exit."""
    entry = ENTRY_FILL_SIDE[position_side]
    return entry if is_entry else next(side for side in ENTRY_FILL_SIDE.values() if side != entry)


INVARIANTS: tuple[InvariantSpec, ...] = (
    InvariantSpec(
        "INV-01", "duplicate_active_symbol_keys", "more than one non-terminal position for one canonical symbol key"
    ),
    InvariantSpec(
        "INV-02",
        "non_terminal_in_closed_history",
        "a position with a closed timestamp whose state is not terminal (or a terminal one without it)",
    ),
    InvariantSpec(
        "INV-03",
        "remaining_qty_violations",
        "stored remaining quantity differs from entry fills minus exit fills in the ledger, or is negative",
    ),
    InvariantSpec("INV-04", "unknown_state_values", "a stored state that is not a state of the spec"),
    InvariantSpec(
        "INV-05", "illegal_logged_transitions", "a transition-log row whose (source, event, target) is not in the spec"
    ),
    InvariantSpec(
        "INV-06",
        "state_log_mismatch",
        "the stored state differs from the target of the position's last transition-log row (or it has none)",
    ),
    InvariantSpec("INV-07", "protected_without_stop", "a PROTECTED position without a stop-loss order id"),
    InvariantSpec(
        "INV-08", "terminal_with_open_qty", "a CLOSED, CANCELLED or REJECTED position with remaining quantity"
    ),
    InvariantSpec(
        "INV-09",
        "transition_chain_breaks",
        "a transition-log row whose hash or link to the previous row does not verify (tampering, lost row),"
        " or the log no longer ends where the last clean audit anchored it (rows lost at its end)",
    ),
    InvariantSpec(
        "INV-10",
        "fill_chain_breaks",
        "a fill-ledger row whose hash or link to the previous row does not verify (tampering, lost row),"
        " or the ledger no longer ends where the last clean audit anchored it (rows lost at its end)",
    ),
    InvariantSpec(
        "INV-11",
        "invalid_position_values",
        "a position whose side, origin, quantities or prices are not values the registry writes"
        " (damage no other check sees: position rows are not hash-chained)",
    ),
    InvariantSpec(
        "INV-12",
        "fill_side_mismatch",
        "a ledger fill on the wrong side for its position (a long's entries are buys and its exits sells, the reverse"
        " for a short): the hash-chained ledger vouches for the direction of every position",
    ),
    InvariantSpec(
        "INV-13",
        "invalid_stop_prices",
        "an active position whose stop price cannot protect it: on the loss side of its entry (a long's below),"
        " further from it than risk.max_stop_distance_pct (default 25 %), the rule of lifecycle.stops.stop_problem"
        " that the protection planner applies before sending a stop (a hand-set stop_price = 1 on a 71k long); a stop"
        " beyond the entry on the profit side risks no loss and is valid however far (a gain trailed by hand)",
    ),
)

INVARIANT_FIELDS: tuple[str, ...] = tuple(i.report_field for i in INVARIANTS)
