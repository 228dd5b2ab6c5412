"""A registry path that does not exist is refused, not created, whenever the caller asked not to create one.

A typo in --db or db_path must never become a fresh, empty registry: the daemon would then trade as if it held
no positions. Real files in a temporary directory; the default (create) is the control that shows the refusal
is what keeps the file from appearing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lifecycle.clock import FakeClock
from store.db import RegistryOpenError, connect
from store.registry import Registry


def _left_behind(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in tmp_path.iterdir())


@pytest.mark.parametrize(("readonly", "create"), [(True, True), (True, False), (False, False)])
def test_missing_file_is_refused_and_not_created(tmp_path: Path, readonly: bool, create: bool) -> None:
    path = tmp_path / "typo.db"
    with pytest.raises(RegistryOpenError, match=rf"registry database {path} does not exist"):
        connect(path, readonly=readonly, create=create)
    assert _left_behind(tmp_path) == []


def test_registry_open_without_create_leaves_no_file(tmp_path: Path) -> None:
    with pytest.raises(RegistryOpenError, match="does not exist"):
        Registry.open(tmp_path / "typo.db", FakeClock(), create=False)
    assert _left_behind(tmp_path) == []


def test_default_connect_creates_the_file(tmp_path: Path) -> None:
    db = connect(tmp_path / "new.db")
    db.close()
    assert "new.db" in _left_behind(tmp_path)
