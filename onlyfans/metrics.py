"""Prometheus metrics of the send pipeline (gauges are computed at scrape time in ops views).

Processes write to ``PROMETHEUS_MULTIPROC_DIR`` when it is set, so ``/metrics`` on the web
server also shows what the workers counted.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

MESSAGES_QUEUED = Counter("crm_messages_queued_total", "Outgoing messages queued.")
MESSAGES_SENT = Counter("crm_messages_sent_total", "Outgoing messages the platform accepted.")
MESSAGES_FAILED = Counter("crm_messages_failed_total", "Outgoing messages that failed for good.")
SEND_RETRIES = Counter("crm_send_retries_total", "Send attempts retried.", ["reason"])
SEND_DURATION = Histogram(
    "crm_send_duration_seconds",
    "Time of one gateway send call.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
SEND_SLOT_TO_ANSWER = Histogram(
    "crm_send_slot_to_answer_seconds",
    "From asking for a send's limiter slot to the gateway's answer (the request arrived between).",
    buckets=(0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30),
)
SEND_SLOT_LATE = Counter(
    "crm_send_slot_late_total",
    "Sends answered later than SEND_RATE_GUARD_MS after their slot: the account's next slot "
    "waited for the answer.",
)
LIMITER_WAITS = Counter(
    "crm_rate_limiter_waits_total", "Send tasks deferred because the account's limit was reached."
)
TASK_EXECUTIONS = Counter("crm_send_task_executions_total", "Send task executions.", ["outcome"])
WEBHOOKS_RECEIVED = Counter(
    "crm_webhooks_received_total", "Webhook deliveries.", ["event", "result"]
)
