from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from crm.selectors import memberships_for_user


def accounts(request: HttpRequest) -> dict[str, Any]:
    """The user's memberships for the account switcher, evaluated only if a template uses them."""
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    return {
        "user_memberships": memberships_for_user(user=request.user).order_by(
            "account__display_name", "account_id"
        ),
        "current_membership": getattr(request, "current_membership", None),
    }
