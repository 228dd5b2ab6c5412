"""Backtests on the live engine: stored candles replayed through the simulator engine in process, on a virtual
clock, with the daemon's own jobs run at every bar (docs/backtest.md)."""
