"""Builders of behaviour events for the tests: real-looking items and times."""

from __future__ import annotations

from typing import Any

from triggers.behaviour.events import BehaviourEvent

MONDAY_NOON = 1_772_452_800.0
"""2026-03-02T12:00:00Z, a Monday."""
DAY = 86_400.0


def event(kind: str, *, user: str = "u1", at: float = MONDAY_NOON, item: str | None = None,
          category: str | None = None, name: str | None = None, price: float | None = None,
          event_id: str | None = None, **extra: Any) -> BehaviourEvent:
    body: dict[str, Any] = {"user_id": user, "ts": at, "kind": kind, **extra}
    if event_id is not None:
        body["event_id"] = event_id
    if item is not None:
        body["item"] = {"id": item, "name": name, "category": category, "price": price}
    return BehaviourEvent.model_validate(body)


def views(n: int, category: str, *, start: float = MONDAY_NOON, every_s: float = 3600.0,
          user: str = "u1") -> list[BehaviourEvent]:
    """``n`` views of distinct items of ``category``, ``every_s`` apart from ``start``."""
    return [event("view", user=user, at=start + i * every_s, item=f"{category}-{i}",
                  category=category, name=f"{category.title()} item {i}") for i in range(n)]
