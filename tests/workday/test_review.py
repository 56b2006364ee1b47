"""Message review: scoping, rows and their reply times, flags, marks, my reviews, queries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from crm.composer_checks import text_fingerprint
from crm.models import Conversation, Message
from tests.factories import CreatorAccountFactory, FanFactory, MembershipFactory
from workday import selectors, services
from workday.models import MessageReview, ReviewSettings

pytestmark = pytest.mark.django_db


def _message(conversation, when, *, by=None, price=0, text="hello there", kind="user"):
    """An incoming message (``by`` None) or a member's outgoing one, written at ``when``."""
    fields: dict[str, object]
    if by is None and kind == "user":
        fields = {"direction": "in", "status": "received", "sender_kind": "fan"}
    else:
        fields = {
            "direction": "out",
            "status": "sent",
            "sender_kind": kind,
            "sent_by": by,
            "sent_at": when,
            "queued_at": when,
            "price_cents": price,
            "text_fingerprint": text_fingerprint(text) if by else None,
        }
    message = Message.objects.create(
        account=conversation.account, conversation=conversation, text=text, **fields
    )
    Message.objects.filter(pk=message.pk).update(created_at=when)
    message.created_at = when
    return message


def _conversation(account, **fan):
    return Conversation.objects.create(account=account, fan=FanFactory(account=account, **fan))


@pytest.fixture
def agency():
    """Two accounts: the manager manages A only; the owner owns both."""
    a, b = CreatorAccountFactory(display_name="Alpha"), CreatorAccountFactory(display_name="Beta")
    owner = MembershipFactory(account=a, role="owner").user
    MembershipFactory(account=b, role="owner", user=owner)
    manager = MembershipFactory(account=a, role="manager").user
    chatter = MembershipFactory(account=a, role="chatter", user__username="cara").user
    MembershipFactory(account=b, role="chatter", user=chatter)
    other = MembershipFactory(account=b, role="chatter", user__username="dan").user
    return {"a": a, "b": b, "owner": owner, "manager": manager, "chatter": chatter, "other": other}


def test_a_manager_sees_only_the_accounts_they_manage(client, agency):
    now = timezone.now()
    in_a = _message(_conversation(agency["a"]), now, by=agency["chatter"], text="from alpha")
    in_b = _message(_conversation(agency["b"]), now, by=agency["other"], text="from beta")
    page = selectors.review_feed_page(user=agency["manager"], filters=selectors.ReviewFilters())
    assert [i.row.message_id for i in page.items] == [in_a.pk]
    owner_page = selectors.review_feed_page(user=agency["owner"], filters=selectors.ReviewFilters())
    assert {i.row.message_id for i in owner_page.items} == {in_a.pk, in_b.pk}
    # another account by id is a 404, a chatter is refused
    client.force_login(agency["manager"])
    assert client.get(reverse("workday_review"), {"account": agency["b"].pk}).status_code == 404
    html = client.get(reverse("workday_review")).content.decode()
    assert "from alpha" in html and "from beta" not in html
    client.force_login(agency["chatter"])
    response = client.get(reverse("workday_review"))
    assert response.status_code == 403
    assert "Only owners and managers" in response.content.decode()


def test_rows_carry_fan_spend_and_the_reply_time_computed_in_sql(agency):
    c = _conversation(agency["a"], lifetime_spend_cents=12_345, display_name="Gina")
    t0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    _message(c, t0)  # the fan's turn starts here
    _message(c, t0 + timedelta(minutes=2))
    reply = _message(c, t0 + timedelta(minutes=7), by=agency["chatter"])
    follow_up = _message(c, t0 + timedelta(minutes=8), by=agency["chatter"], text="and more")
    campaign = _message(c, t0 + timedelta(minutes=9), kind="campaign", text="promo")
    rows = {
        i.row.message_id: i
        for i in selectors.review_feed_page(
            user=agency["manager"], filters=selectors.ReviewFilters()
        ).items
    }
    assert rows[reply.pk].row.reply_seconds == 420
    assert rows[reply.pk].row.fan_spend_cents == 12_345
    assert rows[reply.pk].fan_name == "Gina"
    assert rows[reply.pk].row.sender_name == "cara"
    assert rows[follow_up.pk].row.reply_seconds is None  # answered nothing new
    assert rows[campaign.pk].row.reply_seconds is None
    assert rows[campaign.pk].row.sender_name is None


