# Everyday verbs. The first run creates .venv and installs the project.
PYTHON ?= python3
VENV ?= .venv
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)

.PHONY: install serve train test lint clean bench

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

## serve: train a model if model/ has none, start Gunicorn on 127.0.0.1:8000
serve: install
	deploy/entrypoint.sh

## train: train the reference model and make it the active version
train: install
	housing-api train

## test: the whole suite, then a smoke test against a real Gunicorn
test: install
	python -m pytest
	tests/smoke.sh

## bench: the service against a minimal Flask app on the same Gunicorn,
## written to docs/benchmarks.md (about 45 minutes; BENCH_ARGS=--quick to try)
bench: install
	@command -v wrk >/dev/null 2>&1 || { \
		echo "make bench needs wrk, the HTTP load generator. Install it with:" >&2; \
		echo "    sudo apt-get install wrk" >&2; exit 1; }
	python bench/bench.py $(BENCH_ARGS)

## lint: flake8, and the import contract of setup.cfg (the layers, no Flask below web)
lint: install
	flake8 housing_api tests bench wsgi.py gunicorn.conf.py
	lint-imports --no-cache

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .coverage
