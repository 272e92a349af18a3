"""In-app delivery: the per-user inbox, live WebSocket streams, and stream tokens.

- :class:`StreamHub` — which (tenant, user) pairs have a live stream open *in this
  process*, and a way to hand each of them a message. It is presence, not truth: the
  inbox store is the record, so a message the hub could not hand over is still read from
  the inbox on the next app open.
- :class:`StreamFanout` — the port :class:`InboxChannel` publishes through, so that a
  user whose socket is on another node gets the frame too. :class:`LocalFanout` hands
  it to this process's hub only: the embedded store is one process by definition, so
  that is all it needs. With PostgreSQL, :class:`~server.channels.pg_fanout.PostgresFanout`
  also sends it to every other node over ``LISTEN``/``NOTIFY``; ``create_app`` picks
  one (``GEOPUSH_STREAM_FANOUT``). Either way each node hands a message to its own
  streams exactly once, and the hub's interface does not change. The port also answers
  "which of these users has the app open?" (:meth:`StreamFanout.online`) for the
  dispatcher's channel choice: :class:`LocalFanout` from this process's hub, the
  PostgreSQL one from the hub or a live row of any node in ``stream_presence``
  (:mod:`server.channels.pg_presence`, fed by the hub's :meth:`StreamHub.watch`).
- :func:`stream_to_websocket` — what the ``GET /v1/stream`` handler runs after the
  upgrade: subscribe, forward every message as JSON until the client goes away, the
  token expires (close code :data:`CLOSE_TOKEN_EXPIRED`) or is revoked
  (:data:`CLOSE_TOKEN_REVOKED`).
- :func:`issue_stream_token` / :func:`verify_stream_token` — the per-user token the app
  presents on ``/v1/stream?token=``: ``v1.<payload>.<mac>``, base64url, where payload is
  ``{"t": tenant, "u": user, "e": expiry, "tg": tenant epoch, "ug": user epoch}`` and mac
  is HMAC-SHA256 with the tenant's secret over ``v1.<payload>``. The tenant's backend
  issues it for its logged-in user; ours verifies it in constant time.
- **Revocation** — the store keeps a token epoch per tenant and per user
  (:class:`TokenEpochs`); a token carries the epochs current when it was minted, and one
  whose epoch is below the current one is revoked. Erasing a user bumps the user's epoch,
  ``POST /v1/stream/revoke`` the tenant's (or one user's). Counters rather than
  "not before" times: no clock is compared, so a token minted in the same second as a
  revocation is judged right on every node. Open sockets are closed through the fan-out
  (:meth:`StreamFanout.revoke`, every node) and :meth:`StreamHub.revoke`.
- :class:`InboxChannel` — the ``inbox`` channel: store in the inbox, then publish live.

A stream frame is ``{"type": "message", "message": <OutboundMessage.payload()>}``
(:func:`stream_frame`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import logging
import time
from collections import defaultdict, deque
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Iterator,
    Mapping,
)
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import WSMsgType, web

from server.channels.base import (
    INBOX,
    BaseChannel,
    ChannelError,
    Delivered,
    OutboundMessage,
    SendObserver,
    SendResult,
)

log = logging.getLogger("geopush.stream")

TOKEN_VERSION = "v1"
CLOSE_TOKEN_EXPIRED = 4001
"""WebSocket close code when the stream token expires (reason ``token_expired``): the
app mints a fresh token and reconnects."""
CLOSE_TOKEN_REVOKED = 4002
"""WebSocket close code when the stream token is revoked (reason ``token_revoked``: the
user was erased, or the tenant revoked its tokens): the app gets a fresh token from its
backend before reconnecting; the old one is refused (401)."""
STREAM_QUEUE_SIZE = 100
"""Frames buffered per connection. A client this far behind is not reading; older
frames are dropped (they stay in the inbox) rather than growing memory without bound."""

UserKey = tuple[str, str]


# --------------------------------------------------------------------------- tokens


class StreamTokenError(ChannelError):
    """A stream token that must be refused; ``reason`` is ``malformed``,
    ``bad_signature`` or ``expired`` (say which to the client: none helps a forger)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"stream token {reason.replace('_', ' ')}")
        self.reason = reason


