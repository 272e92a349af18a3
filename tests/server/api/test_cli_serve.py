"""``geopush serve`` as a process: it answers, preloads a scenario, prints a generated
admin key on the embedded store, and exits cleanly on SIGTERM; ``geopush keys create``
writes a working key into PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from tests.server.api.conftest import venue_feature
from tests.server.serve import ROOT, free_port, serve_command, stop, wait_up

TRAJECTORY = ("trajectories:\n  - {user_id: u1, generate: {route: [entrance, venue:senate]}}"
              "\n")


def _get(url: str, key: str | None = None) -> tuple[int, object]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"}
                                     if key else {})
    with urllib.request.urlopen(request, timeout=5) as resp:
        return resp.status, json.loads(resp.read())


def test_serve_preloads_a_scenario_prints_a_key_and_stops_on_sigterm(tmp_path: Path) -> None:
    (tmp_path / "venues.geojson").write_text(json.dumps(
        {"type": "FeatureCollection", "features": [venue_feature()]}))
    (tmp_path / "scenario.yaml").write_text(
        "name: preload\nstart: 2026-03-02T12:00:00+00:00\nvenues: venues.geojson\n"
        "policy: {max_per_day: 2}\n"
        "profiles:\n  - {user_id: u1, tags: [coffee]}\n"
        "campaigns:\n  - id: hello\n    trigger: {event: enter}\n"
        "    variants: [{id: a, title: Hi, body: there}]\n" + TRAJECTORY)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEOPUSH_")
           and k != "DATABASE_URL"}
    proc = subprocess.Popen(
        serve_command("--port", str(port), "--scenario", str(tmp_path / "scenario.yaml")),
        cwd=ROOT, env={**env, "GEOPUSH_LOG_FORMAT": "json"}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        asyncio.run(wait_up(base, proc))
    finally:
        out, err = stop(proc, signal.SIGTERM)
    assert proc.returncode == 0, err
    key_line = next(line for line in out.splitlines() if "admin key" in line)
    assert key_line.split()[-1].startswith("gpk_")
    assert any('"logger": "geopush.access"' in line for line in err.splitlines())


def test_serve_with_admin_key_serves_the_preloaded_catalogue(tmp_path: Path) -> None:
    (tmp_path / "scenario.yaml").write_text(
        "name: inline\nstart: 2026-03-02T12:00:00+00:00\n"
        f"venues: {json.dumps({'type': 'FeatureCollection', 'features': [venue_feature()]})}\n"
        "campaigns:\n  - id: hello\n    trigger: {event: enter}\n"
        "    variants: [{id: a, title: Hi, body: there}]\n" + TRAJECTORY)
    port = free_port()
    key = "gpk_cli-test-admin-key-000000000000"
    proc = subprocess.Popen(
        serve_command("--port", str(port), "--admin-key", key,
                      "--scenario", str(tmp_path / "scenario.yaml")),
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={k: v for k, v in os.environ.items() if k != "DATABASE_URL"})
    base = f"http://127.0.0.1:{port}"
    try:
        asyncio.run(wait_up(base, proc))
        status, venue = _get(f"{base}/v1/venues/senate", key)
        assert status == 200 and isinstance(venue, dict) and venue["id"] == "senate"
        _, campaign = _get(f"{base}/v1/campaigns/hello", key)
        assert isinstance(campaign, dict) and campaign["status"] == "active"
    finally:
        out, _ = stop(proc, signal.SIGINT)
    assert proc.returncode == 0
    assert "admin key" not in out


def test_serve_refuses_bad_settings_naming_the_key() -> None:
    proc = subprocess.run(
        serve_command(), cwd=ROOT, capture_output=True,
        text=True, env={**os.environ, "GEOPUSH_PORT": "eighty"}, timeout=60, check=False)
    assert proc.returncode == 2
    assert "GEOPUSH_PORT" in proc.stderr


@pytest.fixture
def scratch_database_url(database_url: str) -> Iterator[str]:
    """A database of its own, dropped afterwards: the CLI migrates whatever it is given,
    so pointing it at the shared test database would leave a schema behind."""
    name = f"geopush_cli_{uuid.uuid4().hex[:12]}"
    admin = urlsplit(database_url)

    async def _sql(statement: str) -> None:
        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(_sql(f'CREATE DATABASE "{name}"'))
    try:
        yield urlunsplit(admin._replace(path=f"/{name}"))
    finally:
        asyncio.run(_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.mark.needs_postgres
def test_keys_create_writes_a_key_into_postgres(scratch_database_url: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "server.cli", "keys", "create", "--tenant", "cli-tenant",
         "--role", "sdk", "--database-url", scratch_database_url],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    first = proc.stdout.splitlines()[0]
    assert "tenant cli-tenant, role sdk" in first and first.split()[-1].startswith("gpk_")
