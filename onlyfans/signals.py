"""Events of the platform and the send pipeline that higher apps (automations) act on.

Apps above ``onlyfans`` learn of these by receiving the signals (imports run one way: this app
never imports them). Each is sent inside the transaction that wrote the event, so whatever a
receiver writes commits or rolls back with it (a webhook's dedup record, its fan, a receiver's
rows: all or nothing); receivers must be quick and must not call out over the network.
"""

from __future__ import annotations

from django.dispatch import Signal

# Subscription webhooks were applied to an account's fans (``onlyfans.inbound.
# fan_subscriptions_apply``: one signal for a batch of deferred deliveries), once per delivery:
# replays never get here.
# Arguments: ``account``, ``changes`` (``onlyfans.inbound.SubscriptionApplied`` each, in the
# order applied; ``fan`` is the fan as saved at the end of the batch).
subscriptions_applied = Signal()

# A fan's message was stored (a new one: a replay or a duplicate is not sent again).
# Arguments: ``account``, ``message``, ``fan_id``.
fan_message_received = Signal()

# An outgoing message was queued by ``message_enqueue`` (a member's, the API's, an
# automation's). Arguments: ``message``, ``fan`` (campaign fan-outs queue in bulk, unsent here).
message_queued = Signal()

# A purchase (tip, PPV unlock, subscription payment) was recorded, once.
# Arguments: ``account``, ``purchase``.
purchase_recorded = Signal()
