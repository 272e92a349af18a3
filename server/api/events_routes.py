"""Behaviour in: ``POST /v1/events`` (SDK role), and what the product learns from it:
``GET /v1/users/{id}`` (the profile with learned tags, their provenance and the
features), ``GET``/``PUT /v1/tag-rules`` (the tenant's rules for learned tags).

Events are checked one by one: the good ones are stored (idempotent by
``BehaviourEvent.key()``: a re-posted event is counted in ``duplicates`` and changes
nothing), folded into their users' features, start the behaviour triggers of active
campaigns they match and cancel those they follow up, in one store transaction
committed before the answer — on PostgreSQL shared with the tenant's concurrent
requests (:mod:`server.behaviour_group_commit`). The timer loop fires the triggers when
due (:mod:`server.behaviour_service`). The bad ones are listed in ``rejected`` with
their index and field path.

On a gateway of the partitioned mode the good events go to the stream instead
(:mod:`server.cluster.events`) and the answer comes once JetStream has them: the
partitions' owners store them, so ``stored`` and ``duplicates`` are 0 there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from server.api.context import (
    CORES,
    EVENT_GROUPS,
    EVENT_STREAM,
    json_response,
    now,
    path_id,
    read_json,
    store,
)
from server.api.registry import INGEST, MANAGE, Body, Operation, not_found
from server.api.schemas import RejectedPing
from server.auth import Principal
from server.errors import ApiError, field_path, from_validation_error, validation_details
from server.store.roles.behaviour import BehaviourRecord
from triggers.behaviour.events import MAX_EVENTS_PER_BATCH, MAX_FUTURE_S, BehaviourEvent
from triggers.behaviour.features import UserFeatures, active_hours, split_key
from triggers.behaviour.profile import with_behaviour
from triggers.behaviour.rules import DEFAULT_TAG_RULES, TagRules
from triggers.behaviour.triggers import BEHAVIOUR
from triggers.decisions import Profile

FUTURE_TS = "future_ts"
INVALID_TEXT = "invalid_text"

_BATCH = TypeAdapter(list[BehaviourEvent])


@dataclass(frozen=True, slots=True)
class Screened:
    """The events of a batch that passed, and why the others did not."""

    events: list[BehaviourEvent]
    rejected: list[RejectedPing]


def screen_events(items: Sequence[Any], *, at: float, prefix: str = "events") -> Screened:
    """Validate each item as a :class:`BehaviourEvent`; reject the ones that fail, that
    are dated more than :data:`MAX_FUTURE_S` after ``at``, or hold a NUL character (no
    database stores it). The usual batch, all good, is validated in one call."""
    try:
        candidates: list[tuple[int, BehaviourEvent]] = list(enumerate(_BATCH.validate_python(
            list(items))))
        rejected: list[RejectedPing] = []
    except ValidationError:
        candidates, rejected = _one_by_one(items, prefix)
    good: list[BehaviourEvent] = []
    latest = at + MAX_FUTURE_S
    nul = _may_hold_nul(items)
    for i, event in candidates:
        if event.ts > latest:
            rejected.append(RejectedPing(
                index=i, code=FUTURE_TS, field=field_path(("ts",), (prefix, i)),
                message=f"ts is {event.ts - at:.0f} s in the future (more than "
                        f"{MAX_FUTURE_S:g} s ahead of the server clock)"))
        elif nul and _holds_nul(event):
            rejected.append(RejectedPing(index=i, code=INVALID_TEXT, field=field_path((), (
                prefix, i)), message="a text holds a NUL character, which cannot be stored"))
        else:
            good.append(event)
    rejected.sort(key=lambda r: r.index)
    return Screened(events=good, rejected=rejected)


def _may_hold_nul(items: Sequence[Any]) -> bool:
    """One look at the whole batch (a NUL is rare): False when no text holds one."""
    try:
        return b"\\u0000" in orjson.dumps(items)
    except TypeError:  # orjson.JSONEncodeError: a huge int, a lone surrogate
        return True


def _holds_nul(event: BehaviourEvent) -> bool:
    text = event.model_dump_json()
    return "\\u0000" in text and _nul_in(event.model_dump())


def _nul_in(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_nul_in(k) or _nul_in(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(_nul_in(v) for v in value)
    return False


def _one_by_one(items: Sequence[Any],
                prefix: str) -> tuple[list[tuple[int, BehaviourEvent]], list[RejectedPing]]:
    good: list[tuple[int, BehaviourEvent]] = []
    rejected: list[RejectedPing] = []
    for i, item in enumerate(items):
        try:
            good.append((i, BehaviourEvent.model_validate(item)))
        except ValidationError as exc:
            rejected.append(RejectedPing(index=i, **validation_details(exc, (prefix, i))[0]))
        except TypeError as exc:  # a core validator's type slip (see validate_body)
            rejected.append(RejectedPing(index=i, code="validation_error",
                                         field=field_path((), (prefix, i)), message=str(exc)))
    return good, rejected


# --------------------------------------------------------------------------- /v1/events


class EventsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    events: list[BehaviourEvent] = Field(max_length=MAX_EVENTS_PER_BATCH,
                                         description="at most 1000 events")


class EventsResponse(BaseModel):
    accepted: int = Field(description="events that passed the checks")
    stored: int = Field(description="of those, events stored now (new keys); 0 on a "
                                    "gateway of the partitioned mode (stored by the workers)")
    duplicates: int = Field(description="of those, events stored before (same event_id, "
                                        "or the same event without one): nothing changed")
    rejected: list[RejectedPing]


def _items(body: Any) -> list[Any]:
    if not isinstance(body, dict):
        raise ApiError(422, "validation_error",
                       "the body must be an object {\"events\": [...]}", field=None)
    unknown = sorted(set(body) - {"events"})
    if unknown:
        raise ApiError(422, "validation_error", f"unknown field {unknown[0]!r}",
                       field=unknown[0])
    items = body.get("events")
    if not isinstance(items, list):
        raise ApiError(422, "validation_error", "events must be an array of events",
                       field="events")
    if len(items) > MAX_EVENTS_PER_BATCH:
        raise ApiError(422, "batch_too_large", f"{len(items)} events in one batch; at most "
                       f"{MAX_EVENTS_PER_BATCH}", field="events")
    return items


async def post_events(request: web.Request, principal: Principal) -> web.Response:
    items = _items(await read_json(request, check_whole_body=False))
    at = now(request)
    screened = screen_events(items, at=at)
    stream = request.app.get(EVENT_STREAM)
    if stream is not None:
        await stream.publish(principal.tenant_id, screened.events, now=at)
        return json_response({"accepted": len(screened.events), "stored": 0, "duplicates": 0,
                              "rejected": [r.model_dump() for r in screened.rejected]})
    core = await request.app[CORES].get(store(request), principal.tenant_id)
    records = [BehaviourRecord.of(e, at) for e in screened.events]
    campaigns = core.campaigns.active_of_kind(BEHAVIOUR)
    groups = request.app.get(EVENT_GROUPS)
    if groups is None:  # the embedded store: a transaction costs nothing to share
        stored = await store(request).ingest_behaviour(principal.tenant_id, records,
                                                       campaigns=campaigns, now=at)
    else:
        stored = await groups.ingest(principal.tenant_id, records, campaigns=campaigns,
                                     now=at)
    return json_response({
        "accepted": len(screened.events), "stored": len(stored),
        "duplicates": len(screened.events) - len(stored),
        "rejected": [r.model_dump() for r in screened.rejected],
    })


# --------------------------------------------------------------------------- users


def features_json(features: UserFeatures, now_s: float) -> dict[str, Any]:
    """The features as ``GET /v1/users/{id}`` shows them: counts per kind and category
    over 7, 30 and 90 days with the latest event, the viewed-not-bought items, events
    per UTC hour."""
    counts = []
    for key, counter in sorted(features.counters.items()):
        kind, category = split_key(key)
        counts.append({
            "kind": kind, "category": category or None, "last_at": counter[0],
            **{f"last_{d}_days": features.count(kind, (category,), now=now_s,
                                               within_days=d)[0] for d in (7, 30, 90)}})
    return {
        "events": features.events, "last_at": features.last_at, "counts": counts,
        "viewed_not_bought": [{"id": v.id, "name": v.name, "category": v.category,
                               "price": v.price, "currency": v.currency,
                               "viewed_at": v.viewed_at} for v in features.viewed_items],
        "active_hours_utc": active_hours(features),
    }


async def tag_rules_of(request: web.Request, tenant_id: str) -> TagRules:
    return await store(request).get_tag_rules(tenant_id) or DEFAULT_TAG_RULES


async def get_user(request: web.Request, principal: Principal) -> web.Response:
    uid = path_id(request)
    tenant = principal.tenant_id
    profile = await store(request).get_profile(tenant, uid)
    features = await store(request).get_features(tenant, uid)
    if profile is None and features is None:
        raise not_found("user", uid)
    at = now(request)
    shown = with_behaviour(profile or Profile(user_id=uid), features,
                           await tag_rules_of(request, tenant), at)
    return json_response({
        **shown.model_dump(mode="json"), "has_profile": profile is not None,
        "behaviour": None if features is None else features_json(features, at)})


# --------------------------------------------------------------------------- tag rules


async def get_tag_rules(request: web.Request, principal: Principal) -> web.Response:
    stored = await store(request).get_tag_rules(principal.tenant_id)
    rules = stored or DEFAULT_TAG_RULES
    return json_response({**rules.model_dump(mode="json"), "default": stored is None})


async def put_tag_rules(request: web.Request, principal: Principal) -> web.Response:
    body = await read_json(request)
    try:
        rules = TagRules.model_validate(body)
    except ValidationError as exc:
        raise from_validation_error(exc) from exc
    await store(request).put_tag_rules(principal.tenant_id, rules)
    return json_response({**rules.model_dump(mode="json"), "default": False})


_USER_VIEW = {"type": "object", "description": "the profile (learned_tags evaluated now, "
              "each with its reason) with has_profile and behaviour (counts per kind and "
              "category over 7/30/90 days, viewed_not_bought, active_hours_utc)",
              "additionalProperties": True}

OPERATIONS = [
    Operation(
        "POST", "/v1/events", "postEvents", "Post a batch of behaviour events", "ingest",
        post_events, INGEST,
        body=Body(EventsRequest, description="at most 1000 events; gzip (Content-Encoding) ok"),
        responses={200: EventsResponse}, errors=(400, 413, 422),
        body_limit="max_pings_body_bytes",
        description="Each event is checked on its own: the good ones are stored and "
                    "update their user's profile features, the bad ones are listed in "
                    "`rejected` with their index. Idempotent: an event posted again (same "
                    "event_id, or the same event without one) is counted in `duplicates`.",
    ),
    Operation("GET", "/v1/users/{id}", "getUser",
              "A user's profile with learned tags, their provenance, and behaviour features",
              "users", get_user, MANAGE, responses={200: _USER_VIEW}, errors=(404, 422)),
    Operation("GET", "/v1/tag-rules", "getTagRules", "The tenant's rules for learned tags",
              "users", get_tag_rules, MANAGE, responses={200: TagRules},
              description="`default` is true while the tenant has put none."),
    Operation("PUT", "/v1/tag-rules", "putTagRules", "Replace the rules for learned tags",
              "users", put_tag_rules, MANAGE, body=Body(TagRules),
              responses={200: TagRules}, errors=(400, 413, 422)),
]
