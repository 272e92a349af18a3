"""Live in-app frames across nodes over PostgreSQL ``LISTEN``/``NOTIFY``.

With several ``geopush serve`` nodes on one database, a user's WebSocket lives on one of
them while any node's dispatcher may send the user a message. :class:`PostgresFanout`
(a :class:`~server.channels.inapp.StreamFanout`) closes that gap:

- **publish**: hand the frame to this node's streams at once, then ``pg_notify`` a
  notice carrying this node's id. Local delivery thus never waits for, nor depends on,
  the database; every node's listener also receives its own notice and ignores it by
  that id — so each node hands a message to its own streams exactly once. (Delivering
  only through the notification would cost local users a round trip, and all live
  delivery whenever the listener is down.)
- **notice**: ``<header>\\n<body>``, JSON measured in UTF-8 bytes (the store's text
  is UTF-8 anyway; ``\\u`` escapes would double the size of Chinese text). The header is
  ``["v1", origin, tenant, user, kind]``; a node reads only the header unless the user
  has a stream open here, so a node without subscribers drops a notice cheaply. ``kind``
  ``f``: the body is the frame; ``r``: the frame would not fit ``NOTIFY``'s 8000 bytes,
  the body is the message's delivery id and the receiving node reads the message back
  from the store (``resolve``). ``x``: a revocation (:meth:`PostgresFanout.revoke`), the
  body ``{"epoch": n}`` and the user empty for the whole tenant; every node that has a
  stream of the tenant ends those whose token the new epoch revokes.
- **listen**: one dedicated connection (not from the pool). When it drops (PostgreSQL
  restarts, a network cut, ``pg_terminate_backend``) the loop logs it, reconnects with
  exponential backoff and listens again; it never takes the app down. Frames published
  while it was away are **not** replayed live: the inbox is the record, and the app
  reads it on its next open. An idle connection is checked every ``check_interval_s``
  so that a silent network cut is noticed too.
- **channel**: one per store schema (:func:`stream_channel`): ``geopush_stream`` for
  ``public``; two deployments (or test sessions) in one database in different schemas
  never see each other's notices.
- **online**: which users have the app open on *any* node, for the dispatcher's channel
  choice: this node's hub, plus the live rows other nodes keep in ``stream_presence``
  (``presence``, a :class:`~server.channels.pg_presence.StreamPresence` that this
  fan-out starts and stops). When that query fails the answer is this node's hub alone,
  logged (``presence_failed``): a delivery is never held up by presence.

Runs in the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg

from server.channels.inapp import StreamHub
from server.channels.pg_presence import StreamPresence
from server.outages import FailureLog

log = logging.getLogger("geopush.stream")

# Steps that fail over and over while the database is down, logged once (FailureLog).
_NOTIFY = "notifying other nodes (what they miss live is in the inbox)"
_PRESENCE = ("reading who is online on other nodes (channels are chosen by this node's "
             "streams meanwhile)")
_LISTEN = "opening the listener connection (other nodes' frames are not shown live)"

NOTICE_VERSION = "v1"
FRAME = "f"
REFERENCE = "r"
REVOKE = "x"
NOTIFY_MAX_BYTES = 8000
"""PostgreSQL refuses a ``NOTIFY`` payload of this many bytes or more (default build)."""
CHANNEL = "geopush_stream"
_MAX_CHANNEL_BYTES = 63
"""PostgreSQL's identifier limit (NAMEDATALEN - 1): ``pg_notify`` refuses a longer
channel name and ``LISTEN`` would silently truncate it."""
NOTIFY_TIMEOUT_S = 5.0
"""A publish gives up on the notice after this: the sender's own streams already have
the frame, and a send must not hang on an unresponsive database."""

START_WAIT_S = 5.0
"""How long :meth:`PostgresFanout.start` waits for the listener before going on."""

FanoutObserver = Callable[[str], None]
"""Told each fan-out event by name: ``published``, ``published_reference``,
``published_revoke``, ``publish_failed`` (sending side); ``received`` (a notice from
another node), ``revoked`` (streams here ended by a revocation from another node),
``delivered`` (handed to at least one stream here), ``offline`` (no stream here),
``unreadable`` (a notice or reference that cannot be read); ``listener_lost``;
``presence_failed`` (who is online elsewhere could not be read: this node's answer was
used), ``presence_write_failed`` (who is online here could not be written; retried)."""
Resolve = Callable[[str, str, str], Awaitable[Mapping[str, Any] | None]]
"""``(tenant_id, user_id, delivery_id)`` → the stream frame of that inbox message, read
back from the store, or ``None`` when there is none (for notices sent by reference)."""


def stream_channel(schema: str) -> str:
    """The notification channel of a store schema. Pure.

    ``geopush_stream`` for ``public``, ``geopush_stream.<schema>`` otherwise, or a hash
    of the schema where that would pass PostgreSQL's 63-byte limit."""
    if schema == "public":
        return CHANNEL
    name = f"{CHANNEL}.{schema}"
    if len(name.encode()) <= _MAX_CHANNEL_BYTES:
        return name
    return f"{CHANNEL}.{hashlib.sha256(schema.encode()).hexdigest()[:32]}"


