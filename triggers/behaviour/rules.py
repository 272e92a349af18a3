"""Learned tags: a tenant's declarative tag rules evaluated over a user's behaviour
features, each tag with its provenance.

Pure. A rule holds when any one of its conditions does::

    {tag: sports_fan, any: [
        {kind: view, category: sports, min_count: 5, within_days: 30},
        {kind: purchase, category: sports, min_count: 1, within_days: 30}]}

A condition counts the user's events of ``kind`` in ``category`` (or any of
``categories``, or any category when neither is given) over the ``within_days`` UTC
days ending with the evaluation day (see :mod:`triggers.behaviour.features`). Rules are
evaluated at a time (``now``), never stored as results, so a tag **lapses** as soon as
its rule stops holding, with new events or with time alone.
"""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from triggers.behaviour.features import HORIZON_DAYS, UserFeatures
from triggers.decisions.models import BehaviourKindName, LearnedTag, Tag, _Frozen

MAX_TAG_RULES = 64
MAX_CONDITIONS = 8
MAX_RULE_CATEGORIES = 16

_NOUNS = {"view": ("view", "views"), "click": ("click", "clicks"),
          "add_to_cart": ("add to cart", "adds to cart"),
          "purchase": ("purchase", "purchases"), "search": ("search", "searches"),
          "app_open": ("app open", "app opens")}
"""Kind → (singular, plural) for provenance; a custom kind reads "3 <kind> events"."""


class TagCondition(_Frozen):
    """At least ``min_count`` events of ``kind`` (in ``category`` / ``categories``)
    within ``within_days`` days."""

    kind: BehaviourKindName
    category: Tag | None = None
    categories: tuple[Tag, ...] = Field(default=(), max_length=MAX_RULE_CATEGORIES)
    min_count: int = Field(default=1, ge=1, le=100_000)
    within_days: float = Field(default=30.0, gt=0, le=HORIZON_DAYS)

    @model_validator(mode="after")
    def _one_way_to_name_categories(self) -> Self:
        if self.category is not None and self.categories:
            raise ValueError("give category or categories, not both")
        return self

    @property
    def wanted(self) -> tuple[str, ...] | None:
        """The categories counted; ``None``: any."""
        if self.category is not None:
            return (self.category,)
        return self.categories or None


class TagRule(_Frozen):
    """The tag ``tag`` while any of the conditions in ``any`` holds."""

    tag: Tag = Field(min_length=1)
    any: tuple[TagCondition, ...] = Field(min_length=1, max_length=MAX_CONDITIONS)


class TagRules(_Frozen):
    """A tenant's tag rules (``PUT /v1/tag-rules``), one per tag."""

    rules: tuple[TagRule, ...] = Field(default=(), max_length=MAX_TAG_RULES)

    @model_validator(mode="after")
    def _one_rule_per_tag(self) -> Self:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.tag in seen:
                raise ValueError(f"tag {rule.tag!r} has two rules; merge their conditions")
            seen.add(rule.tag)
        return self


DEFAULT_TAG_RULES = TagRules(rules=(
    TagRule(tag="sports_fan", any=(
        TagCondition(kind="view", category="sports", min_count=5, within_days=30),
        TagCondition(kind="purchase", category="sports", min_count=1, within_days=30))),
    TagRule(tag="food_delivery_frequent", any=(
        TagCondition(kind="purchase", category="food_delivery", min_count=3, within_days=7),)),
    TagRule(tag="mother_baby", any=(
        TagCondition(kind="purchase", categories=("baby", "maternity", "diapers"),
                     min_count=1, within_days=90),)),
))
"""What a tenant that has put no rules gets: the founding brief's three examples."""


def learn_tags(rules: TagRules, features: UserFeatures, now: float) -> tuple[LearnedTag, ...]:
    """The tags whose rule holds at ``now``, in rule order; each names the first of its
    conditions that holds (with the count it found) as its provenance."""
    learned: list[LearnedTag] = []
    for rule in rules.rules:
        for condition in rule.any:
            count, last_at = features.count(condition.kind, condition.wanted, now=now,
                                            within_days=condition.within_days)
            if count >= condition.min_count:
                learned.append(LearnedTag(
                    tag=rule.tag, reason=provenance(condition, count), kind=condition.kind,
                    categories=condition.wanted or (), count=count,
                    within_days=condition.within_days, last_at=last_at))
                break
    return tuple(learned)


def provenance(condition: TagCondition, count: int) -> str:
    """``"7 views of sports in 30 days"``."""
    one, many = _NOUNS.get(condition.kind, (f"{condition.kind} event",
                                             f"{condition.kind} events"))
    noun = f"{count} {one if count == 1 else many}"
    wanted = condition.wanted
    where = "" if wanted is None else " of " + " or ".join(wanted)
    days = f"{condition.within_days:g}"
    return f"{noun}{where} in {days} day{'s' if days != '1' else ''}"
