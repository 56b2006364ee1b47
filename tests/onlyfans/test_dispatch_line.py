"""The line of accounts waiting for places on the broker."""

from __future__ import annotations

import pytest

from crm.models import Message
from onlyfans import services
from onlyfans.dispatch import WAITING_KEY, waiting_dispatch
from tests.factories import CreatorAccountFactory, FanFactory

pytestmark = pytest.mark.django_db


def test_the_line_keeps_giving_places_until_one_goes_back_in_line(
    send_queue, redis_client, settings
):
    # given: three accounts in line with two messages each, and room on the broker for five
    settings.SEND_DISPATCH_MAX_TOTAL = 5
    accounts = [CreatorAccountFactory(send_rate_per_minute=600) for _ in range(3)]
    for account in accounts:
        fan = FanFactory(account=account)
        for i in range(2):
            services.message_enqueue(fan=fan, text=f"m{i}")  # on_commit never runs here
    redis_client.zadd(WAITING_KEY, {str(a.pk): n for n, a in enumerate(accounts)})
    # when
    published = waiting_dispatch()
    # then: the first two took all they had, the third took the last place and went back in
    # line for the rest, and the line stopped there
    assert published == 5
    on_broker = Message.objects.filter(dispatched_at__isnull=False)
    assert sorted(on_broker.values_list("account_id", flat=True)) == sorted(
        [accounts[0].pk] * 2 + [accounts[1].pk] * 2 + [accounts[2].pk]
    )
    assert [int(m) for m in redis_client.zrange(WAITING_KEY, 0, -1)] == [accounts[2].pk]
