"""The CLI tests' browser (see ``tests/browser.py``)."""

from tests.browser import browser, offline_page

__all__ = ["browser", "offline_page"]
