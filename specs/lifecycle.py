"""The position lifecycle, as data: the single source of states, transitions and invariants.

The state machines (`lifecycle.machine`), the registry audit (`store.audit`), the generated document
(`specs/lifecycle.md`) and the Hypothesis strategies all read this module. It imports nothing from the rest
of the project so that it can be read, diffed and reviewed on its own.
"""

from __future__ import annotations

from dataclasses import dataclass


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
    TransitionSpec("exit_requested", "OPEN", "EXITING", "", "we submitted an exit order"),
    TransitionSpec("exit_requested", "PROTECTED", "EXITING", "", "we submitted an exit order, or a stop triggered"),
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

TERMINAL_STATES: frozenset[str] = frozenset(s.name for s in STATES if s.terminal)
ACTIVE_STATES: frozenset[str] = frozenset(s.name for s in STATES if not s.terminal)
STATE_NAMES: tuple[str, ...] = tuple(s.name for s in STATES)
EVENTS: tuple[str, ...] = tuple(dict.fromkeys(t.event for t in TRANSITIONS))
CREATION_EVENTS: tuple[str, ...] = tuple(c.event for c in CREATIONS)

# (source, event) -> target. Built once; every consumer reads the same table.
TABLE: dict[tuple[str, str], str] = {(t.source, t.event): t.target for t in TRANSITIONS}

# States in which the position carries exposure on the venue (a stop-loss must exist within one cycle).
EXPOSED_STATES: frozenset[str] = frozenset({"OPEN", "PROTECTED", "EXITING"})


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
)

INVARIANT_FIELDS: tuple[str, ...] = tuple(i.report_field for i in INVARIANTS)
