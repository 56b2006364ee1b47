"""Messages that an older pause withdrew as failed ("paused: …") become held queued messages,
as a pause leaves them now, so resume and cancel need no second path for them."""

from django.db import migrations
from django.utils import timezone

PAUSED_ERROR = "paused: the campaign is paused; resuming sends it"


def paused_messages_hold(apps, schema_editor):
    Campaign = apps.get_model("campaigns", "Campaign")
    Message = apps.get_model("crm", "Message")
    now = timezone.now()
    Message.objects.filter(
        campaign_id__in=Campaign.objects.filter(state="paused").values("id"),
        status="failed",
        last_error=PAUSED_ERROR,
    ).update(status="queued", last_error="", dispatched_at=None, queued_at=now, updated_at=now)


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0003_mass_unsend"),
        ("crm", "0011_fan_lean_indexes"),
    ]

    operations = [migrations.RunPython(paused_messages_hold, migrations.RunPython.noop)]
