"""A CSV import of fans: the uploaded file, how to read it, and the run's state and counters.

The rows themselves pass through ``imports_staged_fan_<id>``, an UNLOGGED table of the
import's own (written with COPY, dropped when the import ends) that the merge reads in batches.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from crm.models import CreatorAccount


class FanImport(models.Model):
    class State(models.TextChoices):
        DRAFT = "draft", "Not started"
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    class Phase(models.TextChoices):
        # Where a run stands; each step commits its work with the checkpoint it reached.
        READ = "read", "Reading and checking rows"
        DEDUPE = "dedupe", "Finding duplicates"
        MERGE = "merge", "Saving fans"
        REPORT = "report", "Writing the report"
        FINISHED = "finished", "Finished"

    class MatchOn(models.TextChoices):
        PLATFORM_FAN_ID = "platform_fan_id", "Platform fan id"
        USERNAME = "username", "Username"

    class OnMatch(models.TextChoices):
        UPDATE = "update", "Update the fan"
        SKIP = "skip", "Skip the row"
        ADD_ONLY = "add_only", "Only add new fans"

    class DateOrder(models.TextChoices):
        AUTO = "auto", "Detect from the file"
        DAY_FIRST = "day_first", "Day first (31/12/2025)"
        MONTH_FIRST = "month_first", "Month first (12/31/2025)"

    account = models.ForeignKey(CreatorAccount, on_delete=models.CASCADE, related_name="imports")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    file_name = models.CharField(max_length=255)
    file_path = models.CharField(max_length=500, help_text="The stored upload, on disk.")
    file_size = models.BigIntegerField()
    encoding = models.CharField(max_length=20)
    encoding_detected = models.CharField(max_length=20)
    delimiter = models.CharField(max_length=2)
    delimiter_detected = models.CharField(max_length=2)
    header = models.JSONField(default=list, help_text="The CSV's column names, in order.")
    # One field name (or "" for ignored) per CSV column, in the header's order.
    columns = models.JSONField(default=list)
    match_on = models.CharField(
        max_length=20, choices=MatchOn.choices, default=MatchOn.PLATFORM_FAN_ID
    )
    on_match = models.CharField(max_length=10, choices=OnMatch.choices, default=OnMatch.UPDATE)
    date_order = models.CharField(max_length=12, choices=DateOrder.choices, default=DateOrder.AUTO)
    # What auto found in the file: day_first, month_first, or "" (no numeric dates decide it).
    date_order_inferred = models.CharField(max_length=12, blank=True)
    dates_ambiguous = models.BooleanField(
        default=False, help_text="The mapped date columns hold only dates like 01/02/2025."
    )

    state = models.CharField(max_length=10, choices=State.choices, default=State.DRAFT)
    phase = models.CharField(max_length=10, choices=Phase.choices, default=Phase.READ)
    rows_total = models.PositiveIntegerField(default=0)
    rows_read = models.PositiveIntegerField(default=0)
    rows_done = models.PositiveIntegerField(default=0)
    # The spreadsheet row number (header = 1) the read or merge step has finished through.
    checkpoint_row = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    error_code = models.CharField(max_length=40, blank=True)
    error_message = models.CharField(max_length=500, blank=True)
    errors_path = models.CharField(max_length=500, blank=True)
    # The preview's counts over the file, with the configuration and time they are for.
    preview_counts = models.JSONField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["account", "-created_at"], name="fan_import_account_recent")
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(rows_done__lte=models.F("rows_total")),
                name="fan_import_done_le_total",
            )
        ]

    def __str__(self) -> str:
        return f"import {self.pk} ({self.file_name}, {self.state})"

    @property
    def is_finished(self) -> bool:
        return self.state in (self.State.DONE, self.State.FAILED)

    @property
    def effective_date_order(self) -> str:
        if self.date_order != self.DateOrder.AUTO:
            return self.date_order
        return self.date_order_inferred
