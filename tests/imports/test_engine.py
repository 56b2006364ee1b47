from __future__ import annotations

import pytest

from crm.models import Fan

pytestmark = pytest.mark.django_db


def test_a_simple_file_creates_fans(run_import, account, django_capture_on_commit_callbacks):
    content = (
        "Username,Display Name,Email,Subscription Tier,Total Spent,Last Seen,Fan ID\n"
        '@Alice,Alice A,alice@example.com,VIP;Whale,"$1,234.50",2025-11-01,111\n'
        "bob,Bob 🎉,,gold,12.5,31/12/2025,222\n"
    )
    fan_import = run_import(content)
    assert fan_import.state == "done", fan_import.error_message
    assert (fan_import.created, fan_import.updated, fan_import.rejected) == (2, 0, 0)
    alice = Fan.objects.get(account=account, username="Alice")
    assert alice.tags == ["vip", "whale"]
    assert alice.lifetime_spend_cents == 123450
    assert alice.platform_fan_id == "111"
    bob = Fan.objects.get(account=account, username="bob")
    assert bob.display_name == "Bob 🎉"
    assert bob.last_seen_at.day == 31
