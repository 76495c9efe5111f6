# CadreFlow: `make run` (demo service), `make test` (whole suite), `make lint`, `make bench`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
# The browser bundles (bpmn-js, Chart.js) and the compiled translations, rebuilt when their sources change.
UI_BUILT := service/web/static/dist/.built
UI_SOURCES := frontend/package-lock.json frontend/build.mjs $(wildcard frontend/src/*)
TRANSLATIONS := service/web/translations
CATALOGS := $(wildcard $(TRANSLATIONS)/*/LC_MESSAGES/messages.po)
COMPILED := $(CATALOGS:.po=.mo)

.PHONY: setup run test lint bench clean browser translations

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

test: lint browser
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python bench/bench_http.py

# Re-extract the UI's strings and merge them into every catalogue (then translate the new entries).
translations: setup
	$(BIN)/pybabel extract -F service/web/babel.cfg -k _l -k lazy_gettext --no-location --sort-output \
		-o $(TRANSLATIONS)/messages.pot .
	$(BIN)/pybabel update -i $(TRANSLATIONS)/messages.pot -d $(TRANSLATIONS) --no-location --width 120
	rm $(TRANSLATIONS)/messages.pot

clean:
	rm -rf $(VENV) instance .pytest_cache .ruff_cache frontend/node_modules service/web/static/dist $(COMPILED)
