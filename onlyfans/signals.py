"""Events of the platform and the send pipeline that higher apps (automations) act on.

Apps above ``onlyfans`` learn of these by receiving the signals (imports run one way: this app
never imports them). Each is sent inside the transaction that wrote the event, so whatever a
receiver writes commits or rolls back with it (a webhook's dedup record, its fan, a receiver's
rows: all or nothing); receivers must be quick and must not call out over the network.
"""

from __future__ import annotations

from django.dispatch import Signal

# A subscription webhook was applied to a fan (once per delivery: replays never get here).
# Arguments: ``account``, ``fan`` (as saved), ``event`` (``subscriptions.new`` or
# ``subscriptions.renewed``), ``previous_state`` and ``previous_expires_at`` (the fan's before
# the event), ``event_subscribed_at`` and ``event_expires_at`` (the event's own, or None).
subscription_applied = Signal()

# A fan's message was stored (a new one: a replay or a duplicate is not sent again).
# Arguments: ``account``, ``message``, ``fan_id``.
fan_message_received = Signal()

# An outgoing message was queued by ``message_enqueue`` (a member's, the API's, an
# automation's). Arguments: ``message``, ``fan`` (campaign fan-outs queue in bulk, unsent here).
message_queued = Signal()

# A purchase (tip, PPV unlock, subscription payment) was recorded, once.
# Arguments: ``account``, ``purchase``.
purchase_recorded = Signal()
