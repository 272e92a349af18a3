"""Reading scenario files: the YAML, the venue files and pings CSVs it names.

Every problem is a :class:`ScenarioFileError` naming the file, the line when known, the
YAML path (``campaigns[0].trigger.event``) and what was expected — never a traceback.
Paths inside a scenario are relative to the scenario file.
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from numpy.typing import NDArray
from pydantic import ValidationError

from server.cli.common import CliError, not_utf8
from server.cli.visits import _chunks as ping_chunks  # the one pings-CSV parser
from server.errors import field_path
from triggers.behaviour.events import BehaviourEvent
from triggers.behaviour.files import EventFileError, read_events
from triggers.decisions.models import Campaign
from triggers.errors import TriggerError
from triggers.pings import PingBatch
from triggers.simulation import Scenario, ScenarioSpec, SimulationError, build
from triggers.simulation.scenario import UserEvents
from triggers.simulation.stream import recorded_columns
from venues import VenueError, VenueLoad, load_venues, parse_feature_collection
from venues.model import Venue
from venues.values import first_non_finite

_MAX_PROBLEMS = 5


class ScenarioFileError(Exception):
    """A scenario (or campaign) file that cannot be used; ``str()`` is the message."""

    def __init__(self, file: str, message: str, *, path: str = "", line: int | None = None):
        self.file, self.path, self.line, self.message = file, path, line, message
        where = f"{file}:{line}" if line is not None else file
        super().__init__(": ".join(p for p in (where, path, message) if p))

    def as_cli_error(self) -> CliError:
        location = f"{self.file}:{self.line}" if self.line is not None else self.file
        return CliError(self.message, location=location, field=self.path or None)


class _Document:
    """A YAML document's data and the line of every path in it."""

    def __init__(self, file: str, text: str) -> None:
        self.file = file
        self.lines: dict[str, int] = {}
        node = None
        try:
            loader = yaml.SafeLoader(text)
            try:
                node = loader.get_single_node()
                self.data: Any = None if node is None else loader.construct_document(node)
            finally:
                loader.dispose()
        except ValueError as exc:
            # A scalar that looks like a timestamp or an integer but is none
            # (2026-02-30, 5,000 digits): PyYAML raises without a mark.
            bad = None if node is None else _unconstructible(node)
            line = None if bad is None else bad.start_mark.line + 1
            shown = "" if bad is None else f"{_short(bad.value)}: "
            raise ScenarioFileError(file, f"not valid YAML: {shown}{exc}", line=line) from None
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = None if mark is None else mark.line + 1
            what = " ".join(p for p in (exc.context, exc.problem) if p)
            raise ScenarioFileError(file, f"not valid YAML: {what}", line=line) from None
        except yaml.reader.ReaderError as exc:  # a control character, a NUL
            line = text[:exc.position].count("\n") + 1
            raise ScenarioFileError(file, f"not valid YAML: {exc.reason} "
                                          f"({exc.character!r})", line=line) from None
        except yaml.YAMLError as exc:
            raise ScenarioFileError(file, f"not valid YAML: {' '.join(str(exc).split())}") \
                from None
        if node is not None:
            self._walk(node, "")
        where = first_non_finite(self.data)
        if where is not None:
            # YAML reads .inf, .nan and 1.0e400 as floats no rule can use and no JSON
            # writer (a report, the database's jsonb) can write.
            path = field_path(where) or ""
            raise self.error(path, "not a finite number: numbers must be finite")

    def _walk(self, node: yaml.Node, path: str) -> None:
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                child = f"{path}.{key.value}" if path else str(key.value)
                self.lines[child] = key.start_mark.line + 1
                self._walk(value, child)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._walk(item, f"{path}[{i}]")

    def line(self, path: str) -> int | None:
        """The line of ``path``, else of its nearest ancestor that has one."""
        while True:
            if path in self.lines:
                return self.lines[path]
            if not path:
                return None
            cut = max(path.rfind("."), path.rfind("["))
            path = path[:cut] if cut > 0 else ""

    def error(self, path: str, message: str) -> ScenarioFileError:
        return ScenarioFileError(self.file, message, path=path, line=self.line(path))

    def validation_error(self, exc: ValidationError, data: Any, prefix: str = "") -> \
            ScenarioFileError:
        """The first pydantic error, its loc turned into a YAML path."""
        err = exc.errors(include_url=False)[0]
        path = _yaml_path(err["loc"], data, prefix)
        message = err["msg"]
        if message.startswith("Value error, "):
            message = message[len("Value error, "):]
        if err["type"] not in ("missing", "extra_forbidden") and "input" in err:
            shown = repr(err["input"])
            message += f" (got {shown if len(shown) <= 60 else shown[:57] + '...'})"
        if err["type"] == "extra_forbidden":
            message = "unknown key (not part of the scenario format)"
        more = len(exc.errors()) - 1
        if more:
            message += f" [and {more} more problem{'s' if more > 1 else ''}]"
        return self.error(path, message)


