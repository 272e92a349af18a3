"""Reading scenario files: the YAML, the venue files and pings CSVs it names.

Every problem is a :class:`ScenarioFileError` naming the file, the line when known, the
YAML path (``campaigns[0].trigger.event``) and what was expected — never a traceback.
Paths inside a scenario are relative to the scenario file.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from numpy.typing import NDArray
from pydantic import ValidationError

from server.cli.common import CliError
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
        try:
            loader = yaml.SafeLoader(text)
            try:
                node = loader.get_single_node()
                self.data: Any = None if node is None else loader.construct_document(node)
            finally:
                loader.dispose()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = None if mark is None else mark.line + 1
            what = " ".join(p for p in (exc.context, exc.problem) if p)
            raise ScenarioFileError(file, f"not valid YAML: {what}", line=line) from None
        except yaml.YAMLError as exc:
            raise ScenarioFileError(file, f"not valid YAML: {exc}") from None
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
    pings = _pings(doc, data.get("pings"), base)
    if "events" in data:
        events, generators = _events(doc, data["events"], base)
        rest = {**rest, "events": events,
                "event_generators": [*rest.get("event_generators", ()), *generators]}
    try:
        spec = ScenarioSpec.model_validate(rest)
    except ValidationError as exc:
        raise doc.validation_error(exc, rest) from None
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
    raise doc.error(where, "expected a venue file path or an inline FeatureCollection")


def _pings(
    doc: _Document, value: Any, base: Path
) -> tuple[PingBatch, NDArray[np.float64]] | None:
    """The pings of the CSV(s), in file order, and each one's ``received_at`` (NaN: none)."""
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
            with target.open(newline="", encoding="utf-8") as source:
                for batch, _, arrived in ping_chunks(source, str(target), 100_000):
                    batches.append(batch)
                    received.append(arrived)
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



def _events(doc: _Document, value: Any, base: Path) -> tuple[list[BehaviourEvent],
                                                             list[UserEvents]]:
    """``events``: event files (CSV, or JSONL by its ``.jsonl`` name, as ``geopush
    events import`` reads them), inline event objects and per-user generators
    (``{user_id | user_ids, generate}``), one or a list; each checked where it is."""
    items = value if isinstance(value, list) else [value]
    events: list[BehaviourEvent] = []
    generators: list[UserEvents] = []
    for i, item in enumerate(items):
        where = f"events[{i}]" if isinstance(value, list) else "events"
        if isinstance(item, str):
            events.extend(_event_file(doc, item, base, where))
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
            events.append(made)
    return events, generators


def _event_file(doc: _Document, name: str, base: Path, where: str) -> list[BehaviourEvent]:
    target = base / name
    try:
        with target.open(newline="", encoding="utf-8") as lines:
            return [event for _, event in read_events(lines, jsonl=name.endswith(".jsonl"))]
    except FileNotFoundError:
        raise doc.error(where, f"events file {name!r} not found (looked at {target})") \
            from None
    except UnicodeDecodeError as exc:
        raise doc.error(where, f"{name}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise doc.error(where, f"{name}: {exc.strerror or exc}") from None
    except EventFileError as exc:
        raise ScenarioFileError(str(target), exc.message, path=exc.field or "",
                                line=exc.line) from None
