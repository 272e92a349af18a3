"""Every string a client can send has a length limit and every array a size limit, and
the OpenAPI document says so: a walk over every request body and parameter schema."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from server.app import OPERATIONS
from server.openapi import build_openapi
from server.settings import Settings


def _document() -> dict[str, Any]:
    return build_openapi(OPERATIONS, version="test", settings=Settings())


def _walk(schema: Any, doc: dict[str, Any], path: str,
          seen: set[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema node under ``schema`` with its path, ``$ref`` followed once."""
    if not isinstance(schema, dict):
        return
    ref = schema.get("$ref")
    if isinstance(ref, str):
        if ref in seen:
            return
        name = ref.rsplit("/", 1)[-1]
        yield from _walk(doc["components"]["schemas"][name], doc, f"{path}<{name}>",
                         seen | {ref})
        return
    yield path, schema
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        for i, sub in enumerate(schema.get(key, [])):
            yield from _walk(sub, doc, f"{path}.{key}[{i}]", seen)
    for name, sub in schema.get("properties", {}).items():
        yield from _walk(sub, doc, f"{path}.{name}", seen)
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            yield from _walk(schema[key], doc, f"{path}.{key}", seen)


def _inputs(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for route, item in doc["paths"].items():
        for method, op in item.items():
            where = f"{method.upper()} {route}"
            for param in op.get("parameters", []):
                yield from _walk(param["schema"], doc, f"{where} ?{param['name']}", set())
            for media, content in op.get("requestBody", {}).get("content", {}).items():
                yield from _walk(content["schema"], doc, f"{where} [{media}]", set())


def _types(schema: dict[str, Any]) -> set[str]:
    kind = schema.get("type")
    return {kind} if isinstance(kind, str) else set(kind or ())


def test_every_string_a_client_sends_has_a_max_length() -> None:
    doc = _document()
    unbounded = sorted({
        path for path, schema in _inputs(doc)
        if "string" in _types(schema) and "maxLength" not in schema
        and "enum" not in schema and "const" not in schema
        and schema.get("format") != "binary"})
    assert unbounded == []


def test_every_array_a_client_sends_has_max_items() -> None:
    doc = _document()
    unbounded = sorted({path for path, schema in _inputs(doc)
                        if "array" in _types(schema) and "maxItems" not in schema})
    assert unbounded == []


def test_every_request_body_states_its_size_limit() -> None:
    doc = _document()
    bodies = [(route, method, op["requestBody"]) for route, item in doc["paths"].items()
              for method, op in item.items() if "requestBody" in op]
    assert bodies and all(isinstance(body.get("x-max-bytes"), int) for *_, body in bodies)
    limits = {(route, method): body["x-max-bytes"] for route, method, body in bodies}
    assert limits[("/v1/pings", "post")] == Settings().max_pings_body_bytes
    assert limits[("/v1/venues/import", "post")] == Settings().max_body_bytes
    assert limits[("/v1/campaigns", "post")] == Settings().max_json_body_bytes
