# streams-failover-tester — every target bootstraps what it needs on a bare Debian/Ubuntu machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
CONFIG ?= config/lab.yaml
TAGS ?= @smoke

.PHONY: help run test lint docs bench bootstrap system-deps lab-up lab-down lab-status clean

help:
	@echo "make run       bring the embedded lab up (root) and run the @smoke failover features; reports in reports/latest/"
	@echo "make test      lint (ruff, mypy), pytest (unit + lab conformance + integration), behave --dry-run"
	@echo "make lab-up | lab-down | lab-status    drive the embedded two-DC lab"
	@echo "make lint      ruff and mypy only"
	@echo "make docs      regenerate docs/steps.md from the step definitions"
	@echo "make bench     run every benchmark (python -m support.bench; lab ones need root, take the lab lock)"

system-deps:
	@bash scripts/system-deps.sh

$(PY_STAMP): pyproject.toml setup.py
	@$(MAKE) --no-print-directory system-deps
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

$(NODE_STAMP): package.json package-lock.json
	@$(MAKE) --no-print-directory system-deps
	@npm ci --no-audit --no-fund --loglevel=error
	@touch $@

bootstrap: $(PY_STAMP) $(NODE_STAMP)

lint: bootstrap
	$(BIN)/ruff check .
	$(BIN)/mypy support lab steps environment.py

# lint, unit tests and behave --dry-run run beside the lab tests, which mostly wait (scripts/test.sh says why)
test: bootstrap
	@bash scripts/test.sh

run: bootstrap
	@$(BIN)/failover-tester lab up
	$(BIN)/failover-tester run --config $(CONFIG) $(if $(TAGS),--tags $(TAGS),)

# Each benchmark support/bench/<name>.py writes reports/bench/<name>.json (the list: support.bench.BENCHMARKS);
# all run, the target fails if any failed.
bench: bootstrap
	@mkdir -p reports/bench
	$(BIN)/python -m support.bench

docs: bootstrap
	$(BIN)/failover-tester steps --markdown > docs/steps.md
	$(BIN)/python scripts/apidoc.py docs/api.md

lab-up: bootstrap
	@$(BIN)/failover-tester lab up

lab-down: bootstrap
	@$(BIN)/failover-tester lab down

lab-status: bootstrap
	@$(BIN)/failover-tester lab status

clean:
	rm -rf reports/2* reports/latest .pytest_cache .mypy_cache .ruff_cache
