"""The campaign stats document (``GET /v1/campaigns/{id}/stats``, ``geopush stats``):
built from the store's :class:`~server.store.base.CampaignAggregate` with the pure
formulas of :mod:`triggers.decisions.stats` (see there for CTR and lift definitions)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from server.store.base import CampaignAggregate, DeliveryStatus
from triggers.decisions.stats import Lift, Proportion, lift, wilson

DEFINITIONS = (
    "sends: deliveries a channel accepted (status sent). ctr: deliveries clicked / sends; "
    "open_rate: deliveries opened / sends; intervals are Wilson 95%. lift "
    "(intention-to-treat): conversion rate of users with a delivery of the campaign "
    "(whatever became of it) against users held out as its control group; a user "
    "converted when a delivery got 'converted' feedback or a conversion was posted to "
    "/v1/campaigns/{id}/conversions; lift = p_treated / p_control - 1, p_value from the "
    "pooled two-proportion z-test (two-sided).")


class RateOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    successes: int
    trials: int
    rate: float | None
    low: float | None = Field(description="Wilson 95% lower bound")
    high: float | None = Field(description="Wilson 95% upper bound")


class LiftOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    treated: RateOut
    control: RateOut
    lift: float | None = Field(description="p_treated / p_control - 1")
    z: float | None
    p_value: float | None


class VariantStats(BaseModel):
    """The legacy per-variant counts (kept as they were)."""

    model_config = ConfigDict(extra="forbid")

    variant_id: str
    deliveries: int
    feedback: dict[str, int]


class VariantDetail(BaseModel):
    model_config = ConfigDict(extra="forbid")

    variant_id: str
    deliveries: int
    by_status: dict[str, int]
    feedback: dict[str, int]
    buttons: dict[str, int] = Field(default_factory=dict, description="button id → clicks "
                                    "that pressed it")
    sends: int
    ctr: RateOut
    open_rate: RateOut
    conversion: RateOut = Field(description="converted users / treated users")
    lift: LiftOut = Field(description="this variant's users against the control group")


class ControlOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    users: int
    conversion: RateOut


class CampaignStats(BaseModel):
    """A campaign's decisions, outbox, feedback, CTR and lift."""

    model_config = ConfigDict(extra="forbid")

    campaign_id: str
    deliveries: int = Field(description="pushes created for the campaign")
    by_status: dict[str, int] = Field(description="outbox status → count")
    feedback: dict[str, int] = Field(description="feedback kind → deliveries with it")
    buttons: dict[str, int] = Field(default_factory=dict, description="button id → clicks "
                                    "that pressed it (every variant)")
    by_variant: list[VariantStats]
    truncated: bool = Field(description="always false: the store aggregates every row")
    decisions: dict[str, dict[str, int]] = Field(
        description="outcome → reason → times the campaign was considered so")
    sends: int
    ctr: RateOut
    variants: list[VariantDetail]
    control: ControlOut
    lift: LiftOut = Field(description="every treated user against the control group")
    definitions: str = DEFINITIONS


def _rate(p: Proportion) -> RateOut:
    return RateOut(successes=p.successes, trials=p.trials, rate=p.rate, low=p.low, high=p.high)


def _lift(x: Lift) -> LiftOut:
    return LiftOut(treated=_rate(x.treated), control=_rate(x.control), lift=x.lift, z=x.z,
                   p_value=x.p_value)


