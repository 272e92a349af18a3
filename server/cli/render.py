"""Showing a simulation: the text timeline and summary, a Leaflet map, a matplotlib plot.

The timeline pads and cuts by display width (``wcwidth``), so Chinese venue names keep
the columns aligned. The map is one HTML file that works offline (:mod:`server.cli.maps`).
The plot uses a CJK font when one is installed (``fonts-noto-cjk`` on Debian) and
otherwise writes each name in a form the fonts it has can draw (a venue's ``name_en``,
else its id): never empty boxes. folium and matplotlib are imported only to draw.
"""

from __future__ import annotations

import colorsys
import html
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from wcwidth import wcswidth, wcwidth

from triggers.decisions.records import Decision, Outcome
from triggers.presence_events import EventKind, PresenceEvent
from triggers.simulation import Scenario, SimulationResult
from venues.geometry import representative
from venues.model import Venue

MAX_PLOTTED_USERS = 30
MAX_MAPPED_POINTS = 600
"""Per user polyline: thinned to this many vertices (an HTML map of every ping is slow)."""
LAYERS = ("venues", "trajectories", "events", "pushes")
NAME_WIDTH = 28
"""Terminal columns of the venue name in the timeline."""

CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Sans CJK TC", "Source Han Sans SC",
             "Noto Serif CJK SC", "WenQuanYi Zen Hei", "WenQuanYi Micro Hei",
             "Droid Sans Fallback", "AR PL UMing CN")
"""Fonts with Chinese glyphs, tried in order for the plot."""

_TAB10 = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
          "#7f7f7f", "#bcbd22", "#17becf"]
_TAB10_LIGHT = ["#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2",
                "#c7c7c7", "#dbdb8d", "#9edae5"]


def distinct_colours(n: int) -> list[str]:
    """``n`` pairwise different colours (``#rrggbb``): matplotlib's tab10, its light
    twins, then hues spaced by the golden angle at alternating lightness."""
    out = (_TAB10 + _TAB10_LIGHT)[:n]
    golden = 0.381966  # a fraction of the hue circle: successive hues never line up
    k = 0
    while len(out) < n:
        lightness = (0.35, 0.55, 0.75)[k % 3]
        r, g, b = colorsys.hls_to_rgb((k * golden) % 1.0, lightness, 0.65)
        colour = f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"
        if colour not in out:
            out.append(colour)
        k += 1
    return out


def fit(text: str, width: int) -> str:
    """``text`` cut and padded to ``width`` terminal columns (wide characters count 2)."""
    used = 0
    kept: list[str] = []
    for ch in text:
        w = max(wcwidth(ch), 0)
        if used + w > width:
            break
        kept.append(ch)
        used += w
    return "".join(kept) + " " * (width - used)


# --------------------------------------------------------------------------- text


def _decision_key(d: Decision) -> tuple[str, str, str, float]:
    return d.user_id, d.visit_id, d.event, d.at


def _local(ts: float, venue: Venue | None, scenario: Scenario) -> datetime:
    tz = ZoneInfo(venue.timezone) if venue is not None and venue.timezone else scenario.spec.tz
    return datetime.fromtimestamp(ts, tz)


def timeline_lines(result: SimulationResult, scenario: Scenario, limit: int) -> list[str]:
    """One line per presence event with its push or the reasons it sent none."""
    venues = scenario.venues_by_id
    decisions = {_decision_key(d): d for d in result.decisions}
    width = max((max(wcswidth(e.user_id), len(e.user_id)) for e in result.events), default=4)
    lines: list[str] = []
    day = None
    for n, event in enumerate(result.events):
        if n >= limit:
            lines.append(f"… {len(result.events) - limit} more events (use --json for all)")
            break
        venue = venues.get(event.venue_id)
        local = _local(event.at, venue, scenario)
        if local.date() != day:
            day = local.date()
            lines.append(f"── {local:%A %Y-%m-%d} ({local.tzname()})")
        what = event.kind.value
        if event.kind is EventKind.DWELL:
            what = f"dwell {event.dwell_s:.0f}s"
        elif event.kind is EventKind.EXIT:
            what = f"exit ({event.reason.value if event.reason else '?'}, " \
                   f"{(event.dwell_s or 0) / 60:.0f} min)"
        name = venue.name if venue is not None else event.venue_id
        decision = decisions.get((event.user_id, event.visit_id, event.kind.value, event.at))
        lines.append(f"{local:%H:%M:%S}  {fit(event.user_id, width)}  {fit(name, NAME_WIDTH)}  "
                     f"{what:<18}  {_outcome(decision)}")
    return lines


