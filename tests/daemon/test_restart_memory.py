"""The escalator's per-restart memory survives restarts, so "pending_adopted repeated every restart" can fire."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from lifecycle.escalation import Escalator
from lifecycle.killswitch import KillSwitch
from lifecycle.reconcile import ReconciliationReport
from operations.safety import Safety
from operations.wiring import safety_from
from scheduler.restart_memory import RestartMemory
from settings.config import load_settings

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _report(pending_adopted: int) -> ReconciliationReport:
    return ReconciliationReport(pending_adopted=pending_adopted, complete=True)


def _restart(memory: RestartMemory) -> Safety:
    """What the daemon does at startup: a fresh process, the memory loaded from the file beside the registry."""
    return safety_from(load_settings(None, environ={}), memory)


def test_pending_adopted_in_the_first_cycle_of_three_restarts_is_critical(tmp_path: Path) -> None:
    memory = RestartMemory.beside(tmp_path / "registry.db")
    levels = []
    for restart in range(3):
        safety = _restart(memory)
        at = T0 + timedelta(hours=restart)
        levels.append(safety.observe_report(_report(1), at))
        safety.observe_report(_report(0), at + timedelta(minutes=1))  # later cycles do not count
    assert levels == ["warning", "warning", "critical"]
    assert memory.load()["pending_adopted"] == (1, 1, 1)


def test_a_clean_restart_breaks_the_run(tmp_path: Path) -> None:
    memory = RestartMemory.beside(tmp_path / "registry.db")
    levels = [_restart(memory).observe_report(_report(n), T0 + timedelta(hours=i)) for i, n in enumerate((1, 0, 1, 1))]
    assert levels[-1] != "critical"


def test_a_damaged_memory_file_means_no_history_not_a_crash(tmp_path: Path) -> None:
    memory = RestartMemory.beside(tmp_path / "registry.db")
    memory.path.write_bytes(b"\x00not json")
    assert memory.load() == {}
    safety = Safety(KillSwitch(Decimal(80), Decimal(5), 2), Escalator(restart_firsts=memory.load()), memory.save)
    assert safety.observe_report(_report(1), T0) == "warning"
    assert memory.load()["pending_adopted"] == (1,)
