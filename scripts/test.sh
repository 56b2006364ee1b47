#!/usr/bin/env bash
# The whole test suite against the real PostgreSQL and Redis and a local SQS (moto, started by
# the tests' fixtures when none runs). Extra arguments go to pytest.
set -euo pipefail
export DJANGO_SETTINGS_MODULE=config.settings.test
# --create-db: a test database left by an older checkout (other migrations) must never be reused.
exec .venv/bin/pytest --create-db "$@"
