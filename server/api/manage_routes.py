"""Users, campaigns, policy and keys.

- ``PUT/PATCH/DELETE /v1/users/{id}`` and ``GET /v1/users/{id}/decisions``;
- ``POST /v1/campaigns``, ``GET /v1/campaigns``, ``GET/PUT/DELETE /v1/campaigns/{id}``,
  ``POST /v1/campaigns/{id}/activate`` / ``pause``, ``GET /v1/campaigns/{id}/stats``;
- ``GET/PUT /v1/policy``; ``POST /v1/keys``.

Every body is a core model validated with ``model_validate``; a failure answers 422
with the field path (``variants[1].weight``).
"""

from __future__ import annotations

import asyncio
import math
import secrets
from typing import Annotated, Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from server.api.context import (
    FANOUT,
    SETTINGS,
    catalog_changed,
    json_response,
    path_id,
    read_json,
    store,
)
from server.api.pages import decode_cursor, encode_cursor, page_limit, page_params
from server.api.registry import ADMIN, MANAGE, Body, Operation, Param, not_found
from server.api.schemas import (
    CampaignIn,
    CampaignList,
    DecisionsResponse,
    Deleted,
    KeyCreate,
    KeyCreated,
    ProfileIn,
)
from server.api.stats import CampaignStats, campaign_stats_doc
from server.auth import Principal, generate_key, hash_key, new_key_id
from server.channels.mqtt_topics import TopicError, check_topic
from server.errors import ApiError, validate_body
from server.store.base import PolicyRecord, decision_page_key
from server.store.errors import NotFoundError
from triggers.decisions import (
    Campaign,
    CampaignStatus,
    ContentEngine,
    Profile,
    TemplateProblem,
    TenantPolicy,
    preview_campaign,
)
from triggers.errors import TriggerError
from triggers.presence_policy import PresencePolicy

# --------------------------------------------------------------------------- users


def _profile_json(profile: Profile) -> dict[str, Any]:
    out: dict[str, Any] = profile.model_dump(mode="json")
    return out


def _check_mqtt_topic(tenant_id: str, body: Any) -> None:
    """A user's own MQTT topic must lie in the tenant's namespace (the MQTT channel
    refuses to publish anywhere else); 422 ``invalid_mqtt_topic`` otherwise."""
    contacts = body.get("contacts") if isinstance(body, dict) else None
    topic = contacts.get("mqtt_topic") if isinstance(contacts, dict) else None
    if not isinstance(topic, str):
        return
    try:
        check_topic(topic, tenant_id)
    except TopicError as exc:
        raise ApiError(422, "invalid_mqtt_topic", str(exc),
                       field="contacts.mqtt_topic") from exc


async def put_user(request: web.Request, principal: Principal) -> web.Response:
    uid = path_id(request)
    body = await read_json(request)
    if isinstance(body, dict) and body.get("user_id") not in (None, "", uid):
        raise ApiError(422, "conflicting_id", f"user_id is {body['user_id']!r} but the path "
                                              f"names {uid!r}", field="user_id")
    validate_body(ProfileIn, body)
    profile = validate_body(Profile, {**body, "user_id": uid})
    _check_mqtt_topic(principal.tenant_id, body)
    created = await store(request).put_profile(principal.tenant_id, profile)
    return json_response(_profile_json(profile), status=201 if created else 200)


async def patch_user(request: web.Request, principal: Principal) -> web.Response:
    uid = path_id(request)
    patch = await read_json(request)
    if not isinstance(patch, dict):
        raise ApiError(422, "validation_error", "a merge patch is a JSON object", field=None)
    if patch.get("user_id") not in (None, uid):
        raise ApiError(422, "conflicting_id", "user_id cannot be changed", field="user_id")
    patch.pop("user_id", None)
    _check_mqtt_topic(principal.tenant_id, patch)
    try:
        profile = await store(request).patch_profile(principal.tenant_id, uid, patch)
    except NotFoundError as exc:
        raise not_found("user", uid) from exc
    except TypeError as exc:  # see validate_body: a core validator's type slip
        raise ApiError(422, "validation_error",
                       f"a value has the wrong type (expected text): {exc}") from exc
    return json_response(_profile_json(profile))


async def delete_user(request: web.Request, principal: Principal) -> web.Response:
    uid = path_id(request)
    erased = await store(request).erase_user(principal.tenant_id, uid)
    # The erasure revoked the user's stream tokens; their open sockets close too.
    _, user_epoch = await store(request).stream_token_epochs(principal.tenant_id, uid)
    await request.app[FANOUT].revoke(principal.tenant_id, uid, user_epoch)
    return json_response({"id": uid, "erased": erased})