def _unconstructible(root: yaml.Node) -> yaml.ScalarNode | None:
    """The first scalar under ``root`` (in document order) that PyYAML cannot construct."""
    loader = yaml.SafeLoader("")
    stack = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, yaml.ScalarNode):
            try:
                loader.construct_object(node)
            except ValueError:
                return node
        elif isinstance(node, yaml.MappingNode):
            stack.extend(n for pair in reversed(node.value) for n in reversed(pair))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(reversed(node.value))
    return None


def _short(value: str) -> str:
    shown = repr(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."


def _yaml_path(loc: tuple[Any, ...], data: Any, prefix: str) -> str:
    """pydantic's loc as ``a.b[0].c``, skipping the union/validator tags that name no
    key of the data (``function-plain[parse_leg()]``, ``float``)."""
    path, here = prefix, data
    for part in loc:
        if isinstance(part, int) and isinstance(here, list) and 0 <= part < len(here):
            path, here = f"{path}[{part}]", here[part]
        elif isinstance(part, str) and isinstance(here, Mapping) and part in here:
            path, here = (f"{path}.{part}" if path else part), here[part]
        elif isinstance(part, str) and isinstance(here, Mapping) and not part.startswith(
                ("function-", "tuple[", "list[", "dict[")) and part not in (
                "float", "int", "str", "bool", "none", "int-from-float", "is-instance"):
            # A missing key: name it, though the data has no line for it.
            path, here = (f"{path}.{part}" if path else part), None
    return path


def _read_text(path: Path, file_for_errors: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioFileError(file_for_errors, "no such file") from None
    except UnicodeDecodeError as exc:
        raise ScenarioFileError(file_for_errors, f"not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise ScenarioFileError(file_for_errors, exc.strerror or str(exc)) from None


def load_scenario(path: str | Path) -> Scenario:
    """Read, validate and build the scenario at ``path``; raises ScenarioFileError."""
    file = str(path)
    doc = _Document(file, _read_text(Path(path), file))
    data = doc.data
    if not isinstance(data, Mapping):
        raise doc.error("", "expected a mapping with name, start, venues, ... at the top")
    base = Path(path).resolve().parent
    rest = {k: v for k, v in data.items() if k not in ("venues", "pings", "events")}
    if "venues" not in data:
        raise doc.error("venues", "missing: a venue file (relative to the scenario) or an "
                                  "inline FeatureCollection")
    venues, attribution = _venues(doc, data["venues"], base)
    events: list[tuple[BehaviourEvent, _Origin]] = []
    if "events" in data:
        events, generators = _events(doc, data["events"], base)
        rest = {**rest, "events": [e for e, _ in events],
                "event_generators": [*rest.get("event_generators", ()), *generators]}
    try:
        spec = ScenarioSpec.model_validate(rest)
    except ValidationError as exc:
        raise doc.validation_error(exc, rest) from None
    _check_event_times(events, spec.start.timestamp())
    pings = _pings(doc, data.get("pings"), base, spec.start.timestamp())
    recorded = None if pings is None else recorded_columns(*pings, arrival=spec.pings_arrival)
    try:
        return build(spec, venues, recorded, attribution)
    except SimulationError as exc:
        raise doc.error(exc.path, exc.message) from None


def load_campaign(path: str | Path) -> Campaign:
    """A campaign YAML (one campaign mapping, as under ``campaigns:``) for back-tests."""
    file = str(path)
    doc = _Document(file, _read_text(Path(path), file))
    if not isinstance(doc.data, Mapping):
        raise doc.error("", "expected one campaign as a mapping (id, trigger, variants, ...)")
    try:
        return Campaign.model_validate(doc.data)
    except ValidationError as exc:
        raise doc.validation_error(exc, doc.data) from None


def _venues(doc: _Document, value: Any, base: Path) -> tuple[tuple[Venue, ...], str | None]:
    items = value if isinstance(value, list) else [value]
    venues: dict[str, Venue] = {}
    attributions: list[str] = []
    for i, item in enumerate(items):
        where = f"venues[{i}]" if isinstance(value, list) else "venues"
        load = _venue_load(doc, item, base, where)
        if load.errors:
            shown = "; ".join(p.describe(load.source) for p in load.errors[:_MAX_PROBLEMS])
            more = len(load.errors) - _MAX_PROBLEMS
            raise doc.error(where, f"invalid venues: {shown}"
                                   + (f" (and {more} more)" if more > 0 else ""))
        for venue in load.venues:
            if venue.id in venues:
                raise doc.error(where, f"venue id {venue.id!r} is defined twice")
            venues[venue.id] = venue
        if load.attribution and load.attribution not in attributions:
            attributions.append(load.attribution)
    return tuple(venues.values()), "; ".join(attributions) or None


def _venue_load(doc: _Document, item: Any, base: Path, where: str) -> VenueLoad:
    try:
        if isinstance(item, str):
            target = base / item
            if not target.exists():
                raise doc.error(where, f"venue file {item!r} not found (looked at {target})")
            return load_venues(target)
        if isinstance(item, Mapping):
            return parse_feature_collection(dict(item), source=f"{doc.file} {where}")
    except VenueError as exc:
        raise doc.error(where, str(exc)) from None
    except OSError as exc:  # a name too long for the file system
        raise doc.error(where, f"venue file {_short(item)}: {exc.strerror or exc}") from None
    raise doc.error(where, "expected a venue file path or an inline FeatureCollection")


MAX_SPAN_DAYS = 366
"""How far from the scenario's start a recorded ping (its ``ts`` or ``received_at``) may
be, and how far after it an event of the scenario. The replay steps through every slice
of ``batch_s`` between the start and the last ping or event, so one time from a broken
export (0, milliseconds read as seconds, 2199) would run for hours: it is named instead."""


def _pings(
    doc: _Document, value: Any, base: Path, start_ts: float
) -> tuple[PingBatch, NDArray[np.float64]] | None:
    """The pings of the CSV(s), in file order, and each one's ``received_at`` (NaN: none);
    a time more than :data:`MAX_SPAN_DAYS` from ``start_ts`` names its file and line."""
    if value is None:
        return None
    items = value if isinstance(value, list) else [value]
    batches: list[PingBatch] = []
    received: list[NDArray[np.float64]] = []
    for i, item in enumerate(items):
        where = f"pings[{i}]" if isinstance(value, list) else "pings"
        if not isinstance(item, str):
            raise doc.error(where, "expected the path of a pings CSV")
        target = base / item
        try:
            with target.open(newline="", encoding="utf-8-sig") as source:
                first_row = 0
                for batch, _, arrived in ping_chunks(source, str(target), 100_000):
                    _check_times(target, first_row, batch.ts, arrived, start_ts)
                    batches.append(batch)
                    received.append(arrived)
                    first_row += len(batch)
        except FileNotFoundError:
            raise doc.error(where, f"pings file {item!r} not found (looked at {target})") \
                from None
        except OSError as exc:
            raise doc.error(where, f"{item}: {exc.strerror or exc}") from None
        except CliError as exc:
            raise doc.error(where, str(exc)) from None
        except TriggerError as exc:
            raise doc.error(where, f"{item}: {exc}") from None
    if not batches:
        return None
    return PingBatch.concat(batches), np.concatenate(received)



def _check_times(target: Path, first_row: int, ts: NDArray[np.float64],
                 received: NDArray[np.float64], start_ts: float) -> None:
    """Raise naming the first ping (of rows ``first_row`` on) with a time more than
    :data:`MAX_SPAN_DAYS` from the start."""
    limit = MAX_SPAN_DAYS * 86_400.0
    for field, times in (("ts", ts), ("received_at", received)):
        far = np.abs(times - start_ts) > limit  # False for NaN (no received_at)
        if far.any():
            row = first_row + int(np.argmax(far))
            raise CliError(f"{_when(float(times[row - first_row]))} is more than "
                           f"{MAX_SPAN_DAYS} days from the scenario's start "
                           f"({_when(start_ts)})",
                           location=f"{target}:{_ping_line(target, row)}", field=field)


def _when(ts: float) -> str:
    try:
        return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")
    except (ValueError, OverflowError, OSError):  # beyond the years datetime holds
        return f"{ts:g} s"


def _ping_line(target: Path, row: int) -> int | None:
    """The line of data row ``row`` (0-based) of a pings CSV, skipping blank rows as the
    parser does."""
    with target.open(newline="", encoding="utf-8-sig") as source:
        reader = csv.reader(source)
        lines = (reader.line_num for cells in reader if any(c.strip() for c in cells))
        return next(itertools.islice(lines, row + 1, None), None)


_Origin = tuple[str, int | None, str]
"""Where an event was written: file, line and (YAML) path of its ``ts``."""


def _events(doc: _Document, value: Any, base: Path) -> tuple[
        list[tuple[BehaviourEvent, _Origin]], list[UserEvents]]:
    """``events``: event files (CSV, or JSONL by its ``.jsonl`` name, as ``geopush
    events import`` reads them), inline event objects and per-user generators
    (``{user_id | user_ids, generate}``), one or a list; each checked where it is."""
    items = value if isinstance(value, list) else [value]
    events: list[tuple[BehaviourEvent, _Origin]] = []
    generators: list[UserEvents] = []
    for i, item in enumerate(items):
        where = f"events[{i}]" if isinstance(value, list) else "events"
        if isinstance(item, str):
            target = str(base / item)
            events.extend((event, (target, line, "ts"))
                          for line, event in _event_file(doc, item, base, where))
            continue
        if not isinstance(item, Mapping):
            raise doc.error(where, "expected an event file, an event object or "
                                   "{user_id, generate}")
        model: type[BehaviourEvent] | type[UserEvents] = \
            UserEvents if "generate" in item else BehaviourEvent
        try:
            made = model.model_validate(dict(item))
        except ValidationError as exc:
            raise doc.validation_error(exc, item, where) from None
        if isinstance(made, UserEvents):
            generators.append(made)
        else:
            events.append((made, (doc.file, doc.line(f"{where}.ts"), f"{where}.ts")))
    return events, generators


def _check_event_times(events: list[tuple[BehaviourEvent, _Origin]], start_ts: float) -> None:
    """Raise naming the first event more than :data:`MAX_SPAN_DAYS` after the start
    (one before it is history, replayed at the start)."""
    limit = start_ts + MAX_SPAN_DAYS * 86_400.0
    for event, (file, line, path) in events:
        if event.ts > limit:
            raise ScenarioFileError(file, f"{_when(event.ts)} is more than {MAX_SPAN_DAYS} "
                                          f"days after the scenario's start "
                                          f"({_when(start_ts)})", path=path, line=line)


def _event_file(doc: _Document, name: str, base: Path,
                where: str) -> list[tuple[int, BehaviourEvent]]:
    target = base / name
    try:
        with target.open(newline="", encoding="utf-8-sig") as lines:
            return list(read_events(lines, jsonl=name.endswith(".jsonl")))
    except FileNotFoundError:
        raise doc.error(where, f"events file {name!r} not found (looked at {target})") \
            from None
    except UnicodeDecodeError as exc:
        raise doc.error(where, str(not_utf8(str(target), exc))) from None
    except OSError as exc:
        raise doc.error(where, f"{name}: {exc.strerror or exc}") from None
    except EventFileError as exc:
        raise ScenarioFileError(str(target), exc.message, path=exc.field or "",
                                line=exc.line) from None
