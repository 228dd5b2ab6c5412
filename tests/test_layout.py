"""The layout's rules (issue #5), checked on the source tree itself: every arrow points down, and the spec's
vocabulary is spelled once."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from specs.lifecycle import STATE_NAMES

ROOT = Path(__file__).resolve().parents[1]
# Packages whose code may speak of positions; simulator/ and exchange/ speak Kraken's own strings (e.g. its order
# status "CANCELLED"), which are not our states.
OURS = ("lifecycle", "store", "operations", "scheduler", "tools", "strategy", "settings", "backtest")

# room -> rooms it must never import (DESIGN §1: nothing in a lower room imports a higher one)
FORBIDDEN = {
    "specs": (
        "lifecycle",
        "store",
        "exchange",
        "simulator",
        "operations",
        "settings",
        "scheduler",
        "tools",
        "strategy",
    ),
    "lifecycle": ("store", "exchange", "simulator", "operations", "settings", "scheduler", "tools"),
    "store": ("exchange", "simulator", "operations", "settings", "scheduler", "tools"),
    "strategy": ("store", "exchange", "simulator", "operations", "settings", "scheduler", "tools"),
    "operations": ("scheduler", "tools"),
    "tools": ("scheduler",),
}


def _sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_every_import_points_down() -> None:
    wrong = []
    for room, forbidden in FORBIDDEN.items():
        for path in _sources(room):
            for name in _imports(path):
                top = name.split(".")[0]
                if top in forbidden:
                    wrong.append(f"{path.relative_to(ROOT)} imports {name}")
    assert wrong == []


def test_no_state_name_is_spelled_outside_specs() -> None:
    alternatives = "|".join(STATE_NAMES)
    pattern = re.compile(rf"""["']({alternatives})["']""")
    found = []
    for package in OURS:
        for path in _sources(package):
            for n, line in enumerate(path.read_text().splitlines(), 1):
                if pattern.search(line):
                    found.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert found == [], "use specs.lifecycle.State or its named sets:\n" + "\n".join(found)


def test_the_check_in_the_issue_prints_nothing() -> None:
    # `grep -rn "from scheduler" tools/` prints nothing
    hits = [
        f"{p.relative_to(ROOT)}:{n}"
        for p in _sources("tools")
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if "from scheduler" in line
    ]
    assert hits == []