async def get_decisions(request: web.Request, principal: Principal) -> web.Response:
    uid = path_id(request)
    limit = page_limit(request, default=50, maximum=500)
    cursor = decode_cursor(request, "decisions", (float, float, str))
    before_text = request.query.get("before")
    before = None
    if before_text:
        try:
            before = float(before_text)
        except ValueError:
            before = math.nan
        if not math.isfinite(before):
            raise ApiError(422, "validation_error", "before must be epoch seconds",
                           field="before")
    records = await store(request).list_decisions(
        principal.tenant_id, uid, limit=limit + 1, before=before,
        after_key=None if cursor is None else (cursor[0], cursor[1], cursor[2]))
    page = records[:limit]
    following = (encode_cursor("decisions", decision_page_key(page[-1]))
                 if len(records) > limit else None)
    return json_response(DecisionsResponse(user_id=uid, decisions=[r.decision for r in page],
                                           next_cursor=following))


# --------------------------------------------------------------------------- campaigns


TEMPLATE_CODES = {"syntax": "template_syntax_error", "limit": "template_limit_exceeded",
                  "content": "rich_content_error"}
"""Error codes of a campaign whose template does not parse, or goes past the render
limits for a sample user (see ``triggers.decisions.preview``)."""


async def _campaign(request: web.Request, body: Any, campaign_id: str) -> Campaign:
    """The campaign of a POST / PUT body: validated, and its templates tried (off the
    loop) for sample users; 422 naming the field (``variants[0].body``) otherwise."""
    if not isinstance(body, dict):
        raise ApiError(422, "validation_error", "a campaign is a JSON object", field=None)
    if body.get("id") not in (None, "", campaign_id):
        raise ApiError(422, "conflicting_id", f"id is {body['id']!r} but the path names "
                                              f"{campaign_id!r}", field="id")
    parsed = validate_body(CampaignIn, body)
    campaign = validate_body(Campaign, {**parsed.model_dump(), "id": campaign_id})
    engine = ContentEngine(request.app[SETTINGS].render_limits())
    problems = await asyncio.to_thread(preview_campaign, engine, campaign)
    if problems:
        raise _template_error(problems)
    return campaign


def _template_error(problems: list[TemplateProblem]) -> ApiError:
    first = problems[0]
    what = {"syntax": "does not parse", "content": "is refused"}.get(
        first.kind, "goes past the render limits")
    return ApiError(
        422, TEMPLATE_CODES[first.kind], f"{first.field} {what}: {first.message}",
        field=first.field,
        details=[{"field": p.field, "code": TEMPLATE_CODES[p.kind], "message": p.message}
                 for p in problems])


async def create_campaign(request: web.Request, principal: Principal) -> web.Response:
    body = await read_json(request)
    given = body.get("id") if isinstance(body, dict) else None
    if given not in (None, ""):
        validate_body(CampaignIn, body)  # id format errors name the field
        campaign_id = str(given)
    else:
        campaign_id = "c_" + secrets.token_hex(8)
    campaign = await _campaign(request, body, campaign_id)
    await store(request).create_campaign(principal.tenant_id, campaign)
    await catalog_changed(request, principal.tenant_id)
    return json_response(campaign, status=201)


async def list_campaigns(request: web.Request, principal: Principal) -> web.Response:
    status_text = request.query.get("status") or None
    status = None
    if status_text is not None:
        try:
            status = CampaignStatus(status_text)
        except ValueError:
            raise ApiError(422, "validation_error", f"status must be one of "
                           f"{[s.value for s in CampaignStatus]}", field="status") from None
    cursor = decode_cursor(request, "campaigns", (str,))
    limit = page_limit(request, default=100, maximum=500)
    campaigns = await store(request).list_campaigns(
        principal.tenant_id, status=status, after=None if cursor is None else cursor[0],
        limit=limit + 1)
    page = campaigns[:limit]
    following = encode_cursor("campaigns", [page[-1].id]) if len(campaigns) > limit else None
    return json_response(CampaignList(campaigns=page, next_cursor=following))


async def get_campaign(request: web.Request, principal: Principal) -> web.Response:
    cid = path_id(request)
    campaign = await store(request).get_campaign(principal.tenant_id, cid)
    if campaign is None:
        raise not_found("campaign", cid)
    return json_response(campaign)


async def put_campaign(request: web.Request, principal: Principal) -> web.Response:
    cid = path_id(request)
    campaign = await _campaign(request, await read_json(request), cid)
    created = await store(request).put_campaign(principal.tenant_id, campaign)
    await catalog_changed(request, principal.tenant_id)
    return json_response(campaign, status=201 if created else 200)


async def delete_campaign(request: web.Request, principal: Principal) -> web.Response:
    cid = path_id(request)
    if not await store(request).delete_campaign(principal.tenant_id, cid):
        raise not_found("campaign", cid)
    await catalog_changed(request, principal.tenant_id)
    return json_response(Deleted(id=cid))