def _outcome(decision: Decision | None) -> str:
    if decision is None or not decision.considered:
        return "·"
    if decision.chosen is not None:
        c = decision.chosen
        tail = [f"{line.campaign_id}: {line.reason.value}" for line in decision.considered
                if line.outcome is not Outcome.SENT]
        more = f"  (also {', '.join(tail)})" if tail else ""
        return f"PUSH {c.campaign_id}/{c.variant_id} “{c.title}”{more}"
    reasons = ", ".join(f"{line.campaign_id}: {line.reason.value}"
                        for line in decision.considered)
    return f"no push — {reasons}"


def summary_lines(result: SimulationResult) -> list[str]:
    s = result.summary()
    pings = s["pings"]
    lines = [
        f"Summary — {s['scenario']} ({s['start']} → {s['end']})",
        f"  users {s['users']}; pings {pings.get('received', 0)} received, "
        f"{pings.get('accepted', 0)} accepted"
        + "".join(f", {pings[k]} {k}" for k in ("late", "duplicate", "inaccurate", "teleport",
                                                "mock", "future") if pings.get(k)),
        f"  visits {s['visits']} (events: enter {s['events']['enter']}, dwell "
        f"{s['events']['dwell']}, exit {s['events']['exit']}; "
        f"{s['open_visits_at_end']} open at the end)",
        f"  pushes {s['pushes']}"
        + "".join(f"; {cid}: " + ", ".join(f"{v}={n}" for v, n in by.items())
                  for cid, by in s["pushes_by_campaign"].items()),
    ]
    if s["held_out_by_campaign"]:
        lines.append("  held out (control): " + ", ".join(
            f"{c}={n}" for c, n in s["held_out_by_campaign"].items()))
    if s["suppressions_by_reason"]:
        lines.append("  suppressions: " + ", ".join(
            f"{r} {n}" for r, n in s["suppressions_by_reason"].items()))
    per_user = result.stats.per_user_day
    if per_user and len(per_user) <= MAX_PLOTTED_USERS:
        lines.append("  pushes per user per day: " + ", ".join(
            f"{u} {d}: {n}" for (u, d), n in sorted(per_user.items())))
    else:
        for day, info in s["pushes_per_user_per_day"].items():
            hist = ", ".join(f"{k} push{'es' if k != '1' else ''}: {n} users"
                             for k, n in info["histogram"].items())
            lines.append(f"  pushes per user on {day}: {hist} (max {info['max']})")
    return lines


def backtest_lines(report: dict[str, Any]) -> list[str]:
    d = report["displaced"]
    lines = [
        f"Back-test of {report['candidate']}"
        + (" (replacing the live campaign of that id)" if report["replaces_live_campaign"]
           else "") + " — nothing sent",
        f"  would send {report['pushes']} pushes to {report['users_reached']} users"
        + (" (" + ", ".join(f"{v}={n}" for v, n in report["pushes_by_variant"].items()) + ")"
           if report["pushes_by_variant"] else "")
        + f"; {report['held_out_control']} held out as control",
    ]
    if report["suppressions_by_reason"]:
        lines.append("  stopped: " + ", ".join(
            f"{r} {n}" for r, n in report["suppressions_by_reason"].items()))
    lines.append(f"  live pushes displaced: {d['total']}"
                 + "".join(f"; by priority over {c}: {n}" for c, n in d["by_priority"].items())
                 + "".join(f"; {c} by {r}: {n}" for c, rs in d["by_caps"].items()
                           for r, n in rs.items()))
    if report["live_pushes_gained"]:
        lines.append("  live pushes gained: " + ", ".join(
            f"{c}={n}" for c, n in report["live_pushes_gained"].items()))
    lines.append(f"  all pushes: {report['live_pushes_without']} without → "
                 f"{report['pushes_with']} with the candidate")
    return lines


