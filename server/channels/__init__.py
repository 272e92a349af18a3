"""Delivery channels: one :class:`Channel` port, real adapters behind it.

The port and its vocabulary live in :mod:`server.channels.base` and are re-exported
here; each adapter is imported from its own module (``server.channels.webhook``,
``.mqtt``, ``.fcm``, ``.apns``, ``.email``, ``.sms``, ``.inapp``) by the composition
root, so importing the port does not pull in every protocol library.
"""

from server.channels.base import (
    CHANNEL_NAMES,
    BaseChannel,
    Channel,
    ChannelConfigError,
    ChannelError,
    Delivered,
    Failed,
    MessageData,
    OutboundMessage,
    Recipient,
    RecordingChannel,
    Retry,
    SendCounters,
    SendObserver,
    SendResult,
    TokenInvalid,
    WebhookTarget,
)
from server.channels.select import select_channel

__all__ = [
    "CHANNEL_NAMES",
    "BaseChannel",
    "Channel",
    "ChannelConfigError",
    "ChannelError",
    "Delivered",
    "Failed",
    "MessageData",
    "OutboundMessage",
    "Recipient",
    "RecordingChannel",
    "Retry",
    "SendCounters",
    "SendObserver",
    "SendResult",
    "TokenInvalid",
    "WebhookTarget",
    "select_channel",
]
