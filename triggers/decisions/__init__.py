"""Campaign decisions (issue 4): which push, if any, a presence event sends, and why.

Pure. The service and the simulator both call :func:`decide` with an event, the user's
profile, the :class:`CampaignIndex`, the venue, the tenant policy, a :class:`Ledger` and
``now``; they deliver ``decision.chosen`` and record ``decision.ledger_entries()``.
"""

from triggers.decisions.content import (
    ContentEngine,
    TemplateProblem,
    age_band,
    pick_rendition,
    time_of_day,
)
from triggers.decisions.decide import decide
from triggers.decisions.events import EventLike, kind_of
from triggers.decisions.experiments import Assignment, assign, in_control, pick_arm
from triggers.decisions.index import CampaignIndex, selector_matches
from triggers.decisions.ledger import (
    FeedbackKind,
    InMemoryLedger,
    Ledger,
    LedgerEntry,
    history_horizon_s,
)
from triggers.decisions.models import (
    Attributes,
    Audience,
    Campaign,
    CampaignStatus,
    Caps,
    EventKind,
    Item,
    LearnedTag,
    NextStop,
    PerUserCap,
    Profile,
    Schedule,
    Segment,
    Style,
    TenantPolicy,
    Trigger,
    Variant,
    VenueSelector,
)
from triggers.decisions.preview import preview_campaign
from triggers.decisions.records import Chosen, Considered, Decision, Outcome, Reason
from triggers.decisions.routes import RouteTip, learn_next_stops, route_tip
from triggers.decisions.sandbox import RenderLimits, TemplateLimitError
from triggers.decisions.segments import (
    DEFAULT_SCENE_RULES,
    SceneRule,
    Visit,
    derive_scene_tags,
    segment_of,
)
from triggers.decisions.venue_hours import (
    HoursState,
    OpeningHoursError,
    VenueHours,
    venue_hours,
)

__all__ = [
    "DEFAULT_SCENE_RULES",
    "Assignment",
    "Attributes",
    "Audience",
    "Campaign",
    "CampaignIndex",
    "CampaignStatus",
    "Caps",
    "Chosen",
    "Considered",
    "ContentEngine",
    "Decision",
    "EventKind",
    "EventLike",
    "FeedbackKind",
    "HoursState",
    "InMemoryLedger",
    "Item",
    "LearnedTag",
    "Ledger",
    "LedgerEntry",
    "NextStop",
    "OpeningHoursError",
    "Outcome",
    "PerUserCap",
    "Profile",
    "Reason",
    "RenderLimits",
    "RouteTip",
    "SceneRule",
    "Schedule",
    "Segment",
    "Style",
    "TemplateLimitError",
    "TemplateProblem",
    "TenantPolicy",
    "Trigger",
    "Variant",
    "VenueHours",
    "VenueSelector",
    "Visit",
    "age_band",
    "assign",
    "decide",
    "derive_scene_tags",
    "history_horizon_s",
    "in_control",
    "kind_of",
    "learn_next_stops",
    "pick_arm",
    "pick_rendition",
    "preview_campaign",
    "route_tip",
    "segment_of",
    "selector_matches",
    "time_of_day",
    "venue_hours",
]