@dataclass(frozen=True, slots=True)
class TokenEpochs:
    """The token epochs of a tenant and one of its users (0 until first revoked): a
    token minted with lower ones is revoked."""

    tenant: int = 0
    user: int = 0

    def revokes(self, claims: StreamClaims) -> bool:
        """Whether these epochs revoke the token ``claims`` came from."""
        return claims.tenant_epoch < self.tenant or claims.user_epoch < self.user


@dataclass(frozen=True, slots=True)
class StreamClaims:
    """Who a verified stream token lets in, until when (epoch seconds), and the token
    epochs it was minted at (0 for tokens minted before epochs existed)."""

    tenant_id: str
    user_id: str
    expires_at: int
    tenant_epoch: int = 0
    user_epoch: int = 0


def issue_stream_token(
    tenant_secret: str | bytes, tenant_id: str, user_id: str, expires_at: float,
    epochs: TokenEpochs = TokenEpochs(),
) -> str:
    """A token letting ``user_id`` of ``tenant_id`` open the stream until ``expires_at``
    (epoch seconds, truncated to whole seconds) unless revoked after ``epochs``. Pure."""
    claims = {"t": tenant_id, "u": user_id, "e": int(expires_at), "tg": epochs.tenant,
              "ug": epochs.user}
    payload = _b64(json.dumps(claims, separators=(",", ":"), ensure_ascii=False).encode())
    return f"{TOKEN_VERSION}.{payload}.{_b64(_mac(tenant_secret, payload))}"


def peek_stream_token_tenant(token: str) -> str:
    """The tenant a token *claims*, unverified — only to look up the secret to verify it
    with. Raises :class:`StreamTokenError` (``malformed``)."""
    return _claims(_split(token)[0]).tenant_id


def verify_stream_token(tenant_secret: str | bytes, token: str, *, now: float) -> StreamClaims:
    """The claims of ``token`` when ``tenant_secret`` signed it and it has not expired at
    ``now`` (epoch seconds). Raises :class:`StreamTokenError` otherwise. Pure."""
    payload, mac = _split(token)
    try:
        given = base64.urlsafe_b64decode(mac + "=" * (-len(mac) % 4))
    except (binascii.Error, ValueError) as exc:
        raise StreamTokenError("malformed") from exc
    if not hmac.compare_digest(given, _mac(tenant_secret, payload)):
        raise StreamTokenError("bad_signature")
    claims = _claims(payload)
    if now >= claims.expires_at:
        raise StreamTokenError("expired")
    return claims


def _mac(secret: str | bytes, payload: str) -> bytes:
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, f"{TOKEN_VERSION}.{payload}".encode(), hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _split(token: str) -> tuple[str, str]:
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != TOKEN_VERSION or not parts[1] or not parts[2]:
        raise StreamTokenError("malformed")
    return parts[1], parts[2]


def _claims(payload: str) -> StreamClaims:
    try:
        raw = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (binascii.Error, ValueError) as exc:
        raise StreamTokenError("malformed") from exc
    if not (isinstance(raw, dict) and isinstance(raw.get("t"), str)
            and isinstance(raw.get("u"), str) and type(raw.get("e")) is int
            and type(raw.get("tg", 0)) is int and type(raw.get("ug", 0)) is int):
        raise StreamTokenError("malformed")
    return StreamClaims(tenant_id=raw["t"], user_id=raw["u"], expires_at=raw["e"],
                        tenant_epoch=raw.get("tg", 0), user_epoch=raw.get("ug", 0))


# --------------------------------------------------------------------------- hub


