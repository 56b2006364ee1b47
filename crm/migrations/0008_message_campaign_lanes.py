"""Indexes for campaigns on the messages table (raw SQL, outside the model's Meta: they serve
the dispatcher's hand-written queries and the campaigns app, not the ORM's).

- ``message_backlog_direct`` / ``message_backlog_campaign``: an account's backlog (queued, not
  on the broker) per lane, oldest first. The dispatcher claims one-to-one messages first; with
  10,000 campaign messages waiting, finding the one reply among them must not read them all.
- ``message_account_on_broker``: the account's messages on the broker, with their lane, for
  the dispatcher's budget counts (small: at most a minute of sends per account).
- ``message_campaign_status``: a campaign's progress (counts by status).
- ``message_campaign_conversation_unique``: a campaign sends one message per conversation,
  whatever happens to its fan-out (the fan-out's own guarantee, backed by the database).
"""

from django.db import migrations

INDEXES = {
    "message_backlog_direct": (
        "CREATE INDEX IF NOT EXISTS message_backlog_direct ON crm_message (account_id, id) "
        "WHERE status = 'queued' AND dispatched_at IS NULL AND sender_kind <> 'campaign'"
    ),
    "message_backlog_campaign": (
        "CREATE INDEX IF NOT EXISTS message_backlog_campaign ON crm_message (account_id, id) "
        "WHERE status = 'queued' AND dispatched_at IS NULL AND sender_kind = 'campaign'"
    ),
    "message_account_on_broker": (
        "CREATE INDEX IF NOT EXISTS message_account_on_broker ON crm_message "
        "(account_id, sender_kind) "
        "WHERE status IN ('queued', 'sending') AND dispatched_at IS NOT NULL"
    ),
    "message_campaign_status": (
        "CREATE INDEX IF NOT EXISTS message_campaign_status ON crm_message (campaign_id, status) "
        "WHERE campaign_id IS NOT NULL"
    ),
    "message_campaign_conversation_unique": (
        "CREATE UNIQUE INDEX IF NOT EXISTS message_campaign_conversation_unique ON crm_message "
        "(campaign_id, conversation_id) WHERE campaign_id IS NOT NULL"
    ),
}


class Migration(migrations.Migration):
    dependencies = [("crm", "0007_account_time_zone")]

    operations = [
        migrations.RunSQL(sql, reverse_sql=f"DROP INDEX IF EXISTS {name}")
        for name, sql in INDEXES.items()
    ]
