from __future__ import annotations

from django.apps import AppConfig


class WorkdayConfig(AppConfig):
    """The agency's view of its chatters' work: message review, payroll and the agency overview."""

    name = "workday"
