#!/usr/bin/env bash
# Benchmarks with their figures (see bench/README.md):
#   scripts/bench.sh [ARGS]        the send pipeline (bench/pipeline_bench.py)
#   scripts/bench.sh inbox [ARGS]  the inbox on a 100,000-fan account (bench/inbox_bench.py)
#   scripts/bench.sh analytics [ARGS]  the analytics page on a 1,000,000-message account (bench/analytics_bench.py)
#   scripts/bench.sh import [ARGS] the CSV import, 100,000 and 1,000,000 rows (bench/import_bench.py)
#   scripts/bench.sh campaigns [ARGS]  campaigns: pre-flight, fan-out, mass, a reply while one drains (bench/campaign_bench.py)
# `make bench ARGS="inbox --reseed"` passes its ARGS here.
set -euo pipefail
case "${1:-}" in
  inbox) shift; exec .venv/bin/python bench/inbox_bench.py "$@" ;;
  campaigns) shift; exec .venv/bin/python bench/campaign_bench.py "$@" ;;
  analytics) shift; exec .venv/bin/python bench/analytics_bench.py "$@" ;;
  import) shift; exec .venv/bin/python bench/import_bench.py "$@" ;;
  pipeline) shift; exec .venv/bin/python bench/pipeline_bench.py "$@" ;;
  *) exec .venv/bin/python bench/pipeline_bench.py "$@" ;;
esac
