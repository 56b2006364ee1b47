"""Hashed API tokens (several per user, named). Every existing plaintext token (DRF's
authtoken table) is moved in, hashed, named "API token", and deleted there: its key keeps
working, and no plaintext key stays in the database."""

from __future__ import annotations

import hashlib

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def legacy_tokens_hash(apps, schema_editor):
    ApiToken = apps.get_model("crm", "ApiToken")
    try:
        Token = apps.get_model("authtoken", "Token")
    except LookupError:
        return
    for token in Token.objects.all().iterator():
        ApiToken.objects.get_or_create(
            key_hash=hashlib.sha256(token.key.encode()).hexdigest(),
            defaults={
                "user_id": token.user_id,
                "name": "API token",
                "key_prefix": token.key[:8],
            },
        )
    Token.objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0008_message_campaign_lanes"),
        ("authtoken", "0004_alter_tokenproxy_options"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="ApiToken",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.CharField(max_length=100)),
                ("key_hash", models.CharField(max_length=64, unique=True)),
                ("key_prefix", models.CharField(max_length=12)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("last_used_at", models.DateTimeField(blank=True, null=True)),
                ("revoked_at", models.DateTimeField(blank=True, null=True)),
                (
                    "user",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="api_tokens",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "ordering": ["-created_at", "-id"],
                "indexes": [
                    models.Index(
                        condition=models.Q(("revoked_at__isnull", True)),
                        fields=["user", "-created_at"],
                        name="api_token_user_active",
                    )
                ],
            },
        ),
        migrations.RunPython(legacy_tokens_hash, migrations.RunPython.noop),
    ]
