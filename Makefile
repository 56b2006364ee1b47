# The two commands a new user needs: `make run` and `make test`. Both set themselves up.
SHELL := /bin/bash
UV_VERSION := 0.13.9
PY := .venv/bin/python
export DJANGO_SETTINGS_MODULE ?= config.settings.base

.PHONY: run test lint fmt setup services migrate seed bench clean manage drill

.uv/bin/uv:
	python3 -m venv .uv
	.uv/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

.venv/.synced: .uv/bin/uv pyproject.toml uv.lock
	.uv/bin/uv sync --frozen --quiet
	touch $@

setup: .venv/.synced

services: setup
	@scripts/check-services.sh

run: export DJANGO_DEBUG ?= 1
run: services
	@scripts/run.sh || [ $$? -eq 130 ]  # Ctrl-C is how it stops

test: services
	@scripts/test.sh $(ARGS)

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy .
	.venv/bin/lint-imports

fmt: setup
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .

bench: services
	@scripts/bench.sh $(ARGS)

# Any management command with the development settings: make manage ARGS="create_api_token owner"
manage: setup
	@scripts/dev_env.sh >&2
	@$(PY) manage.py $(ARGS)

# Fault drills on the real stack (its own moto, sandbox, workers, Redis and PostgreSQL): bench/drill.py
drill: services
	@DJANGO_SETTINGS_MODULE=config.settings.base $(PY) bench/drill.py $(ARGS)

clean:
	rm -rf .venv .uv staticfiles
