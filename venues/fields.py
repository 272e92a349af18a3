"""Checking a venue's business fields: the GeoJSON ``properties`` other than geometry.

Defaults: a missing ``kind`` is ``other``, ``dwell_s`` 300, ``enabled``
true, ``tags`` empty, ``metadata`` empty; a missing ``name`` falls back to the id.
An explicit ``null`` means "not given". Pure: no IO (zoneinfo reads the tz database,
which is part of the runtime, not input). ``opening_hours`` text that the
``opening-hours-py`` parser rejects is a warning, not an error: campaigns treat such a
venue as open.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import opening_hours as osm_hours

from venues.limits import (
    MAX_ID_CHARS,
    MAX_METADATA_BYTES,
    MAX_NAME_CHARS,
    MAX_OPENING_HOURS_CHARS,
    MAX_TAG_CHARS,
    MAX_TAGS,
    MAX_TIMEZONE_CHARS,
)
from venues.model import DEFAULT_DWELL_S, VenueKind
from venues.problems import Code, Findings
from venues.values import first_non_finite, is_non_finite, is_number, show, type_name

MAX_DWELL_S = 86_400
"""Longest dwell threshold: a day. A longer one can never fire within one visit, since
silence ends a visit after 15 minutes and venues close at night."""

KNOWN_PROPERTIES = frozenset({
    "id", "name", "kind", "tags", "parent_id", "dwell_s", "opening_hours", "timezone",
    "metadata", "enabled", "radius_m",
})
"""Properties geopush reads; any other is reported once per file as unused."""

_KINDS = ", ".join(k.value for k in VenueKind)

_PEST_POSITION = re.compile(r"-->\s*(\d+):(\d+)")
"""Where the opening-hours parser stopped: `` --> line:column`` in its error text."""


@dataclass(frozen=True, slots=True)
class VenueFields:
    """The checked business fields of one venue, defaults applied."""

    name: str | None = None
    kind: VenueKind = VenueKind.OTHER
    tags: tuple[str, ...] = ()
    parent_id: str | None = None
    dwell_s: int = DEFAULT_DWELL_S
    opening_hours: str | None = None
    timezone: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    enabled: bool = True


def feature_id(feature: Mapping[str, object], props: Mapping[str, object],
               findings: Findings) -> str | None:
    """The venue id from the feature's ``id`` or ``properties.id`` (both: they must agree).

    A GeoJSON numeric id is accepted and used as its decimal string.
    """
    errors_before = findings.error_count()
    outer = _id_text(feature.get("id"), "id", findings)
    inner = _id_text(props.get("id"), "properties.id", findings)
    if outer is not None and inner is not None and outer != inner:
        findings.error(
            "id", Code.CONFLICTING_ID,
            f"feature id {outer!r} and properties.id {inner!r} differ",
        )
        return outer
    vid = outer if outer is not None else inner
    if vid is None and findings.error_count() == errors_before:
        findings.error("id", Code.MISSING_ID, "the venue has no id (feature id or properties.id)")
    return vid


def _id_text(value: object, field_name: str, findings: Findings) -> str | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str):
        if len(value) > MAX_ID_CHARS:
            findings.error(field_name, Code.TEXT_TOO_LONG,
                           f"the id has {len(value):,} characters, more than {MAX_ID_CHARS}")
            return None
        if value.strip():
            return value
        findings.error(field_name, Code.MISSING_ID, "the id is blank")
        return None
    findings.error(
        field_name, Code.INVALID_TYPE,
        f"an id must be a string or an integer, not {type_name(value)} {show(value)}",
    )
    return None


def check_fields(props: Mapping[str, object], findings: Findings) -> VenueFields:
    """Check the business properties; problems go to ``findings``.

    Returns the fields with defaults for anything missing or wrong (the caller
    rejects the venue when ``findings`` has errors).
    """
    fields = VenueFields(
        name=_optional_str(props, "name", findings, MAX_NAME_CHARS),
        kind=_kind(props.get("kind"), findings),
        tags=_tags(props.get("tags"), findings),
        parent_id=_optional_str(props, "parent_id", findings, MAX_ID_CHARS),
        dwell_s=_dwell_s(props.get("dwell_s"), findings),
        opening_hours=_optional_str(props, "opening_hours", findings,
                                    MAX_OPENING_HOURS_CHARS),
        timezone=_timezone(props.get("timezone"), findings),
        metadata=_metadata(props.get("metadata"), findings),
        enabled=_enabled(props.get("enabled"), findings),
    )
    _check_opening_hours(props.get("opening_hours"), fields.metadata, findings)
    return fields


def _optional_str(props: Mapping[str, object], key: str, findings: Findings,
                  max_chars: int) -> str | None:
    value = props.get(key)
    if isinstance(value, str) and len(value) > max_chars:
        findings.error(f"properties.{key}", Code.TEXT_TOO_LONG,
                       f"{key} has {len(value):,} characters, more than {max_chars:,}")
        return None
    if value is None or isinstance(value, str):
        return value
    findings.error(
        f"properties.{key}", Code.INVALID_TYPE,
        f"{key} must be a string, not {type_name(value)} {show(value)}",
    )
    return None


def _kind(value: object, findings: Findings) -> VenueKind:
    if value is None:
        return VenueKind.OTHER
    if not isinstance(value, str):
        findings.error(
            "properties.kind", Code.INVALID_TYPE,
            f"kind must be a string, not {type_name(value)} {show(value)}",
        )
        return VenueKind.OTHER
    try:
        return VenueKind(value)
    except ValueError:
        close = difflib.get_close_matches(value.lower(), [k.value for k in VenueKind], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        findings.error(
            "properties.kind", Code.UNKNOWN_KIND,
            f"kind {show(value)} is not one of: {_KINDS}{hint}",
        )
        return VenueKind.OTHER


def _tags(value: object, findings: Findings) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        findings.error(
            "properties.tags", Code.INVALID_TYPE,
            f"tags must be an array of strings, not {type_name(value)} {show(value)}",
        )
        return ()
    if len(value) > MAX_TAGS:
        findings.error("properties.tags", Code.TOO_MANY_ITEMS,
                       f"{len(value):,} tags, more than {MAX_TAGS}")
        return ()
    for i, tag in enumerate(value):
        if not isinstance(tag, str):
            findings.error(
                f"properties.tags[{i}]", Code.INVALID_TYPE,
                f"a tag must be a string, not {type_name(tag)} {show(tag)}",
            )
            return ()
        if len(tag) > MAX_TAG_CHARS:
            findings.error(f"properties.tags[{i}]", Code.TEXT_TOO_LONG,
                           f"a tag of {len(tag):,} characters, more than {MAX_TAG_CHARS}")
            return ()
    return tuple(value)


def _dwell_s(value: object, findings: Findings) -> int:
    if value is None:
        return DEFAULT_DWELL_S
    field_name = "properties.dwell_s"
    number = value if is_number(value) else None
    if is_non_finite(value):
        findings.error(field_name, Code.NON_FINITE_NUMBER, f"dwell_s {show(value)} is not finite")
        return DEFAULT_DWELL_S
    # 300.0 is accepted: many tools write every JSON number as a float.
    if not isinstance(number, int | float) or not float(number).is_integer():
        findings.error(
            field_name, Code.INVALID_TYPE,
            f"dwell_s must be a whole number of seconds, not {type_name(value)} {show(value)}",
        )
        return DEFAULT_DWELL_S
    seconds = int(number)
    if not 1 <= seconds <= MAX_DWELL_S:
        findings.error(
            field_name, Code.DWELL_OUT_OF_RANGE,
            f"dwell_s {seconds} is outside 1 .. {MAX_DWELL_S} s",
        )
        return DEFAULT_DWELL_S
    return seconds


def _timezone(value: object, findings: Findings) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        findings.error(
            "properties.timezone", Code.INVALID_TYPE,
            f"timezone must be an IANA zone name string, not {type_name(value)} {show(value)}",
        )
        return None
    if len(value) > MAX_TIMEZONE_CHARS or not _is_zone(value):
        findings.error(
            "properties.timezone", Code.UNKNOWN_TIMEZONE,
            f"timezone {show(value)} is not an IANA time zone (such as 'Europe/Helsinki')",
        )
        return None
    return value


@functools.lru_cache(maxsize=512)
def _is_zone(key: str) -> bool:
    try:
        zoneinfo.ZoneInfo(key)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _check_opening_hours(top: object, metadata: Mapping[str, object],
                         findings: Findings) -> None:
    """Warn when the opening hours campaigns would read are not OSM ``opening_hours``.

    Campaigns read the top-level text, or ``metadata.opening_hours`` when there is none
    (OSM exports often keep it there), and treat a venue whose text does not parse as
    always open; the venue is still imported and keeps its text unchanged.
    """
    if isinstance(top, str):
        name, text = "opening_hours", top
    elif top is None and isinstance(metadata.get("opening_hours"), str):
        name, text = "metadata.opening_hours", str(metadata["opening_hours"])
    else:
        return  # none given, or a wrong type already reported as an error
    problem = opening_hours_problem(text)
    if problem is not None:
        findings.warning(
            f"properties.{name}", Code.OPENING_HOURS_NOT_UNDERSTOOD,
            f"{name} {problem}; campaigns will treat the venue as open",
        )


@functools.lru_cache(maxsize=1024)
def opening_hours_problem(text: str) -> str | None:
    """``None`` when ``text`` is OSM opening_hours syntax, else what is wrong with it:
    ``'Mo-Fr: 10:00' is not OSM opening_hours syntax (at column 6)``, the column (1-based)
    being where the parser stopped, when its error says."""
    if osm_hours.validate(text):
        return None
    where = ""
    try:
        osm_hours.OpeningHours(text)
    except Exception as exc:  # ParserError, which the package's type stubs lack
        match = _PEST_POSITION.search(str(exc))
        if match is not None and match.group(1) == "1":
            where = f" (at column {match.group(2)})"
    return f"{show(text, limit=300)} is not OSM opening_hours syntax{where}"


def _metadata(value: object, findings: Findings) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        findings.error(
            "properties.metadata", Code.INVALID_TYPE,
            f"metadata must be an object, not {type_name(value)} {show(value)}",
        )
        return {}
    where = first_non_finite(value)
    if where is not None:
        # Free JSON, but stored and served as JSON: NaN and the infinities have no JSON
        # form (and PostgreSQL's jsonb refuses them).
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in where)
        findings.error(f"properties.metadata{path}", Code.NON_FINITE_NUMBER,
                       f"metadata{path} is not a finite number")
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str))
    if size > MAX_METADATA_BYTES:
        findings.error("properties.metadata", Code.METADATA_TOO_LARGE,
                       f"metadata is {size:,} characters of JSON, more than "
                       f"{MAX_METADATA_BYTES:,}")
        return {}
    return dict(value)


def _enabled(value: object, findings: Findings) -> bool:
    if value is None:
        return True
    if not isinstance(value, bool):
        findings.error(
            "properties.enabled", Code.INVALID_TYPE,
            f"enabled must be true or false, not {type_name(value)} {show(value)}",
        )
        return True
    return value
