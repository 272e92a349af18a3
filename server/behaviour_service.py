"""The service's behaviour loops: retention of raw behaviour events (run by the
housekeeping loop)."""

from __future__ import annotations

import asyncio
import logging

from server.logs import FailureLog
from server.store.roles import BehaviourStore

log = logging.getLogger("geopush.behaviour")

PRUNE_ROUND_EVENTS = 10_000
"""Behaviour events deleted per statement: short deletes, other work between."""


async def prune_old_behaviour(store: BehaviourStore, before: float, *,
                              failures: FailureLog | None = None) -> int:
    """Delete every tenant's behaviour events received before ``before``; how many in
    all. A failing tenant is logged (through ``failures``) and skipped."""
    failures = failures or FailureLog(log, "housekeeping")
    try:
        tenants = await store.list_tenants()
    except Exception as exc:
        failures.failed("listing tenants", exc)
        return 0
    total = 0
    for tenant in tenants:
        step = f"pruning the behaviour events of tenant {tenant.tenant_id}"
        while True:
            try:
                gone = await store.prune_behaviour(tenant.tenant_id, before=before,
                                                   limit=PRUNE_ROUND_EVENTS)
            except Exception as exc:
                failures.failed(step, exc)
                break
            failures.succeeded(step)
            total += gone
            if gone < PRUNE_ROUND_EVENTS:
                break
            await asyncio.sleep(0)
    return total
