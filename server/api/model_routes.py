"""Learned models: ``GET /v1/models`` (the tenant's versions with their offline
evaluation and which is promoted) and ``POST /v1/models/train`` (a training run now,
:func:`server.models.train_tenant`). :func:`render_table` is what ``geopush model
report`` prints."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from aiohttp import web

from server.api.context import CORES, json_response, now, path_id, read_json, store
from server.api.registry import MANAGE, Operation, Param, not_found
from server.auth import Principal
from server.errors import ApiError
from server.models import ModelCache, train_tenant
from server.sendtime_preview import sendtime_preview
from server.store.roles.models import MODEL_KINDS, ModelKind, ModelRecord

MODEL_CACHE = web.AppKey("model_cache", ModelCache)


def model_doc(record: ModelRecord) -> dict[str, Any]:
    """A model version as the API shows it (no blob)."""
    return {"kind": record.kind, "version": record.version, "created_at": record.created_at,
            "promoted": record.promoted, "evaluation": record.evaluation}


def _kind_of(value: Any, field: str) -> ModelKind:
    if value not in MODEL_KINDS:
        raise ApiError(422, "validation_error",
                       f"kind must be one of {', '.join(MODEL_KINDS)}, not {value!r}",
                       field=field)
    return cast("ModelKind", value)


async def list_models(request: web.Request, principal: Principal) -> web.Response:
    kind_text = request.query.get("kind")
    kind = None if kind_text is None else _kind_of(kind_text, "kind")
    records = await store(request).list_models(principal.tenant_id, kind)
    return json_response({"models": [model_doc(r) for r in records]})


async def train_models(request: web.Request, principal: Principal) -> web.Response:
    body = await read_json(request, allow_empty=True)
    kinds = _kinds(body)
    at = now(request)
    done = await train_tenant(store(request), principal.tenant_id, at, kinds=kinds)
    if MODEL_CACHE in request.app:
        await request.app[MODEL_CACHE].refresh(principal.tenant_id, at)
    return json_response({"models": [model_doc(r) for r in done]})


def _kinds(body: Any) -> Sequence[ModelKind]:
    if body is None or body == {}:
        return MODEL_KINDS
    if not isinstance(body, dict) or set(body) - {"kinds"}:
        raise ApiError(422, "validation_error",
                       "the body must be an object {\"kinds\": [...]} or empty", field=None)
    kinds = body.get("kinds")
    if not isinstance(kinds, list) or not kinds:
        raise ApiError(422, "validation_error", "kinds must be a non-empty array",
                       field="kinds")
    chosen = [_kind_of(k, f"kinds[{i}]") for i, k in enumerate(kinds)]
    for i, kind in enumerate(chosen):
        if kind in chosen[:i]:
            # Each entry is a training run: a repeated kind would train it again (a body
            # of 5,000 "interests" meant 5,000 runs and versions).
            raise ApiError(422, "validation_error", f"kind {kind!r} is given twice",
                           field=f"kinds[{i}]")
    return chosen


async def preview_sendtime(request: web.Request, principal: Principal) -> web.Response:
    cid = path_id(request)
    campaign = await store(request).get_campaign(principal.tenant_id, cid)
    if campaign is None:
        raise not_found("campaign", cid)
    scheduled = campaign.trigger.scheduled
    if scheduled is None or scheduled.best_time is None:
        raise ApiError(422, "not_best_time", f"campaign {cid!r} is not a scheduled campaign "
                       "with best_time", field="trigger.scheduled.best_time")
    at = now(request)
    core = await request.app[CORES].get(store(request), principal.tenant_id)
    view = await request.app[MODEL_CACHE].view(principal.tenant_id, at) \
        if MODEL_CACHE in request.app else None
    doc = await sendtime_preview(store(request), principal.tenant_id, scheduled.best_time,
                                 policy=core.policy, view=view, now=at)
    return json_response({"campaign_id": cid, **doc})


def render_table(models: Sequence[dict[str, Any]]) -> str:
    """The versions as a text table: kind, version, when, held-out figure of the model
    and of the baselines, promoted, and the verdict."""
    lines = [f"{'kind':<10} {'ver':>4} {'created (UTC)':<20} {'events':>8} {'model':>7} "
             f"{'baseline':>9} {'promoted':<8} verdict"]
    for m in models:
        ev = m["evaluation"]
        lines.append(
            f"{m['kind']:<10} {m['version']:>4} {_when(m['created_at']):<20} "
            f"{ev.get('events', ''):>8} {_figure(ev.get('model')):>7} "
            f"{_figure(_best_baseline(ev)):>9} {'yes' if m['promoted'] else 'no':<8} "
            f"{ev.get('verdict', '')}")
    if not models:
        lines.append("(no model trained yet)")
    return "\n".join(lines)


def _best_baseline(ev: dict[str, Any]) -> float | None:
    values = [float(ev[k]) for k in ("recency_frequency", "popularity", "global_peak")
              if isinstance(ev.get(k), int | float)]
    return max(values) if values else None


def _figure(value: Any) -> str:
    return "-" if not isinstance(value, int | float) else f"{float(value):.4f}"


def _when(at: float) -> str:
    import datetime  # noqa: PLC0415 - only for the table

    return datetime.datetime.fromtimestamp(at, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")


_MODELS = {"type": "object", "description": "models: each version's kind, version, "
           "created_at, promoted and evaluation (held-out figures of the model and of "
           "its baselines, events and users it was trained on, the verdict)",
           "additionalProperties": True}

_PREVIEW = {"type": "object", "description": "campaign_id, users, with_data, fallback, "
            "fallback_time, window, times (local HH:MM → users)",
            "additionalProperties": True}

OPERATIONS = [
    Operation("GET", "/v1/models", "listModels",
              "The tenant's learned model versions with their evaluation", "models",
              list_models, MANAGE, responses={200: _MODELS}, errors=(422,),
              params=(Param("kind", {"type": "string", "enum": list(MODEL_KINDS)},
                            "only this kind"),)),
    Operation("POST", "/v1/models/train", "trainModels",
              "Train the tenant's models now, from its stored behaviour events", "models",
              train_models, MANAGE, responses={200: _MODELS}, errors=(400, 413, 422),
              description="Each kind is fitted, judged on the latest held-out period "
                          "against its baselines and stored as a new version; it is "
                          "promoted only when it does at least as well as every "
                          "baseline. Body: optional `{\"kinds\": [\"interests\"]}`."),
    Operation("GET", "/v1/campaigns/{id}/sendtime-preview", "sendtimePreview",
              "Who a best_time campaign would reach at which local time", "models",
              preview_sendtime, MANAGE, responses={200: _PREVIEW}, errors=(404, 422),
              description="Over the tenant's profiles: `users`, `with_data` (enough "
                          "send-time data for their own hour), `fallback`, and `times`: "
                          "users per local send time."),
]
