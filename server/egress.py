"""Where tenant-set destinations may point: public internet addresses, unless the operator
says otherwise.

A tenant admin writes its webhook URL, its MQTT and SMTP hosts and its providers' base
URLs (``PUT /v1/channels``), and the service then connects there from inside the
operator's network. Without a rule that is server-side request forgery: a webhook at
``http://169.254.169.254/`` (a cloud's metadata service), ``http://127.0.0.1:6379`` (the
operator's Redis) or ``http://10.0.0.5/admin`` would be reached from a trusted place, and
its status codes and timings read back through the delivery log.

The rule (:class:`EgressPolicy`): a destination is refused when any address its host
resolves to is not a public one (``ipaddress``: not ``is_global`` — loopback, private,
link-local, carrier-grade NAT, multicast, reserved, unspecified) — unless

- the operator allows private destinations altogether (``GEOPUSH_OUTBOUND_ALLOW_PRIVATE``:
  a single-tenant install whose webhooks are internal), or
- the destination is on the operator's list (``GEOPUSH_OUTBOUND_ALLOWED``) *for the
  channel that connects*. An entry is ``CHANNEL:DESTINATION``: ``CHANNEL`` is one of
  ``webhook``, ``mqtt``, ``fcm``, ``apns``, ``email``, ``sms``, or ``*`` for all of them;
  ``DESTINATION`` is a ``host:port``, a host (any port) or an address block
  (``10.1.0.0/16``). The default, ``mqtt:127.0.0.1:1883``, lets the ``mqtt`` channel reach
  the operator's shared broker and nothing else reach it: without the channel a tenant's
  webhook could POST to the broker's port too.

  An entry without a channel (the form before channels: ``127.0.0.1:1883``, ``10.1.0.0/16``)
  still means what it meant then: every channel, as ``*:`` would. A ``name:digits`` entry
  is always a host and a port, so a host called ``mqtt`` is written ``mqtt:1883`` (any
  channel) or ``mqtt:mqtt:1883`` (the MQTT channel only).

Checked twice: when the settings are written (a 422 ``destination_not_allowed`` naming
the field) and when a channel connects (a permanent ``... destination refused``):

- the HTTP channels (webhook, FCM, APNs, SMS) on the very address they connect to
  (:class:`GuardedBackend`), so a name that resolved to a public address at the first
  check and to a private one later (DNS rebinding) is still refused;
- MQTT and SMTP, whose libraries resolve names themselves, on the name's addresses just
  before each new connection (a rebinding between that lookup and the library's own is
  not caught).

A host that does not resolve when the settings are written is accepted (DNS may lag a
new name); the connection is checked when it is made.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

RESOLVE_TIMEOUT_S = 3.0
"""A settings check does not wait longer for DNS (the connection is checked anyway)."""
CHANNELS = ("webhook", "mqtt", "fcm", "apns", "email", "sms")
"""The channels that connect to tenant-set destinations (the in-app inbox connects nowhere)."""
ANY_CHANNEL = "*"
DEFAULT_ALLOWED = ("mqtt:127.0.0.1:1883",)
"""The MQTT channel's default broker (``mqtt.host`` defaults to it), for MQTT only."""


class DestinationRefused(httpcore.ConnectError):
    """A connection the egress policy refused (a ``ConnectError`` to the HTTP stack)."""


@dataclass(frozen=True, slots=True)
class AllowedEntry:
    """One entry of the operator's list: which channel (``*``: any) may reach what."""

    channel: str
    destination: str
    """``host:port``, ``[v6]:port``, a host, or an address block (CIDR)."""

    @classmethod
    def parse(cls, text: str) -> AllowedEntry:
        """``CHANNEL:DESTINATION`` or a bare destination (any channel); raises
        ``ValueError`` naming the entry when it is none of the forms."""
        prefix, sep, rest = text.partition(":")
        prefix = prefix.lower()
        if sep and not rest.isdigit() and prefix in (*CHANNELS, ANY_CHANNEL, "inbox"):
            if prefix == "inbox":
                raise ValueError(f"{text!r}: the inbox connects nowhere; a channel is one "
                                 f"of {', '.join(CHANNELS)} or *")
            channel, destination = prefix, rest
        elif prefix == ANY_CHANNEL:
            raise ValueError(f"{text!r}: the destination is missing")
        else:
            channel, destination = ANY_CHANNEL, text
        if not destination:
            raise ValueError(f"{text!r}: the destination is missing")
        if "/" in destination:
            try:
                ipaddress.ip_network(destination, strict=False)
            except ValueError:
                raise ValueError(f"{text!r} is not an address block") from None
        elif _has_port_text(destination) and _split(destination)[1] is None:
            raise ValueError(f"{text!r}: the port is not a number")
        return cls(channel, destination)

    def allows(self, channel: str, host: str, port: int, address: IPAddress | None) -> bool:
        """Whether this entry lets ``channel`` connect to ``host`` (resolved to
        ``address``, when known) on ``port``."""
        if self.channel not in (ANY_CHANNEL, channel):
            return False
        if "/" in self.destination:
            return address is not None and address in ipaddress.ip_network(
                self.destination, strict=False)
        name, entry_port = _split(self.destination)
        if entry_port is not None and entry_port != port:
            return False
        return name == host or (address is not None and name == str(address))


