"""Command-line options shared by several ``signs`` commands."""

from __future__ import annotations

import argparse

from reference.data.layout import DEFAULT_MAX_IMAGES
from reference.data.paths import default_data_dir

__all__ = ["add_check_input_arguments", "add_data_argument", "add_max_images_argument", "positive_int"]


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


def add_check_input_arguments(parser: argparse.ArgumentParser, weights_role: str) -> None:
    """Add the inputs of a parity check, ``signs verify`` and ``signs compare``: ``--weights FILE``
    (``args.weights``; ``weights_role`` says what they are for), ``--data DIR`` (``args.data``: test
    images instead of the course vectors) and ``--batch N`` (``args.batch``)."""
    parser.add_argument("--weights", metavar="FILE",
                        help=f"weights {weights_role} (.safetensors, .npz, .weights.h5, .pt, TF1 .ckpt); "
                        "default: the course-exact initial weights")
    parser.add_argument("--data", metavar="DIR",
                        help="use the test images of data directory DIR (test_signs.h5 or an image "
                        "folder test/ or jpg/test/; X / 255, one-hot labels) instead of the course "
                        "vectors, e.g. --data ../shared/data/signs")
    parser.add_argument("--batch", type=int, metavar="N",
                        help="examples per check (default: 2 course vectors, or all test images "
                        "with --data)")
