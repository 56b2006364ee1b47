"""Mass mode against the sandbox over HTTP: chunks, limiter slots, ambiguous calls reconciled
against the platform's list so that no fan gets the message twice."""

from __future__ import annotations

import time
from collections import Counter

import pytest
from django.test import override_settings

from campaigns import services
from campaigns.mass import (
    campaign_mass_refresh,
    campaign_mass_step,
    campaign_progress_refresh,
    mass_text,
)
from campaigns.models import Campaign, MassChunk
from campaigns.rules import segment_rules_parse
from campaigns.selectors import campaign_preflight, campaign_progress
from onlyfans import gateway
from onlyfans.contracts import MassSendRequest
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db


def platform_mass(sandbox, account) -> list[dict]:
    response = sandbox._http.get("/_sandbox/mass", params={"account": account.platform_account_id})
    response.raise_for_status()
    return response.json()["data"]


def run_mass(campaign_id: int, *, timeout: float = 30.0) -> list[str]:
    """Play the mass task: run steps until none is asked for, waiting as each step says."""
    results = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        step = campaign_mass_step(campaign_id=campaign_id)
        results.append(step.result)
        if step.retry_in is None:
            return results
        time.sleep(min(step.retry_in, 1.0))
    raise AssertionError(f"mass campaign not finished: {results}")


@pytest.fixture
def mass_campaign(shop, make_fan, make_campaign):
    def make(count: int = 7, **fields):
        fans = [make_fan() for _ in range(count)]
        make_fan(platform_fan_id=None)
        campaign = make_campaign(mode="mass", **fields)
        campaign = services.campaign_launch(actor=shop.owner, campaign=campaign)
        return campaign, fans

    return make


def test_gateway_mass_facade_against_the_sandbox(sandbox, shop):
    account = shop.account.platform_account_id
    sent = gateway.mass_message_send(
        MassSendRequest(account_platform_id=account, user_ids=("11", "12"), text="Hi all")
    )
    assert (sent.total, sent.is_canceled) == (2, False)
    listed = gateway.mass_messages_list(account_platform_id=account)
    assert [m.platform_mass_id for m in listed] == [sent.platform_mass_id]
    again = gateway.mass_message_retrieve(
        account_platform_id=account, platform_mass_id=sent.platform_mass_id
    )
    assert again.total == 2 and again.pending == 0 and again.is_done and again.can_unsend


def test_a_chunk_call_answered_late_holds_back_the_accounts_next_send(
    sandbox, shop, mass_campaign, redis_client, monkeypatch
):
    # given: a chunk call that is answered well past the limiter's guard (a slow platform)
    from onlyfans.dispatch import account_rate_limit
    from onlyfans.ratelimit import rate_limit_acquire

    campaign, _fans = mass_campaign(count=2)
    limit = account_rate_limit(shop.account)
    during_call: list[bool] = []
    real_send = gateway.mass_message_send

    def slow_send(request):
        status = real_send(request)
        time.sleep(0.5)
        # then: while it is unanswered, the account's next send gets no slot
        asked = rate_limit_acquire(account_id=shop.account.pk, limit=limit)
        during_call.append(asked.granted)
        return status

    monkeypatch.setattr(gateway, "mass_message_send", slow_send)
    # when: the campaign's chunk is sent
    assert "sent" in run_mass(campaign.pk)
    assert during_call == [False]
    # and once it is answered, the slot no longer holds the account back
    deadline = time.monotonic() + 10
    while not rate_limit_acquire(account_id=shop.account.pk, limit=limit).granted:
        assert time.monotonic() < deadline
        time.sleep(0.05)


@override_settings(CAMPAIGN_MASS_CHUNK_SIZE=3)
def test_mass_campaign_sends_chunks_each_with_a_limiter_slot(
    sandbox, shop, mass_campaign, redis_client
):
    rules = {"exclude_waiting": True}
    campaign, fans = mass_campaign(rules=rules, text="New set {name|babe}!")
    preflight = campaign_preflight(account=shop.account, rules=segment_rules_parse(rules))
    assert campaign.sent_as == "mass"
    results = run_mass(campaign.pk)
    # then: 3 calls (3 + 3 + 1 fans), each fan once, the count the pre-flight gave
    messages = platform_mass(sandbox, shop.account)
    assert [m["total"] for m in messages] == [3, 3, 1]
    per_fan = Counter(u for m in messages for u in m["user_ids"])
    assert set(per_fan) == {f.platform_fan_id for f in fans}
    assert set(per_fan.values()) == {1}
    assert sum(per_fan.values()) == preflight.recipients
    assert redis_client.zcard(f"ratelimit:send:{shop.account.pk}") == 3
    assert results.count("sent") == 3 and results[-1] == "done"
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.DONE
    progress = campaign_progress(campaign=campaign)
    assert (progress.sent, progress.remaining, progress.mass_done) == (7, 0, True)
    assert campaign.recipients.filter(state="mass_sent").count() == 7


