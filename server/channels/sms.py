"""SMS through Twilio's Messages resource (or any provider speaking its shape).

``POST {base_url}/2010-04-01/Accounts/{AccountSid}/Messages.json``, form-encoded ``To``,
``From`` or ``MessagingServiceSid``, ``Body`` (title and body, cut to 1,600 characters,
Twilio's limit, then the rich content's web link, kept whole: see :func:`sms_text`) and,
with a messaging service, ``ValidityPeriod`` from the offer's expiry (Twilio drops a
message still queued after it); HTTP Basic auth ``AccountSid:AuthToken``.

The number is parsed and normalised to E.164 with ``phonenumbers`` first (numbers
without ``+`` read in ``default_region``); one that is not a valid number fails
permanently without a request.

**Quiet hours.** Not texting people at night is a decision-layer rule (the ``quiet_hours``
reason). A retry, though, can come due hours after the decision; ``in_quiet_hours`` is a
last guard at send time: when it says the recipient is in quiet hours now, the SMS is not
sent and the result is a permanent ``Failed("quiet_hours")`` — a location offer held
until morning is pointless (DESIGN: the default is drop). The default guard,
:func:`in_recipients_quiet_hours`, reads the message's ``quiet_hours`` (the dispatcher
fills them in from the tenant policy and the user's zone).

Answers map to results:

==================================================  =====================================
201 (or 200)                                         ``Delivered`` (the message ``sid``)
400 with code 21211 (invalid 'To'), 21614 (not a     ``TokenInvalid``
mobile number), 21612 (unreachable 'To')
400 with code 21610 (recipient replied STOP)         ``Failed``, permanent (an opt-out)
429 (Twilio 20429), 5xx, timeouts                    ``Retry`` (with Retry-After)
401 / 403 / 404 (credentials, account)               ``Failed``, not permanent (config)
other 4xx                                            ``Failed``, permanent
==================================================  =====================================
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import phonenumbers

from server.channels._http import json_object, status_result, transport_result
from server.channels.base import (
    SMS,
    BaseChannel,
    ChannelConfigError,
    Delivered,
    Failed,
    OutboundMessage,
    Retry,
    SendObserver,
    SendResult,
    TokenInvalid,
)
from server.egress import EgressPolicy, guarded_client
from triggers.decisions.hours import in_window, local_time, parse_window

DEFAULT_BASE_URL = "https://api.twilio.com"
MAX_BODY_CHARS = 1600
"""Twilio refuses longer bodies (error 21617); we cut instead of failing the offer."""
MAX_VALIDITY_S = 14_400
"""Twilio's ceiling for ``ValidityPeriod`` (4 hours)."""
_DEAD_NUMBER_CODES = frozenset({21211, 21612, 21614})
_OPTED_OUT_CODE = 21610

QuietHoursGuard = Callable[[OutboundMessage, float], bool]
"""``(message, now) -> True`` when the recipient is inside quiet hours at ``now``."""


def in_recipients_quiet_hours(message: OutboundMessage, now: float) -> bool:
    """Whether ``now`` falls in the message's ``quiet_hours``, in their zone."""
    quiet = message.quiet_hours
    if quiet is None:
        return False
    local = local_time(now, quiet.timezone)
    return in_window(parse_window(quiet.window), local.hour * 60 + local.minute)


