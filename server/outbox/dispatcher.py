"""The outbox dispatcher: due deliveries out through the channels, outcomes back in.

A round, per tenant:

1. **Settle TTLs** (:meth:`OutboxStore.expire_deliveries`): unclaimed offers past their
   ``expires_at`` become ``expired`` and are never sent; sent offers whose TTL passed
   with no reaction get ``ignored`` feedback, which extends the user's ignored streak
   (the fatigue rule).
2. **Claim** up to ``batch`` due rows (:meth:`OutboxStore.claim_deliveries`): PostgreSQL
   takes them with ``SELECT … FOR UPDATE SKIP LOCKED`` and stamps ``claimed_until =
   now + lease_s`` and a claim id, so any number of dispatchers — tasks of one node or
   other nodes — each get different rows; the memory store does the same in one
   synchronous step. A dispatcher killed mid-send leaves its rows claimed until the
   lease runs out; then anyone claims them again and sends again. The receiving side
   drops the duplicate by the message's idempotency key (every channel carries it:
   webhook header, MQTT property and payload, push collapse ids, Message-ID).
3. **Send** each claimed row (up to ``concurrency`` at once): pick the channel at send
   time (:func:`~server.channels.select.select_channel`: the in-app stream while the
   app is open — on any node, asked once per batch of the registry's fan-out
   (:meth:`~server.channels.inapp.StreamFanout.online`) — else push, else the
   campaign's other channels), build the recipient
   from the user's ``contacts`` and the tenant's channel settings, check the TTL once
   more, send, and map the result:

   ===================  ===================================================
   ``Delivered``         ``sent`` (with the channel used and its message id)
   ``Retry``             ``failed`` with ``next_attempt_at`` = now + backoff
                         (exponential, jittered, never before Retry-After);
                         ``dead`` once ``max_attempts`` sends are used up, and
                         ``expired`` when the next try would come after the TTL
   ``Failed`` permanent  ``dead`` with the reason (``expired`` → ``expired``)
   ``Failed`` transient  like ``Retry`` (our config or credentials: alert)
   ``TokenInvalid``      the address is removed from the profile; ``dead``
   ===================  ===================================================

4. **Complete** the round's rows in one write (:meth:`OutboxStore.complete_deliveries`),
   only where the claim is still ours — a dispatcher that outlived its lease cannot
   overwrite the outcome of the one that took over.

Runs in the event loop. One bad row, tenant or round is logged and skipped; only
cancellation ends :meth:`Dispatcher.run`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from server.channels.base import (
    INBOX,
    SMS,
    WEBHOOK,
    Delivered,
    Failed,
    MessageData,
    OutboundMessage,
    QuietHours,
    Recipient,
    Retry,
    SendResult,
    TokenInvalid,
    WebhookTarget,
)
from server.channels.select import select_channel
from server.outages import FailureLog
from server.outbox import DispatchStore
from server.outbox.backoff import Backoff
from server.outbox.channels import ChannelRegistry, TenantChannels
from server.outbox.metrics import OutboxMetrics
from server.store.base import DeliveryOutcome, DeliveryRecord, DeliveryStatus
from triggers.decisions import Campaign, Profile

log = logging.getLogger("geopush.outbox")

DEFAULT_LEASE_S = 60.0
"""How long a claim keeps other dispatchers away: well above the channels' 10 s send
timeouts times one retry, so a live dispatcher always finishes inside its lease."""
DEFAULT_BATCH = 100
DEFAULT_CONCURRENCY = 32
"""Sends in flight per dispatcher: enough to hide a webhook's round trip, few enough
not to flood one tenant's endpoint."""


@dataclass(slots=True)
class RoundResult:
    """What one :meth:`Dispatcher.run_once` did (for tests and the loop's pacing)."""

    claimed: int = 0
    outcomes: list[DeliveryOutcome] = field(default_factory=list)
    expired: int = 0
    ignored: int = 0

    def count(self, status: DeliveryStatus) -> int:
        return sum(1 for o in self.outcomes if o.status is status)