async def _set_status(
    request: web.Request, principal: Principal, status: CampaignStatus
) -> web.Response:
    cid = path_id(request)
    current = await store(request).get_campaign(principal.tenant_id, cid)
    if current is None:
        raise not_found("campaign", cid)
    if current.status is CampaignStatus.ENDED:
        raise ApiError(409, "campaign_ended", f"campaign {cid!r} has ended; create a new one")
    updated = await store(request).set_campaign_status(principal.tenant_id, cid, status)
    if updated is None:
        raise not_found("campaign", cid)
    await catalog_changed(request, principal.tenant_id)
    return json_response(updated)


async def activate_campaign(request: web.Request, principal: Principal) -> web.Response:
    return await _set_status(request, principal, CampaignStatus.ACTIVE)


async def pause_campaign(request: web.Request, principal: Principal) -> web.Response:
    return await _set_status(request, principal, CampaignStatus.PAUSED)


async def campaign_stats(request: web.Request, principal: Principal) -> web.Response:
    cid = path_id(request)
    if await store(request).get_campaign(principal.tenant_id, cid) is None:
        raise not_found("campaign", cid)
    aggregate = await store(request).campaign_stats(principal.tenant_id, cid)
    return json_response(campaign_stats_doc(aggregate))


# --------------------------------------------------------------------------- policy

_PRESENCE_FIELDS = tuple(
    name for name in PresencePolicy.__dataclass_fields__ if name != "venues")


