"""An index on crm's messages by account and creation time, for the roll-up refresh.

The refresh recomputes a few days of an account from its raw messages (received, replies,
active fans); without this it reads all of a big account's messages every minute. It belongs
in ``crm.Message.Meta.indexes``; it is created here (raw SQL, so crm's migration state does not
change) until crm takes it over with ``CREATE INDEX IF NOT EXISTS`` semantics.
"""

from django.db import migrations

INDEX = "analytics_message_account_created"


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("analytics", "0001_credits_and_rollups"),
        ("crm", "0007_account_time_zone"),
    ]

    operations = [
        migrations.RunSQL(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {INDEX} ON crm_message (account_id, created_at)",
            reverse_sql=f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}",
        ),
    ]
