# CadreFlow: `make run` (demo service), `make test` (whole suite on SQLite and PostgreSQL), `make lint`,
# `make bench`, `make bench-scale`, `make scaled` (gunicorn + timer workers on PostgreSQL, one machine).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
# The local PostgreSQL server (trust auth on these machines): tests make a database per test below it.
POSTGRES ?= postgresql+psycopg://postgres@127.0.0.1
SCALED_DB ?= cadreflow_scaled
# The browser bundles (bpmn-js, Chart.js) and the compiled translations, rebuilt when their sources change.
UI_BUILT := service/web/static/dist/.built
UI_SOURCES := frontend/package-lock.json frontend/build.mjs $(wildcard frontend/src/*)
TRANSLATIONS := service/web/translations
CATALOGS := $(wildcard $(TRANSLATIONS)/*/LC_MESSAGES/messages.po)
COMPILED := $(CATALOGS:.po=.mo)

.PHONY: setup lock run test lint bench bench-scale scaled postgres test-postgres redis clean browser printing translations

# Setup installs exactly the pinned versions of requirements.lock; `make lock` re-resolves it from pyproject.toml.
$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

lock: $(VENV)/.installed
	$(BIN)/uv pip compile --quiet pyproject.toml --extra dev --python-version 3.11 -o requirements.lock

$(UI_BUILT): $(UI_SOURCES)
	npm ci --prefix frontend --no-audit --no-fund
	npm run build --prefix frontend
	touch $@

%.mo: %.po $(VENV)/.installed
	$(BIN)/pybabel compile --use-fuzzy -i $< -o $@

setup: $(VENV)/.installed $(UI_BUILT) $(COMPILED) printing

run: setup
	$(BIN)/cadreflow demo
	$(BIN)/cadreflow serve --host $(HOST) --port $(PORT)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy

# The browser tests drive Debian's chromium; the CJK font makes Chinese pages render (CI runs as root).
browser:
	@command -v chromium >/dev/null && test -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc || \
		(apt-get update && apt-get install -y chromium fonts-wqy-microhei)

# The printable documents: WeasyPrint needs Debian's Pango and HarfBuzz's subsetter (it embeds font subsets and
# warns without it), and Chinese text a CJK font (CI runs as root).
printing:
	@$(PYTHON) -c 'import ctypes.util as u, sys; sys.exit(not all(map(u.find_library, ("pango-1.0", "pangoft2-1.0", "harfbuzz-subset"))))' \
		&& test -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc || \
		(apt-get update && apt-get install -y libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-wqy-microhei)