class PolicyIn(BaseModel):
    """The tenant policy: decision rules and presence thresholds (see
    ``triggers.presence_policy.PresencePolicy`` for names, units and defaults).

    Exactly what ``GET /v1/policy`` answers is a valid body: ``tenant_id`` may come
    along (it must then name the caller's tenant), so a client edits the document it
    read and puts it back."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    tenant_id: str | None = Field(
        default=None, max_length=256,
        description="optional; when given, the tenant of the key (as GET answers it): a "
                    "policy cannot be put into another tenant")
    policy: TenantPolicy = TenantPolicy()
    presence: dict[Annotated[str, Field(max_length=64)], float | int] = Field(
        default_factory=dict, max_length=len(_PRESENCE_FIELDS),
        description="presence overrides by name: " + ", ".join(_PRESENCE_FIELDS))


class PolicyOut(PolicyIn):
    tenant_id: str


def _policy_json(tenant_id: str, record: PolicyRecord) -> PolicyOut:
    return PolicyOut(tenant_id=tenant_id, policy=record.policy,
                     presence=dict(record.presence))


async def get_policy(request: web.Request, principal: Principal) -> web.Response:
    record = await store(request).get_policy(principal.tenant_id)
    return json_response(_policy_json(principal.tenant_id, record))


async def put_policy(request: web.Request, principal: Principal) -> web.Response:
    parsed = validate_body(PolicyIn, await read_json(request))
    if parsed.tenant_id not in (None, principal.tenant_id):
        raise ApiError(422, "conflicting_id", f"tenant_id is {parsed.tenant_id!r} but this "
                       f"key belongs to {principal.tenant_id!r}", field="tenant_id")
    presence: dict[str, float | int] = {}
    for name, value in parsed.presence.items():
        if name not in _PRESENCE_FIELDS:
            raise ApiError(422, "validation_error", f"unknown presence setting {name!r}; "
                           f"known: {', '.join(_PRESENCE_FIELDS)}", field=f"presence.{name}")
        integral = PresencePolicy.__dataclass_fields__[name].type in ("int", int)
        if integral and value != int(value):
            raise ApiError(422, "validation_error", f"{name} must be a whole number",
                           field=f"presence.{name}")
        presence[name] = int(value) if integral else float(value)
    checked: dict[str, Any] = dict(presence)  # PresencePolicy checks each value's range
    try:
        PresencePolicy(**checked).check_consistent()
    except TriggerError as exc:
        # The setting the message is about, else one it names beside it.
        culprit = (next((n for n in presence if str(exc).startswith(n)), None)
                   or next((n for n in presence if n in str(exc)), None))
        raise ApiError(422, "validation_error", str(exc),
                       field=f"presence.{culprit}" if culprit else "presence") from exc
    record = PolicyRecord(policy=parsed.policy, presence=presence)
    await store(request).put_policy(principal.tenant_id, record)
    await catalog_changed(request, principal.tenant_id)
    return json_response(_policy_json(principal.tenant_id, record))


# --------------------------------------------------------------------------- keys


async def create_key(request: web.Request, principal: Principal) -> web.Response:
    body = validate_body(KeyCreate, await read_json(request))
    key = generate_key()
    record = await store(request).create_key(
        principal.tenant_id, key_id=new_key_id(), key_hash=hash_key(key), role=body.role,
        name=body.name)
    return json_response(KeyCreated(id=record.key_id, key=key, tenant_id=record.tenant_id,
                                    role=record.role, name=record.name), status=201)


# --------------------------------------------------------------------------- operations

_MERGE_PATCH = {"type": "object", "description": "RFC 7396 merge patch of the profile",
                "additionalProperties": True}

OPERATIONS = [
    Operation("PUT", "/v1/users/{id}", "putUser", "Create or replace a user profile", "users",
              put_user, MANAGE, body=Body(ProfileIn), responses={200: Profile, 201: Profile},
              errors=(400, 413, 422)),
    Operation("PATCH", "/v1/users/{id}", "patchUser", "Update a profile (JSON merge patch)",
              "users", patch_user, MANAGE,
              body=Body(media={"application/merge-patch+json": _MERGE_PATCH,
                               "application/json": _MERGE_PATCH}),
              responses={200: Profile}, errors=(400, 404, 413, 422)),
    Operation("DELETE", "/v1/users/{id}", "eraseUser",
              "Erase everything about a user (profile, pings, visits, decisions, deliveries)"
              " and revoke their stream tokens",
              "users", delete_user, ADMIN,
              responses={200: {"type": "object", "properties": {
                  "id": {"type": "string"},
                  "erased": {"type": "object", "additionalProperties": {"type": "integer"}}},
                  "required": ["id", "erased"]}}, errors=(422,)),
    Operation("GET", "/v1/users/{id}/decisions", "getDecisions",
              "Decision log: why a push was or was not sent", "users", get_decisions, MANAGE,
              params=(*page_params(50, 500),
                      Param("before", {"type": "number"}, "decided before (epoch s)")),
              responses={200: DecisionsResponse}, errors=(422,),
              description="Newest first; next_cursor is null on the last page."),
    Operation("POST", "/v1/campaigns", "createCampaign", "Create a campaign (a draft unless "
              "it says otherwise)", "campaigns", create_campaign, MANAGE, body=Body(CampaignIn),
              responses={201: Campaign}, errors=(400, 409, 413, 422)),
    Operation("GET", "/v1/campaigns", "listCampaigns", "List campaigns", "campaigns",
              list_campaigns, MANAGE,
              params=(Param("status", {"type": "string",
                                       "enum": [s.value for s in CampaignStatus]}),
                      *page_params(100, 500)),
              responses={200: CampaignList}, errors=(422,),
              description="Ordered by id, 100 a page unless limit says otherwise; "
                          "next_cursor is null on the last page."),
    Operation("GET", "/v1/campaigns/{id}", "getCampaign", "A campaign", "campaigns",
              get_campaign, MANAGE, responses={200: Campaign}, errors=(404, 422)),
    Operation("PUT", "/v1/campaigns/{id}", "putCampaign", "Create or replace a campaign",
              "campaigns", put_campaign, MANAGE, body=Body(CampaignIn),
              responses={200: Campaign, 201: Campaign}, errors=(400, 413, 422)),
    Operation("DELETE", "/v1/campaigns/{id}", "deleteCampaign", "Delete a campaign",
              "campaigns", delete_campaign, MANAGE, responses={200: Deleted},
              errors=(404, 422)),
    Operation("POST", "/v1/campaigns/{id}/activate", "activateCampaign", "Start sending",
              "campaigns", activate_campaign, MANAGE, responses={200: Campaign},
              errors=(404, 409, 422)),
    Operation("POST", "/v1/campaigns/{id}/pause", "pauseCampaign", "Stop sending",
              "campaigns", pause_campaign, MANAGE, responses={200: Campaign},
              errors=(404, 409, 422)),
    Operation("GET", "/v1/campaigns/{id}/stats", "campaignStats",
              "Decisions, deliveries, CTR and lift against the control group",
              "campaigns", campaign_stats, MANAGE, responses={200: CampaignStats},
              errors=(404, 422)),
    Operation("GET", "/v1/policy", "getPolicy", "The tenant policy", "policy", get_policy,
              MANAGE, responses={200: PolicyOut}),
    Operation("PUT", "/v1/policy", "putPolicy", "Replace the tenant policy", "policy",
              put_policy, ADMIN, body=Body(PolicyIn), responses={200: PolicyOut},
              errors=(400, 413, 422)),
    Operation("POST", "/v1/keys", "createKey", "Create an API key of this tenant", "keys",
              create_key, ADMIN, body=Body(KeyCreate), responses={201: KeyCreated},
              errors=(400, 413, 422)),
]


async def validated_campaign(request: web.Request, body: Any, campaign_id: str) -> Campaign:
    """The campaign a POST / PUT body would store, checked exactly as those routes check
    it (schema, then templates for sample users), without storing it: the console's
    validation as you type. Raises the same 422s."""
    return await _campaign(request, body, campaign_id)
