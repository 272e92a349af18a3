"""Shared test fixtures.

PostgreSQL comes from ``TEST_DATABASE_URL`` (set by ``dev.py test``, which starts a
throwaway cluster when none is running). Tests marked ``needs_postgres`` are skipped
only when ``GEOPUSH_NO_POSTGRES=1`` and never when ``REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
BEIJING_VENUES = FIXTURES / "venues" / "beijing_venues.geojson"
HELSINKI_VENUES = FIXTURES / "venues" / "helsinki_venues.geojson"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("GEOPUSH_NO_POSTGRES") != "1" or os.environ.get("REQUIRE_SERVICES") == "1":
        return
    skip = pytest.mark.skip(reason="no PostgreSQL available (dev.py test said so)")
    for item in items:
        if "needs_postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def database_url() -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail("REQUIRE_SERVICES=1 but TEST_DATABASE_URL is not set")
        url = "postgresql://postgres@127.0.0.1:5432/test"
    return url
