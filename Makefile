# Two commands for a new user: `make run` and `make test`. See README.md.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PG_TEST_URL ?= postgresql://postgres@127.0.0.1:5432/test
REDIS_TEST_URL ?= redis://127.0.0.1:6379/15
PYTEST_ARGS ?=

.PHONY: run test test-sqlite test-postgres install lint format bench bench-faults clean translations-update

$(BIN)/activate: requirements.txt
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	touch $(BIN)/activate

# The web pages' translations (messaging/translations/<lang>/LC_MESSAGES/messages.po),
# compiled to the .mo files Flask-Babel reads; the .mo files are built, not committed.
TRANSLATIONS := messaging/translations
MO_FILES := $(patsubst %.po,%.mo,$(wildcard $(TRANSLATIONS)/*/LC_MESSAGES/messages.po))

$(TRANSLATIONS)/%/LC_MESSAGES/messages.mo: $(TRANSLATIONS)/%/LC_MESSAGES/messages.po $(BIN)/activate
	$(BIN)/pybabel -q compile -d $(TRANSLATIONS) -l $*

# commcare-export (the tests run it against a live server) in a virtualenv of its own:
# it pins SQLAlchemy 2.0 and openpyxl 3.1.5, which the app's own environment does not use.
CCE := .venv-cce
$(CCE)/bin/commcare-export:
	test -d $(CCE) || $(PYTHON) -m venv $(CCE)
	$(CCE)/bin/pip install -q commcare-export==1.16.0 psycopg2-binary

install: $(BIN)/activate $(MO_FILES) $(CCE)/bin/commcare-export

# After marking new texts: extract them and merge them into every language's .po
# (then translate the empty msgstr; tests/unit/http/test_translations.py lists them).
translations-update: install
	$(BIN)/pybabel -q extract -F $(TRANSLATIONS)/babel.cfg -k _l -k lazy_gettext --no-location \
	  --omit-header -o $(TRANSLATIONS)/messages.pot .
	$(BIN)/pybabel -q update -i $(TRANSLATIONS)/messages.pot -d $(TRANSLATIONS) --ignore-obsolete

run: install
	./scripts/run.sh

test: install
	@./scripts/ensure_services.sh
	$(BIN)/ruff check .
	@echo "== tests on SQLite =="
	TEST_DATABASE_URL= TEST_REDIS_URL=$(REDIS_TEST_URL) $(BIN)/pytest -W error $(PYTEST_ARGS)
	@echo "== tests on PostgreSQL ($(PG_TEST_URL)) =="
	TEST_DATABASE_URL=$(PG_TEST_URL) TEST_REDIS_URL=$(REDIS_TEST_URL) $(BIN)/pytest -W error $(PYTEST_ARGS)

test-sqlite: install
	TEST_DATABASE_URL= TEST_REDIS_URL=$(REDIS_TEST_URL) $(BIN)/pytest -W error $(PYTEST_ARGS)

test-postgres: install
	TEST_DATABASE_URL=$(PG_TEST_URL) TEST_REDIS_URL=$(REDIS_TEST_URL) $(BIN)/pytest -W error $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Benchmarks print their figures. They WIPE the PostgreSQL database $(PG_BENCH_URL)
# (created if missing) and use Redis DBs 9-10: never point them at real data.
# bench-faults starts (and crashes) its own private PostgreSQL and Redis instead.
PG_BENCH_URL ?= postgresql://postgres@127.0.0.1:5432/bench
bench: install
	@psql -h 127.0.0.1 -U postgres -d test -tc "SELECT 1 FROM pg_database WHERE datname='bench'" | grep -q 1 || \
	  psql -h 127.0.0.1 -U postgres -d test -c "CREATE DATABASE bench"
	$(BIN)/python bench/bench_case_import.py --rows 50000 --pg $(PG_BENCH_URL)
	$(BIN)/python bench/bench_case_group_import.py --db both --pg-url $(PG_BENCH_URL)
	$(BIN)/python bench/bench_sms.py
	$(BIN)/python bench/bench_forwarding.py
	$(BIN)/python bench/bench_forwarding.py --forms 2000 --database-url $(PG_BENCH_URL)
	$(BIN)/python bench/bench_inbound.py --seconds 30
	$(BIN)/python bench/bench_inbound.py --seconds 30 --database-url $(PG_BENCH_URL)
	$(BIN)/python bench/bench_broadcast.py --database-url $(PG_BENCH_URL)
	$(BIN)/python bench/bench_conversation.py && $(BIN)/python bench/bench_conversation.py --database-url $(PG_BENCH_URL)
	$(BIN)/python bench/bench_alerts.py --database-url $(PG_BENCH_URL)
	$(BIN)/python bench/bench_faults.py

bench-faults: install
	$(BIN)/python bench/bench_faults.py

clean:
	rm -rf $(VENV) $(CCE) instance/*.sqlite3*
