"""Channel selection at send time: a table of users and campaigns."""

from __future__ import annotations

from typing import Any

import pytest

from server.channels.base import Recipient, WebhookTarget
from server.channels.select import select_channel

EVERYTHING = ("inbox", "fcm", "apns", "webhook", "mqtt", "email", "sms")
HOOK = WebhookTarget(url="https://tenant.example/hook", secret="s")
PHONE_ONLY = Recipient(phone="+8613812345678")
ANDROID = Recipient(fcm_token="f1", phone="+8613812345678", email="mei@example.com")
IPHONE = Recipient(apns_token="a1" * 32, email="mei@example.com")
NO_APP = Recipient(email="mei@example.com", phone="+8613812345678", webhook=HOOK)


@pytest.mark.parametrize(
    ("campaign", "recipient", "kwargs", "chosen"),
    [
        # the app is open: show it in the app, no push needed
        (EVERYTHING, ANDROID, {"online": True}, "inbox"),
        # app closed: the device's push token
        (EVERYTHING, ANDROID, {"online": False}, "fcm"),
        (EVERYTHING, IPHONE, {"online": False}, "apns"),
        # push tokens in the campaign's order
        (("apns", "fcm"), Recipient(fcm_token="f", apns_token="ab"), {"online": False}, "apns"),
        # no token: the campaign's fallbacks in its order
        (("inbox", "fcm", "email", "webhook"), NO_APP, {"online": False}, "email"),
        (("inbox", "fcm", "webhook", "email"), NO_APP, {"online": False}, "webhook"),
        (("fcm", "mqtt", "sms"), PHONE_ONLY, {"online": False}, "mqtt"),
        # SMS only when the tenant allows it for this push
        (("fcm", "sms"), PHONE_ONLY, {"online": False}, "sms"),
        (("fcm", "sms"), PHONE_ONLY, {"online": False, "sms_allowed": False}, None),
        # offline and nothing else: waits in the inbox for the next app open
        (("inbox", "email"), Recipient(), {"online": False}, "inbox"),
        # the campaign does not use the inbox and nothing reaches the user
        (("fcm", "email"), PHONE_ONLY, {"online": True}, None),
        # opt-outs
        (("fcm", "email", "sms"), ANDROID, {"online": False, "opt_outs": ["fcm"]}, "email"),
        # MQTT needs no per-user address: the topic comes from the tenant's template
        (EVERYTHING, ANDROID, {"online": False, "opt_outs": ["fcm"]}, "mqtt"),
        (EVERYTHING, ANDROID, {"online": True, "opt_outs": ["inbox"]}, "fcm"),
        (EVERYTHING, ANDROID, {"online": True, "opt_outs": ["*"]}, None),
        # the user's own preference goes first, among channels that can reach them
        (EVERYTHING, ANDROID, {"online": True, "preferred": ["email"]}, "email"),
        (EVERYTHING, ANDROID, {"online": False, "preferred": ["webhook", "sms"]}, "sms"),
        (EVERYTHING, ANDROID, {"online": False, "preferred": ["inbox"]}, "fcm"),
        # a channel the tenant has not set up is skipped
        (EVERYTHING, ANDROID, {"online": False, "configured": ["inbox", "email"]}, "email"),
        # nothing at all
        ((), ANDROID, {"online": True}, None),
    ],
)
def test_selects_the_channel_that_reaches_the_user_now(
    campaign: tuple[str, ...], recipient: Recipient, kwargs: dict[str, Any], chosen: str | None
) -> None:
    assert select_channel(campaign, recipient, **kwargs) == chosen
