"""Indexes on crm's rows for "which content sells" (``analytics.media_queries``).

Every figure of the media page is counted from the raw rows when it is asked for, so these
make each step an index-only scan: a bought message's purchases, a message's paid media, an
item's media rows, a sent message's price and sender by id, an account's sent messages by
time. They belong to crm's tables; they are created here (raw SQL, concurrently, so crm's
migration state does not change), like 0002.
"""

from django.db import migrations

INDEXES = {
    "analytics_purchase_ppv_message": (
        "crm_purchase (account_id, message_id) INCLUDE (amount_cents)"
        " WHERE kind = 'ppv' AND message_id IS NOT NULL"
    ),
    "analytics_media_paid_by_message": (
        "crm_messagemedia (message_id) INCLUDE (vault_item_id) WHERE NOT is_preview"
    ),
    "analytics_media_by_item": (
        "crm_messagemedia (account_id, vault_item_id) INCLUDE (message_id, is_preview)"
    ),
    "analytics_message_sent_by_id": (
        "crm_message (id) INCLUDE (account_id, sent_at, price_cents, sent_by_id)"
        " WHERE status = 'sent'"
    ),
    "analytics_message_sent_by_time": (
        "crm_message (account_id, sent_at) INCLUDE (id, price_cents, sent_by_id)"
        " WHERE status = 'sent'"
    ),
}


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("analytics", "0003_cursor_window_and_spend_bands"),
        ("crm", "0015_vault"),
    ]

    operations = [
        migrations.RunSQL(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {definition}",
            reverse_sql=f"DROP INDEX CONCURRENTLY IF EXISTS {name}",
        )
        for name, definition in INDEXES.items()
    ]
