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

.PHONY: install setup train evaluate run test lint unit integration clean rollout rollback \
	compose-rollout compose-rollback

$(BIN)/realty: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[worker,dev]'
	touch $@

install: $(BIN)/realty

setup: install
	$(BIN)/realty setup

# Missing kinds only, in this order, so a fresh checkout gets v1 = baseline, v2 = gbm.
train: setup
	$(BIN)/realty train baseline --if-missing
	$(BIN)/realty train gbm --if-missing

# Every protocol on the client's data; rewrites docs/model_report.md, .json and docs/img/*.png.
evaluate: setup
	$(BIN)/realty evaluate

run: train
	mkdir -p .run/redis-$(REDIS_PORT)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho -f Procfile start

# Live model switch (docs/operations.md): VERSION=vN. The same command drives either stack.
rollout: install
	$(BIN)/realty rollout $(VERSION)

rollback: install
	$(BIN)/realty rollback

compose-rollout:
	docker compose run --rm --no-deps trainer realty rollout $(VERSION)

compose-rollback:
	docker compose run --rm --no-deps trainer realty rollback

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

# Speed of the service against a direct in-process server, cases A-D in one run on loopback;
# rewrites docs/performance.md. VERSION=vN measures that bundle (default: the newest). Installs
# wrk (Debian package) when it is missing. About 3-4 minutes.
.PHONY: bench
bench: train
	$(BIN)/python -m bench $(if $(VERSION),--version $(VERSION)) --api-workers $(or $(API_WORKERS),2)
