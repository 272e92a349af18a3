"""The campaign preview's channel payloads: for each variant, what every channel of the
campaign would send, built by the channels' own payload code (no second implementation,
nothing sent).

The message is the variant's first sample render, as the dispatcher would hand it over:
the offer as ``data.extra``, the rich content chosen for that person, an expiry of the
campaign's ``offer_ttl_s`` after the sample's local time. The addresses are samples
(:data:`SAMPLE_RECIPIENT`, :data:`SAMPLE_SENDERS`), and each request says so: a real
send carries the user's own device token, number or address and the tenant's channel
settings.
"""

from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage
from typing import Any

from server.channels.apns import apns_request_body
from server.channels.base import MessageData, OutboundMessage, Recipient
from server.channels.email import build_mail
from server.channels.fcm import fcm_request_body
from server.channels.sms import sms_form
from triggers.decisions import Campaign
from triggers.decisions.preview import SAMPLE_VENUE, SampleRender

SAMPLE_RECIPIENT = Recipient(
    fcm_token="SAMPLE-fcm-registration-token",
    apns_token="5a3b1e0c" * 8,
    phone="+8613800138000",
    email="sample.person@example.com",
)
"""Made-up addresses of a sample person: no real device, number or mailbox."""

SAMPLE_SENDERS = {"email": "Geopush sample <sender@example.com>", "sms": "+15005550006"}
"""Made-up senders; a real send uses the tenant's email and SMS channel settings."""

_WHERE = {
    "fcm": "POST https://fcm.googleapis.com/v1/projects/{project}/messages:send",
    "apns": "POST https://api.push.apple.com/3/device/{token}",
    "email": "SMTP, to {address}",
    "sms": "POST https://api.twilio.com/2010-04-01/Accounts/{account}/Messages.json",
    "webhook": "POST the tenant's webhook URL",
    "mqtt": "PUBLISH to the user's topic",
    "inbox": "the user's in-app inbox",
}


def channel_payloads(tenant_id: str, campaign: Campaign,
                     samples: list[SampleRender]) -> list[dict[str, Any]]:
    """Per variant (its first sample render that did not fail): ``payload``, the JSON
    document the webhook, MQTT and in-app channels carry, and ``requests``, one per
    channel of the campaign, each ``{channel, where, sample_address, format, body}``."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for sample in samples:
        if sample.variant_id in seen or sample.failure is not None:
            continue
        seen.add(sample.variant_id)
        message = preview_message(tenant_id, campaign, sample)
        out.append({"variant_id": sample.variant_id, "user_id": sample.user_id,
                    "channels": list(campaign.channels), "payload": message.payload(),
                    "requests": [channel_request(channel, message, campaign.offer_ttl_s)
                                 for channel in campaign.channels]})
    return out


def preview_message(tenant_id: str, campaign: Campaign,
                    sample: SampleRender) -> OutboundMessage:
    """The message the dispatcher would hand the channels for ``sample``, addressed
    to :data:`SAMPLE_RECIPIENT`."""
    at = datetime.fromisoformat(sample.local_time).timestamp()
    extra = {k: str(v) for k, v in campaign.offer.items() if v is not None}
    return OutboundMessage(
        delivery_id="preview", idempotency_key="preview", tenant_id=tenant_id,
        user_id=sample.user_id, title=sample.title, body=sample.body,
        data=MessageData(campaign_id=campaign.id, variant_id=sample.variant_id,
                         venue_id=SAMPLE_VENUE.id, event=str(campaign.trigger.kind),
                         expires_at=at + campaign.offer_ttl_s, extra=extra),
        rich=sample.rich, recipient=SAMPLE_RECIPIENT)


def channel_request(channel: str, message: OutboundMessage, ttl_s: float) -> dict[str, Any]:
    """What ``channel`` would send for ``message``, sent ``ttl_s`` before it expires."""
    recipient = message.recipient
    address: str | None = None
    body: Any
    form = "json"
    match channel:
        case "fcm":
            address, body = recipient.fcm_token, fcm_request_body(message, ttl_s)
        case "apns":
            address, body = recipient.apns_token, apns_request_body(message)
        case "email":
            address, form = recipient.email, "email"
            body = _mail_json(build_mail(
                message, sender=SAMPLE_SENDERS["email"], domain="example.com",
                date_s=message.data.expires_at - ttl_s))
        case "sms":
            address, form = recipient.phone, "form"
            body = sms_form(message, recipient.phone or "", {"From": SAMPLE_SENDERS["sms"]},
                            ttl_s)
        case _:
            body = message.payload()
    return {"channel": channel, "where": _WHERE.get(channel, channel),
            "sample_address": address, "format": form, "body": body}


def _mail_json(mail: EmailMessage) -> dict[str, Any]:
    """A MIME message as its headers and the text of each part."""
    parts = {part.get_content_type(): part.get_content()
             for part in mail.iter_parts()}
    return {"headers": dict(mail.items()), **parts}