def normalise_phone(number: str, default_region: str | None = None) -> str | None:
    """``number`` in E.164 (``+8613812345678``), or ``None`` when it is not a valid
    phone number. Pure."""
    try:
        parsed = phonenumbers.parse(number, default_region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def sms_text(message: OutboundMessage) -> str:
    """Title and body, then the rich content's web link on its own line, in at most
    :data:`MAX_BODY_CHARS` characters: the text is cut (ending in ``…``) so that the link
    stays whole, since a cut link leads nowhere. The link is the first web link of the
    deep link and the buttons (text-message apps make only web addresses tappable); a
    link longer than half the message is left out, so the text keeps the other half."""
    text = f"{message.title}\n{message.body}" if message.title else message.body
    link = None if message.rich is None else message.rich.web_link()
    budget = MAX_BODY_CHARS
    if link is not None and len(link) + 2 <= MAX_BODY_CHARS // 2:
        budget -= len(link) + 1
    else:
        link = None
    if len(text) > budget:
        text = text[: budget - 1] + "…"
    return text if link is None else f"{text}\n{link}"


class SmsChannel(BaseChannel):
    """Texts ``message.recipient.phone`` (see module doc). Give exactly one of
    ``from_number`` and ``messaging_service_sid``."""

    name = SMS

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        from_number: str | None = None,
        messaging_service_sid: str | None = None,
        default_region: str | None = None,
        in_quiet_hours: QuietHoursGuard | None = None,
        base_url: str = DEFAULT_BASE_URL,
        client: httpx.AsyncClient | None = None,
        egress: EgressPolicy | None = None,
        timeout_s: float = 10.0,
        observer: SendObserver | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(observer=observer, clock=clock)
        if not account_sid or not auth_token:
            raise ChannelConfigError("sms account_sid and auth_token are required")
        if (from_number is None) == (messaging_service_sid is None):
            raise ChannelConfigError("sms needs exactly one of from_number and "
                                     "messaging_service_sid")
        sender: dict[str, str]
        if from_number is not None:
            e164 = normalise_phone(from_number, default_region)
            if e164 is None:
                raise ChannelConfigError(f"sms from_number {from_number!r} is not a valid number")
            sender = {"From": e164}
        else:
            sender = {"MessagingServiceSid": str(messaging_service_sid)}
        self._sender = sender
        self._auth = httpx.BasicAuth(account_sid, auth_token)
        self._url = f"{base_url.rstrip('/')}/2010-04-01/Accounts/{account_sid}/Messages.json"
        self._default_region = default_region
        self._in_quiet_hours = in_quiet_hours or in_recipients_quiet_hours
        self._owns_client = client is None
        self._client = client or (httpx.AsyncClient() if egress is None
                                  else guarded_client(egress, channel=SMS))
        self._timeout = httpx.Timeout(timeout_s)

    def form(self, message: OutboundMessage, to: str) -> dict[str, str]:
        """The request's form fields for ``message`` to the E.164 number ``to``."""
        fields = {"To": to, **self._sender, "Body": sms_text(message)}
        if "MessagingServiceSid" in self._sender:
            # Twilio honours ValidityPeriod only for messages sent through a service.
            ttl = int(min(MAX_VALIDITY_S, max(1.0, self.ttl_s(message))))
            fields["ValidityPeriod"] = str(ttl)
        return fields

    async def _send(self, message: OutboundMessage) -> SendResult:
        if not message.recipient.phone:
            return Failed("recipient has no phone number", permanent=True)
        to = normalise_phone(message.recipient.phone, self._default_region)
        if to is None:
            return Failed(f"not a valid phone number: {message.recipient.phone!r}",
                          permanent=True)
        if self._in_quiet_hours(message, self._clock()):
            return Failed("quiet_hours", permanent=True)
        try:
            response = await self._client.post(
                self._url, data=self.form(message, to), auth=self._auth, timeout=self._timeout,
                headers={"Accept": "application/json"},
            )
        except httpx.TransportError as exc:
            return transport_result(exc, "twilio")
        status = response.status_code
        body = json_object(response)
        if status in {200, 201}:
            sid = body.get("sid")
            return Delivered(sid if isinstance(sid, str) else None)
        code = body.get("code")
        detail = f"twilio {status} {code}: {body.get('message', '')}".rstrip(": ")
        if code in _DEAD_NUMBER_CODES:
            return TokenInvalid(detail)
        if code == _OPTED_OUT_CODE:
            return Failed(detail, permanent=True)
        if status in {401, 403, 404}:
            return Failed(detail, permanent=False)
        result = status_result(response, self._clock(), "twilio")
        if isinstance(result, Retry):
            return Retry(detail, after_s=result.after_s)
        return Failed(detail, permanent=True)

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()


