# encore — `make help` lists the targets. `make demo` and `make test` set up whatever is missing first.
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.encore-setup

.DEFAULT_GOAL := help
.PHONY: help setup demo test test-unit test-integration lint format bench clean

help: ## Show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

setup: $(STAMP) ## Create .venv, install torch (CPU or CUDA) + encore, build the cached tiny model

$(STAMP): pyproject.toml scripts/setup.sh
	bash scripts/setup.sh
	@touch $(STAMP)

demo: setup ## Run the main job on the embedded defaults (smoke recipe, simulated feedback)
	$(BIN)/encore pipeline recipes/smoke/pipeline.yaml

# Integration tests on two workers, one module per work unit: most tests leave a core idle (tests/conftest.py).
INTEGRATION := -m 'integration and not slow' -n $(or $(TEST_WORKERS),2) --no-loadscope-reorder --durations=25

test: setup ## Run the unit tests, then the integration tests (Spark, training, MLflow)
	$(BIN)/pytest -q
	$(BIN)/pytest -q $(INTEGRATION)

test-unit: setup ## Only the fast unit tests
	$(BIN)/pytest -q

test-integration: setup ## Only the integration tests (TEST_WORKERS=1 for one at a time)
	$(BIN)/pytest -q $(INTEGRATION)

lint: setup ## ruff check, ruff format --check, mypy, the layer contract (lint-imports)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: setup ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: setup ## Run the benchmarks in bench/ (slow; results go to docs/benchmarks.md)
	@for script in bench/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

.PHONY: server-up server-down
server-up: setup ## Start the team MLflow server on PostgreSQL (docs/team-setup.md); prints MLFLOW_TRACKING_URI
	bash scripts/team-server.sh start

server-down: ## Stop the team MLflow server and its PostgreSQL
	bash scripts/team-server.sh stop

.PHONY: spark-up spark-down
spark-up: setup ## Start a local Spark standalone cluster (master + 2 workers on 127.0.0.1; scripts/spark-cluster.sh)
	bash scripts/spark-cluster.sh start

spark-down: ## Stop the local Spark standalone cluster started by spark-up
	bash scripts/spark-cluster.sh stop

clean: ## Remove outputs, the local MLflow store and caches (not .venv)
	rm -rf outputs mlruns .pytest_cache .mypy_cache .ruff_cache
