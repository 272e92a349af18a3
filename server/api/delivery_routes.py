"""Delivery: the in-app inbox and live stream, stream tokens, feedback, conversions and
the tenant's channel settings.

- ``GET /v1/users/{id}/inbox`` — the user's in-app messages, newest first; read with a
  manager/admin key, or by the app itself with the user's stream token (``?token=``);
  an SDK key alone cannot read anyone's inbox.
- ``POST /v1/users/{id}/stream-token`` — the tenant's backend mints a token for its
  logged-in user (HMAC-SHA256 with the tenant's secret, see ``server.channels.inapp``).
- ``GET /v1/stream?token=`` — WebSocket; frames ``{"type": "message", "message": ...}``;
  closed with 4001 ``token_expired`` at the token's expiry and 4002 ``token_revoked``
  when it is revoked.
- ``POST /v1/stream/revoke`` — revoke every stream token of the tenant (or of one user):
  refused from now on, open sockets closed on every node.
- ``POST /v1/deliveries/{id}/feedback`` and ``GET /v1/deliveries/{id}``.
- ``POST /v1/campaigns/{id}/conversions`` — a user converted (exposed or held out).
- ``GET/PUT /v1/channels`` — the tenant's channel settings (``server.outbox.config``).
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from server.api.context import (
    CLOCK,
    FANOUT,
    HUB,
    ID_PATTERN,
    SETTINGS,
    json_response,
    now,
    path_id,
    read_json,
    store,
)
from server.api.ingest_routes import delivery_json
from server.api.pages import decode_cursor, encode_cursor, page_limit, page_params
from server.api.registry import (
    ADMIN,
    ALL_ROLES,
    MANAGE,
    Body,
    Operation,
    Param,
    authenticate,
    not_found,
)
from server.api.schemas import DeliveryOut
from server.auth import Principal, unauthorized
from server.channels.base import INBOX, WEBHOOK, ChannelConfigError, RecordingChannel
from server.channels.inapp import (
    CLOSE_TOKEN_EXPIRED,
    CLOSE_TOKEN_REVOKED,
    StreamClaims,
    StreamTokenError,
    TokenEpochs,
    issue_stream_token,
    peek_stream_token_tenant,
    stream_to_websocket,
    verify_stream_token,
)
from server.errors import ApiError, validate_body
from server.outbox.channels import build_tenant_channels
from server.outbox.config import ChannelSettings
from server.store.base import DeliveryRecord, inbox_page_key
from server.store.errors import NotFoundError, StoreError
from triggers.decisions import FeedbackKind
from triggers.decisions.rich import BUTTON_ID_PATTERN, RichContent

log = logging.getLogger("geopush.stream")

# --------------------------------------------------------------------------- models


class InboxMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    delivery_id: str
    idempotency_key: str
    title: str
    body: str
    campaign_id: str
    variant_id: str
    venue_id: str
    event: str
    created_at: float
    expires_at: float
    feedback: list[str]
    rich: RichContent | None = Field(default=None, description="image (with alt text), "
                                     "deep link and buttons, when the push has any")


class InboxResponse(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: str
    messages: list[InboxMessage]
    next_cursor: str | None = Field(default=None, description="pass as ?cursor= for the "
                                    "next page; null on the last")


class StreamTokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    ttl_s: float | None = Field(default=None, ge=60, le=30 * 86_400,
                                description="lifetime (default: the server's setting)")


class StreamTokenOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: str
    token: str
    expires_at: int
    stream_path: str = Field(description="where to open the WebSocket")


class StreamRevokeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: str | None = Field(default=None, pattern=ID_PATTERN, max_length=256,
                                description="only this user's tokens (default: every "
                                            "token of the tenant)")


class StreamRevokeOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant_id: str
    user_id: str | None = Field(description="whose tokens; null: the whole tenant's")
    epoch: int = Field(description="the new token epoch: tokens minted before carry a "
                                   "lower one and are refused")


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["delivered", "opened", "clicked", "dismissed", "converted"]
    button: str | None = Field(default=None, pattern=BUTTON_ID_PATTERN, max_length=32,
                               description="with kind clicked: the id of the button "
                                           "pressed (one of the delivery's buttons)")


class FeedbackOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    delivery_id: str
    kind: str
    recorded: bool = Field(description="false when this kind was already reported")
    feedback: list[str]
    button: str | None = Field(default=None, description="the button of the recorded click")


class DeliveryDetail(DeliveryOut):
    attempts: int
    next_attempt_at: float | None = None
    last_error: str | None = None
    feedback: list[str]
    provider_id: str | None = None
    rich: RichContent | None = Field(default=None, description="image (with alt text), "
                                     "deep link and buttons, when the push has any")
    button: str | None = Field(default=None, description="the button the click pressed")


class ConversionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: str = Field(pattern=ID_PATTERN, max_length=256)


class ConversionOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    campaign_id: str
    user_id: str
    recorded: bool = Field(description="false when already recorded (one per user)")


class ChannelsOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant_id: str
    configured: list[str]
    channels: dict[str, Any] = Field(description="the settings, secrets masked")


# --------------------------------------------------------------------------- tokens


async def _claims(request: web.Request, token: str) -> StreamClaims:
    """The verified claims of a stream token that is neither expired nor revoked, or 401."""
    try:
        tenant_id = peek_stream_token_tenant(token)
        secret = await store(request).stream_secret(tenant_id)
        claims = verify_stream_token(secret, token, now=now(request))
    except StreamTokenError as exc:
        raise ApiError(401, "invalid_token", str(exc), field="token") from exc
    except NotFoundError as exc:
        raise ApiError(401, "invalid_token", "stream token bad signature",
                       field="token") from exc
    if await _revoked(request, claims):
        raise ApiError(401, "invalid_token", "stream token revoked", field="token")
    return claims


async def _revoked(request: web.Request, claims: StreamClaims) -> bool:
    epochs = await store(request).stream_token_epochs(claims.tenant_id, claims.user_id)
    return TokenEpochs(*epochs).revokes(claims)


_INBOX_BY_KEY = Operation("GET", "/v1/users/{id}/inbox", "getInboxByKey", "", "users",
                          None, MANAGE)
"""The key check of the inbox when no stream token is given (not a route of its own)."""


async def get_inbox(request: web.Request) -> web.Response:
    uid = path_id(request)
    token = request.query.get("token")
    if token:
        claims = await _claims(request, token)
        if claims.user_id != uid:
            raise ApiError(403, "forbidden", "this stream token is for another user")
        tenant_id = claims.tenant_id
    else:
        tenant_id = (await authenticate(request, _INBOX_BY_KEY)).tenant_id
    limit = page_limit(request, default=50, maximum=500)
    cursor = decode_cursor(request, "inbox", (float, str))
    found = await store(request).list_inbox(
        tenant_id, uid, limit=limit + 1,
        after_key=None if cursor is None else (cursor[0], cursor[1]))
    rows = found[:limit]
    following = encode_cursor("inbox", inbox_page_key(rows[-1])) if len(found) > limit else None
    return json_response(InboxResponse(user_id=uid, next_cursor=following, messages=[
        InboxMessage(delivery_id=d.delivery_id, idempotency_key=d.idempotency_key,
                     title=d.title, body=d.body, campaign_id=d.campaign_id,
                     variant_id=d.variant_id, venue_id=d.venue_id, event=d.event,
                     created_at=d.created_at, expires_at=d.expires_at,
                     feedback=list(d.feedback), rich=d.rich) for d in rows]))


async def mint_stream_token(request: web.Request, principal: Principal) -> web.Response:
    uid = path_id(request)
    body = await read_json(request, allow_empty=True)
    parsed = validate_body(StreamTokenIn, body if body is not None else {})
    ttl_s = parsed.ttl_s or request.app[SETTINGS].stream_token_ttl_s
    expires_at = int(now(request) + ttl_s)
    secret = await store(request).stream_secret(principal.tenant_id)
    epochs = await store(request).stream_token_epochs(principal.tenant_id, uid)
    token = issue_stream_token(secret, principal.tenant_id, uid, expires_at,
                               TokenEpochs(*epochs))
    return json_response(StreamTokenOut(user_id=uid, token=token, expires_at=expires_at,
                                        stream_path="/v1/stream"), status=201)


async def stream(request: web.Request) -> web.StreamResponse:
    token = request.query.get("token")
    if not token:
        raise unauthorized("open the stream with ?token=<stream token>")
    claims = await _claims(request, token)
    ws = web.WebSocketResponse(heartbeat=30.0)
    if not ws.can_prepare(request).ok:
        raise ApiError(400, "websocket_required", "this endpoint speaks WebSocket only")
    await ws.prepare(request)

    async def revoked_meanwhile() -> bool:
        try:
            return await _revoked(request, claims)
        except StoreError as exc:  # checked a moment ago; a revocation still closes it
            log.warning("stream: cannot recheck a token of %s/%s: %s", claims.tenant_id,
                        claims.user_id, exc)
            return False

    await stream_to_websocket(request.app[HUB], ws, claims, clock=request.app[CLOCK],
                              revoked=revoked_meanwhile)
    return ws


async def revoke_stream_tokens(request: web.Request, principal: Principal) -> web.Response:
    body = await read_json(request, allow_empty=True)
    parsed = validate_body(StreamRevokeIn, body if body is not None else {})
    epoch = await store(request).revoke_stream_tokens(principal.tenant_id, parsed.user_id)
    await request.app[FANOUT].revoke(principal.tenant_id, parsed.user_id, epoch)
    return json_response(StreamRevokeOut(tenant_id=principal.tenant_id,
                                         user_id=parsed.user_id, epoch=epoch))


# --------------------------------------------------------------------------- deliveries


def _detail(d: DeliveryRecord) -> DeliveryDetail:
    return DeliveryDetail(**delivery_json(d), attempts=d.attempts,
                          next_attempt_at=d.next_attempt_at, last_error=d.last_error,
                          feedback=list(d.feedback), provider_id=d.provider_id,
                          rich=d.rich, button=d.button)


async def get_delivery(request: web.Request, principal: Principal) -> web.Response:
    did = path_id(request)
    row = await store(request).get_delivery(principal.tenant_id, did)
    if row is None:
        raise not_found("delivery", did)
    return json_response(_detail(row))


async def post_feedback(request: web.Request, principal: Principal) -> web.Response:
    did = path_id(request)
    parsed = validate_body(FeedbackIn, await read_json(request))
    before = await store(request).get_delivery(principal.tenant_id, did)
    if before is None:
        raise not_found("delivery", did)
    kind = FeedbackKind(parsed.kind)
    if parsed.button is not None:
        _check_button(before, kind, parsed.button)
    row = await store(request).record_feedback(principal.tenant_id, did, kind,
                                               now=now(request), button=parsed.button)
    if row is None:  # erased in between
        raise not_found("delivery", did)
    return json_response(FeedbackOut(delivery_id=did, kind=kind.value,
                                     recorded=kind.value not in before.feedback,
                                     feedback=list(row.feedback), button=row.button))


def _check_button(delivery: DeliveryRecord, kind: FeedbackKind, button: str) -> None:
    """422 naming ``button`` unless it comes with a click and is one of the delivery's
    buttons."""
    if kind is not FeedbackKind.CLICKED:
        raise ApiError(422, "validation_error", f"button is reported with kind clicked, "
                       f"not {kind.value}", field="button")
    ids = () if delivery.rich is None else delivery.rich.button_ids()
    if button not in ids:
        have = f"its buttons are {list(ids)}" if ids else "it has no buttons"
        raise ApiError(422, "unknown_button", f"delivery {delivery.delivery_id} has no "
                       f"button {button!r}; {have}", field="button")


async def post_conversion(request: web.Request, principal: Principal) -> web.Response:
    cid = path_id(request)
    parsed = validate_body(ConversionIn, await read_json(request))
    if await store(request).get_campaign(principal.tenant_id, cid) is None:
        raise not_found("campaign", cid)
    recorded = await store(request).record_conversion(principal.tenant_id, cid,
                                                      parsed.user_id, at=now(request))
    return json_response(ConversionOut(campaign_id=cid, user_id=parsed.user_id,
                                       recorded=recorded), status=201 if recorded else 200)


# --------------------------------------------------------------------------- channels


def _channels_out(tenant_id: str, settings: ChannelSettings) -> ChannelsOut:
    return ChannelsOut(tenant_id=tenant_id, configured=sorted(settings.configured()),
                       channels=settings.masked())


async def get_channels(request: web.Request, principal: Principal) -> web.Response:
    raw = await store(request).get_channel_config(principal.tenant_id)
    settings = validate_body(ChannelSettings, raw or {})
    return json_response(_channels_out(principal.tenant_id, settings))


async def put_channels(request: web.Request, principal: Principal) -> web.Response:
    settings = validate_body(ChannelSettings, await read_json(request))
    # Build the channels once, as the dispatcher will: a key that does not parse, a
    # sender without an address or a bad topic template is refused now, not at send time.
    try:
        built = build_tenant_channels(
            settings, shared={INBOX: RecordingChannel(INBOX), WEBHOOK: RecordingChannel(WEBHOOK)},
            observer=lambda *_: None, clock=lambda: now(request))
    except ChannelConfigError as exc:
        raise ApiError(422, "invalid_channel_settings", str(exc), field=None) from exc
    for name, channel in built.channels.items():
        if name not in (INBOX, WEBHOOK):
            await channel.aclose()
    egress = request.app[SETTINGS].egress()
    for field_name, host, port in settings.destinations():
        refused = await egress.check(host, port, channel=field_name.partition(".")[0])
        if refused is not None:
            raise ApiError(422, "destination_not_allowed", f"{field_name}: {refused}",
                           field=field_name)
    await store(request).put_channel_config(
        principal.tenant_id, settings.model_dump(mode="json", exclude_none=True))
    return json_response(_channels_out(principal.tenant_id, settings))


# --------------------------------------------------------------------------- operations

_TOKEN = Param("token", {"type": "string", "maxLength": 1024}, "the user's stream token")

OPERATIONS = [
    Operation("GET", "/v1/users/{id}/inbox", "getInbox",
              "The user's in-app messages, newest first", "delivery", get_inbox, None,
              params=(_TOKEN, *page_params(50, 500)),
              responses={200: InboxResponse}, errors=(401, 403, 422, 429),
              description="Authenticate with an admin or manager key (Bearer), or with "
                          "the user's own stream token as ?token= (the app). An SDK key "
                          "cannot read an inbox."),
    Operation("POST", "/v1/users/{id}/stream-token", "mintStreamToken",
              "Mint the user's in-app stream token", "delivery", mint_stream_token, MANAGE,
              body=Body(StreamTokenIn, required=False), responses={201: StreamTokenOut},
              errors=(400, 413, 422)),
    Operation("GET", "/v1/stream", "stream", "Live in-app messages (WebSocket)", "delivery",
              stream, None, params=(Param("token", {"type": "string", "maxLength": 1024},
                                          "the user's stream token", required=True),),
              responses={101: None}, errors=(400, 401),
              description='Upgrade to WebSocket; each message arrives as {"type": '
                          '"message", "message": {...}}; drop duplicates by '
                          "idempotency_key. The server closes the socket with code "
                          f"{CLOSE_TOKEN_EXPIRED} (reason token_expired) when the token "
                          "expires, and no message reaches it afterwards: mint a fresh "
                          f"token and reconnect. Code {CLOSE_TOKEN_REVOKED} (reason "
                          "token_revoked): the token was revoked (the user was erased, or "
                          "POST /v1/stream/revoke); the old token is refused (401 "
                          "invalid_token), get a new one from the backend. Any other close "
                          "(1000 at shutdown, 1006): reconnect with the same token while "
                          "it is valid."),
    Operation("POST", "/v1/stream/revoke", "revokeStreamTokens",
              "Revoke every stream token of the tenant, or of one user", "delivery",
              revoke_stream_tokens, ADMIN, body=Body(StreamRevokeIn, required=False),
              responses={200: StreamRevokeOut}, errors=(400, 413, 422),
              description="Tokens minted before this call are refused from now on, and "
                          f"open streams opened with them close with code "
                          f"{CLOSE_TOKEN_REVOKED} (token_revoked) on every node. Tokens "
                          "minted afterwards work."),
    Operation("GET", "/v1/deliveries/{id}", "getDelivery", "A delivery and its attempts",
              "delivery", get_delivery, MANAGE, responses={200: DeliveryDetail},
              errors=(404, 422)),
    Operation("POST", "/v1/deliveries/{id}/feedback", "postFeedback",
              "Report delivered / opened / clicked (with the button pressed) / dismissed / "
              "converted (idempotent)",
              "delivery", post_feedback, ALL_ROLES, body=Body(FeedbackIn),
              responses={200: FeedbackOut}, errors=(400, 404, 413, 422)),
    Operation("POST", "/v1/campaigns/{id}/conversions", "postConversion",
              "Report that a user converted (exposed or in the control group)", "campaigns",
              post_conversion, MANAGE, body=Body(ConversionIn),
              responses={200: ConversionOut, 201: ConversionOut}, errors=(400, 404, 413, 422)),
    Operation("GET", "/v1/channels", "getChannels", "The tenant's channel settings "
              "(secrets masked)", "delivery", get_channels, ADMIN,
              responses={200: ChannelsOut}),
    Operation("PUT", "/v1/channels", "putChannels", "Replace the tenant's channel settings",
              "delivery", put_channels, ADMIN, body=Body(ChannelSettings),
              responses={200: ChannelsOut}, errors=(400, 413, 422)),
]
