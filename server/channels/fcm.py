"""Firebase Cloud Messaging, HTTP v1 API.

``POST {base_url}/v1/projects/{project_id}/messages:send`` with an OAuth 2 access token
obtained from a service account by the JWT bearer flow (RFC 7523): an RS256-signed
assertion ``{iss: client_email, scope, aud: token_uri, iat, exp}`` is POSTed to the
token URI, and the access token it returns is cached until shortly before it expires.
Concurrent sends that find no token wait for one fetch instead of each fetching.

The message carries the notification, the campaign data as strings (FCM data values
must be strings), ``android.ttl`` and ``apns-expiration`` from the offer's expiry, and
the idempotency key as collapse key, so a retried send that arrives twice replaces the
first notification instead of showing a duplicate.

Answers map to results:

==========================================================  ==========================
200                                                          ``Delivered`` (message name)
404 ``UNREGISTERED``; 400 ``INVALID_ARGUMENT`` about the      ``TokenInvalid``
token; 403 ``SENDER_ID_MISMATCH``
401                                                          new access token, one more
                                                             try; again 401 → ``Failed``
                                                             (not permanent: our creds)
429, 500, 503 and other 5xx, timeouts                        ``Retry`` (with Retry-After)
403 otherwise (permission)                                   ``Failed``, not permanent
any other 4xx (a payload we built wrong)                     ``Failed``, permanent
token endpoint unreachable / 5xx                             ``Retry``
token endpoint refuses the assertion                         ``Failed``, not permanent
==========================================================  ==========================
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from server.channels._http import json_object, parse_retry_after, status_result, transport_result
from server.channels._ids import collapse_id
from server.channels.base import (
    FCM,
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
from triggers.decisions.rich import RichContent

FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
DEFAULT_BASE_URL = "https://fcm.googleapis.com"
DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_LIFETIME_S = 3600
"""Google accepts assertions valid for at most one hour."""
REFRESH_MARGIN_S = 300.0
"""Fetch a new access token this long before the old one expires, so a send never
carries a token that dies in flight."""


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    """The fields of a Google service-account key file the JWT bearer flow needs."""

    project_id: str
    client_email: str
    private_key: RSAPrivateKey
    private_key_id: str | None
    token_uri: str

    @classmethod
    def from_info(cls, info: Mapping[str, Any]) -> ServiceAccount:
        """From the parsed JSON key file; :class:`ChannelConfigError` names a missing or
        unusable key."""
        for key in ("project_id", "client_email", "private_key"):
            if not isinstance(info.get(key), str) or not info[key]:
                raise ChannelConfigError(f"fcm service account: {key} is missing")
        try:
            private_key = load_pem_private_key(info["private_key"].encode(), password=None)
        except (ValueError, TypeError) as exc:
            raise ChannelConfigError(
                "fcm service account: private_key is not a PEM private key"
            ) from exc
        if not isinstance(private_key, RSAPrivateKey):
            raise ChannelConfigError("fcm service account: private_key is not an RSA key")
        return cls(
            project_id=info["project_id"],
            client_email=info["client_email"],
            private_key=private_key,
            private_key_id=info.get("private_key_id") or None,
            token_uri=info.get("token_uri") or DEFAULT_TOKEN_URI,
        )

    @classmethod
    def from_json(cls, text: str) -> ServiceAccount:
        """From the key file's text (read it at start-up, outside the event loop)."""
        try:
            info = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ChannelConfigError(f"fcm service account: not JSON: {exc}") from exc
        if not isinstance(info, dict):
            raise ChannelConfigError("fcm service account: not a JSON object")
        return cls.from_info(info)


class _NoTokenError(Exception):
    """No access token; ``result`` is what the send comes to."""

    def __init__(self, result: SendResult) -> None:
        super().__init__(getattr(result, "reason", ""))
        self.result = result


