#!/usr/bin/env bash
# Benchmarks of the send pipeline (figures for the closing notes); see bench/README.md.
set -euo pipefail
exec .venv/bin/python bench/pipeline_bench.py "$@"