def campaign_stats_doc(agg: CampaignAggregate) -> CampaignStats:
    """The stats document of one campaign (pure)."""
    decisions: dict[str, dict[str, int]] = {}
    for (outcome, reason), n in sorted(agg.decisions.items()):
        decisions.setdefault(outcome, {})[reason] = n
    by_status = {s.value: 0 for s in DeliveryStatus}
    feedback: dict[str, int] = {}
    buttons: dict[str, int] = {}
    details: list[VariantDetail] = []
    sends_all = clicks_all = users_all = converted_all = 0
    for v in agg.variants:
        for status, n in v.by_status.items():
            by_status[status] = by_status.get(status, 0) + n
        for kind, n in v.feedback.items():
            feedback[kind] = feedback.get(kind, 0) + n
        for button, n in v.buttons.items():
            buttons[button] = buttons.get(button, 0) + n
        sends = v.by_status.get(DeliveryStatus.SENT.value, 0)
        clicks, opens = v.feedback.get("clicked", 0), v.feedback.get("opened", 0)
        sends_all += sends
        clicks_all += min(clicks, sends)
        users_all += v.users
        converted_all += v.converted_users
        details.append(VariantDetail(
            variant_id=v.variant_id, deliveries=v.deliveries, by_status=dict(v.by_status),
            feedback=dict(v.feedback), buttons=dict(sorted(v.buttons.items())), sends=sends,
            ctr=_rate(wilson(min(clicks, sends), sends)),
            open_rate=_rate(wilson(min(opens, sends), sends)),
            conversion=_rate(wilson(v.converted_users, v.users)),
            lift=_lift(lift(v.converted_users, v.users, agg.control_converted,
                            agg.control_users))))
    return CampaignStats(
        campaign_id=agg.campaign_id, deliveries=sum(v.deliveries for v in agg.variants),
        by_status=by_status, feedback=feedback, buttons=dict(sorted(buttons.items())),
        by_variant=[VariantStats(variant_id=v.variant_id, deliveries=v.deliveries,
                                 feedback=dict(v.feedback)) for v in agg.variants],
        truncated=False, decisions=decisions, sends=sends_all,
        ctr=_rate(wilson(clicks_all, sends_all)), variants=details,
        control=ControlOut(users=agg.control_users,
                           conversion=_rate(wilson(agg.control_converted, agg.control_users))),
        lift=_lift(lift(converted_all, users_all, agg.control_converted, agg.control_users)))


def _pct(r: dict[str, Any]) -> str:
    if r["rate"] is None:
        return "-"
    return f"{100 * r['rate']:.1f}% [{100 * r['low']:.1f}, {100 * r['high']:.1f}]"


def render_table(doc: dict[str, Any]) -> str:
    """The stats document as a plain-text table (what ``geopush stats`` prints)."""
    lines = [f"campaign {doc['campaign_id']}: {doc['deliveries']} deliveries, "
             f"{doc['sends']} sent, CTR {_pct(doc['ctr'])}"]
    statuses = ", ".join(f"{k} {v}" for k, v in doc["by_status"].items() if v)
    lines.append(f"outbox: {statuses or 'empty'}")
    for outcome, reasons in doc["decisions"].items():
        lines.append(f"decisions {outcome}: " + ", ".join(f"{r} {n}" for r, n in
                                                        reasons.items()))
    header = ("variant", "deliv", "sent", "opens", "clicks", "CTR (95% CI)",
              "users", "conv (95% CI)", "lift", "p")
    rows = [header]
    for v in doc["variants"]:
        lift_ = v["lift"]
        rows.append((v["variant_id"], str(v["deliveries"]), str(v["sends"]),
                     str(v["feedback"].get("opened", 0)), str(v["feedback"].get("clicked", 0)),
                     _pct(v["ctr"]), str(v["conversion"]["trials"]), _pct(v["conversion"]),
                     "-" if lift_["lift"] is None else f"{100 * lift_['lift']:+.1f}%",
                     "-" if lift_["p_value"] is None else f"{lift_['p_value']:.3g}"))
    control = doc["control"]
    rows.append(("control", "-", "-", "-", "-", "-", str(control["users"]),
                 _pct(control["conversion"]), "", ""))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for row in rows:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
    total = doc["lift"]
    lines.append("lift, all variants vs control: " + (
        "-" if total["lift"] is None else f"{100 * total['lift']:+.1f}%") + (
        "" if total["p_value"] is None else f" (z = {total['z']:.2f}, p = {total['p_value']:.3g})"))
    return "\n".join(lines)