def test_filters_chatter_paid_free_dates_and_keyset_pages(agency):
    c = _conversation(agency["a"])
    base = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    made = [
        _message(c, base + timedelta(minutes=i), by=agency["chatter"], price=500 if i % 2 else 0,
                 text=f"m{i}")
        for i in range(7)
    ]  # fmt: skip
    mine = _message(c, base + timedelta(days=2), by=agency["manager"], text="manager's")
    f = selectors.ReviewFilters
    ids = lambda page: [i.row.message_id for i in page.items]  # noqa: E731
    user = agency["manager"]
    assert ids(
        selectors.review_feed_page(user=user, filters=f(chatter_id=agency["manager"].pk))
    ) == [mine.pk]
    paid = selectors.review_feed_page(user=user, filters=f(price="paid"))
    assert ids(paid) == [m.pk for m in reversed(made) if m.price_cents]
    free = selectors.review_feed_page(user=user, filters=f(price="free"))
    assert mine.pk in ids(free) and all(i.row.price_cents == 0 for i in free.items)
    dated = selectors.review_feed_page(
        user=user, filters=f(first_day=base.date(), last_day=base.date())
    )
    assert ids(dated) == [m.pk for m in reversed(made)]
    # keyset: pages of 3, newest first, nothing skipped or repeated
    seen, cursor = [], ""
    while True:
        page = selectors.review_feed_page(user=user, filters=f(), cursor=cursor, limit=3)
        seen += ids(page)
        if not page.next_cursor:
            break
        cursor = page.next_cursor
    assert seen == [mine.pk, *[m.pk for m in reversed(made)]]


def test_flags_repeated_text_low_price_and_long_wait(agency, settings):
    settings.COMPOSER_REPEATED_TEXT_MAX_FANS = 2
    ReviewSettings.objects.create(
        account=agency["a"], min_ppv_price_cents=1000, long_wait_seconds=600
    )
    t0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    pasted = [
        _message(_conversation(agency["a"]), t0 + timedelta(minutes=i), by=agency["chatter"],
                 text="Hey babe, new set 🔥")
        for i in range(3)
    ]  # fmt: skip
    cheap = _message(_conversation(agency["a"]), t0, by=agency["chatter"], price=500, text="cheap")
    fair = _message(_conversation(agency["a"]), t0, by=agency["chatter"], price=1500, text="fair")
    slow_c = _conversation(agency["a"])
    _message(slow_c, t0)
    slow = _message(slow_c, t0 + timedelta(minutes=11), by=agency["chatter"], text="sorry, late")
    quick_c = _conversation(agency["a"])
    _message(quick_c, t0)
    quick = _message(quick_c, t0 + timedelta(minutes=9), by=agency["chatter"], text="quick")
    page = selectors.review_feed_page(user=agency["manager"], filters=selectors.ReviewFilters())
    flags = {i.row.message_id: i.flags for i in page.items}
    assert all(flags[m.pk] == ["repeated"] for m in pasted)
    assert flags[cheap.pk] == ["low_price"] and flags[fair.pk] == []
    assert flags[slow.pk] == ["long_wait"] and flags[quick.pk] == []

    def only(flag):
        filters = selectors.ReviewFilters(flag=flag)
        return {
            i.row.message_id
            for i in selectors.review_feed_page(user=agency["manager"], filters=filters).items
        }

    assert only("repeated") == {m.pk for m in pasted}
    assert only("low_price") == {cheap.pk}
    assert only("long_wait") == {slow.pk}


@pytest.mark.parametrize(
    ("long_wait_seconds", "flagged"),
    [(None, True), (90, False)],
    ids=["blank: the reply target", "an explicit override"],
)
def test_the_long_wait_is_the_reply_target_unless_overridden(agency, long_wait_seconds, flagged):
    # given: an account whose first-reply target is one minute, and a reply after 61 s
    account = agency["a"]
    account.reply_target_seconds, account.vip_reply_target_seconds = 60, 30
    account.save(update_fields=["reply_target_seconds", "vip_reply_target_seconds"])
    if long_wait_seconds is not None:
        ReviewSettings.objects.create(account=account, long_wait_seconds=long_wait_seconds)
    c = _conversation(account)
    t0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    _message(c, t0)
    reply = _message(c, t0 + timedelta(seconds=61), by=agency["chatter"])

    # when
    page = selectors.review_feed_page(user=agency["manager"], filters=selectors.ReviewFilters())
    filtered = selectors.review_feed_page(
        user=agency["manager"], filters=selectors.ReviewFilters(flag="long_wait")
    )

    # then: flagged against the reply target when blank, not against an override of 90 s
    assert page.items[0].row.message_id == reply.pk
    assert page.items[0].flags == (["long_wait"] if flagged else [])
    assert [i.row.message_id for i in filtered.items] == ([reply.pk] if flagged else [])


