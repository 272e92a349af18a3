"""The layering of DESIGN.md, enforced: the pure core does no IO and reads no clock.

import-linter (run by ``dev.py test``) checks the package layers; this test adds what a
layer contract cannot see: calls that read the clock or the environment inside the core,
and inside the stores (which stamp rows with the clock they are given: the app's).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PURE_PACKAGES = ("geo", "triggers")
FORBIDDEN_IMPORTS = {"aiohttp", "asyncpg", "server", "socket", "requests", "subprocess"}
FORBIDDEN_CALLS = {
    ("time", "time"), ("time", "monotonic"), ("time", "perf_counter"),
    ("datetime", "now"), ("datetime", "utcnow"), ("date", "today"),
    ("os", "getenv"), ("os", "environ"),
}


def _pure_modules() -> list[Path]:
    return sorted(p for pkg in PURE_PACKAGES for p in (ROOT / pkg).rglob("*.py"))


@pytest.mark.parametrize("path", _pure_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_pure_core_module_does_no_io_and_reads_no_clock(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    problems: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names, line = [a.name for a in node.names], node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names, line = [node.module], node.lineno
        else:
            names, line = [], 0
        problems += [f"line {line}: imports {n}" for n in names
                     if n.split(".")[0] in FORBIDDEN_IMPORTS]
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and (node.value.id, node.attr) in FORBIDDEN_CALLS
        ):
            problems.append(f"line {node.lineno}: uses {node.value.id}.{node.attr}")
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in {"open", "input", "print"}
        ):
            problems.append(f"line {node.lineno}: calls {node.func.id}()")
    assert problems == [], f"{path.relative_to(ROOT)} breaks the pure-core rule: {problems}"


def test_pure_core_has_modules_to_check() -> None:
    assert len(_pure_modules()) >= 4


def _store_modules() -> list[Path]:
    return sorted((ROOT / "server" / "store").rglob("*.py"))


@pytest.mark.parametrize("path", _store_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_store_module_reads_no_clock_of_its_own(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    calls = [f"line {node.lineno}: calls {node.func.value.id}.{node.func.attr}()"
             for node in ast.walk(tree)
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
             and isinstance(node.func.value, ast.Name)
             and (node.func.value.id, node.func.attr) in FORBIDDEN_CALLS]
    assert calls == [], f"{path.relative_to(ROOT)} reads a clock of its own: {calls}"


def test_stores_have_modules_to_check() -> None:
    names = {p.name for p in _store_modules()}
    assert {"memory.py", "postgres.py"} <= names
