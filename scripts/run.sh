#!/usr/bin/env bash
# Runs the whole product locally: web (uvicorn), worker (send and default queues), bulk (the
# heavy work: imports, fan syncs, fan-outs, roll-ups, in a process of its own so that it never
# delays a send), beat, a local SQS (moto) and, unless ONLYFANS_API_BASE_URL names another
# platform, the sandbox one. Ctrl-C stops everything it started.
set -euo pipefail
# First start of a checkout: a development .env (DEBUG on, a generated secret key), so that
# `python manage.py …` in another shell uses the same settings as the processes started here.
scripts/dev_env.sh
export DJANGO_DEBUG=${DJANGO_DEBUG:-1}
export DJANGO_SETTINGS_MODULE=config.settings.base
WEB_PORT=${WEB_PORT:-8000}
SANDBOX_PORT=${SANDBOX_PORT:-8765}
# Without SQS_PORT the broker comes from CELERY_BROKER_URL (environment or .env), else 4566.
if [ -n "${SQS_PORT:-}" ]; then
  export CELERY_BROKER_URL=${CELERY_BROKER_URL:-sqs://test:test@127.0.0.1:$SQS_PORT}
fi
PY=.venv/bin/python
mkdir -p var
rm -rf var/prometheus && mkdir -p var/prometheus
export PROMETHEUS_MULTIPROC_DIR=$PWD/var/prometheus
export PYTHONUNBUFFERED=1  # so every process's lines reach honcho as they happen

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port_free_or_exit() {
  if port_open "$1"; then
    echo "port $1 is in use (another make run?): stop it, or set $2" >&2
    exit 1
  fi
}
port_free_or_exit "$WEB_PORT" WEB_PORT

# The database itself, then its schema and, on an empty database, the demo data.
$PY - <<'PY'
import os, psycopg, environ
env = environ.Env(); environ.Env.read_env(".env", overwrite=False)
url = env.db("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/fancrm")
conn = psycopg.connect(host=url["HOST"] or "127.0.0.1", port=int(url["PORT"] or 5432),
                       user=url["USER"] or "postgres", password=url["PASSWORD"] or None,
                       dbname="postgres", autocommit=True)
if not conn.execute("select 1 from pg_database where datname=%s", (url["NAME"],)).fetchone():
    conn.execute(f'create database "{url["NAME"]}"')
    print(f"created database {url['NAME']}")
PY
$PY manage.py migrate --noinput -v 0
# Exit code, not printed text: `manage.py shell` prints its own banner on stdout.
set +e
$PY manage.py shell -v 0 -c 'from crm.models import CreatorAccount
raise SystemExit(0 if CreatorAccount.objects.exists() else 3)'
has_data=$?
set -e
case $has_data in
  0) ;;
  3) case ${DJANGO_DEBUG,,} in
       1|true|yes|on) echo "empty database: loading the demo data"; $PY manage.py seed_demo ;;
       *) echo "empty database: no demo data with DJANGO_DEBUG off (make manage ARGS=createsuperuser)" ;;
     esac ;;
  *) echo "could not check the database for demo data (exit $has_data)" >&2; exit 1 ;;
esac

# What the processes will use, as the settings resolve it (environment first, then .env).
eval "$($PY manage.py shell -v 0 -c '
import os, shlex
from urllib.parse import urlparse
from django.conf import settings
broker = urlparse(settings.CELERY_BROKER_URL)
for name, value in {
    "BROKER_HOST": broker.hostname or "", "BROKER_PORT": broker.port or "",
    "QUEUE_PREFIX": settings.SQS_QUEUE_PREFIX,
    "API_BASE_URL": os.environ.get("ONLYFANS_API_BASE_URL", ""),
    "LOG_FORMAT_SET": os.environ.get("LOG_FORMAT", ""),
}.items():
    print(f"{name}={shlex.quote(str(value))}")
')"
# People read these logs; LOG_FORMAT=json (environment or .env) gives machine-readable lines.
[ -n "$LOG_FORMAT_SET" ] || export LOG_FORMAT=console

PROCFILE=var/Procfile
: > $PROCFILE
SQS_NOTE="the broker in CELERY_BROKER_URL"
if [ "$BROKER_HOST" = 127.0.0.1 ] || [ "$BROKER_HOST" = localhost ]; then
  if port_open "$BROKER_PORT"; then
    SQS_NOTE="$BROKER_HOST:$BROKER_PORT (already running, reused)"
  else
    SQS_NOTE="$BROKER_HOST:$BROKER_PORT (moto, started here)"
    # Stand-ins for AWS and the platform (never on this machine in production) run below the
    # web server, beside the send worker: the cores they share go to requests first.
    echo "sqs: nice -n 10 $PY scripts/sqs_local.py $BROKER_HOST $BROKER_PORT" >> $PROCFILE
  fi
fi
# The sandbox platform, unless ONLYFANS_API_BASE_URL names another one.
if [ -z "$API_BASE_URL" ] || [ "$API_BASE_URL" = "http://127.0.0.1:$SANDBOX_PORT" ]; then
  port_free_or_exit "$SANDBOX_PORT" SANDBOX_PORT
  export ONLYFANS_API_BASE_URL=http://127.0.0.1:$SANDBOX_PORT
  export ONLYFANS_API_KEY=${ONLYFANS_API_KEY:-sandbox-key}
  export ONLYFANS_WEBHOOK_SECRET=${ONLYFANS_WEBHOOK_SECRET:-sandbox-webhook-secret}
  echo "sandbox: nice -n 10 $PY -m onlyfans.sandbox --host 127.0.0.1 --port $SANDBOX_PORT --api-key $ONLYFANS_API_KEY --webhook-url http://127.0.0.1:$WEB_PORT/api/onlyfans/webhooks --webhook-secret $ONLYFANS_WEBHOOK_SECRET --fans-per-minute ${SANDBOX_FANS_PER_MINUTE:-2} --accounts acct_demo_1,acct_demo_2" >> $PROCFILE
fi
cat >> $PROCFILE <<PROCS
web: .venv/bin/uvicorn config.asgi:application --host 127.0.0.1 --port $WEB_PORT --workers ${WEB_WORKERS:-2} --no-access-log
worker: $PY manage.py sqs_ensure_queues --wait 30 >/dev/null && nice -n 10 .venv/bin/celery -A config worker -Q ${QUEUE_PREFIX}send,${QUEUE_PREFIX}default --pool threads --concurrency 8 --hostname send@%h --loglevel INFO
bulk: $PY manage.py sqs_ensure_queues --wait 30 >/dev/null && nice -n 15 .venv/bin/celery -A config worker -Q ${QUEUE_PREFIX}bulk --pool threads --concurrency 4 --hostname bulk@%h --loglevel INFO
beat: $PY manage.py sqs_ensure_queues --wait 30 >/dev/null && .venv/bin/celery -A config beat --schedule var/celerybeat-schedule --loglevel INFO
PROCS

cat <<MSG

  FanCRM is starting on http://127.0.0.1:$WEB_PORT/
  Log in as: owner / ${DEMO_PASSWORD:-demo12345}   (also chatter1, chatter2; admin for /admin/)
  Platform:  ${ONLYFANS_API_BASE_URL:-$API_BASE_URL}
  SQS:       $SQS_NOTE
  Ctrl-C stops everything.

MSG
exec .venv/bin/honcho -f $PROCFILE -d . start