class Dispatcher:
    """One outbox worker (see the module docstring). Give each its own instance; they
    may share the store, the channel registry and the metrics."""

    def __init__(
        self,
        store: DispatchStore,
        registry: ChannelRegistry,
        *,
        clock: Callable[[], float],
        metrics: OutboxMetrics | None = None,
        backoff: Backoff | None = None,
        rng: random.Random | None = None,
        lease_s: float = DEFAULT_LEASE_S,
        batch: int = DEFAULT_BATCH,
        concurrency: int = DEFAULT_CONCURRENCY,
        name: str | None = None,
    ) -> None:
        self._store = store
        self._registry = registry
        self._clock = clock
        self._metrics = metrics
        self._backoff = backoff or Backoff()
        self._rng = rng or random.Random()
        self._lease_s = lease_s
        self._batch = batch
        self._limit = asyncio.Semaphore(concurrency)
        self.name = name or f"dispatcher-{uuid.uuid4().hex[:8]}"
        self._wake = asyncio.Event()
        self._failures = FailureLog(log, self.name)

    def wake(self) -> None:
        """New deliveries exist: start the next round now instead of after the poll."""
        self._wake.set()

    async def run(self, *, interval_s: float) -> None:
        """Rounds until cancelled; sleeps ``interval_s`` (or until :meth:`wake`) after a
        round that found nothing to claim."""
        while True:
            try:
                busy = (await self.run_once()).claimed > 0
            except Exception as exc:
                # Once while it lasts: with the database down, every round fails.
                self._failures.failed("listing tenants", exc)
                if self._metrics is not None:
                    self._metrics.errors.inc()
                busy = False
            else:
                self._failures.succeeded("listing tenants")
            if not busy:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), interval_s)
                self._wake.clear()

    async def run_once(self, tenant_ids: Sequence[str] | None = None) -> RoundResult:
        """One round over every tenant (or ``tenant_ids``); a failing tenant is logged
        and skipped."""
        if tenant_ids is None:
            tenant_ids = [t.tenant_id for t in await self._store.list_tenants()]
        total = RoundResult()
        for tenant_id in tenant_ids:
            step = f"tenant {tenant_id}"
            try:
                result = await self._tenant_round(tenant_id)
            except Exception as exc:
                self._failures.failed(step, exc)
                if self._metrics is not None:
                    self._metrics.errors.inc()
                continue
            self._failures.succeeded(step)
            total.claimed += result.claimed
            total.outcomes.extend(result.outcomes)
            total.expired += result.expired
            total.ignored += result.ignored
        return total

    # -- one tenant ------------------------------------------------------------------

    async def _tenant_round(self, tenant_id: str) -> RoundResult:
        store, now = self._store, self._clock()
        sweep = await store.expire_deliveries(tenant_id, now=now, limit=self._batch)
        if self._metrics is not None:
            for row in sweep.expired:
                self._metrics.expired.labels(channel=row.channel).inc()
            for row in sweep.ignored:
                self._metrics.ignored.labels(channel=row.channel).inc()
        result = RoundResult(expired=len(sweep.expired), ignored=len(sweep.ignored))
        claim = f"{self.name}:{uuid.uuid4().hex}"
        rows = await store.claim_deliveries(tenant_id, now=now, limit=self._batch,
                                            lease_s=self._lease_s, claim=claim)
        result.claimed = len(rows)
        if not rows:
            return result
        profiles = await store.get_profiles(tenant_id, [r.user_id for r in rows])
        channels = self._registry.for_settings(
            tenant_id, await store.get_channel_config(tenant_id))
        campaigns = {cid: await store.get_campaign(tenant_id, cid)
                     for cid in {r.campaign_id for r in rows}}
        online = await self._registry.fanout.online(tenant_id, {r.user_id for r in rows})
        texts = [r for r in rows if _may_text(r, campaigns[r.campaign_id])]
        quiet = await _quiet_hours_of(store, tenant_id, texts, profiles) if texts else {}

        async def one(row: DeliveryRecord) -> DeliveryOutcome:
            async with self._limit:
                try:
                    return await self._deliver(tenant_id, row, profiles.get(row.user_id),
                                               campaigns.get(row.campaign_id), channels,
                                               online=row.user_id in online,
                                               quiet_hours=quiet.get(row.delivery_id))
                except Exception as exc:  # our bug or the store's: retry it later
                    log.exception("%s: delivery %s failed unexpectedly", self.name,
                                  row.delivery_id)
                    return self._retry(row, row.channel,
                                       Retry(f"internal error: {type(exc).__name__}"))

        result.outcomes = list(await asyncio.gather(*(one(r) for r in rows)))
        await store.complete_deliveries(tenant_id, claim, result.outcomes, now=self._clock())
        return result

    async def _deliver(
        self,
        tenant_id: str,
        row: DeliveryRecord,
        profile: Profile | None,
        campaign: Campaign | None,
        tenant: TenantChannels,
        *,
        online: bool,
        quiet_hours: QuietHours | None = None,
    ) -> DeliveryOutcome:
        """``online``: the user has a live in-app stream on some node; ``quiet_hours``:
        the tenant's, where the user is (for the channels that check them at send time)."""
        profile = profile or Profile(user_id=row.user_id)
        wanted = campaign.channels if campaign is not None else (row.channel,)
        if profile.channels is not None:
            wanted = tuple(c for c in wanted if c in profile.channels)
        summary = _summary(profile, tenant)
        name = select_channel(wanted, summary, online=online,
                              opt_outs=profile.opt_outs, configured=tenant.configured)
        if name is None:
            return self._dead(row, row.channel, "no_channel",
                              "no channel left: the user opted out, has no address, or "
                              "the tenant has none of the campaign's channels set up")
        if row.expires_at <= self._clock():
            return self._expired(row, name)
        channel = tenant.channels[name]
        results: list[tuple[Recipient, SendResult]] = []
        for recipient in _recipients(name, profile, tenant):
            message = _message(tenant_id, row, recipient, campaign, quiet_hours)
            results.append((recipient, await channel.send(message)))
        removed = 0
        for recipient, res in results:
            if isinstance(res, TokenInvalid):
                address = _address(name, recipient)
                if address and await self._store.remove_contact(tenant_id, row.user_id,
                                                                name, address):
                    removed += 1
        if removed and self._metrics is not None:
            self._metrics.tokens_removed.labels(channel=name).inc(removed)
        return self._outcome(row, name, [res for _, res in results])

    # -- outcomes --------------------------------------------------------------------

    def _outcome(self, row: DeliveryRecord, name: str,
                 results: list[SendResult]) -> DeliveryOutcome:
        """One delivery's fate from its sends (one per device token): delivered to any
        device is delivered; else a transient failure is retried; else it is dead."""
        delivered = [r for r in results if isinstance(r, Delivered)]
        if delivered:
            if self._metrics is not None:
                self._metrics.sent.labels(channel=name).inc()
                self._metrics.lag_seconds.labels(channel=name).observe(
                    max(0.0, self._clock() - row.created_at))
            return DeliveryOutcome(row.delivery_id, DeliveryStatus.SENT, channel=name,
                                   provider_id=delivered[0].provider_id)
        transient = [r for r in results if isinstance(r, Retry)
                     or (isinstance(r, Failed) and not r.permanent)]
        if transient:
            return self._retry(row, name, transient[0])
        failed = [r for r in results if isinstance(r, Failed)]
        if any(r.reason == "expired" for r in failed):
            return self._expired(row, name)
        if failed:
            return self._dead(row, name, "failed", failed[0].reason)
        invalid = [r for r in results if isinstance(r, TokenInvalid)]
        if invalid:
            return self._dead(row, name, "token_invalid",
                              f"token_invalid: {invalid[0].reason}")
        return self._dead(row, name, "no_channel", f"the user has no {name} address")

    def _retry(self, row: DeliveryRecord, name: str, res: Retry | Failed) -> DeliveryOutcome:
        after = res.after_s if isinstance(res, Retry) else None
        if self._backoff.exhausted(row.attempts):
            return self._dead(row, name, "attempts",
                              f"gave up after {row.attempts} attempts: {res.reason}")
        at = self._clock() + self._backoff.delay_s(row.attempts, self._rng,
                                                   retry_after_s=after)
        if at >= row.expires_at:
            return self._expired(row, name, res.reason)
        if self._metrics is not None:
            self._metrics.retried.labels(channel=name).inc()
        return DeliveryOutcome(row.delivery_id, DeliveryStatus.FAILED, channel=name,
                               next_attempt_at=at, last_error=res.reason)

    def _dead(self, row: DeliveryRecord, name: str, cause: str, reason: str) -> DeliveryOutcome:
        if self._metrics is not None:
            self._metrics.dead.labels(channel=name, cause=cause).inc()
        return DeliveryOutcome(row.delivery_id, DeliveryStatus.DEAD, channel=name,
                               last_error=reason)

    def _expired(self, row: DeliveryRecord, name: str,
                 previous: str | None = None) -> DeliveryOutcome:
        if self._metrics is not None:
            self._metrics.expired.labels(channel=name).inc()
        reason = "expired: the offer's TTL passed before it could be delivered"
        return DeliveryOutcome(row.delivery_id, DeliveryStatus.EXPIRED, channel=name,
                               last_error=reason if previous is None
                               else f"{reason} (last failure: {previous})")


