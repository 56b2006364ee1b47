"""For automations (the automations app): a sender kind for their messages, their lane's
backlog index beside the campaign lane's (``0008_message_campaign_lanes``; raw SQL, it serves
the dispatcher's hand-written claim), and an index for the scans of subscription end dates.
"""

from django.db import migrations, models

# The direct lane no longer holds automations' messages (its claim excludes them the same way).
BACKLOG_DIRECT = (
    "CREATE INDEX message_backlog_direct ON crm_message (account_id, id) "
    "WHERE status = 'queued' AND dispatched_at IS NULL "
    "AND sender_kind NOT IN ('campaign', 'automation')"
)
BACKLOG_DIRECT_BEFORE = (
    "CREATE INDEX message_backlog_direct ON crm_message (account_id, id) "
    "WHERE status = 'queued' AND dispatched_at IS NULL AND sender_kind <> 'campaign'"
)
BACKLOG_AUTOMATION = (
    "CREATE INDEX IF NOT EXISTS message_backlog_automation ON crm_message (account_id, id) "
    "WHERE status = 'queued' AND dispatched_at IS NULL AND sender_kind = 'automation'"
)


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0014_notes_and_composer_checks"),
    ]

    operations = [
        migrations.AlterField(
            model_name="message",
            name="sender_kind",
            field=models.CharField(
                choices=[
                    ("user", "User"),
                    ("campaign", "Campaign"),
                    ("fan", "Fan"),
                    ("automation", "Automation"),
                ],
                max_length=10,
            ),
        ),
        migrations.AddIndex(
            model_name="fan",
            index=models.Index(
                condition=models.Q(("subscription_expires_at__isnull", False)),
                fields=["account", "subscription_expires_at"],
                name="fan_account_expires",
            ),
        ),
        migrations.RunSQL(
            BACKLOG_AUTOMATION, reverse_sql="DROP INDEX IF EXISTS message_backlog_automation"
        ),
        migrations.RunSQL(
            ["DROP INDEX IF EXISTS message_backlog_direct", BACKLOG_DIRECT],
            reverse_sql=["DROP INDEX IF EXISTS message_backlog_direct", BACKLOG_DIRECT_BEFORE],
        ),
    ]