# --------------------------------------------------------------------------- map


def _position(result: SimulationResult, user: str, at: float,
              venue: Venue | None) -> tuple[float, float] | None:
    track = result.tracks.get(user)
    if track is not None:
        ts, lat, lng = track.arrays()
        if ts.shape[0]:
            i = int(np.clip(np.searchsorted(ts, at), 0, ts.shape[0] - 1))
            return float(lat[i]), float(lng[i])
    if venue is None:
        return None
    p = venue.center if venue.center is not None else representative(venue.shape)
    return p.lat, p.lng


def _used_venues(result: SimulationResult, scenario: Scenario) -> list[Venue]:
    """Venues with an event, plus those inside the trajectories' bounding box."""
    by_id = scenario.venues_by_id
    keep = {e.venue_id for e in result.events}
    lats: list[float] = []
    lngs: list[float] = []
    for track in result.tracks.values():
        _, lat, lng = track.arrays()
        lats.extend(lat.tolist()[:: max(1, lat.shape[0] // 50)])
        lngs.extend(lng.tolist()[:: max(1, lng.shape[0] // 50)])
    if lats:
        lo_lat, hi_lat, lo_lng, hi_lng = min(lats), max(lats), min(lngs), max(lngs)
        for v in scenario.venues:
            p = v.center if v.center is not None else representative(v.shape)
            if lo_lat - 0.003 <= p.lat <= hi_lat + 0.003 and lo_lng - 0.005 <= p.lng <= \
                    hi_lng + 0.005:
                keep.add(v.id)
    return [by_id[i] for i in sorted(keep) if i in by_id]


def render_map(  # noqa: PLR0915 - one layer after another, a straight-line script
    result: SimulationResult, scenario: Scenario, path: Path,
) -> None:
    """Write a Leaflet map that works offline: layers venues, trajectories, events,
    pushes (see :mod:`server.cli.maps`)."""
    import folium  # noqa: PLC0415 - only when a map is drawn

    from server.cli.maps import push_icon, save_map  # noqa: PLC0415
    from venues.webmap import KIND_COLOURS, OSM_ATTRIBUTION  # noqa: PLC0415

    fmap = folium.Map(tiles=None, control_scale=True)
    attribution = (f"{OSM_ATTRIBUTION} "
                   '(<a href="https://www.openstreetmap.org/copyright">ODbL</a>)')
    if scenario.attribution:
        attribution += f" — venue data: {html.escape(scenario.attribution)}"
    folium.TileLayer("OpenStreetMap", attr=attribution, name="OpenStreetMap").add_to(fmap)
    groups = {name: folium.FeatureGroup(name=name, show=True) for name in LAYERS}

    bounds: list[list[float]] = []
    for venue in _used_venues(result, scenario):
        colour = KIND_COLOURS[venue.kind]
        tip = html.escape(f"{venue.name} ({venue.kind.value}) {venue.id}")
        if venue.shape is not None:
            feature = {"type": "Feature", "properties": {"id": venue.id, "name": venue.name},
                       "geometry": venue.shape.__geo_interface__}
            folium.GeoJson(feature, tooltip=tip, style_function=lambda _f, c=colour: {
                "color": c, "weight": 2, "fillOpacity": 0.2}).add_to(groups["venues"])
            minx, miny, maxx, maxy = venue.shape.bounds
            bounds += [[miny, minx], [maxy, maxx]]
        elif venue.center is not None and venue.radius_m is not None:
            folium.Circle([venue.center.lat, venue.center.lng], radius=venue.radius_m,
                          color=colour, fill=True, fill_opacity=0.2, tooltip=tip
                          ).add_to(groups["venues"])
            bounds.append([venue.center.lat, venue.center.lng])

    tracks = sorted(result.tracks.items())
    colours = distinct_colours(len(tracks))
    for k, (user, track) in enumerate(tracks):
        _, lat, lng = track.arrays()
        if lat.shape[0] == 0:
            continue
        step = max(1, lat.shape[0] // MAX_MAPPED_POINTS)
        points = [[float(a), float(b)] for a, b in zip(lat[::step], lng[::step], strict=True)]
        line = folium.PolyLine(  # type: ignore[no-untyped-call]
            points, color=colours[k], weight=3, opacity=0.8, tooltip=html.escape(user))
        line.add_to(groups["trajectories"])
        bounds += [points[0], points[-1]]

    venues = scenario.venues_by_id
    for event in result.events:
        at_venue = venues.get(event.venue_id)
        where = _position(result, event.user_id, event.at, at_venue)
        if where is None:
            continue
        local = _local(event.at, at_venue, scenario)
        label = (f"{local:%H:%M:%S} {event.user_id} {event.kind.value} "
                 f"{at_venue.name if at_venue else event.venue_id}")
        folium.CircleMarker(list(where), radius=4, color="#333333", fill=True,
                            fill_opacity=0.7, tooltip=html.escape(label)
                            ).add_to(groups["events"])
    for d in result.deliveries:
        pushed_at = venues.get(d.venue_id) if d.venue_id is not None else None
        where = _position(result, d.user_id, d.at, pushed_at)
        if where is None:
            continue
        local = _local(d.at, pushed_at, scenario)
        popup = (f"<b>{html.escape(d.title)}</b><br>{html.escape(d.body)}<br>"
                 f"{local:%H:%M:%S} {html.escape(d.user_id)} · {html.escape(d.campaign_id)}/"
                 f"{html.escape(d.variant_id)} · {html.escape(d.channel)}")
        folium.Marker(list(where), popup=folium.Popup(popup, max_width=320),
                      tooltip=html.escape(d.title), icon=push_icon()
                      ).add_to(groups["pushes"])
    for group in groups.values():
        group.add_to(fmap)
    folium.LayerControl(collapsed=False).add_to(fmap)
    if bounds:
        lats = [b[0] for b in bounds]
        lngs = [b[1] for b in bounds]
        fmap.fit_bounds([[min(lats), min(lngs)], [max(lats), max(lngs)]])
    save_map(fmap, path)


# --------------------------------------------------------------------------- plot


def _visits(events: list[PresenceEvent], end: float) -> list[tuple[str, str, float, float]]:
    """(user, venue, start, end) per visit; visits still open run to ``end``."""
    open_: dict[str, tuple[str, str, float]] = {}
    out = []
    for e in events:
        if e.kind is EventKind.ENTER:
            open_[e.visit_id] = (e.user_id, e.venue_id, e.at)
        elif e.kind is EventKind.EXIT and e.visit_id in open_:
            user, venue, start = open_.pop(e.visit_id)
            out.append((user, venue, start, e.at))
    out += [(u, v, s, end) for u, v, s in open_.values()]
    return out


class PlotFonts:
    """The plot's font family and the characters it can draw."""

    def __init__(self, names: Sequence[str] | None) -> None:
        from matplotlib import font_manager  # noqa: PLC0415 - only when a plot is drawn
        from matplotlib.ft2font import FT2Font  # noqa: PLC0415

        if names is None:
            cjk = _installed_cjk_font()
            # DejaVu first (Latin, digits), the CJK font as matplotlib's fallback.
            names = ["DejaVu Sans", *([cjk] if cjk else [])]
        self.family = list(names)
        self._chars: set[int] = set()
        for name in self.family:
            prop = font_manager.FontProperties(family=name)
            try:
                file = font_manager.findfont(prop, fallback_to_default=False)
            except ValueError:
                continue  # not installed: matplotlib skips it too
            self._chars |= set(FT2Font(file).get_charmap())

    def can_draw(self, text: str) -> bool:
        return all(ord(ch) in self._chars or ch.isspace() for ch in text)

    def plain(self, text: str) -> str:
        """``text``, or with what no font has escaped (``\\u5317``): never a box."""
        if self.can_draw(text):
            return text
        return "".join(ch if self.can_draw(ch) else ch.encode("ascii", "backslashreplace")
                       .decode("ascii") for ch in text)

    def venue_label(self, venue: Venue | None, venue_id: str) -> str:
        """The venue's name if the fonts draw it, else its English name, else its id."""
        if venue is None:
            return self.plain(venue_id)
        english = venue.metadata.get("name_en") if isinstance(venue.metadata, dict) else None
        for text in (venue.name, english, venue.id):
            if isinstance(text, str) and text and self.can_draw(text):
                return text
        return self.plain(venue.id)


_CJK_FILES = ("NotoSansCJK", "NotoSerifCJK", "SourceHanSans", "wqy-", "DroidSansFallback",
              "uming", "ukai")


def _installed_cjk_font() -> str | None:
    """The first of :data:`CJK_FONTS` that matplotlib can use, or None.

    matplotlib lists fonts in a cache made on its first import; a CJK font installed
    after that is missing from it, so when none is listed the system's font files are
    looked through once and the CJK ones added.
    """
    from matplotlib import font_manager  # noqa: PLC0415 - only when a plot is drawn

    def listed() -> str | None:
        installed = {f.name for f in font_manager.fontManager.ttflist}
        return next((n for n in CJK_FONTS if n in installed), None)

    found = listed()
    if found is None:
        for file in font_manager.findSystemFonts():
            if any(part in Path(file).name for part in _CJK_FILES):
                font_manager.fontManager.addfont(file)
        found = listed()
    return found


def arm_counts(result: SimulationResult) -> list[tuple[str, int, bool]]:
    """(label, count, is control) per campaign arm over all users: pushes per variant,
    then the users held out as control."""
    summary = result.summary()
    rows: list[tuple[str, int, bool]] = []
    for campaign, by_variant in summary["pushes_by_campaign"].items():
        rows += [(f"{campaign} / {variant}", int(n), False) for variant, n in by_variant.items()]
        held = summary["held_out_by_campaign"].get(campaign)
        if held:
            rows.append((f"{campaign} / control (held out)", int(held), True))
    return rows


def _held_out(decisions: Sequence[Decision]) -> list[tuple[str, float, str]]:
    """(user, time, campaign) of every event whose user was in a control group."""
    return [(d.user_id, d.decided_at, line.campaign_id) for d in decisions
            for line in d.considered if line.outcome is Outcome.HELD_OUT]


def render_plot(result: SimulationResult, scenario: Scenario, path: Path, *,
                fonts: Sequence[str] | None = None) -> None:
    """Write a PNG: a row per user (at most 30), visits as bars coloured by venue, pushes
    as markers by campaign arm and control hold-outs as crosses, x in the scenario's
    local time; below, when a campaign has arms or a control group, pushes per arm and
    hold-outs over all users. ``fonts``: the font family to use (default: DejaVu Sans
    and the first installed of :data:`CJK_FONTS`)."""
    import matplotlib  # noqa: PLC0415 - only when a plot is drawn

    matplotlib.use("Agg")  # files only, never a display
    import matplotlib.dates as mdates  # noqa: PLC0415
    import matplotlib.pyplot as plt  # noqa: PLC0415

    text = PlotFonts(fonts)
    visits = _visits(result.events, result.end)
    held = _held_out(result.decisions)
    users = sorted({u for u, *_ in visits} | {d.user_id for d in result.deliveries}
                   | {u for u, *_ in held})
    shown = users[:MAX_PLOTTED_USERS]
    row = {u: i for i, u in enumerate(shown)}
    venues = scenario.venues_by_id
    counts = Counter(v for u, v, *_ in visits if u in row)
    ranked = [vid for vid, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    palette = dict(zip(ranked, distinct_colours(len(ranked)), strict=True))
    arms = arm_counts(result)
    show_arms = len(arms) > 1 or any(control for *_, control in arms)
    tz = scenario.spec.tz

    def x(ts: float) -> float:
        return float(mdates.date2num(  # type: ignore[no-untyped-call]
            datetime.fromtimestamp(ts, tz)))

    height = 1.5 + 0.45 * max(len(shown), 1)
    arms_height = 0.9 + 0.3 * len(arms) if show_arms else 0.0
    with plt.rc_context({"font.family": text.family}):
        fig = plt.figure(figsize=(12, height + arms_height), dpi=100)
        grid = fig.add_gridspec(2 if show_arms else 1, 1,
                                height_ratios=[height, arms_height] if show_arms else [1])
        ax = fig.add_subplot(grid[0])
        _draw_visits(ax, visits, row, venues, palette=palette, text=text, x=x)
        _draw_pushes(ax, result, row, held, x)
        ax.set_yticks(range(len(shown)), [text.plain(u) for u in shown])
        ax.invert_yaxis()
        ax.xaxis_date(tz)
        ax.xaxis.set_major_formatter(
            mdates.DateFormatter("%H:%M", tz=tz))  # type: ignore[no-untyped-call]
        ax.set_xlim(x(result.start), x(result.end))
        ax.set_xlabel(f"local time ({datetime.fromtimestamp(result.start, tz).tzname()})")
        title = f"{text.plain(result.name)}: visits and pushes"
        if len(users) > len(shown):
            title += f" (first {len(shown)} of {len(users)} users)"
        ax.set_title(title)
        ax.grid(axis="x", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
        if show_arms:
            _draw_arms(fig.add_subplot(grid[1]), arms, text)
        fig.tight_layout()
        fig.savefig(path)
        plt.close(fig)


def _draw_visits(ax: Any, visits: list[tuple[str, str, float, float]], row: dict[str, int],
                 venues: dict[str, Venue], *, palette: dict[str, str], text: PlotFonts,
                 x: Callable[[float], float]) -> None:
    labelled: set[str] = set()
    for user, vid, start, stop in visits:
        if user not in row:
            continue
        venue = venues.get(vid)
        nested = venue is not None and venue.parent_id is not None
        # A store inside a mall: a thinner bar drawn over the mall's.
        ax.barh(row[user], max(x(stop) - x(start), 1e-4), left=x(start),
                height=0.3 if nested else 0.6, zorder=3 if nested else 2,
                color=palette[vid], alpha=0.85, edgecolor="black", linewidth=0.3,
                label=None if vid in labelled else text.venue_label(venue, vid)[:30])
        labelled.add(vid)


_ARM_MARKERS = ("v", "^", "D", "s", "P", "*")


def _draw_pushes(ax: Any, result: SimulationResult, row: dict[str, int],
                 held: list[tuple[str, float, str]], x: Callable[[float], float]) -> None:
    """Pushes as markers, one colour and shape per campaign arm; hold-outs as crosses."""
    by_arm: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for d in result.deliveries:
        if d.user_id in row:
            by_arm.setdefault((d.campaign_id, d.variant_id), []).append((row[d.user_id], x(d.at)))
    colours = ["crimson", "#1f3a93", "darkorange", "#2ca02c", "#8e44ad", "#111111"]
    for k, ((campaign, variant), points) in enumerate(sorted(by_arm.items())):
        label = "push" if len(by_arm) == 1 else f"push {campaign} / {variant}"
        ax.scatter([p[1] for p in points], [p[0] for p in points],
                   marker=_ARM_MARKERS[k % len(_ARM_MARKERS)], s=80,
                   color=colours[k % len(colours)], edgecolor="black", zorder=5, label=label)
    control = [(row[u], x(t)) for u, t, _ in held if u in row]
    if control:
        ax.scatter([p[1] for p in control], [p[0] for p in control], marker="x", s=70,
                   color="#555555", linewidths=2, zorder=5, label="control: held out")


def _draw_arms(ax: Any, arms: list[tuple[str, int, bool]], text: PlotFonts) -> None:
    """Horizontal bars: pushes per campaign arm and hold-outs, over all users."""
    labels = [text.plain(label) for label, *_ in arms]
    values = [n for _, n, _ in arms]
    colours = ["#9e9e9e" if control else "#4c72b0" for *_, control in arms]
    bars = ax.barh(range(len(arms)), values, color=colours, edgecolor="black", linewidth=0.3)
    ax.bar_label(bars, labels=[f"{n:,}" for n in values], padding=3, fontsize=8)
    ax.set_yticks(range(len(arms)), labels)
    ax.invert_yaxis()
    ax.set_xlabel("users (all of the scenario): pushed per arm, or held out as control")
    ax.set_xlim(0, max(values, default=1) * 1.15)
    ax.grid(axis="x", alpha=0.3)
