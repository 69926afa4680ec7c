# Unitgate developer commands. Needs only Python >= 3.11 and make on a clean clone.
#
#   make run    development server on http://127.0.0.1:5000 with demo data
#   make test   the guards (ruff, mypy, import contracts) + the whole pytest suite (2 xdist workers)
#   make lint   the guards only: ruff, mypy, lint-imports
#   make bench  benchmarks; writes bench/RESULTS.md
#   make screenshots  PNGs of the main pages (both languages, 360 and 1280 px) in
#               docs/screenshots/, from a real server with the demo data
#   make failover  three nodes behind nginx survive a node, Redis, PostgreSQL and SMTP
#               going away and a rolling restart (tests/failover; 1.5 to 3 minutes, so
#               not part of `make test`; .ci/run runs it after `make test`)

SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
BENCH_STAMP := $(VENV)/.bench-stamp
PYTEST_ARGS ?= tests/
HOST ?= 127.0.0.1
PORT ?= 5000

AXE := tests/browser/node_modules/axe-core/axe.min.js

.PHONY: run test lint bench failover screenshots clean-venv

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || \
	  { echo "Python >= 3.11 is required (found $(PYTHON))"; exit 1; }
	$(PYTHON) -m venv $(VENV)

# Reinstall only when pyproject.toml changed (or the venv is new).
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

run: export IDP_DEV_MODE = true
run: export IDP_SECURE_COOKIES = false
run: export IDP_ISSUER ?= http://$(HOST):$(PORT)
run: $(STAMP)
	$(BIN)/idp init
	$(BIN)/idp demo
	@echo
	@echo "Development mode: one-time codes are printed on this console and shown at"
	@echo "  http://$(HOST):$(PORT)/dev/outbox"
	@echo "Stop with Ctrl-C."
	@echo
	$(BIN)/idp serve --host $(HOST) --port $(PORT) --workers 2

# The guards (docs/architecture.md, "Guards"): style and bugs, types, import contracts.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# axe-core for the browser sweep (tests/test_sweep_browser.py), from the lock file.
# Without npm the sweep skips (or fails under CI) and says why.
$(AXE): tests/browser/package-lock.json
	@if command -v npm >/dev/null; then cd tests/browser && npm ci --no-audit --no-fund --silent && touch node_modules/axe-core/axe.min.js; \
	else echo "npm is not installed: the browser sweep (tests/test_sweep_browser.py) will skip"; fi

# The Playwright Python package comes with '.[test]'; its own browsers are not
# downloaded: the browser tests drive Debian's chromium.
test: $(STAMP) $(AXE)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

# Real processes on loopback (tests/failover/cluster.py): one at a time, never with xdist.
failover: $(STAMP)
	IDP_FAILOVER=1 $(BIN)/python -m pytest -n 0 -s tests/failover

# A real `idp serve` with the demo data, photographed by Debian's chromium
# (tests/support/screenshots.py); replaces docs/screenshots/*.png.
screenshots: $(STAMP)
	$(BIN)/python -m tests.support.screenshots --out docs/screenshots

# py-spy (the bench extra) samples the live worker for the profile in RESULTS.md.
$(BENCH_STAMP): pyproject.toml | $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	@touch $(BENCH_STAMP)

bench: $(STAMP) $(BENCH_STAMP)
	@command -v wrk >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get install -y -q wrk >/dev/null; \
	  else sudo apt-get install -y -q wrk >/dev/null; fi; }
	$(BIN)/python -m bench

clean-venv:
	rm -rf $(VENV)
