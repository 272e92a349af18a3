"""MQTT topics of a tenant: its namespace, topic templates and their placeholders. Pure.

Every topic the service publishes for tenant ``T`` lies in ``T``'s namespace,
``geopush/<T>/...`` (``<T>`` the tenant id escaped as one level, see :func:`escape_level`).
A broker shared by several tenants can then confine each tenant's subscribers with one
ACL pattern per tenant (Mosquitto: ``pattern read geopush/%u/#`` when the MQTT username
is the tenant id), and nothing a tenant writes can put a message under another's.

- A **template** (``mqtt.topic_template``) starts with ``geopush/{tenant_id}/`` (or
  ``geopush/{tenant}/``) and has at least one level after it; its other levels are the
  tenant's to choose. Placeholders are ``{name}`` with a name from :data:`PLACEHOLDERS`,
  nothing else: no attribute or index access, no format specs, no positional fields (a
  ``str.format`` template would render ``{user_id.__class__.__mro__}`` as a Python repr).
  A brace that does not open or close a known placeholder is an error, and so are the
  MQTT wildcards ``+`` and ``#``, NUL and other control characters in the literal text.
- A **value** is percent-encoded (UTF-8, nothing left safe: ``/`` ``+`` ``#`` ``%`` NUL
  and every control character are escaped), so it stays inside its level and cannot
  become a wildcard; the encoding is one-to-one, so two different ids never share a topic.
- A user's own topic (``contacts.mqtt_topic``) is a whole topic and must lie in the
  tenant's namespace too (:func:`check_topic`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

NAMESPACE_ROOT = "geopush"
"""The first level of every topic the service publishes."""
DEFAULT_TOPIC_TEMPLATE = "geopush/{tenant_id}/users/{user_id}"
PLACEHOLDERS = ("tenant_id", "tenant", "user_id", "campaign_id", "variant_id", "venue_id",
                "event")
"""What a template may name; ``tenant`` is another name for ``tenant_id``."""
TENANT_PLACEHOLDERS = ("{tenant_id}", "{tenant}")
MAX_TOPIC_BYTES = 65_535
"""The MQTT topic length field is 16 bits."""

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
"""C0, DEL and C1: MQTT forbids NUL in a topic and advises against the rest."""


class TopicError(ValueError):
    """A template or topic that must not be used; the message says why."""


def escape_level(value: str) -> str:
    """``value`` as text that stays inside one topic level (percent-encoding of its
    UTF-8, every reserved character escaped, ``%`` included, so it is one-to-one)."""
    return quote(value, safe="")


def namespace(tenant_id: str) -> str:
    """The prefix of every topic of ``tenant_id``: ``geopush/<tenant>/``."""
    return f"{NAMESPACE_ROOT}/{escape_level(tenant_id)}/"


def check_topic(topic: str, tenant_id: str) -> None:
    """Raise :class:`TopicError` unless ``topic`` is a publishable topic (no wildcard,
    no control character, within the length limit) inside ``tenant_id``'s namespace."""
    prefix = namespace(tenant_id)
    if not topic.startswith(prefix) or len(topic) == len(prefix):
        raise TopicError(f"MQTT topic {topic!r} is outside the tenant's namespace "
                         f"(it must start with {prefix!r} and go on after it)")
    if "+" in topic or "#" in topic or _CONTROL.search(topic):
        raise TopicError(f"MQTT topic {topic!r} holds a wildcard or a control character")
    if len(topic.encode()) > MAX_TOPIC_BYTES:
        raise TopicError(f"MQTT topic longer than {MAX_TOPIC_BYTES} bytes")


@dataclass(frozen=True, slots=True)
class TopicTemplate:
    """A parsed topic template (see the module doc); :meth:`render` fills it in."""

    text: str
    parts: tuple[tuple[bool, str], ...]
    """``(is_placeholder, literal text or placeholder name)`` in order."""

    @classmethod
    def parse(cls, text: str) -> TopicTemplate:
        """The template ``text``; raises :class:`TopicError` saying what is wrong."""
        levels = text.split("/")
        if (len(levels) < 3 or levels[0] != NAMESPACE_ROOT
                or levels[1] not in TENANT_PLACEHOLDERS or not "".join(levels[2:])):
            raise TopicError(
                f"{text!r} must start with {NAMESPACE_ROOT}/{{tenant_id}}/ and go on after "
                "it: every topic of a tenant lies under its own namespace")
        parts: list[tuple[bool, str]] = []
        at = 0
        for match in _PLACEHOLDER.finditer(text):
            parts.append((False, _literal(text, text[at:match.start()])))
            name = match.group(1)
            if name not in PLACEHOLDERS:
                raise TopicError(f"{text!r}: {{{name}}} is not a placeholder; a template "
                                 f"may use {', '.join('{' + p + '}' for p in PLACEHOLDERS)}")
            parts.append((True, name))
            at = match.end()
        parts.append((False, _literal(text, text[at:])))
        return cls(text, tuple(p for p in parts if p[0] or p[1]))

    def render(self, values: Mapping[str, str]) -> str:
        """The topic with each placeholder replaced by its escaped value from ``values``
        (keyed by :data:`PLACEHOLDERS`; ``tenant`` falls back to ``tenant_id``).
        Raises ``KeyError`` for a name ``values`` lacks."""
        out = []
        for is_placeholder, text in self.parts:
            if not is_placeholder:
                out.append(text)
                continue
            name = "tenant_id" if text == "tenant" and "tenant" not in values else text
            out.append(escape_level(values[name]))
        return "".join(out)


def _literal(template: str, text: str) -> str:
    if "{" in text or "}" in text:
        raise TopicError(f"{template!r}: a brace that does not open or close a "
                         "placeholder (write placeholders as {user_id})")
    if "+" in text or "#" in text or _CONTROL.search(text):
        raise TopicError(f"{template!r} holds an MQTT wildcard (+ or #) or a control "
                         "character")
    return text
