"""Public service routes: ``/`` (the way to the docs), ``/healthz``, ``/readyz``,
``/metrics``, ``/v1/openapi.json``, ``/docs``. None needs a key; ``/metrics`` should be
reachable only from the scraper's network (it says how busy the service is, nothing
about users)."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from server.api.context import FANOUT, HUB, METRICS, OPENAPI, OUTBOX_METRICS, json_response, store
from server.api.registry import Operation
from server.api.schemas import Health, Ready, ServiceIndex
from server.openapi import docs_html
from server.store.base import DeliveryStatus

log = logging.getLogger("geopush.http")



async def index(request: web.Request) -> web.Response:
    """The root leads to the docs: a browser (asking for HTML) is redirected to
    ``/docs``; anything else gets the links as JSON."""
    if "text/html" in request.headers.get("Accept", ""):
        raise web.HTTPFound("/docs")
    doc: dict[str, Any] = request.app[OPENAPI]
    return json_response(ServiceIndex(name="geopush", version=doc["info"]["version"],
                                      docs="/docs", openapi="/v1/openapi.json",
                                      health="/healthz", ready="/readyz"))


async def healthz(request: web.Request) -> web.Response:
    return json_response(Health(status="ok"))


async def readyz(request: web.Request) -> web.Response:
    readiness = await store(request).ready()
    # The live stream's fan-out is reported, not required: without it pings, decisions
    # and deliveries go on, and every message is still in the inbox.
    checks = {"store": readiness.detail, "stream_fanout": request.app[FANOUT].state()}
    return json_response(Ready(status="ready" if readiness.ok else "not_ready", checks=checks),
                         status=200 if readiness.ok else 503)


async def metrics(request: web.Request) -> web.Response:
    m = request.app[METRICS]
    the_store = store(request)
    depth = 0
    for tenant in await the_store.list_tenants():
        for status in (DeliveryStatus.PENDING, DeliveryStatus.FAILED):  # waiting to go
            depth += await the_store.count_deliveries(tenant.tenant_id, status)
    m.outbox_depth.set(depth)
    request.app[OUTBOX_METRICS].streams.set(request.app[HUB].online_count())
    return web.Response(body=m.render(), headers={"Content-Type": m.content_type})


async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(request.app[OPENAPI])


async def docs(request: web.Request) -> web.Response:
    doc: dict[str, Any] = request.app[OPENAPI]
    return web.Response(text=docs_html(doc), content_type="text/html")


_TEXT = {"type": "string"}

OPERATIONS = [
    Operation("GET", "/", "index", "Where to start: links to the docs and the OpenAPI "
              "document", "service", index, None, responses={200: ServiceIndex, 302: None},
              description="A browser (Accept: text/html) is redirected to /docs; other "
                          "clients get the links as JSON."),
    Operation("GET", "/healthz", "healthz", "Liveness", "service", healthz, None,
              responses={200: Health}),
    Operation("GET", "/readyz", "readyz", "Readiness: the store is reachable and migrated",
              "service", readyz, None, responses={200: Ready, 503: Ready}),
    Operation("GET", "/metrics", "metrics", "Prometheus metrics (text format)", "service",
              metrics, None, responses={200: None}),
    Operation("GET", "/v1/openapi.json", "openapi", "This document", "service", openapi_json,
              None, responses={200: {"type": "object"}}),
    Operation("GET", "/docs", "docs", "Human-readable API docs (HTML)", "service", docs, None,
              responses={200: None}),
]