# Start the local PostgreSQL server if it is down, and wait until it answers.
postgres:
	@pg_isready -q -h 127.0.0.1 -p 5432 || pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start
	@for i in $$(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && exit 0; sleep 1; done; \
		echo "PostgreSQL did not come up on 127.0.0.1:5432" >&2; exit 1

# The suite's own PostgreSQL: a throwaway cluster of the same server, durability off (fsync, full-page writes,
# synchronous commit). Each test makes and drops a database, and on a durable server every DROP DATABASE waits for a
# checkpoint's fsyncs, about a second on a slow disk: that was half the PostgreSQL run. What the tests check never
# depends on surviving a crash; the load test and the benchmarks keep the real server (POSTGRES). Without a server's
# binaries here (PG_BIN empty), the suite uses the real server too.
PG_BIN := $(lastword $(sort $(wildcard /usr/lib/postgresql/*/bin)))
TEST_PG_PORT ?= 5433
TEST_PG_DIR ?= /tmp/cadreflow-test-pg
AS_POSTGRES := $(if $(filter 0,$(shell id -u)),runuser -u postgres --,)
TEST_POSTGRES ?= $(if $(PG_BIN),postgresql+psycopg://postgres@127.0.0.1:$(TEST_PG_PORT),$(POSTGRES))

test-postgres: postgres
	@test -z "$(PG_BIN)" || pg_isready -q -h 127.0.0.1 -p $(TEST_PG_PORT) || { \
		rm -rf $(TEST_PG_DIR) && mkdir -p $(TEST_PG_DIR) && \
		{ test -z "$(AS_POSTGRES)" || chown postgres $(TEST_PG_DIR); } && \
		$(AS_POSTGRES) $(PG_BIN)/initdb -D $(TEST_PG_DIR)/data -U postgres -A trust --no-sync -E UTF8 --locale C.UTF-8 \
			>$(TEST_PG_DIR)/initdb.log && \
		$(AS_POSTGRES) $(PG_BIN)/pg_ctl -D $(TEST_PG_DIR)/data -l $(TEST_PG_DIR)/server.log -w start -o \
			"-p $(TEST_PG_PORT) -k $(TEST_PG_DIR) -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c synchronous_commit=off" \
			>/dev/null; }

# Start a local Redis server if none answers (the cross-process login throttling test shares its counts there).
redis:
	@redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || { command -v redis-server >/dev/null || \
		(apt-get update && apt-get install -y redis-server); redis-server --daemonize yes --bind 127.0.0.1 --port 6379; }
	@for i in $$(seq 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && exit 0; sleep 1; done; \
		echo "Redis did not come up on 127.0.0.1:6379" >&2; exit 1

# The whole suite on SQLite, then again on PostgreSQL, each spread over TEST_WORKERS processes (pytest-xdist;
# tests/conftest.py groups them: a file per worker, the browser journeys together); then the load test alone on
# PostgreSQL, since it measures a cluster and must not share the machine with other tests.
TEST_WORKERS ?= 3
PYTEST := $(BIN)/python -m pytest -q -p no:cacheprovider
test: lint browser postgres test-postgres redis
	$(PYTEST) -n $(TEST_WORKERS) --dist loadgroup -m "not load and not bench"
	CADREFLOW_TEST_POSTGRES=$(TEST_POSTGRES) $(PYTEST) -n $(TEST_WORKERS) --dist loadgroup -m "not load and not bench"
	CADREFLOW_TEST_POSTGRES=$(POSTGRES) $(PYTEST) -m "load or bench"

# The scaled setup on one machine: 2 gunicorn workers and 2 timer workers sharing PostgreSQL, and Redis for the
# login and portal limits (in memory, each web process would give an attacker its own allowance).
scaled: setup postgres redis
	@psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$(SCALED_DB)'" | grep -q 1 || \
		psql -h 127.0.0.1 -U postgres -qc 'CREATE DATABASE "$(SCALED_DB)"'
	CADREFLOW_DATABASE_URL=$(POSTGRES)/$(SCALED_DB) $(BIN)/cadreflow demo
	CADREFLOW_DATABASE_URL=$(POSTGRES)/$(SCALED_DB) CADREFLOW_RATE_LIMIT_STORAGE=redis://127.0.0.1:6379/0 \
		bash -c 'trap "kill 0" EXIT; \
		$(BIN)/cadreflow worker & $(BIN)/cadreflow worker & \
		$(BIN)/gunicorn --workers 2 --threads 4 --bind $(HOST):$(PORT) "service:create_app()"'

# Issue 14's four targets, each beside its limit (BENCH_CADRES=10000 runs a smaller bulk start and
# extrapolates, labelled as such); then the executor's cost per step.
BENCH_CADRES ?= 100000
bench: setup postgres
	$(BIN)/python bench/targets.py --cadres $(BENCH_CADRES)
	$(BIN)/python bench/bench_executor.py

bench-scale: setup postgres
	$(BIN)/python bench/bench_scale.py

# Re-extract the UI's strings and merge them into every catalogue (then translate the new entries).
translations: setup
	$(BIN)/pybabel extract -F service/web/babel.cfg -k _l -k lazy_gettext --no-location --sort-output \
		-o $(TRANSLATIONS)/messages.pot .
	$(BIN)/pybabel update -i $(TRANSLATIONS)/messages.pot -d $(TRANSLATIONS) --width 120
	rm $(TRANSLATIONS)/messages.pot

clean:
	rm -rf $(VENV) instance .pytest_cache .ruff_cache frontend/node_modules service/web/static/dist $(COMPILED)

# Rewrite bpmn/CONVENTIONS.md's table of BPMN constructs from the conformance suite.
conventions: setup
	$(BIN)/python -m tests.conformance.table