# --------------------------------------------------------------------------- recipients


def _may_text(row: DeliveryRecord, campaign: Campaign | None) -> bool:
    """Whether the delivery may go out as an SMS (the campaign lists the channel)."""
    return SMS in (campaign.channels if campaign is not None else (row.channel,))


async def _quiet_hours_of(
    store: DispatchStore, tenant_id: str, rows: Sequence[DeliveryRecord],
    profiles: Mapping[str, Profile],
) -> dict[str, QuietHours]:
    """The tenant's quiet hours for each of ``rows`` (the deliveries that may go out as
    SMS, the channel that checks them at send time), in the zone the decision used: the
    user's, else the venue's, else the tenant's default. Empty when it has none."""
    policy = (await store.get_policy(tenant_id)).policy
    if policy.quiet_hours is None:
        return {}
    zones: dict[str, str | None] = {}
    found: dict[str, QuietHours] = {}
    for row in rows:
        profile = profiles.get(row.user_id)
        tz = profile.attributes.timezone if profile is not None else None
        if tz is None:
            if row.venue_id not in zones:
                venue = await store.get_venue(tenant_id, row.venue_id)
                zones[row.venue_id] = venue.timezone if venue is not None else None
            tz = zones[row.venue_id]
        found[row.delivery_id] = QuietHours(policy.quiet_hours, tz or policy.default_timezone)
    return found


