#!/usr/bin/env bash
# Writes a development .env on first use (make run, make manage) so that every process of this
# checkout, `python manage.py …` included, runs with development settings and its own secret.
# An existing .env is never touched. Production reads no .env written here: the settings' own
# defaults stay production-safe (DEBUG off, secret key required), and .env is neither in git
# nor in the Docker image.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -e .env ] && exit 0
secret=$(python3 -c 'import secrets; print(secrets.token_urlsafe(50))')
umask 077
cat > .env <<ENV
# Development settings for this checkout, written by scripts/dev_env.sh (make run / make manage)
# on $(date -u +%Y-%m-%d). Not in git. Delete it to get a fresh one; see .env.example for the rest.
DJANGO_DEBUG=1
DJANGO_SECRET_KEY=$secret
ENV
echo "wrote .env (development settings, DJANGO_DEBUG=1, a generated secret key)"
