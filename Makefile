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

.PHONY: setup run test lint bench bench-scale scaled postgres clean browser translations

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $@

$(UI_BUILT): $(UI_SOURCES)
	npm ci --prefix frontend --no-audit --no-fund
	npm run build --prefix frontend
	touch $@

%.mo: %.po $(VENV)/.installed
	$(BIN)/pybabel compile --use-fuzzy -i $< -o $@

setup: $(VENV)/.installed $(UI_BUILT) $(COMPILED)

run: setup
	$(BIN)/cadreflow demo
	$(BIN)/cadreflow serve --host $(HOST) --port $(PORT)

lint: setup
	$(BIN)/ruff check .

# The browser tests drive Debian's chromium; the CJK font makes Chinese pages render (CI runs as root).
browser:
	@command -v chromium >/dev/null && test -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc || \
		(apt-get update && apt-get install -y chromium fonts-wqy-microhei)

# Start the local PostgreSQL server if it is down, and wait until it answers.
postgres:
	@pg_isready -q -h 127.0.0.1 -p 5432 || pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start
	@for i in $$(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && exit 0; sleep 1; done; \
		echo "PostgreSQL did not come up on 127.0.0.1:5432" >&2; exit 1

# The whole suite on SQLite, then again on PostgreSQL (with the load-and-fault test, which needs it).
test: lint browser postgres
	$(BIN)/python -m pytest -q -m "not load"
	CADREFLOW_TEST_POSTGRES=$(POSTGRES) $(BIN)/python -m pytest -q

# The scaled setup on one machine: 2 gunicorn workers and 2 timer workers sharing PostgreSQL.
scaled: setup postgres
	@psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$(SCALED_DB)'" | grep -q 1 || \
		psql -h 127.0.0.1 -U postgres -qc 'CREATE DATABASE "$(SCALED_DB)"'
	CADREFLOW_DATABASE_URL=$(POSTGRES)/$(SCALED_DB) $(BIN)/cadreflow demo
	CADREFLOW_DATABASE_URL=$(POSTGRES)/$(SCALED_DB) bash -c 'trap "kill 0" EXIT; \
		$(BIN)/cadreflow worker & $(BIN)/cadreflow worker & \
		$(BIN)/gunicorn --workers 2 --threads 4 --bind $(HOST):$(PORT) "service:create_app()"'

bench: setup
	$(BIN)/python bench/bench_http.py

bench-scale: setup postgres
	$(BIN)/python bench/bench_scale.py

# Re-extract the UI's strings and merge them into every catalogue (then translate the new entries).
translations: setup
	$(BIN)/pybabel extract -F service/web/babel.cfg -k _l -k lazy_gettext --no-location --sort-output \
		-o $(TRANSLATIONS)/messages.pot .
	$(BIN)/pybabel update -i $(TRANSLATIONS)/messages.pot -d $(TRANSLATIONS) --no-location --width 120
	rm $(TRANSLATIONS)/messages.pot

clean:
	rm -rf $(VENV) instance .pytest_cache .ruff_cache frontend/node_modules service/web/static/dist $(COMPILED)