class Subscription:
    """One open stream's queue of frames; iterate it to receive them in order.
    ``epochs``: those of the token the stream was opened with."""

    def __init__(self, key: UserKey, maxsize: int, epochs: TokenEpochs = TokenEpochs()) -> None:
        self.key = key
        self.epochs = epochs
        self._frames: deque[Mapping[str, Any]] = deque()
        self._maxsize = maxsize
        self._ready = asyncio.Event()
        self._closed = False
        self.dropped = 0
        """Frames discarded because this client fell :data:`STREAM_QUEUE_SIZE` behind."""
        self.close_code: int | None = None
        """Set by :meth:`end`: the WebSocket close code the stream ends with."""
        self.close_reason = ""

    def offer(self, frame: Mapping[str, Any]) -> None:
        """Queue ``frame`` without waiting; the oldest frame goes when the queue is full."""
        if len(self._frames) >= self._maxsize:
            self._frames.popleft()
            self.dropped += 1
        self._frames.append(frame)
        self._ready.set()

    def close(self) -> None:
        """End iteration once the queued frames are consumed."""
        self._closed = True
        self._ready.set()

    def end(self, code: int, reason: str) -> None:
        """End iteration now, dropping queued frames (they stay in the inbox): the token
        no longer lets this client read (``code``: :data:`CLOSE_TOKEN_EXPIRED` or
        :data:`CLOSE_TOKEN_REVOKED`). The first call decides the code."""
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
        self._frames.clear()
        self.close()

    async def __aiter__(self) -> AsyncIterator[Mapping[str, Any]]:
        while True:
            while self._frames:
                yield self._frames.popleft()
            if self._closed:
                return
            self._ready.clear()
            await self._ready.wait()


PresenceWatcher = Callable[[str, str, bool], None]
"""Told ``(tenant_id, user_id, online)`` when a user's first stream opens in this process
(``True``) and when their last one here closes (``False``). Called synchronously in the
event loop from :meth:`StreamHub.subscribe`: it must not block; what it raises is logged
and ignored (a stream never fails for a watcher)."""


class StreamHub:
    """Live streams in this process by (tenant, user). Runs in the event loop; not
    thread-safe (every caller is in the loop). :meth:`watch` lets a fan-out record who
    is online here somewhere others can read it, without the hub knowing where."""

    def __init__(self, *, queue_size: int = STREAM_QUEUE_SIZE) -> None:
        self._queue_size = queue_size
        self._streams: defaultdict[UserKey, set[Subscription]] = defaultdict(set)
        self._watchers: list[PresenceWatcher] = []

    def watch(self, watcher: PresenceWatcher) -> Callable[[], None]:
        """Tell ``watcher`` from now on when a user comes online or goes offline here;
        returns the function that stops it."""
        self._watchers.append(watcher)

        def unwatch() -> None:
            with contextlib.suppress(ValueError):
                self._watchers.remove(watcher)

        return unwatch

    @contextlib.contextmanager
    def subscribe(
        self, tenant_id: str, user_id: str, epochs: TokenEpochs = TokenEpochs()
    ) -> Iterator[Subscription]:
        """Register a stream, opened with a token of ``epochs``, for the duration of the
        ``with`` block."""
        key = (tenant_id, user_id)
        sub = Subscription(key, self._queue_size, epochs)
        opened = self._streams[key]
        opened.add(sub)
        if len(opened) == 1:
            self._tell(key, online=True)
        try:
            yield sub
        finally:
            subs = self._streams.get(key)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._streams[key]
                    self._tell(key, online=False)
            sub.close()

    def _tell(self, key: UserKey, *, online: bool) -> None:
        for watcher in list(self._watchers):
            try:
                watcher(key[0], key[1], online)
            except Exception:
                log.exception("stream presence watcher failed for %s/%s", *key)

    def is_online(self, tenant_id: str, user_id: str) -> bool:
        """Whether the user has at least one stream open here."""
        return bool(self._streams.get((tenant_id, user_id)))

    def online_users(self) -> list[UserKey]:
        """Every (tenant, user) with a stream open here."""
        return list(self._streams)

    def online_count(self) -> int:
        """Users (not connections) with a stream open here, for ``/metrics``."""
        return len(self._streams)

    def publish(self, tenant_id: str, user_id: str, frame: Mapping[str, Any]) -> int:
        """Hand ``frame`` to every open stream of the user; returns how many got it.
        Never waits (a slow client cannot hold up delivery to anyone else)."""
        subs = self._streams.get((tenant_id, user_id), ())
        for sub in subs:
            sub.offer(frame)
        return len(subs)

    def close_all(self) -> None:
        """End every stream (service shutdown): the handlers return and close sockets."""
        for subs in self._streams.values():
            for sub in subs:
                sub.close()

    def revoke(self, tenant_id: str, user_id: str | None, epoch: int) -> int:
        """End, with :data:`CLOSE_TOKEN_REVOKED`, the streams here whose token is revoked
        by the user's token epoch becoming ``epoch`` (``user_id`` ``None``: the tenant's
        epoch, every user of the tenant). A stream opened with a token minted since
        (``epoch`` or above) stays open. Returns how many were ended."""
        ended = 0
        for (tenant, user), subs in list(self._streams.items()):
            if tenant != tenant_id or (user_id is not None and user != user_id):
                continue
            for sub in list(subs):
                minted = sub.epochs.tenant if user_id is None else sub.epochs.user
                if minted < epoch and sub.close_code is None:
                    sub.end(CLOSE_TOKEN_REVOKED, "token_revoked")
                    ended += 1
        return ended