@dataclass(frozen=True, slots=True)
class Notice:
    """What one notification says: who published it, for whom, and the frame (``kind``
    ``f``) or the delivery id to read it back by (``r``) — still encoded as ``body``."""

    origin: str
    tenant_id: str
    user_id: str
    kind: str
    body: str

    def frame(self) -> Mapping[str, Any]:
        """The frame of an ``f`` notice. Raises ``ValueError`` when it is not one."""
        frame = json.loads(self.body)
        if not isinstance(frame, dict):
            raise ValueError("the frame of a notice must be a JSON object")
        return frame

    def delivery_id(self) -> str:
        """The delivery id of an ``r`` notice. Raises ``ValueError`` when it is not one."""
        delivery_id = json.loads(self.body)
        if not isinstance(delivery_id, str):
            raise ValueError("the reference of a notice must be a string")
        return delivery_id

    def epoch(self) -> int:
        """The new token epoch of an ``x`` notice. Raises ``ValueError`` when it is not one."""
        body = json.loads(self.body)
        epoch = body.get("epoch") if isinstance(body, dict) else None
        if type(epoch) is not int:
            raise ValueError("the epoch of a revocation must be an integer")
        return epoch


def encode_revocation(origin: str, tenant_id: str, user_id: str | None, epoch: int) -> str:
    """The notification of a revocation (``x``; the user empty for the whole tenant). Pure."""
    return _notice(origin, tenant_id, user_id or "", REVOKE, _json({"epoch": epoch}))


def encode_notice(
    origin: str, tenant_id: str, user_id: str, frame: Mapping[str, Any]
) -> tuple[str, str] | None:
    """``(kind, payload)`` of the notification for ``frame``: kind ``f`` carries the
    frame itself when the whole fits under :data:`NOTIFY_MAX_BYTES`, else kind ``r`` a
    reference to its message's delivery id; ``None`` when neither fits (a frame without
    a delivery id, absurdly long ids). Pure."""
    text = _notice(origin, tenant_id, user_id, FRAME, _json(frame))
    if _fits(text):
        return FRAME, text
    message = frame.get("message")
    delivery_id = message.get("delivery_id") if isinstance(message, Mapping) else None
    if not isinstance(delivery_id, str):
        return None
    text = _notice(origin, tenant_id, user_id, REFERENCE, _json(delivery_id))
    return (REFERENCE, text) if _fits(text) else None


def decode_notice(payload: str) -> Notice:
    """The notice of a payload; only the header is parsed (the body stays text until
    someone needs it). Raises ``ValueError`` for anything else. Pure."""
    head, sep, body = payload.partition("\n")
    fields = json.loads(head) if sep else None
    if not (isinstance(fields, list) and len(fields) == 5
            and all(isinstance(f, str) for f in fields) and fields[0] == NOTICE_VERSION
            and fields[4] in (FRAME, REFERENCE, REVOKE)):
        raise ValueError("not a stream notice")
    return Notice(origin=fields[1], tenant_id=fields[2], user_id=fields[3], kind=fields[4],
                  body=body)


def _notice(origin: str, tenant_id: str, user_id: str, kind: str, body: str) -> str:
    # JSON escapes every newline inside a string, so the first "\n" ends the header.
    return _json([NOTICE_VERSION, origin, tenant_id, user_id, kind]) + "\n" + body


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _fits(text: str) -> bool:
    """Whether PostgreSQL takes ``text`` as a payload: under the limit in UTF-8, and
    encodable at all (a lone surrogate is not; the API refuses those anyway)."""
    if len(text) >= NOTIFY_MAX_BYTES:
        return False
    try:
        return len(text.encode()) < NOTIFY_MAX_BYTES
    except UnicodeEncodeError:
        return False


