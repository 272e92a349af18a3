"""The ``geopush`` command line (``server/cli/__main__.py`` builds the parser).

``main`` is exported here for ``from server.cli import main``; it imports the parser
module only when called, so that ``python -m server.cli`` does not load
``server.cli.__main__`` twice.
"""

from __future__ import annotations

from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``geopush`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    from server.cli.__main__ import main as run  # noqa: PLC0415 - see the module doc

    return run(argv)
