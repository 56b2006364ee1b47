from __future__ import annotations

from rest_framework import serializers

from crm.models import Fan, Membership


class AccountSerializer(serializers.ModelSerializer):
    """A creator account as seen by one member (serializes their Membership)."""

    id = serializers.IntegerField(source="account.id")
    display_name = serializers.CharField(source="account.display_name")
    platform_account_id = serializers.CharField(source="account.platform_account_id")
    connection_state = serializers.CharField(source="account.connection_state")
    send_rate_per_minute = serializers.IntegerField(source="account.send_rate_per_minute")
    send_min_interval_ms = serializers.IntegerField(source="account.send_min_interval_ms")

    class Meta:
        model = Membership
        fields = [
            "id",
            "display_name",
            "platform_account_id",
            "connection_state",
            "role",
            "send_rate_per_minute",
            "send_min_interval_ms",
        ]
        read_only_fields = fields


class FanSerializer(serializers.ModelSerializer):
    account = serializers.IntegerField(source="account_id")

    class Meta:
        model = Fan
        fields = [
            "id",
            "account",
            "platform_fan_id",
            "username",
            "display_name",
            "tags",
            "notes",
            "lifetime_spend_cents",
            "subscription_state",
            "subscribed_at",
            "subscription_expires_at",
            "last_seen_at",
            "updated_at",
        ]
        read_only_fields = fields


class FanListParamsSerializer(serializers.Serializer):
    account = serializers.IntegerField(min_value=1)
    q = serializers.CharField(required=False, allow_blank=True, max_length=150, default="")
    tag = serializers.CharField(required=False, allow_blank=True, max_length=50, default="")
    subscription_state = serializers.ChoiceField(
        choices=Fan.SubscriptionState.choices, required=False, allow_blank=True, default=""
    )
    sort = serializers.ChoiceField(choices=["spend", "last_seen"], required=False, default="spend")
