"""A profile as behaviour sees it: learned tags and the viewed-not-bought item filled in
from the user's features at a time. Pure."""

from __future__ import annotations

from triggers.behaviour.features import UserFeatures, ViewedItem
from triggers.behaviour.rules import TagRules, learn_tags
from triggers.decisions.models import Item, Profile


def with_behaviour(profile: Profile, features: UserFeatures | None, rules: TagRules,
                   now: float) -> Profile:
    """``profile`` with ``learned_tags`` evaluated at ``now`` (a lapsed tag is gone) and
    ``recently_viewed`` set to the newest item viewed and not bought, when the features
    know one (else the profile's own)."""
    if features is None:
        return profile.model_copy(update={"learned_tags": ()})
    viewed = features.viewed_items[0] if features.viewed else None
    return profile.model_copy(update={
        "learned_tags": learn_tags(rules, features, now),
        "recently_viewed": profile.recently_viewed if viewed is None else as_item(viewed),
    })


def as_item(viewed: ViewedItem) -> Item:
    """The template's ``recently_viewed`` item (its name falls back to its id)."""
    return Item(id=viewed.id, name=viewed.name or viewed.id, url=viewed.url,
                price=viewed.price, currency=viewed.currency, viewed_at=viewed.viewed_at)