class GoogleAccessTokens:
    """OAuth 2 access tokens for a service account, cached until near expiry.

    Runs in the event loop; :meth:`get` may be awaited concurrently.
    """

    def __init__(
        self,
        account: ServiceAccount,
        client: httpx.AsyncClient,
        *,
        clock: Callable[[], float],
        token_uri: str | None = None,
        scope: str = FCM_SCOPE,
        timeout_s: float = 10.0,
    ) -> None:
        self._account = account
        self._client = client
        self._clock = clock
        self._token_uri = token_uri or account.token_uri
        self._scope = scope
        self._timeout = httpx.Timeout(timeout_s)
        self._token: str | None = None
        self._refresh_at = 0.0
        self._lock = asyncio.Lock()
        self.fetches = 0
        """Tokens fetched so far (for metrics and tests)."""

    async def get(self) -> str:
        """A valid access token. Raises :class:`_NoTokenError` with the send's result
        when none can be had."""
        async with self._lock:
            if self._token is None or self._clock() >= self._refresh_at:
                self._token, self._refresh_at = await self._fetch()
            return self._token

    def invalidate(self, token: str) -> None:
        """The API refused ``token``: the next :meth:`get` fetches a new one (unless
        another send already did)."""
        if self._token == token:
            self._token = None

    async def _fetch(self) -> tuple[str, float]:
        now = self._clock()
        claims = {
            "iss": self._account.client_email,
            "scope": self._scope,
            "aud": self._token_uri,
            "iat": int(now),
            "exp": int(now) + ASSERTION_LIFETIME_S,
        }
        headers = {"kid": self._account.private_key_id} if self._account.private_key_id else None
        assertion = jwt.encode(claims, self._account.private_key, algorithm="RS256",
                               headers=headers)
        try:
            response = await self._client.post(
                self._token_uri,
                data={"grant_type": JWT_BEARER, "assertion": assertion},
                timeout=self._timeout,
            )
        except httpx.TransportError as exc:
            raise _NoTokenError(transport_result(exc, "fcm oauth")) from exc
        self.fetches += 1
        if response.status_code != 200:
            if response.status_code >= 500 or response.status_code == 429:
                raise _NoTokenError(status_result(response, self._clock(), "fcm oauth"))
            error = json_object(response).get("error", "")
            raise _NoTokenError(Failed(
                f"fcm oauth refused the service account: {response.status_code} {error}".strip(),
                permanent=False,
            ))
        body = json_object(response)
        token, expires_in = body.get("access_token"), body.get("expires_in", 3600)
        if not isinstance(token, str) or not isinstance(expires_in, int | float):
            raise _NoTokenError(Retry("fcm oauth answered without an access token"))
        margin = min(REFRESH_MARGIN_S, expires_in / 2)
        return token, now + expires_in - margin


