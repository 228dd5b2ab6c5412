"""Reconciliation issue classes and their thresholds, as data (the runbook's tables, made precise).

`lifecycle.reconcile` produces the counters; `lifecycle.escalation` evaluates these rules over the history of
reports. Nothing here imports the rest of the project.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

RuleKind = Literal[
    "per_cycle_at_least",  # count in one cycle >= n
    "window_sum_at_least",  # sum over the last `minutes` >= n
    "consecutive_cycles",  # non-zero in n consecutive cycles
    "sustained_increase",  # per-cycle value strictly rising across a window of `minutes` (at least n samples)
    "repeated_restarts",  # non-zero in the first cycle after each of the last n restarts
    "rising_trend",  # last n per-cycle values strictly rising
    "dominates",  # field > `other` in every cycle of the last `minutes` (window fully covered)
]


@dataclass(frozen=True)
class Rule:
    kind: RuleKind
    n: int = 1
    minutes: int = 0
    other: str = ""


@dataclass(frozen=True)
class IssueClass:
    field: str
    meaning: str
    target: str
    warning: Rule
    critical: Rule
    escalates: bool
    """Whether hitting the critical threshold pauses new entries and pages the operator."""


ISSUE_CLASSES: tuple[IssueClass, ...] = (
    IssueClass(
        "orphaned",
        "a venue position with no active registry position for its symbol key",
        "0",
        Rule("per_cycle_at_least", n=1),
        Rule("window_sum_at_least", n=3, minutes=15),
        escalates=True,
    ),
    IssueClass(
        "phantom",
        "an active registry position with no venue position",
        "0",
        Rule("per_cycle_at_least", n=1),
        Rule("window_sum_at_least", n=3, minutes=15),
        escalates=True,
    ),
    IssueClass(
        "qty_mismatch",
        "both exist and the quantities differ, unexplained by the fill ledger",
        "0",
        Rule("per_cycle_at_least", n=1),
        Rule("consecutive_cycles", n=3),
        escalates=True,
    ),
    IssueClass(
        "qty_synced",
        "a difference explained by venue fills and resolved by applying them",
        "low/occasional",
        Rule("per_cycle_at_least", n=3),
        Rule("sustained_increase", n=3, minutes=30),
        escalates=False,
    ),
    IssueClass(
        "pending_adopted",
        "a pending entry whose order filled on the venue, adopted into the lifecycle",
        "rare",
        Rule("per_cycle_at_least", n=1),
        Rule("repeated_restarts", n=3),
        escalates=False,
    ),
    IssueClass(
        "state_adjustments_deduped",
        "identical repeats of an issue already logged, suppressed",
        "low",
        Rule("rising_trend", n=3),
        Rule("dominates", minutes=30, other="state_adjustments_logged"),
        escalates=False,
    ),
)

REPORT_FIELDS: tuple[str, ...] = (
    "orphaned",
    "phantom",
    "qty_mismatch",
    "qty_synced",
    "pending_adopted",
    "state_adjustments_logged",
    "state_adjustments_deduped",
)


# --- joint invariants: the registry x the venue ---------------------------------------------------------------


@dataclass(frozen=True)
class JointInvariant:
    """A property of the registry and the venue together, evaluated by every reconciliation from the snapshot it
    already took. `grace_cycles`: how many consecutive cycles a finding may last before it counts (a stop placed
    by the next protect run, a fill booked by the next fill poll); thresholds and escalation as for the classes
    above."""

    id: str
    field: str
    meaning: str
    grace_cycles: int
    warning: Rule
    critical: Rule
    escalates: bool


JOINT_INVARIANTS: tuple[JointInvariant, ...] = (
    JointInvariant(
        "J1",
        "stray_venue_orders",
        "a live venue order owned by a terminal position, or by no position at all while reduce-only on a symbol"
        " we hold (and not adopted as that position's stop or take-profit)",
        1,
        Rule("per_cycle_at_least", n=1),
        Rule("consecutive_cycles", n=3),
        escalates=True,
    ),
    JointInvariant(
        "J2",
        "unprotected_exposure",
        "an exposed position the venue holds without exactly one live stop covering its quantity on the protective"
        " side of the mark",
        1,
        Rule("per_cycle_at_least", n=1),
        Rule("consecutive_cycles", n=3),
        escalates=True,
    ),
    JointInvariant(
        "J3",
        "unbooked_fills",
        "a venue fill of one of our orders, or on a symbol we hold, that is neither in the ledger nor recorded as"
        " unowned (the fill door records and reports once a fill no position can own)",
        1,
        Rule("per_cycle_at_least", n=1),
        Rule("consecutive_cycles", n=3),
        escalates=True,
    ),
    JointInvariant(
        "J4",
        "order_status_drift",
        "an order row whose status disagrees with the venue (recorded open but not on the book, or recorded"
        " settled but resting on the book)",
        2,
        Rule("per_cycle_at_least", n=1),
        Rule("consecutive_cycles", n=5),
        escalates=False,
    ),
    JointInvariant(
        "J5",
        "stop_churn",
        "more stop placements for one position in the last hour than protect.max_replacements_per_hour",
        0,
        Rule("per_cycle_at_least", n=1),
        Rule("per_cycle_at_least", n=1),
        escalates=True,
    ),
)

JOINT_FIELDS: tuple[str, ...] = tuple(j.field for j in JOINT_INVARIANTS)

JOINT_CLASSES: tuple[IssueClass, ...] = tuple(
    IssueClass(j.field, j.meaning, "0", j.warning, j.critical, j.escalates) for j in JOINT_INVARIANTS
)
"""The joint invariants as issue classes, so the escalator evaluates their thresholds like the seed's six."""

ALL_CLASSES: tuple[IssueClass, ...] = ISSUE_CLASSES + JOINT_CLASSES
