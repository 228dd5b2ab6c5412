"""The strategy's candles come from the candle store, with only the missing tail asked of the venue (issue 8 of the
backtest work: "the candle store is the strategy's source"). Real SQLite files, the simulator engine in process."""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path

import pytest

from lifecycle.clock import FakeClock
from lifecycle.values import Candle
from operations.candles import CandleSource
from settings.config import CandleSettings, Settings
from simulator.engine import SimConfig, Simulator
from simulator.venue import SimVenue
from store.candles import CandleStore, CandleStoreError
from store.registry import Registry

XBT = "PF_XBTUSD"
LIMIT = 50


class CountingVenue(SimVenue):
    """The simulator's venue, counting candle requests and remembering their `since`."""

    def __init__(self, sim: Simulator) -> None:
        super().__init__(sim)
        self.asked: list[datetime | None] = []

    def candles(self, symbol: str, timeframe: str, since: datetime | None = None, limit: int = 100) -> list[Candle]:
        self.asked.append(since)
        return super().candles(symbol, timeframe, since=since, limit=limit)


def world(seed: int = 3) -> tuple[FakeClock, Simulator, CountingVenue]:
    clock = FakeClock()
    sim = Simulator(SimConfig(seed=seed, history_minutes=180), clock=clock)
    return clock, sim, CountingVenue(sim)


def test_the_store_serves_the_strategy_and_the_venue_is_asked_only_for_new_candles(tmp_path: Path) -> None:
    clock, sim, venue = world()
    store = CandleStore(tmp_path / "candles.db")
    stored = CandleSource(venue, store)
    direct = CandleSource(venue)  # the venue alone, as before the store: the reference
    sim.advance(30)  # mid-candle: the venue's last 1m candle is still forming

    first = stored.closed(XBT, "1m", LIMIT, clock.now())
    assert first == direct.closed(XBT, "1m", LIMIT, clock.now())
    assert len(first) == LIMIT - 1 and first[-1].time.timestamp() + 60 <= clock.now().timestamp()
    venue.asked.clear()

    for _ in range(5):  # more ticks within the same candle: nothing new closed, nothing asked
        sim.advance(5)
        assert stored.closed(XBT, "1m", LIMIT, clock.now()) == first
    assert venue.asked == []

    sim.advance(120)  # two more candles closed
    after = stored.closed(XBT, "1m", LIMIT, clock.now())
    assert venue.asked == [first[-1].time.replace() + (first[1].time - first[0].time)]  # only the tail, once
    venue.asked.clear()
    assert after == direct.closed(XBT, "1m", LIMIT, clock.now())
    assert after[-3] == first[-1] and len(after) == LIMIT - 1


def test_a_restarted_daemon_reads_the_store_without_asking_again(tmp_path: Path) -> None:
    clock, sim, venue = world()
    path = tmp_path / "candles.db"
    sim.advance(10)
    before = CandleSource(venue, CandleStore(path)).closed(XBT, "1m", LIMIT, clock.now())
    venue.asked.clear()
    again = CandleSource(venue, CandleStore(path)).closed(XBT, "1m", LIMIT, clock.now())
    assert again == before and venue.asked == []


def test_a_store_that_fails_never_stops_the_strategy(tmp_path: Path) -> None:
    clock, sim, venue = world()
    store = CandleStore(tmp_path / "candles.db")
    source = CandleSource(venue, store)
    sim.advance(10)
    source.closed(XBT, "1m", LIMIT, clock.now())
    store.close()  # every read and write now fails, as a damaged file or a full disk would
    sim.advance(60)
    got = source.closed(XBT, "1m", LIMIT, clock.now())
    assert got == CandleSource(venue).closed(XBT, "1m", LIMIT, clock.now())


def test_a_file_that_is_not_a_candle_store_is_refused_with_one_line(tmp_path: Path) -> None:
    registry = Registry.open(tmp_path / "registry.db", FakeClock())
    registry.db.close()
    with pytest.raises(CandleStoreError, match=r"is not a candle store .*the registry"):
        CandleStore(tmp_path / "registry.db")
    text = tmp_path / "notes.db"
    text.write_text("not sqlite at all\n")
    with pytest.raises(CandleStoreError, match="is not a SQLite database"):
        CandleStore(text)
    assert text.read_text() == "not sqlite at all\n"
    with pytest.raises(CandleStoreError, match=r"folder .* does not exist"):
        CandleStore(tmp_path / "missing" / "candles.db")
    assert not (tmp_path / "missing").exists()


def test_the_daemon_refuses_to_start_with_the_registry_as_its_candle_store(tmp_path: Path) -> None:
    from scheduler.startup import EXIT_CONFIG, StartupRefused, open_candle_store

    db = tmp_path / "registry.db"
    same = Settings(db_path=db, candles=CandleSettings(path=db))
    with pytest.raises(StartupRefused) as refused:
        open_candle_store(same, db)
    assert refused.value.exit_code == EXIT_CONFIG and "is the registry itself" in str(refused.value)
    default = open_candle_store(Settings(db_path=db), db)
    assert default is not None and default.path == tmp_path / "candles.db"
    assert open_candle_store(Settings(db_path=db, candles=CandleSettings(enabled=False)), db) is None


def test_the_store_opened_at_startup_serves_the_scheduler_thread(tmp_path: Path) -> None:
    """The daemon opens the store in its main thread and ticks in APScheduler's worker threads: a store bound to
    the thread that opened it fell back to the venue on every tick (and logged it), so it was never read."""
    clock, sim, venue = world()
    store = CandleStore(tmp_path / "candles.db")
    source = CandleSource(venue, store)
    sim.advance(30)
    results: list[list[Candle]] = []

    def tick() -> None:
        results.append(source.closed(XBT, "1m", LIMIT, clock.now()))

    for _ in range(2):  # two ticks on two different threads, as the scheduler's pool does
        worker = threading.Thread(target=tick)
        worker.start()
        worker.join()
    venue.asked.clear()
    worker = threading.Thread(target=tick)
    worker.start()
    worker.join()
    assert venue.asked == [], "the store was not read from a worker thread"
    assert results[-1] == results[0] and len(results[0]) == LIMIT - 1
    assert store.latest(XBT, "1m", LIMIT) == results[0]  # the worker's writes are in the file the main thread reads
    store.close()


def test_a_truncated_candle_store_is_refused_before_the_daemon_writes_to_it(tmp_path: Path) -> None:
    """The daemon's store reads the same header check as the tools (store.sqlite_file): a file cut short (a full
    disk during a copy) is refused with one line, not opened and switched to WAL."""
    good = tmp_path / "candles.db"
    CandleStore(good).close()
    cut = tmp_path / "cut.db"
    cut.write_bytes(good.read_bytes()[:1000])  # not a whole number of pages
    with pytest.raises(CandleStoreError, match=r"is truncated .*set candles.path"):
        CandleStore(cut)
    assert cut.stat().st_size == 1000 and not (tmp_path / "cut.db-wal").exists()
