"""Print the fingerprint of what the lock files are resolved from, or check a lock file against it.

    python3 scripts/lock_input.py                       # the sha256 of pyproject.toml's dependency declarations
    python3 scripts/lock_input.py --check LOCKFILE      # exit 1 with one line when LOCKFILE is stale
    VENV/bin/python scripts/lock_input.py --pth         # put this checkout on that venv's import path

Only `requires-python`, `dependencies` and `optional-dependencies` count, so editing a tool's settings in
pyproject.toml does not make the lock stale; adding or changing a dependency does. `make lock` writes the
fingerprint into each lock file's header; `scripts/install.sh` and `.ci/run` refuse a lock that does not match.
Standard library only: it runs with the host's python3 before any venv exists.
"""

from __future__ import annotations

import hashlib
import json
import sys
import sysconfig
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEADER = "# lock-input-sha256: "


def fingerprint(pyproject: Path = ROOT / "pyproject.toml") -> str:
    project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
    declared = {
        "requires-python": project.get("requires-python"),
        "dependencies": sorted(project.get("dependencies", [])),
        "optional-dependencies": {k: sorted(v) for k, v in project.get("optional-dependencies", {}).items()},
    }
    return hashlib.sha256(json.dumps(declared, sort_keys=True).encode()).hexdigest()


def recorded(lock: Path) -> str | None:
    for line in lock.read_text(encoding="utf-8").splitlines():
        if line.startswith(HEADER):
            return line[len(HEADER) :].strip()
    return None


def write_pth() -> Path:
    """What `pip install -e .` leaves behind, without building anything: the checkout on the running venv's path."""
    target = Path(sysconfig.get_paths()["purelib"]) / "kraken_lifecycle_daemon.pth"
    target.write_text(f"{ROOT}\n", encoding="utf-8")
    return target


def main(argv: list[str]) -> int:
    if not argv:
        print(fingerprint())
        return 0
    if argv == ["--pth"]:
        write_pth()
        return 0
    if len(argv) != 2 or argv[0] != "--check":
        print("usage: python3 scripts/lock_input.py [--check LOCKFILE | --pth]", file=sys.stderr)
        return 2
    lock = Path(argv[1])
    if not lock.is_file():
        print(f"lock file {lock} is missing; run: make lock", file=sys.stderr)
        return 1
    found = recorded(lock)
    if found != fingerprint():
        print(
            f"lock file {lock} was not generated from this pyproject.toml's dependencies "
            f"({'no fingerprint' if found is None else 'fingerprint differs'}); run: make lock, and commit it",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
