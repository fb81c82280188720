# `make run` starts the local stack (no Docker); `make test` runs every check. Both do their own
# set-up: virtualenv, install, data copy and training, each only where it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
API_PORT ?= 8000
REDIS_PORT ?= 6379
FLOWER_PORT ?= 5555
WORKER_CONCURRENCY ?= 2
FLOWER_BASIC_AUTH ?= realty:realty
export API_PORT REDIS_PORT FLOWER_PORT WORKER_CONCURRENCY FLOWER_BASIC_AUTH
export REALTY_REDIS_URL ?= redis://127.0.0.1:$(REDIS_PORT)/0

.PHONY: install setup train run test lint unit integration clean

$(BIN)/realty: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

install: $(BIN)/realty

setup: install
	$(BIN)/realty setup

train: setup
	$(BIN)/realty train baseline --if-missing

run: train
	mkdir -p .run
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho -f Procfile start

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/hadolint Dockerfile.api Dockerfile.worker
	$(BIN)/docker-compose -f docker-compose.yml config -q

unit: train
	$(BIN)/pytest tests/unit

integration: train
	$(BIN)/pytest tests/integration

test: lint train
	$(BIN)/pytest

clean:
	rm -rf $(VENV) .run .pytest_cache .ruff_cache
