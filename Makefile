# Every target installs what it needs: a fresh clone runs `make run` or `make test` directly.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HYPOTHESIS_PROFILE ?= ci

.PHONY: install lock run test lint typecheck unit bench smoke spec-doc sim mutate deploy clean

# Dependencies come only from the hash-pinned lock files (docs/deploy.md "Pinned dependencies"): pip installs
# exactly those files and refuses any other; the project itself is put on the path by a .pth file (what an
# editable install does, without an unpinned build backend). `make lock` regenerates both locks with uv.
LOCK := requirements.lock
DEV_LOCK := requirements-dev.lock
UV_VERSION := 0.13.9

$(STAMP): pyproject.toml $(DEV_LOCK)
	$(PY) scripts/lock_input.py --check $(DEV_LOCK)
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes --no-deps -r $(DEV_LOCK)
	$(BIN)/python scripts/lock_input.py --pth
	touch $(STAMP)

install: $(STAMP)

# Regenerate the lock files from pyproject.toml (resolves against PyPI; commit both files afterwards).
lock:
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet 'uv==$(UV_VERSION)'
	./scripts/lock.sh $(BIN)/uv

run: $(STAMP)
	$(BIN)/python -m scheduler --paper

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest -q --hypothesis-profile=$(HYPOTHESIS_PROFILE)

test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/python -m bench

smoke: $(STAMP)
	$(BIN)/python -m scheduler.smoke

# A newcomer's backtest, no network: the embedded simulator's history into a candle store, then the daemon's own
# jobs over it (docs/backtest.md). A second run finds the candles there already and only backtests.
BACKTEST_CANDLES ?= var/backtest/candles.db
.PHONY: backtest
backtest: $(STAMP)
	$(BIN)/python -m backtest.demo --candles $(BACKTEST_CANDLES) --days 120 --symbols PF_XBTUSD,PF_ETHUSD --timeframe 1h
	rm -f var/backtest/equity.png
	$(BIN)/python -m tools.backtest --candles $(BACKTEST_CANDLES) --symbols PF_XBTUSD,PF_ETHUSD --timeframe 1h \
		--plot var/backtest/equity.png

# Deterministic simulation testing (docs/dst.md): `make dst` runs DST_SEEDS seeds; `make dst SEED=n STEPS=k` replays
# one (a failure prints that line, and its shrunk schedule's, with KEEP=: the steps that keep their event).
DST_SEEDS ?= 1000
.PHONY: dst
dst: $(STAMP)
	$(BIN)/python -m dst $(if $(SEED),--seed $(SEED),--seeds $(DST_SEEDS)) $(if $(STEPS),--steps $(STEPS)) \
		$(if $(KEEP),--keep $(KEEP)) $(DST_ARGS)

sim: $(STAMP)
	$(BIN)/python -m simulator --port $(or $(PORT),8765)

spec-doc: $(STAMP)
	$(BIN)/python -m specs.render > specs/lifecycle.md

# Mutation testing of the pure core (docs/testing.md); not part of `make test`. `make mutate MODULE=lifecycle/machine.py`
mutate: $(STAMP)
	$(BIN)/python -c "import cosmic_ray" 2>/dev/null || $(BIN)/pip install --quiet 'cosmic-ray>=8.4,<9'
	nice -n 19 $(BIN)/python scripts/mutate.py $(if $(MODULE),--module $(MODULE)) $(MUTATE_ARGS)

deploy: $(STAMP)
	./scripts/deploy.sh $(DEPLOY_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .hypothesis
