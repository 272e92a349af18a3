"""Which channel carries one push to one user, at send time. Pure.

The decision layer already knows the campaign's channels and the user's opt-outs (and
says ``no_channel`` / ``opted_out`` when none is left). What it cannot know is the
moment of sending: is the app open right now, which tokens are still alive. The
dispatcher asks :func:`select_channel` then, and the ladder is:

1. channels the user said they prefer, in their order (usable ones only);
2. ``inbox`` when the user has a live stream open — the app is in the foreground, so
   the message shows at once and needs no push;
3. a push token: ``fcm`` / ``apns`` in the campaign's order;
4. the campaign's other channels in its order (``webhook``, ``mqtt``, ``email``,
   ``sms`` — SMS only when ``sms_allowed``);
5. ``inbox`` although offline, when the campaign lists it: it waits in the inbox
   for the next app open (until the offer's TTL);
6. ``None`` — no channel (the ``no_channel`` reason).

A channel is usable when the campaign lists it, the user has not opted out of it (nor
out of everything, ``"*"``), the recipient has an address for it, and — when
``configured`` is given — the tenant has that channel set up.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from server.channels.base import APNS, FCM, INBOX, SMS, Recipient

ALL_CHANNELS = "*"
"""In ``opt_outs``: the user refused every channel (as ``triggers.decisions.models``)."""
PUSH_CHANNELS = (FCM, APNS)


def select_channel(
    campaign_channels: Sequence[str],
    recipient: Recipient,
    *,
    online: bool,
    opt_outs: Collection[str] = (),
    preferred: Sequence[str] = (),
    sms_allowed: bool = True,
    configured: Collection[str] | None = None,
) -> str | None:
    """The channel to send on, or ``None``; see the module docstring for the order.

    ``online``: the user has a live in-app stream, on any node
    (``StreamFanout.online``).
    ``sms_allowed``: the tenant's policy permits SMS for this push (cost, consent).
    """
    if ALL_CHANNELS in opt_outs:
        return None

    def usable(channel: str) -> bool:
        return (
            channel in campaign_channels
            and channel not in opt_outs
            and (configured is None or channel in configured)
            and (channel != SMS or sms_allowed)
            and recipient.has_address(channel)
        )

    for channel in preferred:
        if usable(channel) and (channel != INBOX or online):
            return channel
    if online and usable(INBOX):
        return INBOX
    for channel in campaign_channels:
        if channel in PUSH_CHANNELS and usable(channel):
            return channel
    for channel in campaign_channels:
        if channel not in PUSH_CHANNELS and channel != INBOX and usable(channel):
            return channel
    return INBOX if usable(INBOX) else None
