"""Fixtures of the console tests: the API fixtures (an app on each store, keys per
tenant and role) and helpers to sign in as a person would, with the form."""

from __future__ import annotations

import re

from tests.server.api.conftest import Api, api, blockbuster, clock, memory_api  # noqa: F401
from tests.server.conftest import memory_store, pg_schema, pg_store, store  # noqa: F401

__all__ = ["Api"]

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
META_CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)"')
