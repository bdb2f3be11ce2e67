# Two commands matter: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8000
export DEBUG ?= true

.PHONY: run test test-pg install migrate seed worker serve bench clean

$(STAMP): requirements.txt
	@echo "Installing the Python packages into $(VENV) (a couple of minutes the first time)…"
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

install: $(STAMP)

migrate: install
	$(PY) manage.py migrate --noinput

seed: migrate
	$(PY) manage.py seed_demo

# Web server and task worker together; Ctrl-C (or SIGTERM) stops both within 10 s (scripts/run.py).
run: seed
	@echo "Clearance on http://$(HOST):$(PORT)/  (Ctrl-C stops the server and the worker)"
	@$(PY) scripts/run.py --host $(HOST) --port $(PORT) --venv $(VENV)

test: install
	$(PY) -m pytest -q -n 2

# The same suite against PostgreSQL (the test runner creates and drops test_<db>).
test-pg: install
	TEST_DATABASE_URL=$${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test} $(PY) -m pytest -q -n 2

# Budgets of DESIGN.md, each against its named baseline (BENCH_DATABASE_URL=postgres://… for PostgreSQL).
bench: install
	$(PY) benchmarks/bulk_approve.py
	$(PY) benchmarks/staff_changelist.py --large 300000
	$(PY) benchmarks/import_balances.py

clean:
	rm -rf $(VENV) var db.sqlite3 db.sqlite3-*