class FcmChannel(BaseChannel):
    """Sends to ``message.recipient.fcm_token`` through FCM HTTP v1 (see module doc)."""

    name = FCM

    def __init__(
        self,
        account: ServiceAccount,
        *,
        base_url: str = DEFAULT_BASE_URL,
        token_uri: str | None = None,
        client: httpx.AsyncClient | None = None,
        egress: EgressPolicy | None = None,
        timeout_s: float = 10.0,
        observer: SendObserver | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(observer=observer, clock=clock)
        self._owns_client = client is None
        self._client = client or (httpx.AsyncClient() if egress is None
                                  else guarded_client(egress, channel=FCM))
        self._url = f"{base_url.rstrip('/')}/v1/projects/{account.project_id}/messages:send"
        self._timeout = httpx.Timeout(timeout_s)
        self.tokens = GoogleAccessTokens(
            account, self._client, clock=self._clock, token_uri=token_uri, timeout_s=timeout_s
        )

    def request_body(self, message: OutboundMessage) -> dict[str, Any]:
        """The ``messages:send`` JSON for ``message`` (which must have an FCM token)."""
        ttl_s = max(1, int(self.ttl_s(message)))
        collapse = collapse_id(message.idempotency_key)
        body: dict[str, Any] = {
            "message": {
                "token": message.recipient.fcm_token,
                "notification": {"title": message.title, "body": message.body},
                "data": {
                    **message.data.as_strings(),
                    "delivery_id": message.delivery_id,
                    "idempotency_key": message.idempotency_key,
                },
                "android": {"ttl": f"{ttl_s}s", "collapse_key": collapse},
                "apns": {
                    "headers": {
                        "apns-expiration": str(int(message.data.expires_at)),
                        "apns-collapse-id": collapse,
                    }
                },
            }
        }
        if message.rich is not None:
            _add_rich(body["message"], message.rich)
        return body

    async def _send(self, message: OutboundMessage) -> SendResult:
        if not message.recipient.fcm_token:
            return Failed("recipient has no FCM token", permanent=True)
        body = self.request_body(message)
        # Two tries: the second only after a 401, with a freshly fetched access token.
        for attempt in range(2):
            try:
                access_token = await self.tokens.get()
            except _NoTokenError as failure:
                return failure.result
            try:
                response = await self._client.post(
                    self._url, json=body, timeout=self._timeout,
                    headers={"Authorization": f"Bearer {access_token}"},
                )
            except httpx.TransportError as exc:
                return transport_result(exc, "fcm")
            if response.status_code != 401 or attempt == 1:
                break
            self.tokens.invalidate(access_token)
        return self._result(response)

    def _result(self, response: httpx.Response) -> SendResult:
        status = response.status_code
        if status == 200:
            name = json_object(response).get("name")
            return Delivered(name if isinstance(name, str) else None)
        error = json_object(response).get("error")
        error = error if isinstance(error, dict) else {}
        code = _fcm_error_code(error)
        detail = f"fcm {status} {code}: {error.get('message', '')}".rstrip(": ")
        if status == 404 and code in {"UNREGISTERED", "NOT_FOUND"}:
            return TokenInvalid(detail)
        if status == 400 and code == "INVALID_ARGUMENT" and _about_the_token(error):
            return TokenInvalid(detail)
        if status == 403 and code == "SENDER_ID_MISMATCH":
            return TokenInvalid(detail)
        if status in {401, 403}:
            # Our credentials or project permissions: every message would fail alike.
            return Failed(detail, permanent=False)
        if status >= 500 or status == 429:
            return Retry(detail, after_s=parse_retry_after(response.headers.get("retry-after"),
                                                           self._clock()))
        return Failed(detail, permanent=True)

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()


def _add_rich(message: dict[str, Any], rich: RichContent) -> None:
    """Rich content into an FCM ``message``: the image as ``notification.image`` (Android
    shows it; iOS through the app's notification service extension, woken by
    ``mutable-content`` with the image in ``fcm_options``); the link, buttons and image
    as data strings (``deep_link``; ``buttons``: the JSON array ``[{id, title,
    deep_link}]``; ``image_url``, ``image_alt``) for the app to act on; the buttons'
    ``category`` for iOS. Rich keys win over campaign offer data of the same name."""
    data: dict[str, str] = message["data"]
    if rich.image_url is not None:
        message["notification"]["image"] = rich.image_url
        data["image_url"] = rich.image_url
        data["image_alt"] = rich.image_alt or ""
    if rich.deep_link is not None:
        data["deep_link"] = rich.deep_link
    if rich.buttons:
        data["buttons"] = json.dumps([b.model_dump() for b in rich.buttons],
                                     ensure_ascii=False, separators=(",", ":"))
    apns = message["apns"]
    aps: dict[str, Any] = {}
    if rich.image_url is not None:
        aps["mutable-content"] = 1
        apns["fcm_options"] = {"image": rich.image_url}
    category = rich.category_id()
    if category is not None:
        aps["category"] = category
    if aps:
        apns["payload"] = {"aps": aps}


def _fcm_error_code(error: Mapping[str, Any]) -> str:
    """FCM's own ``errorCode`` from the details, else the RPC status."""
    for detail in error.get("details") or ():
        if isinstance(detail, dict) and detail.get("@type", "").endswith(".FcmError"):
            return str(detail.get("errorCode", ""))
    return str(error.get("status", ""))


def _about_the_token(error: Mapping[str, Any]) -> bool:
    """Whether an INVALID_ARGUMENT names the registration token (a dead or mangled token)
    rather than something else in the payload (our bug: permanent, keep the token)."""
    for detail in error.get("details") or ():
        for violation in (detail.get("fieldViolations") or ()) if isinstance(detail, dict) else ():
            if isinstance(violation, dict) and violation.get("field") == "message.token":
                return True
    return "registration token" in str(error.get("message", "")).lower()