def _webhook(tenant: TenantChannels) -> WebhookTarget | None:
    w = tenant.settings.webhook
    return None if w is None else WebhookTarget(w.url, w.secret, w.previous_secret)


def _summary(profile: Profile, tenant: TenantChannels) -> Recipient:
    """One recipient with an address per channel, for choosing the channel."""
    c = profile.contacts
    return Recipient(
        fcm_token=next(iter(c.tokens("fcm")), None),
        apns_token=next(iter(c.tokens("apns")), None),
        phone=c.phone, email=c.email, mqtt_topic=c.mqtt_topic, webhook=_webhook(tenant))


def _recipients(name: str, profile: Profile, tenant: TenantChannels) -> list[Recipient]:
    """One recipient per address the message goes to on channel ``name``: every push
    token of the platform; the one email, phone, topic or webhook otherwise."""
    c = profile.contacts
    if name == "fcm":
        return [Recipient(fcm_token=token) for token in c.tokens("fcm")]
    if name == "apns":
        return [Recipient(apns_token=token) for token in c.tokens("apns")]
    if name == "email":
        return [Recipient(email=c.email)] if c.email else []
    if name == "sms":
        return [Recipient(phone=c.phone)] if c.phone else []
    if name == WEBHOOK:
        target = _webhook(tenant)
        return [Recipient(webhook=target)] if target is not None else []
    if name == INBOX:
        return [Recipient()]
    return [Recipient(mqtt_topic=c.mqtt_topic)]


def _address(name: str, recipient: Recipient) -> str | None:
    return {"fcm": recipient.fcm_token, "apns": recipient.apns_token,
            "email": recipient.email, "sms": recipient.phone}.get(name)


async def inbox_message(
    store: DispatchStore, tenant_id: str, delivery_id: str
) -> OutboundMessage | None:
    """The in-app message of a delivery as the dispatcher builds it (same payload, from
    the row and its campaign as stored now), or ``None`` when there is no such delivery.
    Another node's stream fan-out reads a message back with it when the frame was too
    large to travel in a notification."""
    row = await store.get_delivery(tenant_id, delivery_id)
    if row is None:
        return None
    campaign = await store.get_campaign(tenant_id, row.campaign_id)
    return _message(tenant_id, row, Recipient(), campaign)


def _message(tenant_id: str, row: DeliveryRecord, recipient: Recipient,
             campaign: Campaign | None,
             quiet_hours: QuietHours | None = None) -> OutboundMessage:
    extra = {} if campaign is None else {
        k: str(v) for k, v in campaign.offer.items() if v is not None}
    return OutboundMessage(
        delivery_id=row.delivery_id, idempotency_key=row.idempotency_key,
        tenant_id=tenant_id, user_id=row.user_id, title=row.title, body=row.body,
        data=MessageData(campaign_id=row.campaign_id, variant_id=row.variant_id,
                         venue_id=row.venue_id, event=row.event,
                         expires_at=row.expires_at, extra=extra),
        recipient=recipient, quiet_hours=quiet_hours, rich=row.rich)