Recheck = Callable[[], Awaitable[bool]]
"""Asked once a stream is registered: whether its token has been revoked meanwhile."""


async def stream_to_websocket(
    hub: StreamHub,
    ws: web.WebSocketResponse,
    claims: StreamClaims,
    *,
    clock: Callable[[], float] = time.time,
    revoked: Recheck | None = None,
) -> None:
    """Forward the user's frames to ``ws`` (already prepared) until the client closes
    it, the hub ends the stream, the token expires or it is revoked. Whatever the client
    sends is ignored.

    At ``claims.expires_at`` by ``clock`` (epoch seconds) the socket is closed with
    :data:`CLOSE_TOKEN_EXPIRED`, and no frame is sent once ``clock`` says the token has
    expired, whatever the timer. ``revoked`` is asked once the stream is registered, so
    a revocation landing between the token check and the registration (too late for the
    check, too early for :meth:`StreamHub.revoke` to find the stream) still ends it,
    with :data:`CLOSE_TOKEN_REVOKED`."""
    epochs = TokenEpochs(claims.tenant_epoch, claims.user_epoch)
    with hub.subscribe(claims.tenant_id, claims.user_id, epochs) as sub:

        def expire() -> None:
            sub.end(CLOSE_TOKEN_EXPIRED, "token_expired")

        # A timer on the loop's monotonic clock, set from the token's remaining life now:
        # wall-clock steps do not move it, and the check per frame below covers them.
        timer = asyncio.get_running_loop().call_later(
            max(0.0, claims.expires_at - clock()), expire)

        async def forward() -> None:
            async for frame in sub:
                if clock() >= claims.expires_at:
                    expire()
                    break
                await ws.send_json(frame)
            if sub.close_code is None:
                await ws.close()
            else:
                await ws.close(code=sub.close_code, message=sub.close_reason.encode())

        forwarding = asyncio.create_task(forward())
        try:
            if revoked is not None and await revoked():
                sub.end(CLOSE_TOKEN_REVOKED, "token_revoked")
            async for msg in ws:
                if msg.type == WSMsgType.ERROR:
                    break
        finally:
            timer.cancel()
            forwarding.cancel()
            # A send to a socket the client just closed fails in its own ways; the
            # stream is over either way.
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await forwarding


# --------------------------------------------------------------------------- fan-out


def stream_frame(message: OutboundMessage) -> dict[str, Any]:
    """The frame a stream gets for ``message``. Pure."""
    return {"type": "message", "message": message.payload()}


