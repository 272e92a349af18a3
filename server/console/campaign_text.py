"""A campaign typed in the console's raw editor, as JSON or as YAML.

The check and back-test endpoints read a body of ``Content-Type: application/yaml`` (or
``text/yaml``) with PyYAML's safe loader, then validate the document exactly as a JSON
body is validated: the same schema, the same 422s with field paths. A YAML error is a
400 ``invalid_yaml`` naming its line and column. The loader reads YAML as people mean
it in a campaign: ``10:00`` stays the text "10:00" (YAML 1.1 would read 600, base 60)
and ``2026-12-24`` stays text (not a date, which has no JSON form).
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from aiohttp import web

from server.api.context import read_body, read_json, refuse_non_finite
from server.errors import ApiError, field_path

YAML_TYPES = frozenset({"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"})
MAX_YAML_BYTES = 256 * 1024
"""A campaign is a few kilobytes; YAML aliases can blow a small text up, so the text is
bounded before parsing and aliases are refused."""

_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"


class _CampaignLoader(yaml.SafeLoader):
    """The safe loader without base-60 numbers or timestamps, and without aliases."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not accepted in a campaign", event.start_mark)
        return super().compose_node(parent, index)


_CampaignLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in {_INT, _FLOAT, _TIMESTAMP}]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_CampaignLoader.add_implicit_resolver(
    _INT, re.compile(r"^[-+]?(?:0|[1-9][0-9_]*)$"), list("-+0123456789"))
_CampaignLoader.add_implicit_resolver(
    _FLOAT, re.compile(r"^(?:[-+]?(?:[0-9][0-9_]*)?\.[0-9_]*(?:[eE][-+]?[0-9]+)?"
                       r"|[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+"
                       r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+0123456789."))


def is_yaml(request: web.Request) -> bool:
    """Whether the body is declared as YAML (its ``Content-Type``)."""
    return request.content_type in YAML_TYPES


async def read_campaign_body(request: web.Request) -> Any:
    """The body as JSON data: YAML when declared so (:func:`yaml_document`), else JSON
    as every API route reads it."""
    if not is_yaml(request):
        return await read_json(request)
    raw = await read_body(request)
    if len(raw) > MAX_YAML_BYTES:
        raise ApiError(413, "payload_too_large",
                       f"a YAML campaign is at most {MAX_YAML_BYTES} bytes", field="body")
    return yaml_document(raw)


def yaml_document(raw: bytes) -> Any:
    """``raw`` read as YAML into JSON data (mappings with text keys, lists, text,
    numbers, booleans, null): 400 ``invalid_yaml`` naming the line and column of a
    syntax error, 422 for a value JSON has no form for, named by its field path."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(400, "invalid_yaml", "body is not UTF-8", field="body") from exc
    if not text.strip():
        raise ApiError(400, "invalid_yaml", "the request body is empty; send a campaign",
                       field="body")
    try:
        document = yaml.load(text, Loader=_CampaignLoader)  # a SafeLoader: no objects
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(exc) from exc
    except (yaml.YAMLError, RecursionError) as exc:
        raise ApiError(400, "invalid_yaml", f"body is not valid YAML: {exc}",
                       field="body") from exc
    _refuse_non_json(document, ())
    refuse_non_finite(document)
    return document


def _syntax_error(exc: yaml.MarkedYAMLError) -> ApiError:
    mark = exc.problem_mark or exc.context_mark
    where = f"line {mark.line + 1} column {mark.column + 1}: " if mark else ""
    problem = exc.problem or exc.context or "cannot be read"
    return ApiError(400, "invalid_yaml", f"body is not valid YAML: {where}{problem}",
                    field=f"line {mark.line + 1}" if mark else "body")


def _refuse_non_json(value: Any, path: tuple[int | str, ...]) -> None:
    """422 ``invalid_yaml`` at the first value with no JSON form (a binary, a set, a
    key that is not text), 422 ``invalid_text`` at text no database can store (NUL)."""
    if isinstance(value, str):
        if "\x00" in value or re.search("[\ud800-\udfff]", value):
            raise ApiError(422, "invalid_text",
                           "text must not contain NUL characters or lone surrogates",
                           field=field_path(path))
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ApiError(422, "invalid_yaml", f"key {key!r} is not text; quote it",
                               field=field_path(path) or "body")
            _refuse_non_json(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _refuse_non_json(item, (*path, i))
    elif value is not None and not isinstance(value, bool | int | float):
        raise ApiError(422, "invalid_yaml",
                       f"a {type(value).__name__} has no JSON form", field=field_path(path))
