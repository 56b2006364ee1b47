#!/usr/bin/env bash
# Checks that PostgreSQL and Redis answer; if one does not, says how to start it and fails.
set -u
PG_HOST=${PGHOST:-127.0.0.1}
PG_PORT=${PGPORT:-5432}
REDIS_HOST=${REDIS_HOST:-127.0.0.1}
REDIS_PORT=${REDIS_PORT:-6379}
ok=1
if ! .venv/bin/python - "$PG_HOST" "$PG_PORT" <<'PY' >/dev/null 2>&1
import sys, psycopg
psycopg.connect(host=sys.argv[1], port=int(sys.argv[2]), user="postgres", dbname="postgres", connect_timeout=3).close()
PY
then
  ok=0
  echo "PostgreSQL does not answer on $PG_HOST:$PG_PORT. Start it with:"
  echo "  pg_ctlcluster --skip-systemctl-redirect \$(ls /etc/postgresql) main start"
  echo "  (or: docker compose up -d postgres)"
fi
if ! .venv/bin/python - "$REDIS_HOST" "$REDIS_PORT" <<'PY' >/dev/null 2>&1
import sys, redis
redis.Redis(host=sys.argv[1], port=int(sys.argv[2]), socket_connect_timeout=3).ping()
PY
then
  ok=0
  echo "Redis does not answer on $REDIS_HOST:$REDIS_PORT. Start it with:"
  echo "  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save \"\" --appendonly no"
  echo "  (or: docker compose up -d redis)"
fi
[ $ok = 1 ] || exit 1
