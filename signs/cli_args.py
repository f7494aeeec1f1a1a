"""Command-line options shared by several ``signs`` commands."""

from __future__ import annotations

import argparse

from reference.data.paths import default_data_dir

__all__ = ["add_data_argument"]


def add_data_argument(parser: argparse.ArgumentParser) -> None:
    """Add the shared ``--data DIR`` option (``args.data``, ``None`` = project ``data/``)."""
    parser.add_argument(
        "--data",
        metavar="DIR",
        default=None,
        help="data directory holding {split}_signs.h5 or image folders {split}/ or jpg/{split}/ "
        f"(default: {default_data_dir()}); e.g. --data ../shared/data/signs",
    )
