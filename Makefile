# Paved: `make run` serves the portal with demo data, `make test` runs every test.
SHELL := /bin/bash
UV ?= $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
PAVED := $(UV) run --frozen paved
HOST ?= 127.0.0.1
PORT ?= 8000
CHROMIUM ?= /usr/bin/chromium

.PHONY: run test test-postgres lint fmt bench install web chromium clean

## Install uv when missing, then the locked Python packages and the npm packages.
install: $(UV) .venv/.synced web/static/vendor/.built

## The tests start a real OIDC provider (npm's oidc-provider) from tests/oidc.
tests/oidc/node_modules/.installed: tests/oidc/package.json tests/oidc/package-lock.json
	npm ci --prefix tests/oidc --no-audit --no-fund
	@touch $@

## Backstage's own catalog client (npm) drives the catalog API in the tests.
tests/catalog_client/node_modules/.installed: tests/catalog_client/package.json tests/catalog_client/package-lock.json
	npm ci --prefix tests/catalog_client --no-audit --no-fund
	@touch $@

## Browser tests drive Debian's Chromium; install it when missing and allowed to.
chromium:
	@if [ ! -x $(CHROMIUM) ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "note: $(CHROMIUM) is missing; browser tests will be skipped (apt-get install chromium)"; \
	  fi; \
	fi

$(UV):
	python3 -m pip install --user --quiet uv

## Bytecode is compiled once here: Python may be told not to write it (PYTHONDONTWRITEBYTECODE),
## and then every start would compile every library again (about a second of start-up).
.venv/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --compile-bytecode
	@touch $@

web: web/static/vendor/.built

web/static/vendor/.built: web/package.json web/package-lock.json web/build.mjs
	npm ci --prefix web --no-audit --no-fund
	npm run --prefix web build
	@touch $@

## Serve the portal on http://$(HOST):$(PORT) with demo data (SQLite under .paved/) and
## the local demo sign-in (demo users, no password; loopback only).
run: install
	$(PAVED) db upgrade
	PAVED_AUTH__LOCAL__ENABLED=$${PAVED_AUTH__LOCAL__ENABLED:-true} \
		exec $(PAVED) up --host $(HOST) --port $(PORT) --demo

## Every test (SQLite). Browser tests drive $(CHROMIUM); PostgreSQL tests need
## PAVED_TEST_DATABASE_URL (see `make test-postgres`).
test: install chromium tests/oidc/node_modules/.installed tests/catalog_client/node_modules/.installed
	$(UV) run --frozen pytest $(PYTEST_ARGS)

test-postgres: install tests/oidc/node_modules/.installed tests/catalog_client/node_modules/.installed
	PAVED_TEST_DATABASE_URL=$${PAVED_TEST_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/test} \
		$(UV) run --frozen pytest -m postgres $(PYTEST_ARGS)

lint: install
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen ruff check .
	$(UV) run --frozen mypy

fmt: install
	$(UV) run --frozen ruff format .
	$(UV) run --frozen ruff check --fix .

## Every benchmark; PostgreSQL figures too when PAVED_TEST_DATABASE_URL names a server.
bench: install
	@for script in bench/*.py; do echo "== $$script"; $(UV) run --frozen python $$script || exit 1; done

clean:
	rm -rf .venv web/node_modules web/static/vendor .pytest_cache .mypy_cache .ruff_cache