class PostgresFanout:
    """A :class:`~server.channels.inapp.StreamFanout` over PostgreSQL (see the module
    docstring). ``connect`` opens the dedicated listener connection, ``notify`` sends
    ``pg_notify(channel, payload)`` (on a pool connection), ``resolve`` reads a message
    back for a notice sent by reference. ``node_id`` tells this node's notices from the
    others' (a fresh random one by default: one per app, not per process).
    ``presence``: this node's rows of who is online (its ``node_id`` should be this
    one's), started and stopped with the fan-out; without it :meth:`online` answers for
    this node only.

    Reconnect waits start at ``retry_min_s`` and double per failed attempt up to
    ``retry_max_s``."""

    def __init__(
        self,
        hub: StreamHub,
        *,
        connect: Callable[[], Awaitable[asyncpg.Connection]],
        notify: Callable[[str, str], Awaitable[None]],
        channel: str,
        resolve: Resolve,
        observer: FanoutObserver | None = None,
        node_id: str | None = None,
        retry_min_s: float = 0.5,
        retry_max_s: float = 30.0,
        check_interval_s: float = 30.0,
        presence: StreamPresence | None = None,
    ) -> None:
        self.hub = hub
        self.presence = presence
        self.node_id = node_id or uuid.uuid4().hex
        self.channel = channel
        self._connect = connect
        self._notify = notify
        self._resolve = resolve
        self._observe = observer or (lambda _event: None)
        self._retry_min_s = retry_min_s
        self._retry_max_s = retry_max_s
        self._check_interval_s = check_interval_s
        self._conn: asyncpg.Connection | None = None
        self._listening = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._resolving: set[asyncio.Task[None]] = set()
        self._failures = FailureLog(log, "stream fan-out")

    @property
    def listener_pid(self) -> int | None:
        """The server process id of the listener connection while it listens (operators
        find it in ``pg_stat_activity`` as ``geopush-stream``), else ``None``."""
        conn = self._conn
        return None if conn is None or conn.is_closed() else conn.get_server_pid()

    def state(self) -> str:
        """``listening on <channel>``, or ``reconnecting`` while the listener is down (then
        frames from other nodes do not reach this node's streams live)."""
        if self._listening.is_set():
            return f"listening on {self.channel}"
        return "reconnecting: other nodes' frames do not reach this node's streams live"

    async def wait_listening(self, timeout_s: float) -> None:
        """Until the listener listens (at start-up, after a reconnect). Raises
        ``TimeoutError`` after ``timeout_s``."""
        await asyncio.wait_for(self._listening.wait(), timeout_s)

    async def start(self) -> None:
        """Start the listener loop and give it :data:`START_WAIT_S` to listen, so that a
        node which answers requests also receives the others' frames; a database that
        is slow or down then delays live fan-out, not the app (the loop keeps trying)."""
        if self._task is not None:
            return
        if self.presence is not None:
            self.presence.start()
        self._task = asyncio.create_task(self._listen_forever(),
                                         name="geopush-stream-fanout")
        with contextlib.suppress(TimeoutError):
            await self.wait_listening(START_WAIT_S)

    async def aclose(self) -> None:
        tasks = [*self._resolving, *([self._task] if self._task is not None else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._task = None
        self._resolving.clear()
        if self.presence is not None:
            await self.presence.aclose()

    # -- sending ---------------------------------------------------------------------

    async def publish(self, tenant_id: str, user_id: str, frame: Mapping[str, Any]) -> int:
        live = self.hub.publish(tenant_id, user_id, frame)
        encoded = encode_notice(self.node_id, tenant_id, user_id, frame)
        if encoded is None:
            log.warning("stream fan-out: a frame for %s/%s is too large to notify and has "
                        "no delivery id; only this node's streams got it", tenant_id,
                        user_id)
            self._observe("publish_failed")
            return live
        kind, payload = encoded
        try:
            await asyncio.wait_for(self._notify(self.channel, payload), NOTIFY_TIMEOUT_S)
        except Exception as exc:  # the database's trouble: this node's streams have it
            self._failures.failed(_NOTIFY, exc)
            self._observe("publish_failed")
        else:
            self._failures.succeeded(_NOTIFY)
            self._observe("published" if kind == FRAME else "published_reference")
        return live

    async def revoke(self, tenant_id: str, user_id: str | None, epoch: int) -> int:
        """End the revoked streams here at once, then ``NOTIFY`` every other node (see
        :meth:`~server.channels.inapp.StreamFanout.revoke`)."""
        ended = self.hub.revoke(tenant_id, user_id, epoch)
        payload = encode_revocation(self.node_id, tenant_id, user_id, epoch)
        if not _fits(payload):
            # Ids are at most 256 characters each: this cannot happen with API input.
            log.warning("stream fan-out: a revocation for %s is too large to notify",
                        tenant_id)
            self._observe("publish_failed")
            return ended
        try:
            await asyncio.wait_for(self._notify(self.channel, payload), NOTIFY_TIMEOUT_S)
        except Exception as exc:  # the database's trouble: this node's streams are ended
            log.warning("stream fan-out: notify failed, sockets on other nodes with the "
                        "revoked tokens stay open until the tokens expire: %s", exc)
            self._observe("publish_failed")
        else:
            self._observe("published_revoke")
        return ended

    # -- who is online --------------------------------------------------------------

    async def online(self, tenant_id: str, user_ids: Collection[str]) -> set[str]:
        """This node's hub, plus a live ``stream_presence`` row from any node for the
        users it does not have (one query); the hub's answer alone when that fails."""
        here = {u for u in user_ids if self.hub.is_online(tenant_id, u)}
        elsewhere = set(user_ids) - here
        if self.presence is None or not elsewhere:
            return here
        try:
            online = await self.presence.online(tenant_id, elsewhere)
        except Exception as exc:  # presence is a hint: never hold up a delivery for it
            self._failures.failed(_PRESENCE, exc)
            self._observe("presence_failed")
            return here
        self._failures.succeeded(_PRESENCE)
        return here | online

    # -- receiving -------------------------------------------------------------------

    def _on_notification(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            notice = decode_notice(payload)
        except ValueError:
            log.warning("stream fan-out: ignored an unreadable notice on %s", self.channel)
            self._observe("unreadable")
            return
        if notice.origin == self.node_id:
            return  # published here: publish() already handed it to this node's streams
        self._observe("received")
        if notice.kind == REVOKE:
            self._revoke(notice)
            return
        if not self.hub.is_online(notice.tenant_id, notice.user_id):
            self._observe("offline")
            return
        if notice.kind == FRAME:
            try:
                frame = notice.frame()
            except ValueError:
                self._observe("unreadable")
                return
            self._deliver(notice.tenant_id, notice.user_id, frame)
            return
        task = asyncio.create_task(self._deliver_reference(notice))
        self._resolving.add(task)
        task.add_done_callback(self._resolving.discard)

    async def _deliver_reference(self, notice: Notice) -> None:
        try:
            frame = await self._resolve(notice.tenant_id, notice.user_id,
                                        notice.delivery_id())
        except Exception:  # a store hiccup loses one live frame, never the listener
            log.exception("stream fan-out: cannot read back a message for %s/%s",
                          notice.tenant_id, notice.user_id)
            frame = None
        if frame is None:
            self._observe("unreadable")
            return
        self._deliver(notice.tenant_id, notice.user_id, frame)

    def _revoke(self, notice: Notice) -> None:
        try:
            epoch = notice.epoch()
        except ValueError:
            self._observe("unreadable")
            return
        if self.hub.revoke(notice.tenant_id, notice.user_id or None, epoch):
            self._observe("revoked")

    def _deliver(self, tenant_id: str, user_id: str, frame: Mapping[str, Any]) -> None:
        got = self.hub.publish(tenant_id, user_id, frame)
        self._observe("delivered" if got else "offline")

    # -- the listener connection -----------------------------------------------------

    async def _listen_forever(self) -> None:
        """Connect, listen, watch; on any failure wait and start over. Only
        cancellation ends it."""
        delay_s = self._retry_min_s
        while True:
            try:
                conn = await self._connect()
            except Exception as exc:
                self._failures.failed(_LISTEN, exc)
                await asyncio.sleep(delay_s)
                delay_s = min(delay_s * 2, self._retry_max_s)
                continue
            self._failures.succeeded(_LISTEN)
            try:
                await conn.add_listener(self.channel, self._on_notification)
                self._conn = conn
                self._listening.set()
                log.info("stream fan-out: listening on %s (server pid %d)", self.channel,
                         conn.get_server_pid())
                delay_s = self._retry_min_s
                await self._watch(conn)
                reason = "the connection closed"
            except Exception as exc:
                reason = str(exc) or type(exc).__name__
            finally:
                self._listening.clear()
                self._conn = None
                await _discard(conn)
            log.warning("stream fan-out: listener lost (%s); frames published meanwhile "
                        "are not shown live; reconnecting in %.1f s", reason, delay_s)
            self._observe("listener_lost")
            await asyncio.sleep(delay_s)
            delay_s = min(delay_s * 2, self._retry_max_s)

    async def _watch(self, conn: asyncpg.Connection) -> None:
        """Return when ``conn`` is lost; a query every ``check_interval_s`` catches a
        connection that died without a word (it raises then)."""
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        while not conn.is_closed():
            try:
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
                # cancellation that lands as the wait ends, and aclose() would then hang.
                async with asyncio.timeout(self._check_interval_s):
                    await lost.wait()
            except TimeoutError:
                await conn.execute("SELECT 1", timeout=self._check_interval_s)
            else:
                return


async def _discard(conn: asyncpg.Connection) -> None:
    """Close ``conn`` politely if it is still open, else just let it go."""
    if conn.is_closed():
        return
    try:
        await asyncio.wait_for(conn.close(), 2.0)
    except Exception:
        conn.terminate()
