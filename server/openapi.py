"""The OpenAPI 3.1 document, built from the operation list and the pydantic models.

Model schemas come from ``pydantic.json_schema.models_json_schema`` with a ref template
into ``#/components/schemas``; request bodies use the models' validation schema,
responses their serialization schema. Every protected operation documents its security
schemes and the error answers (401, 403, 429 and its own), all with the one error shape.
``/docs`` renders the same document server-side as one self-contained HTML page.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from server.api.registry import BASIC, BEARER, QUERY_KEY, Operation
from server.api.schemas import ErrorBody
from server.settings import Settings

REF = "#/components/schemas/{model}"
ERROR_TEXT = {
    400: "Body is not JSON (invalid_json)",
    401: "No or unknown API key (unauthorized)",
    403: "The key's role may not do this (forbidden)",
    404: "Not found (not_found)",
    409: "Conflict with the current state",
    413: "Body over the size limit (payload_too_large); the message states the limit "
         "in bytes, counted after gzip decoding",
    422: "Validation failed; error.field names the field",
    429: "Rate limited (rate_limited); see Retry-After",
}
_PROTECTED_ERRORS = (401, 403, 429)
PATH_ID_TEXT = ("1 to 256 characters, percent-encoded in the path: an id with '/' (every "
                "OpenStreetMap venue id) sends it as %2F, so osm:way/289767497 is "
                "osm%3Away%2F289767497; an unencoded '/' answers 404 saying so")


def _models(ops: Iterable[Operation]) -> list[tuple[type[BaseModel], JsonSchemaMode]]:
    found: dict[tuple[type[BaseModel], str], None] = {(ErrorBody, "serialization"): None}
    for op in ops:
        if op.body is not None:
            if op.body.model is not None:
                found[(op.body.model, "validation")] = None
            for schema in op.body.media.values():
                if isinstance(schema, type):
                    found[(schema, "validation")] = None
        for response in op.responses.values():
            if isinstance(response, type):
                found[(response, "serialization")] = None
    return [(m, mode) for m, mode in found]  # type: ignore[misc]


def build_openapi(ops: list[Operation], *, version: str, server_url: str | None = None,
                  settings: Settings | None = None) -> dict[str, Any]:
    """The document for ``ops``; with ``settings``, each request body states its size
    limit (``x-max-bytes`` and a line of the description)."""
    models = _models(ops)
    refs, definitions = models_json_schema(models, ref_template=REF)
    components = dict(definitions.get("$defs", {}))

    def schema_of(obj: type[BaseModel] | Mapping[str, Any], mode: str) -> dict[str, Any]:
        if isinstance(obj, type):
            return dict(refs[(obj, mode)])  # type: ignore[index]
        return dict(obj)

    error_ref = schema_of(ErrorBody, "serialization")
    paths: dict[str, dict[str, Any]] = {}
    for op in ops:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(
            op, schema_of, error_ref, settings)
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "geopush",
            "version": version,
            "description": "Location-triggered push: pings in, geofence events and "
                           "contextual offers out. Every error is "
                           '{"error": {"code", "message", "field"}}.',
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                BEARER: {"type": "http", "scheme": "bearer",
                         "description": "Authorization: Bearer <API key>"},
                BASIC: {"type": "http", "scheme": "basic",
                        "description": "OwnTracks: any user name, the API key as password"},
                QUERY_KEY: {"type": "apiKey", "in": "query", "name": "key",
                            "description": "OsmAnd / Traccar Client: ?key=<API key>"},
            },
        },
        "security": [{BEARER: []}],
    }
    if server_url:
        doc["servers"] = [{"url": server_url}]
    return doc


def _operation(
    op: Operation,
    schema_of: Callable[[type[BaseModel] | Mapping[str, Any], str], dict[str, Any]],
    error_ref: dict[str, Any],
    settings: Settings | None,
) -> dict[str, Any]:
    """The OpenAPI operation object of ``op``; ``schema_of(model, mode)`` gives a model's
    schema reference, ``error_ref`` the error body's; with ``settings``, a request body
    states its size limit."""
    parameters = [
        {"name": name, "in": "path", "required": True, "description": PATH_ID_TEXT,
         "schema": {"type": "string", "minLength": 1, "maxLength": 256,
                    "pattern": "^[^\\x00-\\x1f\\x7f]+$"}}
        for name in _path_names(op.path)
    ]
    parameters += [
        {"name": p.name, "in": "query", "required": p.required, "schema": dict(p.schema),
         **({"description": p.description} if p.description else {})}
        for p in op.params
    ]
    operation: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": [op.tag],
        "parameters": parameters,
        "responses": {},
    }
    if op.description:
        operation["description"] = op.description
    if op.body is not None:
        content: dict[str, Any] = {}
        if op.body.model is not None:
            content["application/json"] = {"schema": schema_of(op.body.model, "validation")}
        for media, schema in op.body.media.items():
            content[media] = {"schema": schema_of(schema, "validation")}
        operation["requestBody"] = {"required": op.body.required, "content": content,
                                    **({"description": op.body.description}
                                       if op.body.description else {})}
        if settings is not None:
            limit = min(int(getattr(settings, op.body_limit)), settings.max_body_bytes)
            operation["requestBody"]["x-max-bytes"] = limit
            operation["description"] = (
                operation.get("description", "") + f"\n\nRequest body: at most "
                f"{limit:,} bytes after decoding (GEOPUSH_{op.body_limit.upper()}); "
                "larger is 413 payload_too_large.").strip()
    for status, response in sorted(op.responses.items()):
        entry: dict[str, Any] = {"description": "OK" if status < 300 else str(status)}
        if status == 201:
            entry["description"] = "Created"
        if response is not None:
            entry["content"] = {"application/json": {
                "schema": schema_of(response, "serialization")}}
        operation["responses"][str(status)] = entry
    errors = set(op.errors) | (set(_PROTECTED_ERRORS) if op.roles is not None else set())
    for status in sorted(errors):
        operation["responses"][str(status)] = {
            "description": ERROR_TEXT.get(status, "Error"),
            "content": {"application/json": {"schema": error_ref}},
        }
    if op.roles is not None:
        operation["security"] = [{scheme: []} for scheme in op.schemes]
        roles = ", ".join(sorted(r.value for r in op.roles))
        operation["description"] = (operation.get("description", "") +
                                    f"\n\nRoles: {roles}.").strip()
    else:
        operation["security"] = []
    return operation


def _path_names(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]


def docs_html(doc: Mapping[str, Any]) -> str:
    """A self-contained page listing every operation of ``doc`` (no scripts, no CDN)."""
    esc = html.escape
    rows = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            security = op.get("security") or []
            auth = ", ".join(k for s in security for k in s) or "public"
            params = ", ".join(p["name"] for p in op.get("parameters", []))
            body = ", ".join(op.get("requestBody", {}).get("content", {}))
            responses = ", ".join(op.get("responses", {}))
            description = esc(op.get("description", "")).replace("\n\n", "<br>")
            rows.append(
                f'<section id="{esc(op["operationId"])}"><h3><span class="m {esc(method)}">'
                f"{esc(method.upper())}</span> <code>{esc(path)}</code></h3>"
                f"<p>{esc(op.get('summary', ''))}</p><p>{description}</p>"
                f"<dl><dt>auth</dt><dd>{esc(auth)}</dd>"
                f"<dt>parameters</dt><dd>{esc(params) or '—'}</dd>"
                f"<dt>body</dt><dd>{esc(body) or '—'}</dd>"
                f"<dt>responses</dt><dd>{esc(responses)}</dd></dl></section>")
    info = doc["info"]
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{esc(info['title'])} API {esc(info['version'])}</title><style>"
        "body{font:15px/1.45 system-ui,sans-serif;max-width:60rem;margin:2rem auto;"
        "padding:0 1rem;color:#222}section{border-top:1px solid #ddd;padding:.4rem 0}"
        "h3{margin:.4rem 0}.m{display:inline-block;min-width:4.5rem;font-size:.8rem;"
        "padding:.1rem .3rem;border-radius:3px;color:#fff;background:#555;text-align:center}"
        ".get{background:#2a7}.post{background:#27a}.put{background:#a72}"
        ".patch{background:#a5a}.delete{background:#c33}dl{display:grid;"
        "grid-template-columns:7rem 1fr;margin:0}dt{color:#666}</style></head><body>"
        f"<h1>{esc(info['title'])} API <small>{esc(info['version'])}</small></h1>"
        f"<p>{esc(info.get('description', ''))}</p>"
        '<p>Machine-readable: <a href="/v1/openapi.json">/v1/openapi.json</a> '
        "(OpenAPI 3.1).</p>" + "".join(rows) + "</body></html>"
    )
