"""The peer incident corpus (dst.incidents): each scenario ends converged — registry = venue, joint invariants
clean, nothing lost."""

from __future__ import annotations

from pathlib import Path

import pytest

from dst.incidents import SCENARIOS, check_converged


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_incident_converges(name: str, tmp_path: Path) -> None:
    world = SCENARIOS[name](tmp_path)
    try:
        check_converged(world)
    finally:
        world.close()
