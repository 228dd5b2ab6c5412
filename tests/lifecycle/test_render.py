"""The committed spec document is exactly what `python -m specs.render` produces now."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from specs import lifecycle as lc
from specs.render import render

ROOT = Path(__file__).resolve().parents[2]


def test_committed_document_is_up_to_date() -> None:
    committed = (ROOT / "specs" / "lifecycle.md").read_text(encoding="utf-8")
    assert committed == render(), "specs/lifecycle.md is out of date with specs/: run `make spec-doc` and commit"


def test_module_entry_point_prints_the_document() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "specs.render"], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout == render()


def test_document_covers_every_spec_item() -> None:
    doc = render()
    for s in lc.STATES:
        assert f"| `{s.name}` |" in doc
    for t in lc.TRANSITIONS:
        assert f"    {t.source} --> {t.target}: {t.event}" in doc
    for c in lc.CREATIONS:
        assert f"    [*] --> {c.target}: {c.event}" in doc
    for name in lc.TERMINAL_STATES:
        assert f"    {name} --> [*]" in doc
    for i in lc.INVARIANTS:
        assert f"| {i.id} | `{i.report_field}` |" in doc