def test_marking_shows_to_the_chatter_only(client, agency):
    message = _message(_conversation(agency["a"]), timezone.now(), by=agency["chatter"])
    client.force_login(agency["manager"])
    response = client.post(
        reverse("workday_review_mark", args=[message.pk]),
        {"verdict": "needs_work", "comment": "Ask for the tip first"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert "Needs work" in response.content.decode()
    review = MessageReview.objects.get(message=message)
    assert review.chatter_id == agency["chatter"].pk and review.seen_at is None
    # the chatter sees it, with a count in the top bar's fragment
    client.force_login(agency["chatter"])
    assert ">1<" in client.get(reverse("workday_my_reviews_count")).content.decode()
    html = client.get(reverse("workday_my_reviews")).content.decode()
    assert "Ask for the tip first" in html
    client.post(reverse("workday_my_reviews_seen"))
    assert client.get(reverse("workday_my_reviews_count")).content.decode().strip() == ""
    # another chatter sees nothing of it
    client.force_login(agency["other"])
    assert "Ask for the tip first" not in client.get(reverse("workday_my_reviews")).content.decode()


def test_marking_is_scoped_and_validated(agency):
    in_b = _message(_conversation(agency["b"]), timezone.now(), by=agency["other"])
    from crm.errors import ApplicationError, NotFoundError

    with pytest.raises(NotFoundError):
        services.message_review_mark(actor=agency["manager"], message_id=in_b.pk, verdict="good")
    in_a = _message(_conversation(agency["a"]), timezone.now(), by=agency["chatter"])
    with pytest.raises(ApplicationError) as refused:
        services.message_review_mark(actor=agency["chatter"], message_id=in_a.pk, verdict="good")
    assert refused.value.status_code == 403
    with pytest.raises(ApplicationError) as bad:
        services.message_review_mark(actor=agency["manager"], message_id=in_a.pk, verdict="meh")
    assert bad.value.code == "invalid_review"
    services.message_review_mark(actor=agency["manager"], message_id=in_a.pk, verdict="good")
    again = services.message_review_mark(
        actor=agency["owner"], message_id=in_a.pk, verdict="needs_work", comment="x"
    )
    assert MessageReview.objects.filter(message=in_a).count() == 1
    assert again.reviewed_by_id == agency["owner"].pk


def test_review_page_query_count_is_pinned(client, agency, django_assert_num_queries):
    client.force_login(agency["owner"])
    client.get(reverse("workday_review"))
    t0 = timezone.now()
    for i in range(3):
        c = _conversation(agency["a" if i % 2 else "b"])
        _message(c, t0 - timedelta(minutes=5))
        m = _message(c, t0 - timedelta(minutes=i), by=agency["chatter"], price=500)
        services.message_review_mark(actor=agency["owner"], message_id=m.pk, verdict="good")
    with django_assert_num_queries(REVIEW_PAGE_QUERIES):
        response = client.get(reverse("workday_review"))
    assert response.content.decode().count('id="review-mark-') == 3
    for i in range(10):
        c = _conversation(agency["b"])
        _message(c, t0, by=agency["other"], text=f"more {i}")
    with django_assert_num_queries(REVIEW_PAGE_QUERIES):
        client.get(reverse("workday_review"), {"flag": "long_wait", "price": "paid"})
    client.force_login(agency["chatter"])
    client.get(reverse("workday_my_reviews"))
    with django_assert_num_queries(MY_REVIEWS_QUERIES):
        response = client.get(reverse("workday_my_reviews"))
    assert response.content.decode().count('id="my-review-') == 3


# session, user, managed memberships, the feed, the chatter list; the middleware's current
# membership and the top bar's memberships (every page has these two)
REVIEW_PAGE_QUERIES = 7
MY_REVIEWS_QUERIES = 5  # session, user, the reviews (one join), the two of every page


def test_review_settings_page_sets_the_thresholds(client, agency):
    url = reverse("workday_review_settings", args=[agency["a"].pk])
    client.force_login(agency["manager"])
    page = client.get(url)
    assert page.status_code == 200
    assert "first-reply target (5 min)" in page.content.decode()  # the default, 300 s
    response = client.post(url, {"min_ppv_price": "12.50", "long_wait_minutes": "15"})
    assert response.status_code == 302
    saved = ReviewSettings.objects.get(account=agency["a"])
    assert (saved.min_ppv_price_cents, saved.long_wait_seconds) == (1250, 900)
    bad = client.post(url, {"min_ppv_price": "500", "long_wait_minutes": "15"})
    assert (
        bad.status_code == 422
        and ReviewSettings.objects.get(account=agency["a"]).min_ppv_price_cents == 1250
    )
    assert client.get(reverse("workday_review_settings", args=[agency["b"].pk])).status_code == 404
    # a blank long wait goes back to the reply target
    client.post(url, {"min_ppv_price": "12.50", "long_wait_minutes": ""})
    assert ReviewSettings.objects.get(account=agency["a"]).long_wait_seconds is None
    client.force_login(agency["chatter"])
    assert client.post(url, {"min_ppv_price": "0"}).status_code == 403
