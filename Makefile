# The two commands a new user types are `make demo` and `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
export DAGSTER_HOME := $(CURDIR)
export PYTHONUNBUFFERED := 1

.PHONY: demo demo-rollout test test-fast ui serve mlflow-ui evidently-ui lint format clean

$(VENV)/.installed: pyproject.toml
	python3.11 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first, pinned to the CPU build; any looser spec pulls gigabytes of CUDA.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	# ranx compiles its numba kernels on first use (about a minute): once here, not in a run.
	$(PY) -c "from ml_assets.rag.evaluation import ranx_scores; ranx_scores({'q': {'d': 1}}, {'q': {'d': 1.0}})"
	touch $@

demo: $(VENV)/.installed  ## land 30 generated days and materialize everything for them
	$(VENV)/bin/ml-assets demo --days 30

demo-rollout: $(VENV)/.installed  ## after demo: a worse and a better candidate through shadow and canary
	$(VENV)/bin/ml-assets demo-rollout

test: $(VENV)/.installed  ## run the whole test suite
	$(PY) -m pytest -n 2 --dist loadgroup -q

test-fast: $(VENV)/.installed  ## the fast loop: no model training, no real servers
	$(PY) -m pytest -m "not slow" -n 2 --dist loadgroup -q

ui: $(VENV)/.installed  ## the Dagster web UI on http://127.0.0.1:3000
	$(VENV)/bin/dagster dev -h 127.0.0.1 -p 3000

serve: $(VENV)/.installed  ## the champion on http://127.0.0.1:8000 (set ML_ASSETS_API_KEY)
	$(VENV)/bin/ml-assets serve --host 127.0.0.1 --port 8000

mlflow-ui: $(VENV)/.installed  ## MLflow runs, curves and registry on http://127.0.0.1:5000
	$(VENV)/bin/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/.ml_assets/mlflow/mlflow.db \
		--default-artifact-root $(CURDIR)/.ml_assets/mlflow/artifacts -h 127.0.0.1 -p 5000

evidently-ui: $(VENV)/.installed  ## every day's drift snapshot on http://127.0.0.1:8001
	$(VENV)/bin/evidently ui --workspace .ml_assets/reports/evidently_workspace \
		--host 127.0.0.1 --port 8001

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check ml_assets ml_assets_tests bench
	$(VENV)/bin/ruff format --check ml_assets ml_assets_tests bench

format: $(VENV)/.installed
	$(VENV)/bin/ruff format ml_assets ml_assets_tests bench
	$(VENV)/bin/ruff check --fix ml_assets ml_assets_tests bench

clean:  ## delete all data and Dagster state (start over)
	rm -rf .ml_assets .dagster