@override_settings(
    CAMPAIGN_MASS_CHUNK_SIZE=3,
    ONLYFANS_API_TIMEOUT_SECONDS=1.0,
    CAMPAIGN_MASS_RECONCILE_DELAY_SECONDS=0.1,
)
def test_a_chunk_whose_call_timed_out_reaches_no_fan_twice(sandbox, shop, mass_campaign):
    # given: the platform makes the first chunk's message, then never answers the call
    sandbox.configure(mass_timeout_next=1, timeout_sleep_ms=2500)
    campaign, _fans = mass_campaign()
    # when
    results = run_mass(campaign.pk)
    # then: the ambiguous chunk was found in the platform's list, not sent again
    assert "ambiguous" in results and "reconciled" in results
    messages = platform_mass(sandbox, shop.account)
    assert len(messages) == 3
    per_fan = Counter(u for m in messages for u in m["user_ids"])
    assert set(per_fan.values()) == {1} and len(per_fan) == 7
    chunk = MassChunk.objects.get(campaign=campaign, index=0)
    assert chunk.attempts == 1 and chunk.platform_mass_id == str(messages[0]["id"])


@override_settings(CAMPAIGN_MASS_CHUNK_SIZE=3, CAMPAIGN_MASS_RECONCILE_DELAY_SECONDS=0.05)
def test_a_chunk_the_platform_never_made_is_sent_again_after_the_reconcile(
    sandbox, shop, mass_campaign
):
    sandbox.configure(mass_fail_next=1)  # a 500 that made nothing
    campaign, _fans = mass_campaign()
    results = run_mass(campaign.pk)
    assert results.count("reconciling") == 2 and "resend" in results
    messages = platform_mass(sandbox, shop.account)
    per_fan = Counter(u for m in messages for u in m["user_ids"])
    assert set(per_fan.values()) == {1} and len(per_fan) == 7
    assert MassChunk.objects.get(campaign=campaign, index=0).attempts == 2


@override_settings(CAMPAIGN_MASS_CHUNK_SIZE=3)
def test_banned_words_stop_the_campaign_with_the_words_shown(sandbox, shop, mass_campaign):
    sandbox.configure(banned_words=["paypal"])
    campaign, _fans = mass_campaign(text="Tip me on PayPal", block_banned_words="strict_ban")
    run_mass(campaign.pk)
    campaign.refresh_from_db()
    assert "paypal" in campaign.last_error
    assert platform_mass(sandbox, shop.account) == []
    assert set(MassChunk.objects.filter(campaign=campaign).values_list("state", flat=True)) == {
        "failed"
    }
    assert campaign.state == Campaign.State.DONE
    assert campaign_progress(campaign=campaign).failed == 7


@override_settings(CAMPAIGN_MASS_CHUNK_SIZE=3)
def test_cancel_stops_the_chunks_not_sent_yet(sandbox, shop, mass_campaign):
    campaign, _fans = mass_campaign()
    assert campaign_mass_step(campaign_id=campaign.pk).result == "sent"
    services.campaign_cancel(actor=shop.owner, campaign=campaign)
    assert campaign_mass_step(campaign_id=campaign.pk).result == "skipped"
    assert [m["total"] for m in platform_mass(sandbox, shop.account)] == [3]
    campaign.refresh_from_db()
    campaign_mass_refresh(campaign_id=campaign.pk)  # the page reads the platform's counters
    progress = campaign_progress(campaign=campaign)
    assert (progress.sent, progress.withdrawn) == (3, 4)


def test_mass_text_uses_the_fallbacks():
    assert mass_text("Hey {name|babe}, new set!") == "Hey babe, new set!"
    assert mass_text("Hi {name}!") == "Hi!"
    assert mass_text("Plain") == "Plain"


def test_chatters_cannot_launch(shop, make_campaign):
    chatter = MembershipFactory(account=shop.account, role="chatter").user
    campaign = make_campaign(mode="mass")
    with pytest.raises(Exception) as caught:
        services.campaign_launch(actor=chatter, campaign=campaign)
    assert getattr(caught.value, "status_code", None) == 403


def test_a_page_view_before_the_chunks_exist_does_not_finish_the_campaign(
    sandbox, shop, mass_campaign
):
    # given: launched, the mass task not run yet (no chunks)
    campaign, _fans = mass_campaign(count=3)
    assert not MassChunk.objects.filter(campaign=campaign).exists()
    # when: the campaign page refreshes its progress
    campaign_progress_refresh(campaign=campaign)
    # then: still running; the task then sends it
    assert campaign.state == Campaign.State.RUNNING
    run_mass(campaign.pk)
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.DONE
    assert [m["total"] for m in platform_mass(sandbox, shop.account)] == [3]
