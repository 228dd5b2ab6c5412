# Every target installs what it needs: a fresh clone runs `make run` or `make test` directly.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HYPOTHESIS_PROFILE ?= ci

.PHONY: install run test lint typecheck unit bench smoke spec-doc sim deploy clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

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
