"""How ``geopush`` behaves at a terminal: quiet when its reader goes away, plain help
texts that each describe their own command, a README table that matches the parser,
and one line when the database is out of reach."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from server.cli import common, keys
from server.cli.__main__ import SIGPIPE_STATUS, build_parser
from tests.conftest import BEIJING_VENUES, FIXTURES, ROOT
from tests.server.serve import free_port

# On the edge of 农业展览馆 station (its first vertex): inside.
INSIDE = "39.939236068397726,116.45640976573445"


def _geopush(*argv: str) -> list[str]:
    return [sys.executable, "-m", "server.cli", *argv]


def _leaves() -> dict[str, argparse.ArgumentParser]:
    """Every runnable command ("venues validate", ...) and its parser."""
    out: dict[str, argparse.ArgumentParser] = {}

    def walk(parser: argparse.ArgumentParser, path: list[str]) -> None:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs and path:
            out[" ".join(path)] = parser
        for action in subs:
            for name, child in action.choices.items():
                walk(child, [*path, name])

    walk(build_parser(), [])
    return out


def _read_one_line_then_hang_up(cmd: list[str]) -> tuple[str, int, str]:
    """What ``cmd | head -1`` sees: the first line, the exit status, stderr."""
    with subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        first = proc.stdout.readline()
        proc.stdout.close()
        err = proc.stderr.read()
        return first, proc.wait(timeout=120), err


def test_locate_into_a_closed_pipe_stops_quietly(tmp_path: Path) -> None:
    points = tmp_path / "many.csv"
    # ~3 MB of output: far more than a pipe holds, so the writes meet the closed end.
    points.write_text("id,lat,lng\n" + "".join(f"p{i},{INSIDE}\n" for i in range(100_000)))
    first, status, err = _read_one_line_then_hang_up(
        _geopush("locate", "--venues", str(BEIJING_VENUES), "--points", str(points)))
    assert first == "point_id,venue_id\n"
    assert status == SIGPIPE_STATUS
    assert err == ""


def test_simulate_timeline_into_a_closed_pipe_stops_quietly() -> None:
    # ~1 MB of timeline: 2,000 users.
    first, status, err = _read_one_line_then_hang_up(
        _geopush("simulate", str(FIXTURES / "scenarios" / "ab_test_2000_users.yaml"),
                 "--timeline-limit", "100000"))
    assert first.startswith("── ")
    assert status == SIGPIPE_STATUS
    assert err == ""


@pytest.mark.parametrize("command", [*_leaves(), ""])
def test_help_is_plain_text_without_rst_markup_or_doubled_percent(command: str) -> None:
    parser = _leaves()[command] if command else build_parser()
    text = parser.format_help()
    for markup in ("``", ":class:", ":func:", ":mod:", ":data:", "%%"):
        assert markup not in text, f"{command or 'geopush'}: {markup!r} in its help"


@pytest.mark.parametrize(
    ("command", "foreign"),
    [
        ("venues validate", ("opening hours", "--id")),
        ("venues hours", ("validate", "rejected")),
        ("serve", ("keys create", "hash is stored", "--tenant")),
        ("keys create", ("--shutdown-timeout", "preload")),
        ("simulate", ("validate", "locate")),
        ("visits", ("point_id,venue_id", "scenario")),
        ("locate", ("presence engine", "scenario")),
    ],
)
def test_each_command_help_describes_only_itself(command: str, foreign: tuple[str, ...]) -> None:
    text = _leaves()[command].format_help()
    assert f"usage: geopush {command}" in text
    for words in foreign:
        assert words not in text, f"{command} --help speaks of {words!r}"


def _readme_commands() -> dict[str, str]:
    """The README's commands table: command path -> its synopsis (code span)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = re.split(r"^#+ Commands$", readme, maxsplit=1, flags=re.M)[1]
    table = re.split(r"^#", table, maxsplit=1, flags=re.M)[0]
    rows: dict[str, str] = {}
    for line in table.splitlines():
        match = re.match(r"\| `(geopush [^`]+)` \|", line)
        if match:
            synopsis = match.group(1).replace("\\|", "|")
            words = synopsis.split()[1:]
            path = " ".join(w for w in words[:2] if re.fullmatch(r"[a-z]+", w))
            rows[path] = synopsis
    return rows


def _outside_brackets(synopsis: str) -> str:
    depth, kept = 0, []
    for ch in synopsis:
        depth += ch == "["
        if depth == 0:
            kept.append(ch)
        depth -= ch == "]"
    return "".join(kept)


def test_readme_commands_table_lists_every_command_with_options_that_exist(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("GEOPUSH_DATABASE_URL", raising=False)
    leaves = _leaves()
    rows = _readme_commands()
    assert sorted(rows) == sorted(leaves)
    for command, synopsis in rows.items():
        parser = leaves[command]
        known = {s for a in parser._actions for s in a.option_strings}
        named = set(re.findall(r"--[a-z0-9-]+", synopsis))
        assert named <= known, f"README names {named - known} for {command}"
        required = {a.option_strings[0] for a in parser._actions
                    if a.required and a.option_strings}
        plain = set(re.findall(r"--[a-z0-9-]+", _outside_brackets(synopsis)))
        assert plain == required, f"{command}: README {plain} vs required {required}"


def test_keys_create_requires_a_database_url_and_says_where_embedded_keys_come_from(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("GEOPUSH_DATABASE_URL", raising=False)
    text = " ".join(_leaves()["keys create"].format_help().split())
    assert "[--database-url URL]" not in text and "--database-url URL" in text
    for way in ("--admin-key", "GEOPUSH_ADMIN_KEY", "POST /v1/keys"):
        assert way in text
    proc = subprocess.run(_geopush("keys", "create", "--tenant", "t", "--role", "sdk"),
                          cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
                          env={k: v for k, v in os.environ.items()
                               if k not in ("DATABASE_URL", "GEOPUSH_DATABASE_URL")})
    assert proc.returncode == 2
    assert "the following arguments are required: --database-url" in proc.stderr


def test_the_commands_spell_out_the_service_names_they_must_not_import() -> None:
    from server.auth import DEFAULT_TENANT  # noqa: PLC0415 - the service, on purpose
    from server.store.base import Role  # noqa: PLC0415

    assert tuple(r.value for r in Role) == keys.ROLES
    assert common.DEFAULT_TENANT == DEFAULT_TENANT


def test_serve_says_in_one_line_that_it_cannot_reach_the_database() -> None:
    port = free_port()  # nothing listens there
    url = f"postgresql://geopush:s3cret@127.0.0.1:{port}/geopush"
    proc = subprocess.run(_geopush("serve", "--port", "0", "--database-url", url),
                          cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(
        f"geopush: error: cannot reach the database at "
        f"postgresql://geopush:***@127.0.0.1:{port}/geopush: "), lines[0]
    assert "s3cret" not in proc.stderr + proc.stdout


@pytest.mark.parametrize(("environment", "key"), [
    ({"GEOPUSH_API_KEY": "gp_new"}, "gp_new"),
    ({"GEOPUSH_KEY": "gp_old"}, "gp_old"),
    ({"GEOPUSH_API_KEY": "gp_new", "GEOPUSH_KEY": "gp_old"}, "gp_new"),
])
def test_events_import_takes_its_key_from_the_same_variable_as_the_other_commands(
        monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], key: str) -> None:
    for name in ("GEOPUSH_API_KEY", "GEOPUSH_KEY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    args = build_parser("events").parse_args(["events", "import", "events.csv"])
    assert args.key == key
