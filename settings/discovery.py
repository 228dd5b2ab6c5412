"""Which config file the daemon and the tools use, when none is named on the command line.

Order: `--config FILE`, then `$TRADER_CONFIG`, then `/etc/trading-bot/config.toml` (what scripts/install.sh
writes), then `./config.toml`. The tools fall back to the embedded paper defaults after that; the daemon refuses
(a host must not start paper trading because its config went missing). Whatever is chosen is said in one line.

When `$TRADER_SECRETS_FILE` is not set, a `secrets.toml` beside the chosen config is used as the secrets file (the
install puts the API keys in /etc/trading-bot/secrets.toml), so `python -m tools.<name>` works on the host as the
service user with no variables set.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

CONFIG_ENV = "TRADER_CONFIG"
SECRETS_ENV = "TRADER_SECRETS_FILE"
SYSTEM_CONFIG = Path("/etc/trading-bot/config.toml")
LOCAL_CONFIG = Path("config.toml")
SECRETS_NAME = "secrets.toml"
EMBEDDED = "the embedded paper defaults (config/paper.toml)"


class DiscoveryError(ValueError):
    """A config location that is set but unusable; the message names it and the fix."""


@dataclass(frozen=True)
class Found:
    path: Path | None  # None: nothing found (the tools use the embedded paper defaults)
    source: str
    secrets: Path | None = None

    def describe(self) -> str:
        where = EMBEDDED if self.path is None else f"{self.path} ({self.source})"
        extra = f", secrets from {self.secrets} (beside it)" if self.secrets is not None else ""
        return f"config: {where}{extra}"


def _present(path: Path) -> bool:
    try:
        path.stat()
    except PermissionError:
        return True  # there, but not ours to read: loading it names the permission problem
    except (OSError, ValueError):
        return False
    return True


def discover(
    explicit: Path | None,
    environ: Mapping[str, str] | None = None,
    *,
    system: Path = SYSTEM_CONFIG,
    local: Path = LOCAL_CONFIG,
) -> Found:
    env = os.environ if environ is None else environ
    if explicit is not None:
        found = Found(explicit, "--config")
    elif CONFIG_ENV in env:
        value = env[CONFIG_ENV].strip()
        if not value:
            raise DiscoveryError(f"{CONFIG_ENV} is set but empty; unset it or set it to the config file's path")
        found = Found(Path(value), CONFIG_ENV)
    elif _present(system):
        found = Found(system, "default location")
    elif _present(local):
        found = Found(local, "current directory")
    else:
        return Found(None, "none found")
    assert found.path is not None
    beside = found.path.parent / SECRETS_NAME
    if SECRETS_ENV not in env and beside != found.path and _present(beside):
        return Found(found.path, found.source, beside)
    return found


def searched() -> str:
    return f"--config FILE, ${CONFIG_ENV}, {SYSTEM_CONFIG}, ./{LOCAL_CONFIG}"
