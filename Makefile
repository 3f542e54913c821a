# The two commands a new user types are `make demo` and `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
export DAGSTER_HOME := $(CURDIR)
export PYTHONUNBUFFERED := 1

.PHONY: demo test ui lint format clean

$(VENV)/.installed: pyproject.toml
	python3.11 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first, pinned to the CPU build; any looser spec pulls gigabytes of CUDA.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

demo: $(VENV)/.installed  ## land 30 generated days and materialize everything for them
	$(VENV)/bin/ml-assets demo --days 30

test: $(VENV)/.installed  ## run the whole test suite
	$(PY) -m pytest -n 2 --dist loadgroup -q

ui: $(VENV)/.installed  ## the Dagster web UI on http://127.0.0.1:3000
	$(VENV)/bin/dagster dev -h 127.0.0.1 -p 3000

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check ml_assets ml_assets_tests bench
	$(VENV)/bin/ruff format --check ml_assets ml_assets_tests bench

format: $(VENV)/.installed
	$(VENV)/bin/ruff format ml_assets ml_assets_tests bench
	$(VENV)/bin/ruff check --fix ml_assets ml_assets_tests bench

clean:  ## delete all data and Dagster state (start over)
	rm -rf .ml_assets .dagster
