"""An event line is built only when a handler formats the record, and then once (a backtest's or a DST run's events
reach no formatting handler: building every line was about 6 % of a backtest bar)."""

from __future__ import annotations

import logging

import pytest

from lifecycle import events
from lifecycle.events import Ev, emit


class _Keep(logging.Handler):
    """Keeps records without formatting them (as a NullHandler or an event counter does)."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _kept(monkeypatch: pytest.MonkeyPatch) -> _Keep:
    """Make a _Keep the test logger's only handler. Called inside the test: pytest attaches its own capture
    handlers, which format, to every non-propagating logger when each test phase starts."""
    logger = logging.getLogger("tests.event_line")
    handler = _Keep()
    monkeypatch.setattr(logger, "handlers", [handler])
    monkeypatch.setattr(logger, "propagate", False)
    monkeypatch.setattr(logger, "level", logging.INFO)
    return handler


def test_a_line_no_handler_formats_is_never_built_and_built_once_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    kept = _kept(monkeypatch)
    built: list[str] = []
    render = events.render_kv

    def counted(event: str, fields: dict[str, object]) -> str:
        built.append(event)
        return render(event, fields)

    monkeypatch.setattr(events, "render_kv", counted)
    emit(Ev.JOB_FAILED, logging.getLogger("tests.event_line"), job="tick", error="venue down")
    assert built == []
    [record] = kept.records
    assert record.getMessage() == 'JOB_FAILED job=tick error="venue down"'
    assert record.getMessage() == 'JOB_FAILED job=tick error="venue down"'
    assert built == ["JOB_FAILED"]
    assert record.event == "JOB_FAILED"  # type: ignore[attr-defined]


def test_the_returned_line_is_the_logged_line(monkeypatch: pytest.MonkeyPatch) -> None:
    kept = _kept(monkeypatch)
    line = emit(Ev.JOB_FAILED, logging.getLogger("tests.event_line"), job="tick", error="x")
    assert str(line) == kept.records[0].getMessage() == "JOB_FAILED job=tick error=x"
