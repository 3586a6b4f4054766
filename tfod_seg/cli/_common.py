"""Helpers shared by the subcommand modules (progress bars, summaries). CLI only."""

from __future__ import annotations

import sys
from typing import Optional


def progress_bar(total: Optional[int], desc: str, unit: str = "it", disable: Optional[bool] = None):
    """A tqdm bar with rate and ETA, on stderr. Library code receives it as `progress=` and
    only calls `.update(n)` (and `.set_postfix_str(s)`), so it never draws anything itself."""
    from tqdm import tqdm

    if disable is None:
        disable = False
    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True, disable=disable,
                mininterval=0.5)


def add_strict(parser) -> None:
    parser.add_argument("--strict", action="store_true", help="turn every skipped image or instance into a failure")
