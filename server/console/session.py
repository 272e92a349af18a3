"""Console sign-in: a manager or admin key exchanged for a signed session cookie.

The cookie holds ``session id . key id . tenant . role . expiry``, signed with
HMAC-SHA256 under ``console_secret``; the key itself is never stored in it. Every request
checks the signature, the expiry, that the session was not signed out, and that the key
still exists unrevoked (revoking a key ends its sessions). The tenant comes from the
signed cookie only, so a session of tenant A reads nothing of tenant B.

Writes carry a CSRF token (form field ``csrf_token`` or header ``X-CSRF-Token``): the
HMAC of the session id under the same secret, compared in constant time. Before sign-in
a random pre-session cookie plays the same part for the sign-in form itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

from aiohttp import web

from server.api.context import CLOCK, SETTINGS, STORE
from server.auth import Principal, Role, hash_key

COOKIE = "geopush_console"
PRE_COOKIE = "geopush_console_pre"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
CONSOLE_ROLES = frozenset({Role.ADMIN, Role.MANAGER})


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in console user: who (the key's principal), until when, and the token
    every write must carry."""

    session_id: str
    principal: Principal
    expires_at: float
    csrf: str


class Sessions:
    """Signs, reads and revokes console sessions of one process.

    ``secret``: the HMAC key (``console_secret``, else random). Signed-out session ids
    are remembered until they would have expired anyway."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        self._revoked: dict[str, float] = {}

    def _mac(self, text: str) -> str:
        digest = hmac.new(self._secret, text.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def csrf_for(self, session_id: str) -> str:
        return self._mac("csrf:" + session_id)

    def issue(self, principal: Principal, now: float, ttl_s: float) -> tuple[str, Session]:
        """A new session for ``principal``: the cookie value and the session."""
        sid = secrets.token_urlsafe(18)
        expires = now + ttl_s
        payload = json.dumps([sid, principal.key_id, principal.tenant_id,
                              principal.role.value, expires], separators=(",", ":"))
        body = base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")
        return f"{body}.{self._mac(body)}", Session(sid, principal, expires, self.csrf_for(sid))

    def read(self, cookie: str, now: float) -> Session | None:
        """The session of a cookie value, or ``None`` when it is forged, expired or
        signed out."""
        body, _, mac = cookie.partition(".")
        if not mac or not hmac.compare_digest(mac, self._mac(body)):
            return None
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            sid, key_id, tenant, role, expires = json.loads(raw)
            principal = Principal(key_id=str(key_id), tenant_id=str(tenant), role=Role(role))
            expires_at = float(expires)
        except (ValueError, TypeError):
            return None
        if expires_at <= now or sid in self._revoked:
            return None
        return Session(str(sid), principal, expires_at, self.csrf_for(str(sid)))

    def revoke(self, session: Session, now: float) -> None:
        self._revoked[session.session_id] = session.expires_at
        self._revoked = {s: e for s, e in self._revoked.items() if e > now}


SESSIONS = web.AppKey("console_sessions", Sessions)


def sessions_for(secret: str | None) -> Sessions:
    return Sessions(secret.encode() if secret else secrets.token_bytes(32))


class SignInError(Exception):
    """Why a key cannot open a console session (shown on the sign-in form)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


async def sign_in(request: web.Request, key: str) -> tuple[str, Session]:
    """Exchange ``key`` for a session: the cookie value and the session. Raises
    :class:`SignInError` (``unknown_key`` or ``role_not_allowed``: an SDK key ships
    inside apps and cannot sign in)."""
    record = await request.app[STORE].find_key(hash_key(key.strip()))
    if record is None or record.revoked:
        raise SignInError("unknown_key")
    role = Role(record.role)
    if role not in CONSOLE_ROLES:
        raise SignInError("role_not_allowed")
    principal = Principal(key_id=record.key_id, tenant_id=record.tenant_id, role=role)
    settings = request.app[SETTINGS]
    return request.app[SESSIONS].issue(principal, request.app[CLOCK](),
                                       settings.console_session_ttl_s)


async def current_session(request: web.Request) -> Session | None:
    """The request's signed-in session, if its cookie is valid and its key still is."""
    cookie = request.cookies.get(COOKIE)
    if not cookie:
        return None
    session = request.app[SESSIONS].read(cookie, request.app[CLOCK]())
    if session is None:
        return None
    keys = await request.app[STORE].list_keys(session.principal.tenant_id)
    if not any(k.key_id == session.principal.key_id and not k.revoked for k in keys):
        return None
    return session


def csrf_ok(request: web.Request, expected: str, form_value: str | None) -> bool:
    """Whether the request carries ``expected`` as its CSRF token (header or form)."""
    given = request.headers.get(CSRF_HEADER) or form_value or ""
    return bool(given) and hmac.compare_digest(given.encode(), expected.encode())


def set_session_cookie(response: web.StreamResponse, request: web.Request, value: str,
                       max_age_s: float) -> None:
    response.set_cookie(COOKIE, value, path="/console", httponly=True, samesite="Strict",
                        secure=request.secure, max_age=int(max_age_s))


def clear_session_cookie(response: web.StreamResponse) -> None:
    response.del_cookie(COOKIE, path="/console")
