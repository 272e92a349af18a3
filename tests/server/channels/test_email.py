"""Email against a real SMTP server: aiosmtpd on a free 127.0.0.1 port, capturing what
it is sent; one plain, one that requires STARTTLS (trustme certificate) and AUTH."""

from __future__ import annotations

import asyncio
import email
import email.policy
import hashlib
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from server.channels.base import (
    ChannelConfigError,
    Delivered,
    Failed,
    Recipient,
    Retry,
    TokenInvalid,
)
from server.channels.email import EmailChannel
from tests.server.channels.builders import (
    APP_LINK,
    DIAPERS_IMAGE,
    NOW,
    SHOP_LINK,
    Clock,
    LocalTls,
    free_port,
    message,
    rich_offer,
)

SENDER = "Joy City Offers <offers@joycity.example>"
USER, PASSWORD = "geopush", "s3cret-relay-pass"


@dataclass
class Mailbox:
    """An aiosmtpd handler: refuses some mailboxes, keeps every accepted message."""

    messages: list[tuple[Envelope, EmailMessage]] = field(default_factory=list)
    port: int = 0

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str,
        rcpt_options: list[str],
    ) -> str:
        if address.startswith("nobody@"):
            return "550 5.1.1 No such user here"
        if address.startswith("greylisted@"):
            return "451 4.7.1 Greylisted, please try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        raw = envelope.original_content or b""
        if b"REJECT-ME" in raw:
            return "554 5.7.1 Message content rejected"
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append((envelope, parsed))
        return f"250 2.0.0 Ok: queued as Q{len(self.messages)}"


@asynccontextmanager
async def smtp_server(**options: Any) -> AsyncIterator[Mailbox]:
    """aiosmtpd's protocol served in the test's own loop on a port the OS picks: its
    connections close within the test (a server thread would leave them to the GC)."""
    box = Mailbox()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(box, loop=loop, **options), "127.0.0.1", 0)
    box.port = server.sockets[0].getsockname()[1]
    try:
        yield box
    finally:
        server.close()
        await server.wait_closed()


def _authenticate(server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                  auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USER.encode(), PASSWORD.encode())
    # handled=False: aiosmtpd then answers 535 itself (its default would answer nothing).
    return AuthResult(success=ok, handled=False)


def secure_smtp_server(tls: LocalTls) -> AbstractAsyncContextManager[Mailbox]:
    """A relay that requires STARTTLS and then AUTH, as submission servers do."""
    return smtp_server(tls_context=tls.server, require_starttls=True,
                       authenticator=_authenticate, auth_require_tls=True)


def plain_channel(box: Mailbox, **kwargs: Any) -> EmailChannel:
    return EmailChannel(**{"hostname": "127.0.0.1", "port": box.port, "sender": SENDER,
                           "start_tls": False, "clock": Clock(), **kwargs})


def to(address: str) -> Recipient:
    return Recipient(email=address)


async def test_mailbox_receives_text_and_html_with_idempotency_headers() -> None:
    async with smtp_server() as box:
        ch = plain_channel(box, unsubscribe_url=lambda m: f"https://x.example/u/{m.user_id}")
        result = await ch.send(message(recipient=to("mei@example.com"),
                                       title="母婴周 <Joy City>", body="Line one\nLine & two"))

    assert result == Delivered("2.0.0 Ok: queued as Q1")
    [(envelope, mail)] = box.messages
    assert envelope.mail_from == "offers@joycity.example"
    assert envelope.rcpt_tos == ["mei@example.com"]
    assert mail["From"] == SENDER
    assert mail["To"] == "mei@example.com"
    assert mail["Subject"] == "母婴周 <Joy City>"
    assert mail["Date"].datetime.timestamp() == NOW
    digest = hashlib.sha256(b"evt-42:diapers").hexdigest()[:32]
    assert mail["Message-ID"] == f"<{digest}@joycity.example>"
    assert mail["X-Geopush-Idempotency-Key"] == "evt-42:diapers"
    assert mail["X-Geopush-Delivery-Id"] == "dlv-evt-42:diapers"
    assert mail["List-Unsubscribe"] == "<https://x.example/u/u1>"
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = mail.get_body(("plain",))
    html = mail.get_body(("html",))
    assert isinstance(text, EmailMessage)
    assert isinstance(html, EmailMessage)
    assert text.get_content().replace("\r\n", "\n") == (
        "母婴周 <Joy City>\n\nLine one\nLine & two\n")
    assert "<h1>母婴周 &lt;Joy City&gt;</h1>" in html.get_content()
    assert "<p>Line &amp; two</p>" in html.get_content()


async def test_retry_sends_the_same_message_id() -> None:
    async with smtp_server() as box:
        ch = plain_channel(box)
        for _ in range(2):
            assert isinstance(await ch.send(message(recipient=to("mei@example.com"))),
                              Delivered)
    assert len(box.messages) == 2
    assert len({mail["Message-ID"] for _, mail in box.messages}) == 1


async def test_starttls_and_auth_deliver_to_a_relay_that_requires_both(
    local_tls: LocalTls,
) -> None:
    async with secure_smtp_server(local_tls) as box:
        ch = plain_channel(box, start_tls=True, tls_context=local_tls.client,
                           username=USER, password=PASSWORD)
        result = await ch.send(message(recipient=to("mei@example.com")))
    assert isinstance(result, Delivered)
    assert len(box.messages) == 1


