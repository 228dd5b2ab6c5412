"""A deterministic Kraken Futures venue: matching engine, price paths, margin, injected faults, and an HTTP
server that answers under Kraken's own REST paths so the real ccxt client can be pointed at it.

Entry points: `simulator.engine.Simulator`, `simulator.server.SimulatorServer`,
`python -m simulator`. See docs/simulator.md.
"""
