# huaxiang — `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help

help: ## Show the targets and what they do
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install huaxiang with its dev tools

demo: $(STAMP) ## Sample shop in ./demo: generate, ingest, build its tags, summary, then the console URL
	$(BIN)/huaxiang demo demo

console: $(STAMP) ## Serve the demo workspace: console at http://127.0.0.1:8000/console/ (make demo first)
	@test -f demo/huaxiang.yaml || { echo "no ./demo workspace: run 'make demo' first"; exit 2; }
	$(BIN)/huaxiang serve -w demo

test: $(STAMP) ## Install, then run lint, type checks and the whole test suite
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/pytest

lint: $(STAMP) ## Only ruff and mypy
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

bench-sample: $(STAMP) ## Benchmark the sample generator at 1M users (minutes)
	$(BIN)/python bench/bench_sample.py --users 1000000 --out /tmp/huaxiang-bench-sample

bench-build: $(STAMP) ## Benchmark the tag engine at 1M users vs hand-written SQL and pymc-marketing (~15 min)
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python bench/bench_build.py --users 1000000 --out /tmp/huaxiang-bench-build --memory-limit 6GB

bench-audience: $(STAMP) ## Benchmark audiences on 10M synthetic users; SNAPSHOT=WS/snapshots/DATE adds a built shop
	$(BIN)/python bench/bench_audience.py --users 10000000 --out /tmp/huaxiang-bench-audience --duckdb-table
	$(if $(SNAPSHOT),$(BIN)/python bench/bench_audience.py --snapshot $(SNAPSHOT) --out /tmp/huaxiang-bench-audience --duckdb-table)

bench-audience-huge: $(STAMP) ## Audience latency at 100M synthetic users (index written per tag: ~10 min, ~6 GB RAM, 9 GB disk)
	$(BIN)/python bench/bench_audience.py --index-only --users 100000000 --out /tmp/huaxiang-bench-audience

bench-service: $(STAMP) ## Benchmark user lookups in the process and over HTTP (wrk); SOURCE=a built 1M workspace
	$(BIN)/python bench/bench_service.py --source $(or $(SOURCE),/tmp/hx-bench-build-1m/full) --out /tmp/huaxiang-bench-service

docs-schema: $(STAMP) ## Regenerate docs/data-model.md from the schema
	$(BIN)/huaxiang schema --markdown > docs/data-model.md

clean: ## Remove the virtualenv, caches and the demo workspace
	rm -rf $(VENV) demo .pytest_cache .mypy_cache .ruff_cache

.PHONY: help install demo console test lint bench-sample bench-build bench-audience bench-audience-huge bench-service docs-schema clean
