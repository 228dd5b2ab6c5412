"""Each logging test installs our root handler into a buffer and gets the previous logging state back after."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from scheduler.logsetup import PINNED_LOGGERS, REDACT


@pytest.fixture
def log_state() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    names = (*PINNED_LOGGERS, "events")
    saved_levels = {name: logging.getLogger(name).level for name in names}
    buffer = io.StringIO()
    yield buffer
    for handler in list(root.handlers):
        if handler not in saved_handlers:
            root.removeHandler(handler)
    root.setLevel(saved_level)
    for name, level in saved_levels.items():
        logging.getLogger(name).setLevel(level)
    REDACT.clear()
