"""A real headless Chromium for tests, with the network cut off.

Playwright drives the system's Chromium (Debian's ``chromium`` package,
``/usr/bin/chromium``, or ``GEOPUSH_CHROMIUM``); it never downloads a browser. Without
one the browser tests skip and say why, unless ``REQUIRE_SERVICES=1`` (CI, which installs
it in ``.ci/run``): then they fail. Use the fixtures from a ``conftest.py``::

    from tests.browser import browser, offline_page  # noqa: F401

``offline_page`` is a fresh page whose every request to a host other than this
machine is aborted and recorded in ``page.blocked`` (so a page that works offline can
be checked as a person without network would see it; local HTTP servers still answer).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Route, ViewportSize

CHROMIUM = Path(os.environ.get("GEOPUSH_CHROMIUM", "/usr/bin/chromium"))
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    # Names resolve to nothing but this machine: the second lock beside the router.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
)
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
VIEWPORT: ViewportSize = {"width": 1200, "height": 800}


def _unavailable(why: str) -> None:
    if os.environ.get("REQUIRE_SERVICES") == "1":
        pytest.fail(f"REQUIRE_SERVICES=1 but {why}")
    pytest.skip(f"browser tests need Chromium: {why} (apt-get install chromium, "
                "or set GEOPUSH_CHROMIUM)")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium per test module. Not per session: Playwright's sync API
    keeps an event loop of its own while it runs, and the asyncio tests of later
    modules must not find it."""
    if not CHROMIUM.exists():
        _unavailable(f"no browser at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright  # noqa: PLC0415
    except ImportError:
        _unavailable("the playwright package is not installed")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                              args=list(FLAGS))
        try:
            yield chromium
        finally:
            chromium.close()


class OfflinePage:
    """A page and the outside URLs it tried to load (all of them refused)."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.blocked: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.page, name)


@pytest.fixture
def offline_page(browser: Browser) -> Iterator[OfflinePage]:
    """A fresh page in its own context; requests off this machine are aborted."""
    context = browser.new_context(viewport=VIEWPORT, service_workers="block")
    page = OfflinePage(context.new_page())

    def route(r: Route) -> None:
        url = urlsplit(r.request.url)
        if url.scheme in ("file", "data", "blob") or (url.hostname or "") in LOCAL_HOSTS:
            r.continue_()
        else:
            page.blocked.append(r.request.url)
            r.abort("internetdisconnected")

    context.route("**/*", route)
    try:
        yield page
    finally:
        context.close()
