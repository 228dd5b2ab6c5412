"""What the running daemon says about itself, for the tools: its safety state (trading, halted, paused by an
escalation or by the operator) and the critical escalations behind it, in a small JSON file beside the registry
written after every reconciliation. `pre_flight_check` refuses while it says anything but `trading`.

Beside the registry, not in it, for the same reason as the restart memory: operational state, not lifecycle facts;
the audit must not depend on it. A missing or unreadable file means "no daemon state known".
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path


@dataclass(frozen=True)
class DaemonState:
    state: str  # Safety.state: trading | halted_<reason> | paused_escalation | ...
    escalations: tuple[str, ...]  # the fields at a critical escalation level
    at: datetime
    pid: int


def state_path(db_path: Path | str) -> Path:
    p = Path(db_path)
    return p.with_name(p.name + ".state.json")


def write_state(db_path: Path | str, state: DaemonState) -> None:
    path = state_path(db_path)
    doc = {"state": state.state, "escalations": list(state.escalations), "at": state.at.isoformat(), "pid": state.pid}
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(doc, fh)
    os.replace(tmp, path)  # atomic: a reader sees the old file or the new one, never half of one


def read_state(db_path: Path | str) -> DaemonState | None:
    try:
        doc = json.loads(state_path(db_path).read_text())
        return DaemonState(
            str(doc["state"]),
            tuple(str(e) for e in doc.get("escalations", ())),
            datetime.fromisoformat(str(doc["at"])),
            int(doc.get("pid", 0)),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
