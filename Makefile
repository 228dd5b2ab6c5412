# Every target installs what it needs: a fresh clone runs `make run` or `make test` directly.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HYPOTHESIS_PROFILE ?= ci

.PHONY: install lock run test lint typecheck unit bench smoke spec-doc sim deploy clean

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

sim: $(STAMP)
	$(BIN)/python -m simulator --port $(or $(PORT),8765)

spec-doc: $(STAMP)
	$(BIN)/python -m specs.render > specs/lifecycle.md

deploy: $(STAMP)
	./scripts/deploy.sh $(DEPLOY_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .hypothesis
