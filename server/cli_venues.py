"""Placeholder: the subcommand module is being written (see the open issues)."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    """Register nothing yet."""
    del sub


_ = argparse
