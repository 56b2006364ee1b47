"""A covering index for the overview's revenue of today and 7 days: the purchases of a range
of an account with their amounts, read from the index alone (no heap visit per purchase)."""

from django.db import migrations

INDEX = "workday_purchase_account_time_amount"


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("workday", "0002_crm_indexes")]

    operations = [
        migrations.RunSQL(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {INDEX} "
            "ON crm_purchase (account_id, purchased_at) INCLUDE (amount_cents)",
            reverse_sql=f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}",
        ),
    ]
