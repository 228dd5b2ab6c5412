"""The transition table written a second time, by hand: (source, event) -> (target, guard).

`specs/lifecycle.py` is the source the machine is built from; this copy exists so that changing a guard takes
two deliberate edits (the spec and this table), and `test_expected_guards.py` fails when they differ. Read the
`why` column of the spec before editing either. What each guard means:

- `has_fills`: at least one entry fill is in the ledger.
- `has_no_fills`: no entry fill is in the ledger (a position that never filled holds nothing).
- `has_stop_order`: a live stop-loss order id is recorded.
- `has_open_qty`: entry fills minus exit fills is above zero.
- `is_flat`: entry fills minus exit fills is zero.
"""

from __future__ import annotations

EXPECTED_GUARDS: dict[tuple[str, str], tuple[str, str]] = {
    ("PENDING_ENTRY", "entry_acknowledged"): ("ENTRY_OPEN", ""),
    ("PENDING_ENTRY", "entry_rejected"): ("REJECTED", "has_no_fills"),
    ("PENDING_ENTRY", "entry_filled"): ("OPEN", "has_fills"),
    ("ENTRY_OPEN", "entry_filled"): ("OPEN", "has_fills"),
    ("PENDING_ENTRY", "entry_cancelled"): ("CANCELLED", "has_no_fills"),
    ("ENTRY_OPEN", "entry_cancelled"): ("CANCELLED", "has_no_fills"),
    ("OPEN", "protection_confirmed"): ("PROTECTED", "has_stop_order"),
    ("PROTECTED", "protection_lost"): ("OPEN", ""),
    ("OPEN", "exit_requested"): ("EXITING", ""),
    ("PROTECTED", "exit_requested"): ("EXITING", ""),
    ("EXITING", "exit_failed"): ("OPEN", "has_open_qty"),
    ("EXITING", "position_closed"): ("CLOSED", "is_flat"),
    ("PROTECTED", "position_closed"): ("CLOSED", "is_flat"),
    ("OPEN", "position_closed"): ("CLOSED", "is_flat"),
}

EXPECTED_EVENTS: tuple[str, ...] = tuple(dict.fromkeys(event for _, event in EXPECTED_GUARDS))
