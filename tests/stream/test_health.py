"""The stream's health where an operator looks: CYCLE_SUMMARY fields, /status, the metrics endpoint, alerts."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from exchange.stream import OrderStream
from lifecycle.events import EVENT_LOGGER, Ev, emit
from scheduler.metrics import Metrics
from scheduler.stream_status import STREAMS, status_line, stream_fields
from scheduler.telegram.bridge import AlertLogHandler
from scheduler.telegram.views import StatusView, render_status
from settings.config import Settings
from tests.stream.conftest import API_KEY, API_SECRET, Recorder


@pytest.fixture
def current() -> Iterator[OrderStream]:
    stream = OrderStream(
        api_key=API_KEY, api_secret=API_SECRET, base_url="http://127.0.0.1:9", handler=Recorder(), degraded_after_s=60
    )
    STREAMS.stream = stream
    try:
        yield stream
    finally:
        STREAMS.stream = None


def test_no_stream_adds_nothing() -> None:
    assert STREAMS.stream is None
    assert stream_fields() == {} and status_line() is None


def test_cycle_summary_and_status_carry_the_streams_counters(current: OrderStream) -> None:
    current.stats.state, current.stats.fills_received, current.stats.gaps = "connected", 7, 2
    current.stats.connects = 3
    line = str(emit(Ev.CYCLE_SUMMARY, cycle=1, **stream_fields()))
    assert line == "CYCLE_SUMMARY cycle=1 stream=connected stream_fills=7 stream_gaps=2"
    status = status_line()
    assert status is not None and "connected" in status and "fills 7, gaps 2, reconnects 2" in status
    view = StatusView("paper", 0, None, None, (), "2026-01-01T00:00:00Z", stream=status)
    assert render_status(view).splitlines()[-1] == f"Order {status}"
    current.stats.state = "down"
    current.stats.down_since_monotonic = 0.0  # down since the monotonic clock's origin: long past 60 s
    assert "DEGRADED" in str(status_line())


def test_stream_events_become_metrics() -> None:
    m = Metrics()
    m.observe(Ev.STREAM_CONNECTED, {"url": "ws://x/ws/v1", "snapshot_fills": 0, "connects": 1})
    assert m.registry.get_sample_value("trader_stream_connected") == 1
    m.observe(Ev.STREAM_DISCONNECTED, {"reason": "silent", "last_message_age_s": 16.0, "retry_in_s": 0.4})
    m.observe(Ev.STREAM_DISCONNECTED, {"reason": "NetworkError: gone", "last_message_age_s": 1.0, "retry_in_s": 1})
    m.observe(Ev.STREAM_LAG, {"state": "degraded", "last_message_age_s": None, "lag_ms": None, "detail": "x"})
    assert m.registry.get_sample_value("trader_stream_connected") == 0
    assert m.registry.get_sample_value("trader_stream_disconnects_total", {"reason": "silent"}) == 1
    assert m.registry.get_sample_value("trader_stream_disconnects_total", {"reason": "closed"}) == 1
    assert m.registry.get_sample_value("trader_stream_lag_total", {"state": "degraded"}) == 1


class _Sink:
    def __init__(self) -> None:
        self.texts: list[str] = []

    def alert(self, text: str) -> bool:
        self.texts.append(text)
        return True


def test_only_a_degraded_stream_is_an_alert() -> None:
    sink = _Sink()
    handler = AlertLogHandler(sink)
    logger = logging.getLogger(EVENT_LOGGER)
    logger.addHandler(handler)
    try:
        emit(Ev.STREAM_LAG, state="silent", last_message_age_s=16.0, lag_ms=3, detail="no message")
        emit(Ev.STREAM_LAG, state="late", last_message_age_s=0.1, lag_ms=20000, detail="late fill")
        emit(Ev.STREAM_DISCONNECTED, reason="silent", last_message_age_s=16.0, retry_in_s=0.4)
        assert sink.texts == []
        emit(Ev.STREAM_LAG, state="degraded", last_message_age_s=None, lag_ms=None, detail="down 130 s")
    finally:
        logger.removeHandler(handler)
    assert len(sink.texts) == 1 and "STREAM_LAG state=degraded" in sink.texts[0]


def test_stream_settings_defaults_and_bounds() -> None:
    s = Settings()
    assert (s.stream.enabled, s.stream.max_silence_s, s.stream.degraded_after_s) == (True, 15.0, 120.0)
    with pytest.raises(ValueError):
        Settings.model_validate({"stream": {"max_silence_s": 0}})
