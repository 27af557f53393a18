# GeoMarket: `make run` brings everything up, `make test` runs the whole suite.
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV := scripts/uv
VENV := .venv
PYTHON := $(VENV)/bin/python
export UV_PYTHON_DOWNLOADS := never
# Ports given on make's command line reach the scripts and the settings; their defaults
# are in scripts/ports.env.
export PG_PORT REDIS_PORT REDIS_BROKER_PORT
PORT ?= 8000
# One test worker more than there are cores: many tests wait on servers, browsers and the
# database, and a third worker on 2 cores took the suite from 6:04 to 5:44.
TEST_WORKERS ?= $(shell echo $$(( $$(nproc) + 1 )))

.PHONY: help setup system-packages venv services replica pgbouncer stop status migrate seed run serve test lint format bench soak fuzz

help:
	@echo "make run       set up, start PostGIS + Redis, migrate, then web, worker, outbox relay, beat"
	@echo "make test      set up, start PostGIS + Redis, run the full test suite (one worker per core)"
	@echo "make setup     system packages (as root on Debian/Ubuntu) and the virtualenv"
	@echo "make services  start the project-local PostGIS and Redis (idempotent)"
	@echo "make replica   start a streaming replica of the local PostGIS too (REPLICA_PORT)"
	@echo "make pgbouncer start PgBouncer in transaction mode in front of it too (PGBOUNCER_PORT)"
	@echo "make stop      stop them"
	@echo "make migrate   apply database migrations"
	@echo "make seed      load the demo city once"
	@echo "make bench     the benchmark against a production server"
	@echo "make soak      mixed load + Redis faults, then invariants (SOAK_SECONDS, default 300)"
	@echo "make fuzz      schemathesis over every operation, 300 examples each"
	@echo "make serve     the web server alone (honours DATABASE_URL, REDIS_URL, PORT)"
	@echo "make lint      ruff check and format check, and the import contracts (lint-imports)"

setup: system-packages venv

system-packages:
	@scripts/system-packages.sh

venv: $(VENV)/.synced

$(VENV)/.synced: pyproject.toml uv.lock
	@$(UV) sync --frozen --quiet --compile-bytecode
	@touch $@

services:
	@scripts/services.sh start

# The replica is made once, by a base backup of the primary (tests/replica need it).
replica:
	@REPLICA=1 scripts/services.sh start

pgbouncer:
	@PGBOUNCER=1 scripts/services.sh start

stop:
	@scripts/services.sh stop

status:
	@scripts/services.sh status

migrate: venv
	@$(PYTHON) manage.py migrate --no-input

seed: migrate
	@$(PYTHON) manage.py seed_demo --preset demo --if-empty

run: setup services migrate seed
	@PORT=$(PORT) scripts/run.sh

serve: venv
	@PORT=$(PORT) scripts/serve

# pytest-xdist workers, one test database each; `make test TEST_WORKERS=0` runs serially.
# Work stealing evens out the few tests that run for tens of seconds; the 20 slowest are
# listed at the end, to keep the suite within its budget (6 minutes in CI).
# The suite's connections go through PgBouncer in transaction mode, as a deployment's behind
# one would (what needs a session of its own goes to PostgreSQL directly); not with an
# external DATABASE_URL.
test: setup services replica pgbouncer
	@PGBOUNCER=$(if $(DATABASE_URL),0,1) $(VENV)/bin/pytest -n $(TEST_WORKERS) --dist worksteal --durations=20

lint: venv
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .
	@$(VENV)/bin/lint-imports --no-cache

format: venv
	@$(VENV)/bin/ruff check --fix .
	@$(VENV)/bin/ruff format .

fuzz: setup services
	@FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-300} FUZZ_PHASES=examples,coverage,fuzzing \
		$(VENV)/bin/pytest tests/test_fuzz.py -p no:randomly

bench: setup services
	@$(PYTHON) bench/run.py

soak: setup services
	@$(PYTHON) -m bench.soak
