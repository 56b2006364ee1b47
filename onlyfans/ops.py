"""Operations endpoints: liveness, readiness and Prometheus metrics.

``/healthz`` says the process answers and touches nothing else. ``/readyz`` checks each
dependency with a short timeout and answers 503 (never 500) when one fails, naming only the
error's type: it is unauthenticated, so each process answers from its last result for
``READYZ_CACHE_SECONDS`` (anonymous callers cannot make it probe PostgreSQL, Redis and SQS
on every request). ``/metrics`` adds scrape-time gauges (queue depths, pending messages) to
the counters; ``settings.METRICS_TOKEN`` must come as a bearer token. With DEBUG off and no
token configured it answers 404: metrics are never public in production.

``/api/schema/`` (public) is generated and rendered once per process and format.

``GET /api/monitoring/onlyfans`` (staff users, or ``settings.MONITORING_TOKEN`` as a bearer
token) answers the health JSON of the send pipeline: the same three checks as ``/readyz`` (and
the same 200/503), each dependency ``connected`` or ``disconnected`` with its latency, plus the
queue depths ``/metrics`` shows and when a message was last sent.
"""

from __future__ import annotations

import hmac
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import redis
import structlog
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.db import DatabaseError, InterfaceError, OperationalError, connection
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse, extend_schema
from drf_spectacular.views import SCHEMA_KWARGS, SpectacularAPIView
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector
from redis.exceptions import RedisError
from rest_framework import permissions, serializers
from rest_framework.authentication import BaseAuthentication, SessionAuthentication
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

import onlyfans.metrics  # noqa: F401  (registers the pipeline's counters in this process)
from crm.authentication import BearerTokenAuthentication
from crm.models import CreatorAccount, Message
from crm.serializers import error_responses
from onlyfans.broker import queue_names, sqs_client

log = structlog.get_logger(__name__)

CHECK_TIMEOUT_SECONDS = 2
SQS_ATTRIBUTES = {
    "ApproximateNumberOfMessages": "visible",
    "ApproximateNumberOfMessagesNotVisible": "not_visible",
    "ApproximateNumberOfMessagesDelayed": "delayed",
}


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


# --- Readiness -------------------------------------------------------------------------------


def _database_check() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _redis_check() -> None:
    client = redis.Redis.from_url(
        settings.REDIS_URL,
        socket_connect_timeout=CHECK_TIMEOUT_SECONDS,
        socket_timeout=CHECK_TIMEOUT_SECONDS,
    )
    try:
        client.ping()
    finally:
        client.close()


def _queue_attributes(client: Any, queue_name: str, attributes: list[str]) -> dict[str, str]:
    url = client.get_queue_url(QueueName=queue_name)["QueueUrl"]
    return client.get_queue_attributes(QueueUrl=url, AttributeNames=attributes)["Attributes"]


def _sqs_check() -> None:
    client = sqs_client(timeout_seconds=CHECK_TIMEOUT_SECONDS)
    _queue_attributes(client, queue_names().send, ["ApproximateNumberOfMessages"])


def _check(probe: Callable[[], None]) -> dict[str, Any]:
    started = time.monotonic()
    try:
        probe()
    except Exception as error:
        result: dict[str, Any] = {"ok": False, "error": type(error).__name__}
        log.warning("readyz.check_failed", check=probe.__name__, error=type(error).__name__)
    else:
        result = {"ok": True}
    result["latency_ms"] = round((time.monotonic() - started) * 1000, 1)
    return result


_readyz_lock = threading.Lock()
_readyz_last: tuple[float, dict[str, Any], int] | None = None  # (monotonic time, body, status)


