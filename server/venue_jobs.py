"""The CPU-heavy parts of venue writes, as jobs for the venue worker processes.

Each job takes bytes and plain values and answers plain values, all picklable: the
body as the client sent it (decoded), the venue limits, the stored ancestors a
``parent_id`` names. It parses the JSON, checks the request's schema, validates the
geometries (make_valid, simplification) and writes out each valid venue's stored form
(:class:`~server.store.codec.EncodedVenue`) and, for a PUT, the answer's body, so the
server process receives a few finished objects instead of building and walking
hundreds of thousands of them under its GIL. A client's mistake comes back as
:class:`Rejected` (the error the route answers), never as an exception: an
exception's pickled form loses the error's fields.

Jobs run in a worker process (:class:`server.venue_builds.VenueWorkers`) or, with no
workers configured, in a thread of the server; they answer the same either way.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, TypeVar

import orjson
from pydantic import ValidationError

from server.api.context import dumps, loads
from server.api.schemas import VenueFeature
from server.errors import ApiError, core_errors, from_validation_error
from server.store.codec import EncodedVenue, venue_from_feature
from venues import (
    FILE_LEVEL,
    Problem,
    VenueLimits,
    VenueLoad,
    load_venues,
    parse_feature_collection,
    venue_to_feature,
)
from venues.model import Venue
from venues.outline import Outline

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Rejected:
    """A client error found in a worker: the :class:`ApiError` the route raises."""

    status: int
    code: str
    message: str
    field: str | None
    details: tuple[Mapping[str, Any], ...] = ()

    def error(self) -> ApiError:
        return ApiError(self.status, self.code, self.message, field=self.field,
                        details=self.details)


@dataclass(frozen=True, slots=True)
class NeedsParents:
    """The features name these parents: fetch the stored ones (and their ancestors,
    never the request's own ``own_ids``) and run the job again with them (the parent
    check validates a store against its stored mall)."""

    parent_ids: tuple[str, ...]
    own_ids: frozenset[str]


@dataclass(frozen=True, slots=True)
class PutJob:
    """``PUT /v1/venues/{venue_id}``'s body. ``parents``: the stored ancestors of the
    venue (``None``: not fetched yet)."""

    body: bytes
    venue_id: str
    limits: VenueLimits
    repair: bool
    parents: tuple[Venue, ...] | None = None


@dataclass(frozen=True, slots=True)
class PutValidated:
    """The venue as it will be stored, its problems that are only warnings, the
    answer's body, and the positions the request's geometry had."""

    venue: EncodedVenue
    warnings: tuple[Problem, ...]
    body: bytes
    positions: int


@dataclass(frozen=True, slots=True)
class ImportJob:
    """``POST /v1/venues/import``'s JSON body (``upload_name`` None) or uploaded file."""

    body: bytes
    limits: VenueLimits
    strict: bool
    repair: bool
    max_features: int
    upload_name: str | None = None
    upload_suffix: str = ""
    parents: tuple[Venue, ...] | None = None
    outlines: bool = False
    """Carry each feature's outline in the report (a dry run's map)."""


@dataclass(frozen=True, slots=True)
class ImportValidated:
    """The validation report of an import: its venues in their stored form.
    ``own_features``: how many features came from the request (the parents appended
    after them are left out of the report); ``appended``: those parents' ids."""

    load: VenueLoad
    own_features: int
    appended: frozenset[str]
    positions: int


# --------------------------------------------------------------------------- jobs


def validate_put(job: PutJob) -> PutValidated | NeedsParents | Rejected:
    """Validate one venue of a PUT as the route used to, in this process."""
    return _answered(lambda: _validate_put(job))


def validate_import(job: ImportJob) -> ImportValidated | NeedsParents | Rejected:
    """Validate an import's collection or file as the route used to, in this process."""
    if job.upload_name is not None:
        return _answered(lambda: _load_upload(job))
    return _answered(lambda: _validate_import(job))


def _answered(job: Callable[[], T]) -> T | Rejected:
    try:
        return job()
    except ApiError as exc:
        return _rejected(exc)
    except ValidationError as exc:
        return _rejected(from_validation_error(exc))


def _rejected(exc: ApiError) -> Rejected:
    return Rejected(exc.status, exc.code, exc.message, exc.field, tuple(exc.details))


def _validate_put(job: PutJob) -> PutValidated | NeedsParents:
    obj = _json(job.body)
    VenueFeature.model_validate(obj)
    feature = dict(obj)
    props = dict(feature.get("properties") or {})
    vid = job.venue_id
    for field, given in (("id", feature.get("id")), ("properties.id", props.get("id"))):
        if given is not None and str(given) != vid:
            raise ApiError(422, "conflicting_id",
                           f"{field} is {given!r} but the path names {vid!r}", field=field)
    props["id"] = vid
    feature["id"] = vid
    feature["properties"] = props
    parent = _parent_of(feature)
    if job.parents is None and parent is not None and parent != vid:
        return NeedsParents((parent,), frozenset({vid}))
    collection = {"type": "FeatureCollection",
                  "features": [feature, *_parent_features(job.parents, {vid})]}
    with core_errors():
        load = parse_feature_collection(collection, source="request body",
                                        repair=job.repair, limits=job.limits)
    problems = [p for p in load.problems if p.feature_index in (0, FILE_LEVEL)
                and p.code != "not_a_feature_collection"]
    errors = [p for p in problems if p.is_error]
    venue = next((v for v in load.venues if v.id == vid), None)
    if errors or venue is None:
        first = errors[0] if errors else None
        raise ApiError(
            422, first.code if first else "invalid_venue",
            first.message if first else "the venue was rejected",
            field=(first.field or None) if first else None,
            details=[{"field": p.field or None, "code": p.code, "message": p.message}
                     for p in errors])
    warnings = tuple(p for p in problems if not p.is_error)
    return PutValidated(encoded(venue), warnings, feature_body(venue, warnings),
                        positions(feature.get("geometry")))


