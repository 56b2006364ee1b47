"""The workday API's shapes: money in cents (integers), times ISO 8601, durations in seconds."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from analytics.periods import MAX_DAYS
from workday.models import REVIEW_COMMENT_MAX_LENGTH
from workday.selectors import FLAGS


class ReviewParamsSerializer(serializers.Serializer):
    account = serializers.IntegerField(required=False, min_value=1, help_text="Only this account.")
    chatter = serializers.IntegerField(required=False, min_value=1, help_text="Only this sender.")
    price = serializers.ChoiceField(choices=["paid", "free"], required=False)
    flag = serializers.ChoiceField(choices=[*FLAGS, "unreviewed"], required=False)
    cursor = serializers.CharField(required=False, max_length=40)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["from"] = serializers.DateField(
            required=False, help_text="First day (inclusive, each account's time zone)."
        )
        self.fields["to"] = serializers.DateField(required=False, help_text="Last day (inclusive).")


class ReviewMarkSerializer(serializers.Serializer):
    verdict = serializers.ChoiceField(choices=["good", "needs_work"])
    comment = serializers.CharField(
        required=False, allow_blank=True, max_length=REVIEW_COMMENT_MAX_LENGTH, default=""
    )


class ReviewFanSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    lifetime_spend_cents = serializers.IntegerField()


class ReviewMarkOutSerializer(serializers.Serializer):
    verdict = serializers.CharField(help_text="good or needs_work")
    comment = serializers.CharField(allow_blank=True)
    reviewed_by = serializers.CharField(allow_null=True)
    reviewed_at = serializers.DateTimeField()


class ReviewItemSerializer(serializers.Serializer):
    message_id = serializers.IntegerField()
    account_id = serializers.IntegerField()
    conversation_id = serializers.IntegerField()
    sent_by_id = serializers.IntegerField(allow_null=True)
    sender = serializers.CharField(allow_null=True, help_text="The member's username.")
    sender_kind = serializers.CharField(help_text="user, campaign or automation")
    text = serializers.CharField(allow_blank=True)
    price_cents = serializers.IntegerField()
    status = serializers.CharField()
    created_at = serializers.DateTimeField()
    fan = ReviewFanSerializer()
    reply_seconds = serializers.FloatField(
        allow_null=True, help_text="From the fan's first unanswered message to this one."
    )
    repeated_fans = serializers.IntegerField(
        allow_null=True, help_text="Fans the sender sent the same text to within the window."
    )
    flags = serializers.ListField(child=serializers.CharField(), help_text=", ".join(FLAGS))
    mark = ReviewMarkOutSerializer(allow_null=True)


class ReviewPageSerializer(serializers.Serializer):
    results = ReviewItemSerializer(many=True)
    next_cursor = serializers.CharField(allow_null=True)


class MyReviewSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    message_id = serializers.IntegerField()
    account_id = serializers.IntegerField()
    text = serializers.CharField(allow_blank=True)
    price_cents = serializers.IntegerField()
    verdict = serializers.CharField()
    comment = serializers.CharField(allow_blank=True)
    reviewed_by = serializers.CharField(allow_null=True)
    reviewed_at = serializers.DateTimeField()
    seen = serializers.BooleanField()


class MyReviewPageSerializer(serializers.Serializer):
    results = MyReviewSerializer(many=True)
    next_cursor = serializers.CharField(allow_null=True)


class PayrollParamsSerializer(serializers.Serializer):
    account = serializers.IntegerField(
        required=False,
        min_value=1,
        help_text="One account (owners and managers); omitted: every account the caller owns.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["from"] = serializers.DateField(
            help_text="First day (inclusive, the account's time zone)."
        )
        self.fields["to"] = serializers.DateField(
            help_text=f"Last day (inclusive); at most {MAX_DAYS} days after `from`."
        )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["to"] < attrs["from"]:
            raise serializers.ValidationError({"to": ["Must be on or after from."]})
        if (attrs["to"] - attrs["from"]).days + 1 > MAX_DAYS:
            raise serializers.ValidationError({"to": [f"At most {MAX_DAYS} days."]})
        return attrs


class PayFiguresSerializer(serializers.Serializer):
    worked_seconds = serializers.FloatField()
    messages = serializers.IntegerField()
    fans_answered = serializers.IntegerField()
    replies = serializers.IntegerField()
    median_response_seconds = serializers.FloatField(allow_null=True)
    ppv_sent = serializers.IntegerField()
    ppv_unlocked = serializers.IntegerField()
    credited_purchases = serializers.IntegerField()
    credited_cents = serializers.IntegerField()


class PayShiftSerializer(PayFiguresSerializer):
    work_session_id = serializers.IntegerField(
        source="session_id", allow_null=True, help_text="Null: work outside any session."
    )
    started_at = serializers.DateTimeField(allow_null=True)
    ended_at = serializers.DateTimeField(allow_null=True)
    end_reason = serializers.CharField(allow_blank=True)


class MemberPaySerializer(serializers.Serializer):
    account_id = serializers.IntegerField()
    user_id = serializers.IntegerField()
    username = serializers.CharField()
    role = serializers.CharField()
    hourly_rate_cents = serializers.IntegerField()
    commission_percent = serializers.DecimalField(max_digits=5, decimal_places=2)
    totals = PayFiguresSerializer()
    hourly_pay_cents = serializers.IntegerField()
    commission_cents = serializers.IntegerField()
    pay_cents = serializers.IntegerField()
    shifts = PayShiftSerializer(many=True)


class PayrollSerializer(serializers.Serializer):
    first_day = serializers.DateField(source="period_first_day")
    last_day = serializers.DateField(source="period_last_day")
    members = MemberPaySerializer(many=True)


class OverviewTileSerializer(serializers.Serializer):
    account_id = serializers.IntegerField(source="account.pk")
    display_name = serializers.CharField(source="account.display_name")
    role = serializers.CharField()
    connection_state = serializers.CharField(source="account.connection_state")
    sends_paused = serializers.BooleanField(source="session_expired")
    waiting = serializers.IntegerField(
        source="figures.waiting", help_text="Counted up to 1000 (1000: that many or more)."
    )
    oldest_waiting_since = serializers.DateTimeField(
        source="figures.oldest_waiting_since", allow_null=True
    )
    overdue = serializers.IntegerField(
        source="figures.overdue", help_text="Counted up to 1000 (1000: that many or more)."
    )
    unread = serializers.IntegerField(
        source="figures.unread", help_text="Counted up to 1000 (1000: that many or more)."
    )
    queued = serializers.IntegerField(
        source="figures.queued", help_text="Counted up to 1000 (1000: that many or more)."
    )
    revenue_today_cents = serializers.IntegerField(source="figures.revenue_today_cents")
    revenue_7d_cents = serializers.IntegerField(source="figures.revenue_7d_cents")
    clocked_in = serializers.ListField(child=serializers.CharField(), source="figures.clocked_in")