@dataclass(frozen=True, slots=True)
class EgressPolicy:
    """Which destinations tenant settings may name, per channel (see the module doc)."""

    allow_private: bool = False
    allowed: tuple[AllowedEntry, ...] = field(
        default_factory=lambda: tuple(AllowedEntry.parse(a) for a in DEFAULT_ALLOWED))

    @classmethod
    def parse(cls, allow_private: bool, allowed: Iterable[str]) -> EgressPolicy:
        """Raises ``ValueError`` naming an entry that is none of the forms."""
        entries = tuple(AllowedEntry.parse(a.strip()) for a in allowed if a.strip())
        return cls(allow_private, entries)

    def _listed(self, channel: str, host: str, port: int, address: IPAddress | None) -> bool:
        """Whether the operator's list lets ``channel`` reach this host (or address)
        and port."""
        host = host.lower().strip("[]")
        return any(e.allows(channel, host, port, address) for e in self.allowed)

    def refusal(self, host: str, port: int, address: IPAddress, *, channel: str) -> str | None:
        """Why ``channel`` connecting to ``address`` (which ``host`` resolved to) on
        ``port`` is refused, or ``None`` when it is allowed."""
        if (self.allow_private or _public(address)
                or self._listed(channel, host, port, address)):
            return None
        return (f"{host}:{port} resolves to {address}, which is not a public address "
                f"(the operator may allow the {channel} channel to reach it: "
                f"GEOPUSH_OUTBOUND_ALLOWED={channel}:{_entry_text(host, port)})")

    async def check(self, host: str, port: int, *, channel: str) -> str | None:
        """:meth:`refusal` for every address ``host`` resolves to now; ``None`` also when
        it does not resolve (the connection is checked again when it is made)."""
        if self.allow_private or self._listed(channel, host, port, None):
            return None
        try:
            async with asyncio.timeout(RESOLVE_TIMEOUT_S):
                addresses = await resolve(host, port)
        except (OSError, TimeoutError):
            return None
        for address in addresses:
            reason = self.refusal(host, port, address, channel=channel)
            if reason is not None:
                return reason
        return None


def _entry_text(host: str, port: int) -> str:
    bare = host.strip("[]")
    return f"[{bare}]:{port}" if ":" in bare else f"{bare}:{port}"


def _public(address: IPAddress) -> bool:
    """A unicast address on the public internet (an IPv4-mapped IPv6 address is judged
    as the IPv4 address it carries)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def _has_port_text(entry: str) -> bool:
    return "]:" in entry if entry.startswith("[") else entry.count(":") == 1


def _split(entry: str) -> tuple[str, int | None]:
    """``host:port`` / ``[v6]:port`` / ``host`` / a bare IPv6 address → (host, port)."""
    if entry.startswith("["):
        name, _, rest = entry[1:].partition("]")
        return name.lower(), int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else None
    if entry.count(":") == 1:
        name, _, port = entry.partition(":")
        return name.lower(), int(port) if port.isdigit() else None
    return entry.lower(), None


async def resolve(host: str, port: int) -> list[IPAddress]:
    """The addresses ``host`` resolves to (an address literal: itself)."""
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM)
    found: list[IPAddress] = []
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        if address not in found:
            found.append(address)
    return found


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """An HTTP network backend that resolves the host itself, refuses the addresses the
    policy refuses, and connects to the address it checked (no second lookup)."""

    def __init__(
        self, policy: EgressPolicy, inner: httpcore.AsyncNetworkBackend, *, channel: str
    ) -> None:
        self._policy = policy
        self._inner = inner
        self._channel = channel

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await resolve(host, port)
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        for address in addresses:
            reason = self._policy.refusal(host, port, address, channel=self._channel)
            if reason is not None:
                raise DestinationRefused(reason)
        last: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(address), port, timeout=timeout, local_address=local_address,
                    socket_options=socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise DestinationRefused("unix sockets are not a destination")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def guarded_client(
    policy: EgressPolicy, *, channel: str, transport: dict[str, Any] | None = None,
    **options: Any,
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` whose connections go through :class:`GuardedBackend`
    (no proxy from the environment: the policy checks where it really connects), held
    to what the policy allows ``channel``.
    ``transport``: options of the connection pool (``http2``, ``http1``, ``verify``);
    ``options``: the client's (``timeout``, ``follow_redirects``)."""
    transport_ = httpx.AsyncHTTPTransport(trust_env=False, **(transport or {}))
    pool = transport_._pool  # httpx 0.28 takes no network backend; its pool keeps one
    pool._network_backend = GuardedBackend(policy, pool._network_backend, channel=channel)
    return httpx.AsyncClient(transport=transport_, trust_env=False, **options)
