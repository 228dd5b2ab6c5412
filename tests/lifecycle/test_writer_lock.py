"""The registry's writer lock: one holder at a time, the holder named in the refusal, released by process death."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from store.writer_lock import WriterLockError, WriterLockHeld, acquire, lock_path

ROOT = Path(__file__).resolve().parents[2]
HOLD = (
    "import sys, time; from pathlib import Path; from store.writer_lock import acquire;"
    " lock = acquire(Path(sys.argv[1]), 'daemon'); print('HELD', flush=True); time.sleep(60)"
)


def holder(registry: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(registry)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "HELD"
    return proc


def test_a_second_writer_is_refused_with_the_holder_named_and_gets_it_once_released(tmp_path: Path) -> None:
    registry = tmp_path / "position_registry.db"
    first = acquire(registry, "daemon")
    with pytest.raises(WriterLockHeld) as refused:
        acquire(registry, "sync_positions --execute")
    assert refused.value.holder.endswith("(daemon)") and refused.value.holder.startswith("pid ")
    assert "Stop the other one first" in str(refused.value) and str(registry) in str(refused.value)
    first.release()
    second = acquire(registry, "sync_positions --execute")
    assert lock_path(registry).read_text().strip().endswith("(sync_positions --execute)")
    second.release()
    assert not registry.exists()  # the lock never creates the registry itself


def test_another_process_holding_it_is_refused_until_it_is_killed(tmp_path: Path) -> None:
    registry = tmp_path / "position_registry.db"
    proc = holder(registry)
    try:
        with pytest.raises(WriterLockHeld) as refused:
            acquire(registry, "daemon")
        assert refused.value.holder == f"pid {proc.pid} (daemon)"
    finally:
        proc.send_signal(signal.SIGKILL)  # no cleanup runs: the kernel drops the lock with the process
        proc.wait(10)
    acquire(registry, "daemon").release()


def test_locks_of_different_registries_are_independent(tmp_path: Path) -> None:
    a = acquire(tmp_path / "a.db", "daemon")
    b = acquire(tmp_path / "b.db", "daemon")
    a.release()
    b.release()


def test_a_lock_file_that_cannot_be_opened_is_a_writer_lock_error_naming_it(tmp_path: Path) -> None:
    registry = tmp_path / "missing-folder" / "position_registry.db"
    with pytest.raises(WriterLockError) as refused:
        acquire(registry, "daemon")
    assert not isinstance(refused.value, WriterLockHeld)
    assert str(lock_path(registry)) in str(refused.value) and "No such file or directory" in str(refused.value)
