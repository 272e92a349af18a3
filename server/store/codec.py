"""How records become stored JSON and back; shared by both stores so they agree byte
for byte on what a row holds.

Venues are stored as their GeoJSON feature (:func:`venues.venue_to_feature`), the
format managers upload and the API returns. Reading one back trusts the row: it was
validated before it was written, so it is rebuilt directly, not revalidated.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import shapely
from shapely.geometry import shape

from geo.latlng import LatLng
from server.store.base import BBox, PolicyRecord
from triggers.decisions import LedgerEntry, TenantPolicy
from triggers.decisions.models import Contacts
from triggers.presence_events import Confidence, EventKind, ExitReason, PresenceEvent
from venues import venue_to_feature
from venues.model import Venue, VenueKind


def venue_feature(venue: Venue) -> dict[str, Any]:
    """The venue as stored: its GeoJSON feature, JSON-clean (lists, no tuples)."""
    out: dict[str, Any] = json.loads(json.dumps(venue_to_feature(venue)))
    return out


@dataclass(frozen=True, slots=True)
class EncodedVenue(Venue):
    """A venue that carries its stored form, written where it was validated (a venue
    worker process, off the server's GIL): ``feature_json`` is
    ``json.dumps(venue_feature(venue))``'s value, and the venue's fields are those of
    :func:`venue_from_feature` of it. The stores write that text as it is instead of
    serialising the outline again (milliseconds of the GIL per thousand vertices)."""

    feature_json: str = ""


def stored_form(venue: Venue) -> tuple[str, Venue]:
    """The feature text a store writes for ``venue`` and the plain venue it reads back
    (an :class:`EncodedVenue`'s own text; otherwise serialised here)."""
    if isinstance(venue, EncodedVenue):
        plain = Venue(**{f.name: getattr(venue, f.name) for f in fields(Venue)})
        return venue.feature_json, plain
    text = json.dumps(venue_feature(venue))
    return text, venue_from_feature(json.loads(text))


def venue_from_feature(feature: Mapping[str, Any]) -> Venue:
    """The venue of a stored feature (the inverse of :func:`venue_feature`)."""
    props = feature["properties"]
    geometry = feature["geometry"]
    common: dict[str, Any] = {
        "id": props["id"],
        "name": props["name"],
        "kind": VenueKind(props["kind"]),
        "tags": tuple(props.get("tags") or ()),
        "parent_id": props.get("parent_id"),
        "dwell_s": int(props["dwell_s"]),
        "opening_hours": props.get("opening_hours"),
        "timezone": props.get("timezone"),
        "metadata": dict(props.get("metadata") or {}),
        "enabled": bool(props.get("enabled", True)),
    }
    if geometry["type"] == "Point":
        lng, lat = geometry["coordinates"][:2]
        return Venue(center=LatLng(float(lat), float(lng)),
                     radius_m=float(props["radius_m"]), **common)
    return Venue(shape=shape(geometry), **common)


def venue_bbox(venue: Venue) -> BBox:
    """The venue's lon/lat bounding box (a circle's is widened by its radius)."""
    if venue.shape is not None:
        min_lng, min_lat, max_lng, max_lat = shapely.bounds(venue.shape).tolist()
        return BBox(min_lng, min_lat, max_lng, max_lat)
    assert venue.center is not None and venue.radius_m is not None
    dlat = venue.radius_m / 111_195.0
    dlng = dlat / max(math.cos(math.radians(venue.center.lat)), 1e-6)
    return BBox(venue.center.lng - dlng, venue.center.lat - dlat,
                venue.center.lng + dlng, venue.center.lat + dlat)


def bbox_intersects(a: BBox, b: BBox) -> bool:
    return (a.min_lng <= b.max_lng and b.min_lng <= a.max_lng
            and a.min_lat <= b.max_lat and b.min_lat <= a.max_lat)


def policy_json(record: PolicyRecord) -> dict[str, Any]:
    return {"policy": record.policy.model_dump(mode="json"), "presence": dict(record.presence)}


def policy_from_json(data: Mapping[str, Any] | None) -> PolicyRecord:
    if not data:
        return PolicyRecord()
    return PolicyRecord(TenantPolicy.model_validate(data["policy"]), dict(data["presence"]))


def event_from_row(row: Mapping[str, Any]) -> PresenceEvent:
    reason = row["reason"]
    return PresenceEvent(
        user_id=row["user_id"], venue_id=row["venue_id"], kind=EventKind(row["kind"]),
        at=float(row["at"]), visit_id=row["visit_id"],
        dwell_s=None if row["dwell_s"] is None else float(row["dwell_s"]),
        confidence=Confidence(row["confidence"]),
        reason=None if reason is None else ExitReason(reason), stale=bool(row["stale"]),
    )


def ledger_from_row(row: Mapping[str, Any]) -> LedgerEntry:
    return LedgerEntry(
        user_id=row["user_id"], campaign_id=row["campaign_id"], venue_id=row["venue_id"],
        variant_id=row["variant_id"], at=float(row["at"]), channel=row["channel"],
        control=bool(row["control"]),
    )


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch: objects merge recursively, ``null`` deletes a member,
    anything else replaces."""
    if not isinstance(patch, Mapping):
        return patch
    out = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def without_contact(contacts: Contacts, channel: str, address: str) -> Contacts | None:
    """``contacts`` without the dead ``address`` of ``channel`` (a device token of
    ``fcm`` / ``apns``, the ``email``, the ``phone`` of ``sms``); None when it is not
    there (nothing to change)."""
    if channel in ("fcm", "apns"):
        kept = tuple(d for d in contacts.devices
                     if not (d.platform == channel and d.token == address))
        if len(kept) == len(contacts.devices):
            return None
        return contacts.model_copy(update={"devices": kept})
    if channel == "email" and contacts.email == address:
        return contacts.model_copy(update={"email": None})
    if channel == "sms" and contacts.phone == address:
        return contacts.model_copy(update={"phone": None})
    return None


def expired_reason(previous: str | None) -> str:
    """``last_error`` of a delivery expired undelivered (keeping the last failure)."""
    base = "expired: the offer's TTL passed before it could be delivered"
    return base if not previous else f"{base} (last failure: {previous})"
