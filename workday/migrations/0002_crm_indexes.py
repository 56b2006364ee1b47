"""Indexes on crm's tables for workday's reads: the review feed (an account's outgoing
messages newest first, and one chatter's), and the overview's counts of waiting and unread
conversations (the inbox's own views: snoozed ones left out).

They belong with crm's models; they are created here (raw SQL, ``IF NOT EXISTS``, as
analytics' 0002 does) so crm's migration state does not change under the other apps' work.
"""

from django.db import migrations

INDEXES = {
    "workday_message_out_recent": (
        "crm_message (account_id, created_at DESC, id DESC) WHERE direction = 'out'"
    ),
    "workday_message_out_sender": (
        "crm_message (account_id, sent_by_id, created_at DESC, id DESC) WHERE direction = 'out'"
    ),
    "workday_conversation_waiting_open": (
        "crm_conversation (account_id, waiting_since) "
        "WHERE waiting_since IS NOT NULL AND snoozed_at IS NULL"
    ),
    "workday_conversation_unread_open": (
        "crm_conversation (account_id) WHERE unread_count > 0 AND snoozed_at IS NULL"
    ),
}


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("workday", "0001_initial"),
        ("crm", "0016_merge_shifts_vault_automations"),
    ]

    operations = [
        migrations.RunSQL(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {definition}",
            reverse_sql=f"DROP INDEX CONCURRENTLY IF EXISTS {name}",
        )
        for name, definition in INDEXES.items()
    ]
