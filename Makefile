# Flowline: the two commands a new machine needs are `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

STACK := localstack/stack.sh

.PHONY: help deps up down status build demo run test bench fmt lint compose-up compose-down

help: ## This list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

deps: ## Install the local stack (npm, pip) and system tools (promtool) if missing
	@$(STACK) install

up: deps ## Start the local stack on 127.0.0.1 and bootstrap streams, tables, bucket, templates
	@$(STACK) up
	@cargo build --release --quiet -p flowctl
	@eval "$$($(STACK) env)" && ./target/release/flowctl bootstrap --index-replicas 0

down: ## Stop exactly what `make up` started
	@$(STACK) down

status: ## Show the local stack's servers
	@$(STACK) status

build: ## Build every service and tool in release mode
	cargo build --release --workspace --bins

demo: ## Run the pipeline on the local stack and show that it works
	@scripts/demo.sh

run: ## Keep the pipeline running, producer at a steady rate (DEMO_RATE), until Ctrl-C
	@scripts/demo.sh run

test: deps ## Run all tests (unit, integration on an isolated local stack)
	@scripts/test.sh

bench: deps ## Run the benchmarks and print their figures (kept in target/bench-report.txt)
	@scripts/bench.sh

fmt: ## Format the code
	cargo fmt --all

lint: ## What CI expects to be clean
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

# `up --wait` would treat the one-shot import job's exit as a failure, so it starts apart.
COMPOSE_LONG_RUNNING := producer enrichment-joiner aggregator indexer archiver prometheus grafana opensearch-dashboards

compose-up: ## With Docker: build the image and run the whole pipeline (docker-compose.yml)
	docker compose build
	docker compose up --detach --wait --wait-timeout 300 $(COMPOSE_LONG_RUNNING)
	docker compose up --detach dashboards-import

compose-down: ## Stop the Docker pipeline and remove its containers and volumes
	docker compose down --volumes --remove-orphans