def _validate_import(job: ImportJob) -> ImportValidated | NeedsParents:
    obj = _json(job.body)
    if not (isinstance(obj, dict) and obj.get("type") == "FeatureCollection"
            and isinstance(obj.get("features"), list)):
        with core_errors():
            load = parse_feature_collection(obj, source="request body", strict=job.strict,
                                            repair=job.repair, limits=job.limits,
                                            outlines=job.outlines)
        return ImportValidated(_encoded_load(load), load.summary.features, frozenset(),
                               positions(obj))
    features = list(obj["features"])
    if len(features) > job.max_features:
        raise ApiError(422, "too_many_items", f"{len(features):,} features, more than "
                       f"{job.max_features:,} in one import", field="features")
    own_ids = {i for f in features if (i := _id_of(f)) is not None}
    parents = [p for f in features if (p := _parent_of(f)) is not None]
    if job.parents is None and any(p not in own_ids for p in parents):
        return NeedsParents(tuple(dict.fromkeys(p for p in parents if p not in own_ids)),
                            frozenset(own_ids))
    stored = _parent_features(job.parents, own_ids)
    extra = {k: v for k, v in obj.items() if k not in {"type", "features"}}
    collection = {**extra, "type": "FeatureCollection", "features": [*features, *stored]}
    with core_errors():
        load = parse_feature_collection(collection, source="request body",
                                        strict=job.strict, repair=job.repair,
                                        limits=job.limits, outlines=job.outlines)
    appended = frozenset(v.id for v in job.parents or () if v.id not in own_ids)
    return ImportValidated(_encoded_load(load), len(features), appended,
                           positions(features))


def _load_upload(job: ImportJob) -> ImportValidated:
    fd, path = tempfile.mkstemp(prefix="geopush-import-", suffix=job.upload_suffix)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(job.body)
        with core_errors(field="file"):
            # Messages name the upload, never the temporary file (a server path).
            load = load_venues(path, strict=job.strict, repair=job.repair,
                               name=job.upload_name, limits=job.limits,
                               outlines=job.outlines)
    finally:
        os.unlink(path)
    return ImportValidated(_encoded_load(load), load.summary.features, frozenset(),
                           sum(_venue_positions(v) for v in load.venues))


# --------------------------------------------------------------------------- helpers


def encoded(venue: Venue) -> EncodedVenue:
    """``venue`` in the form a store writes and reads back, with its feature text."""
    text = orjson.dumps(venue_to_feature(venue)).decode()
    plain = venue_from_feature(orjson.loads(text))
    return EncodedVenue(**{f.name: getattr(plain, f.name) for f in fields(Venue)},
                        feature_json=text)


def feature_body(venue: Venue, warnings: Sequence[Problem]) -> bytes:
    """The answer of a PUT: the venue's feature, with its warnings if any."""
    out = venue_to_feature(venue)
    if warnings:
        out["warnings"] = [problem_json(p) for p in warnings]
    return dumps(out)


def problem_json(p: Problem) -> dict[str, Any]:
    return {"feature_index": p.feature_index, "feature_id": p.feature_id, "field": p.field,
            "code": p.code, "message": p.message, "severity": p.severity.value}


def outline_json(o: Outline) -> dict[str, Any]:
    return {"feature_index": o.feature_index, "geometry": o.geometry, "radius_m": o.radius_m,
            "simplified": o.simplified}


def positions(obj: Any) -> int:
    """Coordinate positions (``[lng, lat]`` pairs) anywhere in ``obj``: the size of the
    geometry work a request asked for, valid or not."""
    count = 0
    for item in _walk(obj):
        if _is_position(item):
            count += 1
    return count


def _walk(obj: Any) -> Iterator[Any]:
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, list) and not _is_position(item):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
        yield item


def _is_position(item: Any) -> bool:
    return (isinstance(item, list) and 2 <= len(item) <= 3
            and all(isinstance(n, int | float) and not isinstance(n, bool) for n in item))


def _venue_positions(venue: Venue) -> int:
    import shapely  # noqa: PLC0415 - only uploads count this way

    return 1 if venue.shape is None else int(shapely.get_num_coordinates(venue.shape))


def _encoded_load(load: VenueLoad) -> VenueLoad:
    return VenueLoad(load.source, tuple(encoded(v) for v in load.venues), load.problems,
                     load.summary, load.attribution, load.outlines)


def _json(body: bytes) -> Any:
    if not body.strip():
        raise ApiError(400, "invalid_json", "the request body is empty; send a JSON object")
    return loads(body)


def _parent_features(parents: Sequence[Venue] | None, own: set[str]) -> list[Any]:
    return [venue_to_feature(v) for v in parents or () if v.id not in own]


def _parent_of(feature: Any) -> str | None:
    if isinstance(feature, Mapping):
        props = feature.get("properties")
        if isinstance(props, Mapping) and isinstance(props.get("parent_id"), str):
            return str(props["parent_id"])
    return None


def _id_of(feature: Any) -> str | None:
    if not isinstance(feature, Mapping):
        return None
    props = feature.get("properties")
    if isinstance(props, Mapping) and isinstance(props.get("id"), str | int):
        return str(props["id"])
    fid = feature.get("id")
    return str(fid) if isinstance(fid, str | int) else None
