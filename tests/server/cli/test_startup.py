"""``geopush`` starts with what the command needs: ``--help`` and ``locate`` load none of
the service (aiohttp, asyncpg, the app), the plots (matplotlib) or the maps (folium)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from server.cli.__main__ import COMMANDS, build_parser
from tests.conftest import BEIJING_VENUES, FIXTURES, ROOT

SERVICE_AND_DRAWING = ("aiohttp", "asyncpg", "matplotlib", "folium", "server.app",
                       "server.store")


def _imported(*argv: str) -> set[str]:
    """Every module the ``geopush`` process imported (``python -X importtime``)."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "server.cli", *argv],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines()
            if line.startswith("import time:") and "|" in line}


def _loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules for n in names if m == n or m.startswith(f"{n}."))


def _leaf_commands() -> list[list[str]]:
    """Every runnable command path: ["simulate"], ["venues", "validate"], ..."""
    out: list[list[str]] = []

    def walk(parser: argparse.ArgumentParser, path: list[str]) -> None:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            out.append(path)
        for action in subs:
            for name, child in action.choices.items():
                walk(child, [*path, name])

    walk(build_parser(), [])
    return out


def test_top_level_help_imports_no_command_module_nor_the_service() -> None:
    modules = _imported("--help")
    assert _loaded(modules, SERVICE_AND_DRAWING) == []
    assert _loaded(modules, tuple(c.module for c in COMMANDS)) == []
    assert _loaded(modules, ("numpy", "pandas", "shapely")) == []


def test_locate_imports_neither_the_service_nor_drawing_nor_geopandas(tmp_path: Path) -> None:
    out = tmp_path / "located.csv"
    modules = _imported("locate", "--venues", str(BEIJING_VENUES), "--points",
                        str(FIXTURES / "points" / "beijing_sample.csv"), "--out", str(out))
    assert out.read_text().startswith("point_id,venue_id\n")
    assert _loaded(modules, SERVICE_AND_DRAWING) == []
    # GeoJSON is read with json and the points with pyarrow: geopandas, GDAL and pandas
    # would only add start-up time (bench_locate's bar is whole processes).
    assert _loaded(modules, ("geopandas", "pyogrio", "pandas")) == []


@pytest.mark.parametrize("path", _leaf_commands(), ids=" ".join)
def test_every_command_help_imports_nothing_of_the_service(path: list[str]) -> None:
    assert _loaded(_imported(*path, "--help"), SERVICE_AND_DRAWING) == []