def _readiness() -> tuple[dict[str, Any], int]:
    """The checks' body and status, probed at most once per ``READYZ_CACHE_SECONDS`` per
    process: callers meanwhile (waiting on the lock while one probes) get the same answer."""
    global _readyz_last
    ttl = float(settings.READYZ_CACHE_SECONDS)
    with _readyz_lock:
        now = time.monotonic()
        if _readyz_last is not None and now - _readyz_last[0] < ttl:
            return _readyz_last[1], _readyz_last[2]
        checks = {
            "database": _check(_database_check),
            "redis": _check(_redis_check),
            "sqs": _check(_sqs_check),
        }
        ready = all(check["ok"] for check in checks.values())
        body = {"status": "ok" if ready else "unavailable", "checks": checks}
        status = 200 if ready else 503
        _readyz_last = (time.monotonic(), body, status)
        return body, status


def readyz_cache_clear() -> None:
    global _readyz_last
    with _readyz_lock:
        _readyz_last = None


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    body, status = _readiness()
    return JsonResponse(body, status=status)


# --- Metrics -----------------------------------------------------------------------------------


def _queue_gauges() -> Iterator[Metric]:
    up = GaugeMetricFamily("crm_sqs_up", "Whether the SQS endpoint answered this scrape.")
    depth = GaugeMetricFamily(
        "crm_sqs_queue_messages",
        "Approximate messages in the send and dead-letter queues, by state.",
        labels=["queue", "state"],
    )
    names = queue_names()
    try:
        client = sqs_client(timeout_seconds=CHECK_TIMEOUT_SECONDS)
        for label, queue_name in (("send", names.send), ("dead_letter", names.dead_letter)):
            attributes = _queue_attributes(client, queue_name, list(SQS_ATTRIBUTES))
            for attribute, state in SQS_ATTRIBUTES.items():
                depth.add_metric([label, state], float(attributes.get(attribute, 0)))
    except Exception as error:
        log.warning("metrics.sqs_unavailable", error=type(error).__name__)
        up.add_metric([], 0)
        yield up
        return
    up.add_metric([], 1)
    yield up
    yield depth


def _pending_message_gauges() -> Iterator[Metric]:
    pending = GaugeMetricFamily(
        "crm_messages_pending", "Outgoing messages not yet sent, by status.", labels=["status"]
    )
    try:
        counts = dict(
            Message.objects.filter(status__in=Message.PENDING_STATUSES)
            .values_list("status")
            .annotate(n=Count("id"))
            .order_by()
        )
    except Exception as error:
        log.warning("metrics.database_unavailable", error=type(error).__name__)
        return
    for status in Message.PENDING_STATUSES:
        pending.add_metric([str(status)], float(counts.get(status, 0)))
    yield pending


class _ScrapeTimeCollector:
    def collect(self) -> Iterator[Metric]:
        yield from _queue_gauges()
        yield from _pending_message_gauges()


