from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("crm", "0003_message_account_queued_index")]

    operations = [TrigramExtension()]
