# FLOps: `make demo` runs a project end to end on this machine; `make test` runs the whole suite.
SHELL := /bin/bash
export FLOPS_HOME ?= $(CURDIR)/var
export SSL_CERT_FILE ?= /etc/ssl/certs/ca-certificates.crt
# Bytecode at install time: where PYTHONDONTWRITEBYTECODE is set, every process would compile its imports again.
export UV_COMPILE_BYTECODE ?= 1
UV ?= uv

.PHONY: deps venv up down demo test lint bench clean

deps:
	@deploy/install-system-deps.sh

venv: deps
	@$(UV) sync --frozen --quiet

up: venv
	@$(UV) run --frozen python -m flops_suite up

down:
	@$(UV) run --frozen python -m flops_suite down

demo: venv
	@$(UV) run --frozen python -m flops_manager.demo

test: venv
	@$(UV) run --frozen ruff check .
	@$(UV) run --frozen mypy .
	@$(UV) run --frozen pytest -q -ra --durations=20

lint: venv
	@$(UV) run --frozen ruff check . && $(UV) run --frozen ruff format --check . && $(UV) run --frozen mypy .

bench: venv
	@$(UV) run --frozen python -m bench
	@# the 3-host Swarm vs the one-node swarm; prints why and skips where network namespaces cannot be made
	@$(UV) run --frozen python -m bench.multihost

clean: down
	rm -rf var