class StreamFanout(Protocol):
    """Where :class:`InboxChannel` publishes a frame: to the user's streams on this node
    *and* on every other node. Each node hands a frame to its own streams exactly once.

    Live delivery is best effort: a node that cannot be reached at the moment simply
    does not show the frame live; the inbox is the record.
    """

    async def start(self) -> None:
        """Begin receiving other nodes' frames (``create_app``'s ``cleanup_ctx``)."""
        ...

    async def aclose(self) -> None:
        """Stop receiving and release what :meth:`start` opened."""
        ...

    async def publish(self, tenant_id: str, user_id: str, frame: Mapping[str, Any]) -> int:
        """Hand ``frame`` to the user's streams here at once and send it to the other
        nodes; returns how many streams *of this node* got it. Never raises for a
        network failure (the frame still reached this node's streams)."""
        ...

    async def online(self, tenant_id: str, user_ids: Collection[str]) -> set[str]:
        """The users of ``user_ids`` with a live stream open on any node this fan-out
        reaches (this node's at least): one question per batch, not per user. Never
        raises for a network or database failure: it answers for this node then."""
        ...

    async def revoke(self, tenant_id: str, user_id: str | None, epoch: int) -> int:
        """End the streams whose tokens the store's epoch ``epoch`` revokes, of the user
        (``user_id``) or of the whole tenant (``None``; see :meth:`StreamHub.revoke`),
        here at once and on every other node; returns how many *of this node* ended.
        Call it after the new epoch is committed. Never raises for a network failure
        (sockets elsewhere then close at their token's expiry, and the revoked token
        cannot open a new one)."""
        ...

    def state(self) -> str:
        """One line for ``/readyz``: how far a frame published here reaches right now."""
        ...


class LocalFanout:
    """A :class:`StreamFanout` for one process: this node's hub, nobody else. What the
    embedded store runs (a single process by definition) and what a PostgreSQL node
    runs when ``GEOPUSH_STREAM_FANOUT=false``."""

    def __init__(self, hub: StreamHub) -> None:
        self.hub = hub

    async def start(self) -> None:
        """Nothing to receive from."""

    async def aclose(self) -> None:
        """Nothing to release."""

    async def publish(self, tenant_id: str, user_id: str, frame: Mapping[str, Any]) -> int:
        return self.hub.publish(tenant_id, user_id, frame)

    async def online(self, tenant_id: str, user_ids: Collection[str]) -> set[str]:
        """The users of ``user_ids`` with a stream open in this process."""
        return {u for u in user_ids if self.hub.is_online(tenant_id, u)}

    async def revoke(self, tenant_id: str, user_id: str | None, epoch: int) -> int:
        return self.hub.revoke(tenant_id, user_id, epoch)

    def state(self) -> str:
        return "local: this process's streams"


# --------------------------------------------------------------------------- channel


class InboxStore(Protocol):
    """Where inbox messages are kept (``GET /v1/users/{id}/inbox`` reads them)."""

    async def put(self, message: OutboundMessage) -> None:
        """Keep ``message``; a second put with the same idempotency key is a no-op."""
        ...


class MemoryInbox:
    """An :class:`InboxStore` in this process's memory: the newest ``per_user`` messages
    of each user. For the embedded mode and tests; PostgreSQL deployments use the store's
    table."""

    def __init__(self, *, per_user: int = 100) -> None:
        self._per_user = per_user
        self._messages: defaultdict[UserKey, deque[OutboundMessage]] = defaultdict(deque)

    async def put(self, message: OutboundMessage) -> None:
        box = self._messages[message.tenant_id, message.user_id]
        if any(m.idempotency_key == message.idempotency_key for m in box):
            return
        box.append(message)
        if len(box) > self._per_user:
            box.popleft()

    def messages(self, tenant_id: str, user_id: str) -> list[OutboundMessage]:
        """The user's inbox, oldest first."""
        return list(self._messages.get((tenant_id, user_id), ()))


class InboxChannel(BaseChannel):
    """The ``inbox`` channel: keeps the message in the inbox, then publishes it to the
    user's open streams through ``fanout`` (default: ``hub`` alone, a
    :class:`LocalFanout`). ``Delivered`` once stored; ``provider_id`` says ``live:<n>``
    when n streams *of this node* got it at once, ``stored`` otherwise (the user may
    still see it live on another node). An exception from the store propagates (it is
    ours, not a peer's answer)."""

    name = INBOX

    def __init__(
        self,
        hub: StreamHub,
        store: InboxStore,
        *,
        fanout: StreamFanout | None = None,
        observer: SendObserver | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(observer=observer, clock=clock)
        self._fanout = fanout or LocalFanout(hub)
        self._store = store

    async def _send(self, message: OutboundMessage) -> SendResult:
        await self._store.put(message)
        live = await self._fanout.publish(message.tenant_id, message.user_id,
                                          stream_frame(message))
        return Delivered(f"live:{live}" if live else "stored")
