"""A daemon without `[telegram]` never loads python-telegram-bot (issue 6), nor matplotlib (only /chart and the
report draw pictures) nor ccxt.pro (only the order stream uses it): each costs startup time and memory on a small
VPS, and a dependency that is not loaded cannot fail."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = textwrap.dedent(
    """
    import sys
    import scheduler.__main__  # the daemon's entry point and everything it imports
    from scheduler import startup, stream_hook
    from settings.config import Settings, StreamSettings

    HEAVY = ("telegram", "matplotlib", "ccxt.pro")

    def loaded():
        return sorted({m for m in sys.modules for h in HEAVY if m == h or m.startswith(h + ".")})

    assert loaded() == [], loaded()
    settings = Settings()
    assert settings.telegram is None
    with startup.telegram_alerts(settings, None, None):  # not configured: nothing to start
        pass
    off = stream_hook.order_stream(StreamSettings(enabled=False), None, api_key=None, api_secret=None, base_url=None)
    with off(None):
        pass
    assert loaded() == [], loaded()
    print("clean")
    """
)


def test_an_unconfigured_daemon_loads_no_telegram_no_plotting_no_websocket_library() -> None:
    run = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "clean"
