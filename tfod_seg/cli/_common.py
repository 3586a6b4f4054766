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


# Pillow's decompression-bomb limit (tfod_seg.data.images.DEFAULT_MAX_PIXELS; not imported here
# so `--help` stays light; tests check the two agree).
DEFAULT_MAX_PIXELS = 89_478_485


def add_max_pixels(parser) -> None:
    parser.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, metavar="N",
                        help="skip (and count) images with more pixels than this (decompression bombs); 0: no limit")


def apply_max_pixels(args) -> None:
    from tfod_seg.data.images import set_max_pixels

    set_max_pixels(args.max_pixels)