def _metrics_authorized(request: HttpRequest) -> bool:
    token = getattr(settings, "METRICS_TOKEN", "")
    if not token:
        return bool(settings.DEBUG)
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), str(token).encode()
    )


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not settings.DEBUG and not getattr(settings, "METRICS_TOKEN", ""):
        # Production without a token: metrics (queue depths, volumes) are not served publicly.
        log.warning("metrics.no_token")
        return HttpResponse("Not found.\n", status=404, content_type="text/plain")
    if not _metrics_authorized(request):
        response = HttpResponse("Unauthorized.\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    scrape_time = CollectorRegistry(auto_describe=False)
    scrape_time.register(_ScrapeTimeCollector())  # type: ignore[arg-type]
    output = generate_latest(registry) + generate_latest(scrape_time)
    return HttpResponse(output, content_type=CONTENT_TYPE_LATEST)


# --- The OpenAPI schema, built once per process ---------------------------------------------


class SchemaView(SpectacularAPIView):
    """``/api/schema/``: drf-spectacular's view, but the schema is generated and rendered once
    per process and format (generating walks every view and serializer: a public, anonymous
    URL must not cost that on each request). The schema depends on no caller (it is public)."""

    _rendered: ClassVar[dict[tuple[str | None, str], tuple[bytes, str, str]]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    @extend_schema(**SCHEMA_KWARGS)  # as the parent's: left out of the schema itself
    def get(self, request: Request, *args: Any, **kwargs: Any) -> HttpResponse:
        version = self.api_version or request.version or self._get_version_parameter(request)
        renderer = request.accepted_renderer
        key = (version, type(renderer).__qualname__)
        with self._lock:
            cached = self._rendered.get(key)
            if cached is None:
                response = super().get(request, *args, **kwargs)
                # Rendered with the renderer's own media type, never the caller's parameters.
                response.accepted_renderer = renderer
                response.accepted_media_type = renderer.media_type
                response.renderer_context = self.get_renderer_context()
                response.render()
                cached = (
                    response.content,
                    response["Content-Type"],
                    response["Content-Disposition"],
                )
                self._rendered[key] = cached
        content, content_type, disposition = cached
        answer = HttpResponse(content, content_type=content_type)
        answer["Content-Disposition"] = disposition
        return answer

    @classmethod
    def cache_clear(cls) -> None:
        with cls._lock:
            cls._rendered.clear()


# --- Monitoring (JSON for on-call tools) ---------------------------------------------------------


class MonitoringPrincipal(AnonymousUser):
    """Whoever presented the monitoring token: may read monitoring, nothing else."""

    is_monitoring = True


class MonitoringTokenAuthentication(BaseAuthentication):
    """``Authorization: Bearer <MONITORING_TOKEN>``; any other header is left to the next class."""

    def authenticate(self, request: Request) -> tuple[MonitoringPrincipal, str] | None:
        expected = str(getattr(settings, "MONITORING_TOKEN", "") or "")
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if not expected or scheme.lower() != "bearer":
            return None
        if hmac.compare_digest(given.strip().encode(), expected.encode()):
            return MonitoringPrincipal(), "monitoring"
        return None

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


class IsStaffOrMonitoring(permissions.BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        return bool(getattr(user, "is_monitoring", False) or (user and user.is_staff))


class MonitoringTokenScheme(OpenApiAuthenticationExtension):
    target_class = "onlyfans.ops.MonitoringTokenAuthentication"
    name = "monitoringToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "The installation's MONITORING_TOKEN setting.",
        }


# Plain strings (values in help_text): enum names would collide with other "status" fields.
class DependencySerializer(serializers.Serializer):
    status = serializers.CharField(help_text="connected or disconnected")
    latency_ms = serializers.FloatField()
    error = serializers.CharField(required=False, help_text="The error's type, when disconnected.")


class MonitoringSerializer(serializers.Serializer):
    status = serializers.CharField(
        help_text="healthy, or unhealthy (with HTTP 503) when /readyz is 503."
    )
    sqs = DependencySerializer()
    database = DependencySerializer()
    redis = DependencySerializer()
    queue_depth = serializers.IntegerField(
        allow_null=True, help_text="Send tasks waiting on SQS (visible and delayed)."
    )
    in_flight = serializers.IntegerField(
        allow_null=True, help_text="Send tasks received by a worker, not yet acknowledged."
    )
    dead_letter_count = serializers.IntegerField(allow_null=True)
    backlog = serializers.IntegerField(
        allow_null=True, help_text="Queued messages waiting in PostgreSQL for the dispatcher."
    )
    held = serializers.IntegerField(
        allow_null=True,
        help_text="Queued messages of campaigns that are not running (paused): not dispatched.",
    )
    last_processed_at = serializers.DateTimeField(
        allow_null=True, help_text="When the platform last accepted a message."
    )
    checked_at = serializers.DateTimeField()


def _dependency(check: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {
        "status": "connected" if check["ok"] else "disconnected",
        "latency_ms": check["latency_ms"],
    }
    if not check["ok"]:
        result["error"] = check["error"]
    return result


_LAST_SENT_SQL = f"""
SELECT max(last.sent_at) FROM {CreatorAccount._meta.db_table} a CROSS JOIN LATERAL (
  SELECT m.sent_at FROM {Message._meta.db_table} m
  WHERE m.account_id = a.id AND m.status = 'sent' AND m.sent_at IS NOT NULL
  ORDER BY m.sent_at DESC LIMIT 1) last
"""  # noqa: S608 (table names only)


def monitoring_snapshot() -> tuple[dict[str, Any], bool]:
    """The health JSON and whether every dependency answered."""
    from django.utils import timezone

    from onlyfans.cloudwatch import queue_depths

    checks = {
        "sqs": _check(_sqs_check),
        "database": _check(_database_check),
        "redis": _check(_redis_check),
    }
    healthy = all(check["ok"] for check in checks.values())
    body: dict[str, Any] = {
        "status": "healthy" if healthy else "unhealthy",
        **{name: _dependency(check) for name, check in checks.items()},
        "queue_depth": None,
        "in_flight": None,
        "dead_letter_count": None,
        "backlog": None,
        "held": None,
        "last_processed_at": None,
        "checked_at": timezone.now(),
    }
    if checks["sqs"]["ok"] and checks["database"]["ok"]:
        try:
            depths = queue_depths()
        except Exception as error:
            log.warning("monitoring.depths_unavailable", error=type(error).__name__)
        else:
            body.update(
                queue_depth=depths.send,
                in_flight=depths.in_flight,
                dead_letter_count=depths.dead_letter,
                backlog=depths.backlog,
                held=depths.held,
            )
    if checks["database"]["ok"]:
        try:
            with connection.cursor() as cursor:
                cursor.execute(_LAST_SENT_SQL)
                body["last_processed_at"] = cursor.fetchone()[0]
        except DatabaseError as error:
            log.warning("monitoring.database_unavailable", error=type(error).__name__)
    return body, healthy


class OnlyFansMonitoringView(APIView):
    """The send pipeline's health for on-call tools and dashboards."""

    authentication_classes = [
        MonitoringTokenAuthentication,
        BearerTokenAuthentication,
        SessionAuthentication,
    ]
    permission_classes = [IsStaffOrMonitoring]
    # Monitoring must answer while Redis (where the API's throttle counts) is down.
    throttle_classes: list[Any] = []

    @extend_schema(
        operation_id="monitoring_onlyfans",
        tags=["monitoring"],
        summary="Health of the send pipeline (staff or the monitoring token)",
        responses={
            200: MonitoringSerializer,
            503: OpenApiResponse(
                MonitoringSerializer,
                description="A dependency is disconnected (the same answer as /readyz's 503).",
            ),
            **error_responses({403: "permission_denied (not staff, no monitoring token)"}),
        },
    )
    def get(self, request: Request) -> Response:
        body, healthy = monitoring_snapshot()
        return Response(MonitoringSerializer(body).data, status=200 if healthy else 503)


# --- A dependency down: 503 with a code, never a 500 ------------------------------------------


class DependencyUnavailableMiddleware:
    """A view that fails because PostgreSQL or Redis does not answer gets a 503 with
    ``Retry-After``: JSON ``{code, detail}`` under ``/api/`` (``database_unavailable``,
    ``redis_unavailable``), a short text page elsewhere. Other errors are left alone.

    Nothing is lost by it: a send is accepted (202) only after its row committed.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Any) -> None:
        from asgiref.sync import iscoroutinefunction, markcoroutinefunction

        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        # Under ASGI get_response is a coroutine function: return its awaitable as is.
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, OperationalError | InterfaceError):
            code, what = "database_unavailable", "The database"
        elif isinstance(exception, RedisError):
            code, what = "redis_unavailable", "Redis"
        else:
            return None
        log.warning("request.dependency_unavailable", code=code, error=type(exception).__name__)
        detail = f"{what} is not answering; try again in a few seconds."
        response: HttpResponse
        if request.path.startswith("/api/"):
            response = JsonResponse({"code": code, "detail": detail}, status=503)
        else:
            response = HttpResponse(detail + "\n", status=503, content_type="text/plain")
        response["Retry-After"] = "5"
        return response
