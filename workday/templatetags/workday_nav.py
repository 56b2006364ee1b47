"""The top bar's test for workday's links, over the memberships it already loads."""

from __future__ import annotations

from collections.abc import Iterable

from django import template

from crm.models import Membership

register = template.Library()


@register.filter
def manages_any(memberships: Iterable[Membership] | None) -> bool:
    """Whether any membership is an owner's or a manager's (iterating the switcher's own
    queryset fills its cache: no query of its own)."""
    return any(m.can_manage_members for m in memberships or ())
