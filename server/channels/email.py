"""Email over SMTP (aiosmtplib): plain text plus a simple HTML part.

Rich content: the HTML part shows the image (``<img src alt>``, alt text escaped; linked
to the deep link) and the deep link and buttons as links; the plain-text part lists the
same links as ``label: url`` lines.

Each send opens its own SMTP session (connect, optional STARTTLS and AUTH, one
message, QUIT). Location offers are sparse per tenant, and a session per message keeps
no half-dead connection around between them; a relay that must take bulk volume should
sit behind a local MTA.

Headers: ``From``, ``To``, ``Subject`` (the title), ``Date``, a ``Message-ID`` derived
from the idempotency key (a retry carries the same id, so a mail system that dedupes on
it shows one message), ``X-Geopush-Idempotency-Key``, ``X-Geopush-Delivery-Id`` and,
when an unsubscribe link is configured, ``List-Unsubscribe`` with one-click POST
(RFC 8058; large mailbox providers require it for bulk senders).

Answers map to results:

=============================================================  ===========================
message accepted (250)                                          ``Delivered`` (the reply)
recipient refused with 5xx (no such mailbox)                    ``TokenInvalid``
any 4xx (greylisting, mailbox full, rate limit), connection     ``Retry``
refused, timeouts, dropped connections
AUTH refused, STARTTLS or AUTH unsupported                      ``Failed``, not permanent
other 5xx (content rejected)                                    ``Failed``, permanent
an address that is not one                                      ``Failed``, permanent, no
                                                                connection made
=============================================================  ===========================
"""

from __future__ import annotations

import email.utils
import hashlib
import html
import re
import ssl
from collections.abc import Callable
from email.message import EmailMessage

import aiosmtplib

