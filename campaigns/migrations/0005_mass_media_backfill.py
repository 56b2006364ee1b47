"""What each fan got from mass-mode campaigns sent before their media were recorded: the
fans' ``campaign_mass`` events (as ``campaigns.mass._chunk_sent`` now writes them), and every
account's media roll-up marked not whole, so the next build (beat, ``media_stats_build_due``)
counts them. Set-based, idempotent (``fan_media_event_unique_mass``)."""

from __future__ import annotations

from django.db import migrations

BACKFILL_SQL = """
INSERT INTO {events} (account_id, fan_id, vault_item_id, platform_media_id, kind, price_cents,
  at, message_id, platform_message_id, source, sent_by_id, created_at, campaign_id,
  mass_chunk_id)
SELECT c.account_id, r.fan_id, v.id, u.pid,
       CASE WHEN c.price_cents > 0 THEN 'offered' ELSE 'sent_free' END, c.price_cents,
       COALESCE(r.sent_at, ch.sent_at, ch.updated_at), NULL, left(ch.platform_mass_id, 64),
       'campaign_mass', c.created_by_id, now(), c.id, ch.id
FROM {recipients} r
JOIN {chunks} ch ON ch.id = r.chunk_id AND ch.state = 'sent'
JOIN {campaigns} c ON c.id = r.campaign_id
CROSS JOIN LATERAL (SELECT x.pid FROM unnest(c.media_ids) AS x(pid) WHERE x.pid <> ''
                    GROUP BY x.pid) u
LEFT JOIN {vault} v ON v.account_id = c.account_id AND v.platform_media_id = u.pid
WHERE r.state = 'mass_sent'
ON CONFLICT DO NOTHING
"""


def backfill(apps, schema_editor) -> None:  # type: ignore[no-untyped-def]
    tables = {
        "events": apps.get_model("crm", "FanMediaEvent")._meta.db_table,
        "vault": apps.get_model("crm", "VaultItem")._meta.db_table,
        "recipients": apps.get_model("campaigns", "CampaignRecipient")._meta.db_table,
        "chunks": apps.get_model("campaigns", "MassChunk")._meta.db_table,
        "campaigns": apps.get_model("campaigns", "Campaign")._meta.db_table,
    }
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(BACKFILL_SQL.format(**tables))
        if cursor.rowcount:
            state = apps.get_model("crm", "MediaStatsState")._meta.db_table
            cursor.execute(f"UPDATE {state} SET built_at = NULL")  # noqa: S608


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0004_paused_messages_held"),
        ("crm", "0021_fan_media_event_mass"),
    ]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
