"""``geopush venues validate FILE``: check a venue file and say exactly what to fix.
``geopush venues hours FILE --id ID``: a venue's opening hours as campaigns read them.

``validate`` prints one line per problem (``FILE: feature 12 (id 'x'): field: message
[code]``), then a summary. Exit status: 0 when nothing was rejected (warnings
allowed), 1 when the file was read but has errors (features rejected, or no
features), 2 when it could not be read at all (then one ``geopush: error:`` line on
stderr).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from server.cli.common import CliError

if TYPE_CHECKING:
    from tqdm import tqdm

    from venues import Problem, VenueLoad

PROGRESS_MIN_FEATURES = 1000
"""Below this a file validates in about a second: a progress bar would only flicker."""

VALIDATE_DESCRIPTION = """\
Check a venue file (GeoJSON, GeoPackage, zipped Shapefile, KML) and say exactly what
to fix: one line per problem (FILE: feature 12 (id 'x'): field: message [code]),
then a summary.

exit status: 0 when nothing was rejected (warnings allowed), 1 when the file was read
but has errors (features rejected, or no features), 2 when it could not be read at
all."""

HOURS_DESCRIPTION = """\
Show the open, closed and unknown spans of one venue of FILE in its local time, as
campaigns read them (OSM opening_hours: zone, public holidays, sunrise and sunset at
its position)."""


def register(parser: argparse.ArgumentParser) -> None:
    """Define ``venues validate`` and ``venues hours`` (imports nothing heavy: see
    ``__main__``)."""
    parser.description = ("Check venue files (GeoJSON, GeoPackage, zipped Shapefile, "
                          "KML) and show a venue's opening hours.")
    actions = parser.add_subparsers(dest="venues_command", required=True, metavar="ACTION")
    validate = actions.add_parser(
        "validate", help="validate a venue file and report every problem",
        description=VALIDATE_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    validate.add_argument("file", type=Path, metavar="FILE",
                          help="GeoJSON, GeoPackage, Shapefile (.shp, .zip, .shp.zip) or KML")
    validate.add_argument("--map", type=Path, metavar="OUT.html",
                          help="write a map of the venues and the problems (one HTML file "
                               "that works offline)")
    validate.add_argument("--strict", action="store_true",
                          help="reject the whole file when any feature has an error")
    validate.add_argument("--repair", action="store_true",
                          help="repair invalid polygons with make_valid (reported as warnings)")
    validate.add_argument("--max-area-km2", type=_positive_float, default=50.0, metavar="N",
                          help="largest polygon area accepted, in km² (default: 50)")
    validate.add_argument("--json", action="store_true",
                          help="print the report as JSON on stdout instead of text")
    validate.set_defaults(func=_validate)
    hours = actions.add_parser(
        "hours", help="show a venue's opening hours as campaigns read them",
        description=HOURS_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    hours.add_argument("file", type=Path, metavar="FILE", help="a venue file")
    hours.add_argument("--id", required=True, metavar="ID", help="the venue's id")
    hours.add_argument("--from", dest="first", type=_date, metavar="YYYY-MM-DD",
                       help="first local day (default: today in the venue's zone)")
    hours.add_argument("--days", type=_days, default=7, metavar="N",
                       help=f"how many days (1-{MAX_HOURS_DAYS}, default 7)")
    hours.add_argument("--country", metavar="CC",
                       help="public holidays of this country when the venue names none "
                            "(as the tenant policy's country)")
    hours.add_argument("--timezone", default="UTC", metavar="ZONE",
                       help="the zone of a venue that names none (default: UTC)")
    hours.add_argument("--json", action="store_true", help="print JSON instead of text")
    hours.set_defaults(func=_hours)


MAX_HOURS_DAYS = 31


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _days(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_HOURS_DAYS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days from 1 to "
                                         f"{MAX_HOURS_DAYS}")
    return int(text)


def _hours(args: argparse.Namespace) -> int:
    from triggers.decisions.hours import local_time  # noqa: PLC0415 - heavy: run only
    from triggers.decisions.venue_hours import hours_report  # noqa: PLC0415
    from venues import VenueFileError, load_venues  # noqa: PLC0415

    source = str(args.file)
    try:
        load = load_venues(source)
    except VenueFileError as exc:
        location = f"{source}:{exc.line}" if exc.line is not None else source
        raise CliError(f"{exc.problem.message} [{exc.problem.code}]", location=location,
                       field=exc.problem.field or None) from exc
    venue = next((v for v in load.venues if v.id == args.id), None)
    if venue is None:
        known = "; it has none" if not load.venues else ""
        raise CliError(f"no valid venue with id {args.id!r}{known}", location=source,
                       field="id", exit_status=1)
    tz = venue.timezone or args.timezone
    try:
        ZoneInfo(tz)  # checked here: the report would fail deep inside
    except (ZoneInfoNotFoundError, ValueError):
        raise CliError(f"unknown time zone {tz!r}", field="--timezone") from None
    first = args.first or local_time(time.time(), tz).date()
    country = args.country.upper() if args.country else None
    report = hours_report(venue, tz, country, first, args.days)
    if args.json:
        print(json.dumps({
            "venue_id": venue.id, "opening_hours": report.text, "timezone": tz,
            "understood": report.understood, "problem": report.problem,
            "caveat": report.caveat,
            "spans": [{"start": s.start.isoformat(), "end": s.end.isoformat(),
                       "state": s.state.value, "comment": s.comment} for s in report.spans],
        }, ensure_ascii=False, indent=2))
        return 0
    text = report.text
    print(f"{venue.name} ({venue.id}), {tz}: {text!r}" if text else
          f"{venue.name} ({venue.id}), {tz}: no opening hours")
    for note in (report.problem, report.caveat):
        if note:
            print(f"  note: {note}")
    for span in report.spans:
        said = f"  ({span.comment})" if span.comment else ""
        print(f"  {span.start:%a %Y-%m-%d %H:%M} - {span.end:%a %Y-%m-%d %H:%M}  "
              f"{span.state.value}{said}")
    return 0


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number")
    return value


def _validate(args: argparse.Namespace) -> int:
    from venues import VenueFileError, load_venues  # noqa: PLC0415 - see _hours

    source = str(args.file)
    with _Progress() as progress:
        try:
            load = load_venues(source, strict=args.strict, repair=args.repair,
                               max_area_km2=args.max_area_km2, progress=progress)
        except VenueFileError as exc:
            problem = exc.problem
            if args.json:
                print(json.dumps({"source": source, "readable": False,
                                  "problems": [_problem_json(problem)]}, ensure_ascii=False))
            location = f"{source}:{exc.line}" if exc.line is not None else source
            raise CliError(f"{problem.message} [{problem.code}]", location=location,
                           field=problem.field or None) from exc
    if args.json:
        print(json.dumps(_load_json(load), ensure_ascii=False, indent=2))
    else:
        for problem in load.problems:
            print(problem.describe(source))
        _print_summary(load)
    if args.map is not None:
        _write_map(load, args.map, quiet=args.json)
    return 0 if load.summary.errors == 0 else 1


def _print_summary(load: VenueLoad) -> None:
    s = load.summary
    strict = " (strict: whole file rejected)" if s.strict_rejected else ""
    print(f"{load.source}: {s.features} features read: {s.valid} valid, "
          f"{s.rejected} rejected{strict}, {s.repaired} repaired; "
          f"{s.errors} error{'' if s.errors == 1 else 's'}, "
          f"{s.warnings} warning{'' if s.warnings == 1 else 's'}")
    if s.by_kind:
        kinds = ", ".join(f"{kind} {n}" for kind, n in s.by_kind.items())
        print(f"{load.source}: venues by kind: {kinds}")


def _write_map(load: VenueLoad, path: Path, *, quiet: bool) -> None:
    from server.cli.maps import save_map  # noqa: PLC0415 - folium only for --map
    from venues.webmap import venue_map  # noqa: PLC0415

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_map(venue_map(load), path)
    except OSError as exc:
        raise CliError(f"cannot write the map: {exc.strerror or exc}", location=str(path),
                       exit_status=2) from exc
    if not quiet:
        print(f"map: {path}")


def _problem_json(problem: Problem) -> dict[str, Any]:
    data = asdict(problem)
    data["severity"] = problem.severity.value
    data["at"] = [problem.at.lat, problem.at.lng] if problem.at is not None else None
    return data


def _load_json(load: VenueLoad) -> dict[str, Any]:
    return {
        "source": load.source,
        "readable": True,
        "summary": asdict(load.summary),
        "problems": [_problem_json(p) for p in load.problems],
        "venues": [v.id for v in load.venues],
    }


class _Progress:
    """A tqdm bar on stderr for big files on a terminal; silent otherwise.

    Used as the ``progress(done, total)`` hook of :func:`venues.load_venues`; the bar
    is created on the first call, once the feature count is known.
    """

    def __init__(self) -> None:
        self._bar: tqdm[Any] | None = None
        self._enabled = sys.stderr.isatty()

    def __call__(self, done: int, total: int) -> None:
        if not self._enabled or total < PROGRESS_MIN_FEATURES:
            return
        if self._bar is None:
            from tqdm import tqdm  # noqa: PLC0415

            self._bar = tqdm(total=total, unit="feature", desc="validating", file=sys.stderr,
                             leave=False)
        self._bar.update(done - self._bar.n)

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()