from server.channels.base import (
    EMAIL,
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
from server.egress import EgressPolicy

_ADDRESS = re.compile(r"[^@\s<>()\[\],;:\"\\]+@[^@\s<>()\[\],;:\"\\]+\.[^@\s<>()\[\],;:\"\\]+")
"""A bare ``local@domain.tld``: deliberately simple (RFC 5322 allows far more, but no
address a user types into an app needs it) and free of anything a header could abuse."""
_AUTH_CODES = frozenset({530, 534, 535, 538})


class EmailChannel(BaseChannel):
    """Sends ``message`` to ``message.recipient.email`` through an SMTP server.

    ``start_tls``: ``True`` requires STARTTLS, ``False`` never uses it, ``None`` upgrades
    when the server offers it. ``use_tls`` is implicit TLS (port 465) instead.
    ``unsubscribe_url(message)`` gives the one-click unsubscribe link (carry a signed
    token in it; the link's handler is the HTTP layer's).
    """

    name = EMAIL

    def __init__(
        self,
        *,
        hostname: str,
        sender: str,
        port: int = 587,
        username: str | None = None,
        password: str | None = None,
        start_tls: bool | None = None,
        use_tls: bool = False,
        tls_context: ssl.SSLContext | None = None,
        message_id_domain: str | None = None,
        unsubscribe_url: Callable[[OutboundMessage], str] | None = None,
        timeout_s: float = 30.0,
        egress: EgressPolicy | None = None,
        observer: SendObserver | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(observer=observer, clock=clock)
        _, sender_address = email.utils.parseaddr(sender)
        if not _ADDRESS.fullmatch(sender_address):
            raise ChannelConfigError(f"email sender {sender!r} has no usable address")
        if (username is None) != (password is None):
            raise ChannelConfigError("email username and password go together")
        self._hostname = hostname
        self._port = port
        self._sender = sender
        self._sender_address = sender_address
        self._username = username
        self._password = password
        self._start_tls = start_tls
        self._use_tls = use_tls
        self._tls_context = tls_context
        self._domain = message_id_domain or sender_address.rpartition("@")[2]
        self._unsubscribe_url = unsubscribe_url
        self._timeout_s = timeout_s
        self._egress = egress

    def build(self, message: OutboundMessage) -> EmailMessage:
        """The MIME message for ``message`` (whose recipient has an email address)."""
        mail = EmailMessage()
        mail["From"] = self._sender
        mail["To"] = message.recipient.email or ""
        mail["Subject"] = _one_line(message.title)
        mail["Date"] = email.utils.formatdate(self._clock(), usegmt=True)
        digest = hashlib.sha256(message.idempotency_key.encode()).hexdigest()[:32]
        mail["Message-ID"] = f"<{digest}@{self._domain}>"
        mail["X-Geopush-Idempotency-Key"] = _one_line(message.idempotency_key)
        mail["X-Geopush-Delivery-Id"] = _one_line(message.delivery_id)
        if self._unsubscribe_url is not None:
            mail["List-Unsubscribe"] = f"<{self._unsubscribe_url(message)}>"
            mail["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        mail.set_content(f"{message.title}\n\n{message.body}\n{_text_links(message)}")
        # Title and body are plain text from the template sandbox: escape, never trust.
        paragraphs = "".join(
            f"<p>{html.escape(line)}</p>" for line in message.body.splitlines() if line.strip()
        )
        mail.add_alternative(
            "<!doctype html><html><body>"
            f"<h1>{html.escape(message.title)}</h1>{_html_image(message)}{paragraphs}"
            f"{_html_links(message)}</body></html>",
            subtype="html",
        )
        return mail

    async def _send(self, message: OutboundMessage) -> SendResult:
        address = (message.recipient.email or "").strip()
        if not address:
            return Failed("recipient has no email address", permanent=True)
        if not _ADDRESS.fullmatch(address):
            return Failed(f"not an email address: {address!r}", permanent=True)
        if self._egress is not None:
            refused = await self._egress.check(self._hostname, self._port, channel=EMAIL)
            if refused is not None:
                return Failed(f"smtp destination refused: {refused}", permanent=True)
        mail = self.build(message)
        try:
            _, reply = await aiosmtplib.send(
                mail,
                sender=self._sender_address,
                recipients=[address],
                hostname=self._hostname,
                port=self._port,
                username=self._username,
                password=self._password,
                start_tls=self._start_tls,
                use_tls=self._use_tls,
                tls_context=self._tls_context,
                timeout=self._timeout_s,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            if codes and all(400 <= code < 500 for code in codes):
                return Retry(f"smtp recipient deferred: {_describe(exc.recipients[0])}")
            return TokenInvalid(f"smtp recipient refused: {_describe(exc.recipients[0])}")
        except aiosmtplib.SMTPResponseException as exc:
            return _response_result(exc)
        except (aiosmtplib.SMTPTimeoutError, aiosmtplib.SMTPServerDisconnected,
                aiosmtplib.SMTPConnectError, OSError) as exc:
            return Retry(f"smtp {self._hostname}:{self._port}: {type(exc).__name__}: {exc}")
        except aiosmtplib.SMTPException as exc:
            # STARTTLS required but not offered, AUTH not supported: our configuration.
            return Failed(f"smtp: {exc}", permanent=False)
        return Delivered(reply or None)


def _html_image(message: OutboundMessage) -> str:
    """The rich content's picture, linked to the deep link when there is one. Every
    attribute is escaped (``quote=True``): alt text is tenant text, and a URL may hold
    ``&`` and quotes."""
    rich = message.rich
    if rich is None or rich.image_url is None:
        return ""
    alt = rich.image_alt if rich.image_alt is not None else message.title
    image = (f'<p><img src="{html.escape(rich.image_url)}" alt="{html.escape(alt)}" '
             'style="max-width:100%;height:auto"></p>')
    if rich.deep_link is None:
        return image
    return f'<a href="{html.escape(rich.deep_link)}">{image}</a>'


def _html_links(message: OutboundMessage) -> str:
    """The deep link (``Open``) and the buttons, as links."""
    links = _links(message)
    if not links:
        return ""
    anchors = " ".join(f'<a href="{html.escape(href)}" style="display:inline-block;'
                       f'padding:8px 16px;margin:4px;border:1px solid #888;'
                       f'text-decoration:none">{html.escape(label)}</a>'
                       for label, href in links)
    return f"<p>{anchors}</p>"


def _text_links(message: OutboundMessage) -> str:
    """The same links for the plain-text part, one ``label: url`` a line."""
    links = _links(message)
    return "".join(f"\n{label}: {href}" for label, href in links) + ("\n" if links else "")


def _links(message: OutboundMessage) -> list[tuple[str, str]]:
    rich = message.rich
    if rich is None:
        return []
    links = [(b.title, b.deep_link) for b in rich.buttons]
    if rich.deep_link is not None and rich.deep_link not in {href for _, href in links}:
        links.insert(0, ("Open", rich.deep_link))
    return links


def _response_result(exc: aiosmtplib.SMTPResponseException) -> SendResult:
    detail = _describe(exc)
    if 400 <= exc.code < 500:
        return Retry(detail)
    if exc.code in _AUTH_CODES:
        return Failed(detail, permanent=False)
    return Failed(detail, permanent=True)


def _describe(exc: aiosmtplib.SMTPResponseException) -> str:
    return f"smtp {exc.code} {exc.message}".strip()


def _one_line(text: str) -> str:
    """Header values may not contain line breaks (header injection); fold them away."""
    return " ".join(text.split())
