"""Fixtures of the console tests: the API fixtures (an app on each store, keys per
tenant and role), the shared headless Chromium, and what signing in with the form
reads back. Blockbuster (the event loop guard) is imported by the modules that run the
app in the test's loop; the browser tests run a server process instead."""

from __future__ import annotations

import re

from tests.browser import browser, offline_page  # noqa: F401
from tests.server.api.conftest import Api, api, clock, memory_api  # noqa: F401
from tests.server.conftest import memory_store, pg_schema, pg_store, store, tenant  # noqa: F401

__all__ = ["Api"]

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
META_CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)"')