async def test_wrong_password_fails_as_config_error(local_tls: LocalTls) -> None:
    async with secure_smtp_server(local_tls) as box:
        ch = plain_channel(box, start_tls=True, tls_context=local_tls.client,
                           username=USER, password="wrong")
        result = await ch.send(message(recipient=to("mei@example.com")))
    assert isinstance(result, Failed)
    assert not result.permanent
    assert "535" in result.reason
    assert box.messages == []


async def test_relay_requiring_starttls_refuses_a_plain_session(local_tls: LocalTls) -> None:
    async with secure_smtp_server(local_tls) as box:
        result = await plain_channel(box).send(message(recipient=to("mei@example.com")))
    assert isinstance(result, Failed)
    assert not result.permanent  # our configuration, not the message
    assert box.messages == []


async def test_unknown_mailbox_is_reported_invalid() -> None:
    async with smtp_server() as box:
        result = await plain_channel(box).send(message(recipient=to("nobody@example.com")))
    assert result == TokenInvalid("smtp recipient refused: smtp 550 5.1.1 No such user here")


async def test_greylisting_is_retried() -> None:
    async with smtp_server() as box:
        result = await plain_channel(box).send(message(recipient=to("greylisted@example.com")))
    assert isinstance(result, Retry)
    assert "451" in result.reason


async def test_rejected_content_fails_permanently() -> None:
    async with smtp_server() as box:
        result = await plain_channel(box).send(
            message(recipient=to("mei@example.com"), body="REJECT-ME"))
    assert result == Failed("smtp 554 5.7.1 Message content rejected", permanent=True)


async def test_unreachable_server_is_retried() -> None:
    ch = EmailChannel(hostname="127.0.0.1", port=free_port(), sender=SENDER, start_tls=False,
                      clock=Clock(), timeout_s=2.0)
    result = await ch.send(message(recipient=to("mei@example.com")))
    assert isinstance(result, Retry)


@pytest.mark.parametrize(
    "address", ["", "mei", "mei@", "a b@example.com", "mei@example.com\r\nBcc: x@y.z",
                "<mei@example.com>", "mei@localhost"],
)
async def test_unusable_address_fails_permanently_without_connecting(address: str) -> None:
    async with smtp_server() as box:
        result = await plain_channel(box).send(message(recipient=to(address)))
    assert isinstance(result, Failed)
    assert result.permanent
    assert box.messages == []


async def test_line_breaks_in_the_title_cannot_inject_headers() -> None:
    async with smtp_server() as box:
        result = await plain_channel(box).send(
            message(recipient=to("mei@example.com"), title="Hi\r\nBcc: eve@evil.example"))
    assert isinstance(result, Delivered)
    [(envelope, mail)] = box.messages
    assert envelope.rcpt_tos == ["mei@example.com"]
    assert mail["Bcc"] is None
    assert mail["Subject"] == "Hi Bcc: eve@evil.example"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"sender": "no address"}, "sender"), ({"username": "u"}, "password")],
)
def test_unusable_configuration_is_refused_at_construction(
    kwargs: dict[str, Any], match: str
) -> None:
    with pytest.raises(ChannelConfigError, match=match):
        EmailChannel(**{"hostname": "127.0.0.1", "sender": SENDER, **kwargs})


async def test_rich_mail_shows_the_image_with_escaped_alt_text_and_buttons_as_links() -> None:
    rich = rich_offer(image_alt='Diapers "XL" <20% off> & more',
                      image_url=DIAPERS_IMAGE + "?w=800&fmt=jpg")
    async with smtp_server() as box:
        result = await plain_channel(box).send(message(recipient=to("mei@example.com"),
                                                       rich=rich))

    assert isinstance(result, Delivered)
    [(_, mail)] = box.messages
    html = mail.get_body(("html",))
    text = mail.get_body(("plain",))
    assert isinstance(html, EmailMessage) and isinstance(text, EmailMessage)
    page = html.get_content()
    assert ('<img src="https://cdn.joycity.example/img/diapers-800.jpg?w=800&amp;fmt=jpg" '
            'alt="Diapers &quot;XL&quot; &lt;20% off&gt; &amp; more"') in page
    assert "<20% off>" not in page  # the tenant's text never becomes markup
    assert f'<a href="{APP_LINK}"><p><img' in page  # the picture opens the offer
    assert ('<a href="https://joycity.example/offers/diapers?src=push&amp;week=baby" '
            in page)
    assert ">Shop now</a>" in page and ">Remind me later</a>" in page
    assert ">Open</a>" in page
    lines = text.get_content().replace("\r\n", "\n").splitlines()
    assert lines[-3:] == [f"Open: {APP_LINK}", f"Shop now: {SHOP_LINK}",
                          "Remind me later: joycity://remind/diapers"]


async def test_image_without_alt_text_is_described_by_the_title() -> None:
    async with smtp_server() as box:
        await plain_channel(box).send(message(
            recipient=to("mei@example.com"), title="Baby week <at> Joy City",
            rich=rich_offer(image_alt=None, deep_link=None, buttons=())))

    html = box.messages[0][1].get_body(("html",))
    assert isinstance(html, EmailMessage)
    assert 'alt="Baby week &lt;at&gt; Joy City"' in html.get_content()
    assert "<a " not in html.get_content()
