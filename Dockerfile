# syntax=docker/dockerfile:1
# The production image: runtime dependencies only (no tests, linters, moto or honcho: those are
# uv's dev group), static files collected for WhiteNoise, run as an unprivileged user.
#   docker build -t fancrm .
# Web:    docker run fancrm                     (uvicorn, the CMD below)
# Worker: docker run fancrm celery -A config worker -Q fancrm-send,fancrm-default --pool threads --concurrency 8
# Beat:   docker run fancrm celery -A config beat --schedule /app/var/celerybeat-schedule
# Settings come from the environment (.env.example lists them; DJANGO_SECRET_KEY and
# ONLYFANS_WEBHOOK_SECRET are required).

FROM python:3.11-slim AS build
ENV UV_PROJECT_ENVIRONMENT=/venv UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy PYTHONDONTWRITEBYTECODE=1
# pycurl (kombu's SQS transport) compiles against libcurl.
RUN apt-get update && apt-get install -y --no-install-recommends gcc libcurl4-openssl-dev libssl-dev \
    && rm -rf /var/lib/apt/lists/* && pip install --no-cache-dir uv==0.13.9
WORKDIR /app
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project
COPY . .
# With production settings, so WhiteNoise's manifest is written; the keys are used for nothing else.
RUN DJANGO_DEBUG=0 DJANGO_SECRET_KEY=collectstatic-only ONLYFANS_WEBHOOK_SECRET=collectstatic-only \
    DJANGO_SETTINGS_MODULE=config.settings.base \
    /venv/bin/python manage.py collectstatic --noinput -v 0

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PATH=/venv/bin:$PATH \
    DJANGO_SETTINGS_MODULE=config.settings.base DJANGO_DEBUG=0
RUN apt-get update && apt-get install -y --no-install-recommends libcurl4 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --shell /usr/sbin/nologin app
WORKDIR /app
COPY --from=build /venv /venv
# The code stays root-owned (read-only to the app); only var/ (uploads, beat's schedule) is its.
COPY --from=build /app /app
RUN mkdir -p /app/var && chown app:app /app/var
USER app:app
EXPOSE 8000
CMD ["uvicorn", "config.asgi:application", "--host", "0.0.0.0", "--port", "8000", "--workers", "2", "--no-access-log"]
