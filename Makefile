# gembatch: `make demo` processes examples/ end to end on an embedded stack; `make test` runs every test.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# A GGUF path or hf: URI for the demo; empty lets the worker pick the Gemma 4 12B quantization that fits.
GEMBATCH_MODEL ?=
export GEMBATCH_MODEL

.PHONY: help deps system-deps demo test chaos format typecheck lint knip clean

help:
	@echo "make demo   process examples/ end to end (GEMBATCH_MODEL=path/to.gguf to choose the model)"
	@echo "make test   format check, typecheck, lint, knip (dead files, exports, dependencies) and run every test"
	@echo "make chaos  fault-injection scenarios (kill -9, Redis restart, SIGTERM, hostile inputs), one line of figures each"

system-deps:
	@scripts/install-system-deps.sh

node_modules/.modules.yaml: package.json pnpm-lock.yaml pnpm-workspace.yaml $(wildcard packages/*/package.json services/*/package.json)
	pnpm install --frozen-lockfile
	@touch $@

deps: system-deps node_modules/.modules.yaml

demo: deps
	pnpm --silent gembatch run examples --task summarize --out results.jsonl
	@echo "results: results.jsonl"

# Biome, formatter only (biome.jsonc): fails on any file `pnpm format` would rewrite.
format: deps
	pnpm --silent format:check

typecheck: deps
	pnpm --silent typecheck

lint: deps
	pnpm --silent lint

knip: deps
	pnpm --silent knip

test: format typecheck lint knip
	pnpm --silent test

# Scenarios append their figures to the report; it is printed whole at the end.
chaos: deps
	@rm -f .gembatch/chaos-report.txt
	pnpm --silent chaos
	@echo "── chaos figures ──"; cat .gembatch/chaos-report.txt

clean:
	rm -rf .gembatch results.jsonl node_modules/.cache/gembatch-test-models
