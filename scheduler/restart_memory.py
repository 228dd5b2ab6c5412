"""What the escalator must remember across restarts: the first reconciliation counters after each start.

The runbook's `pending_adopted` critical rule is "repeated every restart", which no single process can see. The
values live in a small JSON file beside the registry (not in it: they are operational memory, not lifecycle
facts, and the audit must not depend on them). A missing or damaged file means "no history", never a crash.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

KEEP = 10  # restarts remembered per field; the rule needs the last 3

log = logging.getLogger(__name__)


class RestartMemory:
    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def beside(cls, db_path: Path) -> RestartMemory:
        return cls(db_path.with_name(db_path.name + ".restarts.json"))

    def load(self) -> dict[str, tuple[int, ...]]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("RESTART_MEMORY_UNREADABLE path=%s error=%s; starting without restart history", self.path, exc)
            return {}
        if not isinstance(raw, dict):
            return {}
        return {str(k): tuple(int(x) for x in v if isinstance(x, int)) for k, v in raw.items() if isinstance(v, list)}

    def save(self, firsts: Mapping[str, Sequence[int]]) -> None:
        data = {field: list(values)[-KEEP:] for field, values in firsts.items()}
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            tmp.write_text(json.dumps(data, sort_keys=True), encoding="utf-8")
            os.replace(tmp, self.path)  # atomic: a crash leaves the old file or the new one, never half of one
        except OSError as exc:
            log.warning("RESTART_MEMORY_UNWRITABLE path=%s error=%s", self.path, exc)
