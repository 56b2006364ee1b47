#!/usr/bin/env bash
# Runs the whole product locally: web (daphne), worker, beat, a local SQS (moto) and, unless
# ONLYFANS_API_BASE_URL is set, the sandbox platform. Ctrl-C stops everything it started.
set -euo pipefail
export DJANGO_DEBUG=${DJANGO_DEBUG:-1}
export DJANGO_SETTINGS_MODULE=config.settings.base
WEB_PORT=${WEB_PORT:-8000}
SQS_PORT=${SQS_PORT:-4566}
SANDBOX_PORT=${SANDBOX_PORT:-8765}
export CELERY_BROKER_URL=${CELERY_BROKER_URL:-sqs://test:test@127.0.0.1:$SQS_PORT}
export ONLYFANS_WEBHOOK_SECRET=${ONLYFANS_WEBHOOK_SECRET:-sandbox-webhook-secret}
PY=.venv/bin/python
mkdir -p var
rm -rf var/prometheus && mkdir -p var/prometheus
export PROMETHEUS_MULTIPROC_DIR=$PWD/var/prometheus

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

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
if [ "$($PY manage.py shell -c 'from crm.models import CreatorAccount; print(CreatorAccount.objects.exists())')" = "False" ]; then
  $PY manage.py seed_demo
fi

PROCFILE=var/Procfile
: > $PROCFILE
if [[ "$CELERY_BROKER_URL" == *"@127.0.0.1:$SQS_PORT"* ]] && ! port_open "$SQS_PORT"; then
  echo "sqs: .venv/bin/moto_server -H 127.0.0.1 -p $SQS_PORT" >> $PROCFILE
fi
if [ -z "${ONLYFANS_API_BASE_URL:-}" ]; then
  export ONLYFANS_API_BASE_URL=http://127.0.0.1:$SANDBOX_PORT
  export ONLYFANS_API_KEY=${ONLYFANS_API_KEY:-sandbox-key}
  echo "sandbox: $PY -m onlyfans.sandbox --host 127.0.0.1 --port $SANDBOX_PORT --api-key $ONLYFANS_API_KEY --webhook-url http://127.0.0.1:$WEB_PORT/api/onlyfans/webhooks --webhook-secret $ONLYFANS_WEBHOOK_SECRET --fans-per-minute ${SANDBOX_FANS_PER_MINUTE:-2} --accounts acct_demo_1,acct_demo_2" >> $PROCFILE
fi
cat >> $PROCFILE <<PROCS
web: .venv/bin/daphne -b 127.0.0.1 -p $WEB_PORT config.asgi:application
worker: $PY manage.py sqs_ensure_queues --wait 30 >/dev/null && .venv/bin/celery -A config worker -Q \${SQS_QUEUE_PREFIX:-fancrm-}send,\${SQS_QUEUE_PREFIX:-fancrm-}default --pool threads --concurrency 8 --loglevel INFO
beat: $PY manage.py sqs_ensure_queues --wait 30 >/dev/null && .venv/bin/celery -A config beat --schedule var/celerybeat-schedule --loglevel INFO
PROCS

cat <<MSG

  FanCRM is starting on http://127.0.0.1:$WEB_PORT/
  Log in as: owner / ${DEMO_PASSWORD:-demo12345}   (also chatter1, chatter2; admin for /admin/)
  Platform:  ${ONLYFANS_API_BASE_URL}
  Ctrl-C stops everything.

MSG
exec .venv/bin/honcho -f $PROCFILE -d . start
