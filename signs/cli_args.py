"""Command-line options shared by several ``signs`` commands."""

from __future__ import annotations

import argparse

from reference.data.layout import DEFAULT_MAX_IMAGES
from reference.data.paths import default_data_dir

__all__ = ["add_data_argument", "add_max_images_argument", "positive_int"]


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def add_max_images_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--max-images N`` (``args.max_images``): the most images one split may hold."""
    parser.add_argument(
        "--max-images", type=positive_int, default=DEFAULT_MAX_IMAGES, metavar="N",
        help=f"refuse a split of more than N images, checked before reading it (default: "
        f"{DEFAULT_MAX_IMAGES}; SIGNS has 1080 + 120)",
    )


def add_data_argument(parser: argparse.ArgumentParser) -> None:
    """Add the shared ``--data DIR`` option (``args.data``, ``None`` = project ``data/``)."""
    parser.add_argument(
        "--data",
        metavar="DIR",
        default=None,
        help="data directory holding {split}_signs.h5 or image folders {split}/ or jpg/{split}/ "
        f"(default: {default_data_dir()}); e.g. --data ../shared/data/signs",
    )
    add_max_images_argument(parser)
