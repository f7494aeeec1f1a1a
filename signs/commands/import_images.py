"""``signs import-images DIR OUT.h5 --split train|test [--resize] [--force]``.

Builds a course-layout h5 file (``{split}_set_x`` uint8 (m, 64, 64, 3), ``{split}_set_y``,
``list_classes``, ``{split}_set_files``) from a folder of images named ``{label}_...``.
"""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "import-images",
        help="build a course-layout {split}_signs.h5 from a folder of {label}_*.jpg images",
        description="Read every image of DIR whose name starts with its label ({label}_..., e.g. "
        "3_IMG_5864.jpg), in (label, file name) order, and write them to OUT.h5 in the layout of "
        "the course's files: {split}_set_x uint8 (m, 64, 64, 3), {split}_set_y int64 (m,), "
        "list_classes int64 (6,), plus {split}_set_files (the source file names). Images must be "
        "64x64 RGB unless --resize is given. The file is written atomically.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("src_dir", metavar="DIR", help="folder of images named {label}_...")
    parser.add_argument("out_h5", metavar="OUT.h5", help="h5 file to write, e.g. data/train_signs.h5")
    parser.add_argument(
        "--split",
        required=True,
        choices=("train", "test"),
        help="split name used in the keys ({split}_set_x, {split}_set_y)",
    )
    parser.add_argument(
        "--resize",
        action="store_true",
        help="centre-crop and resize images that are not 64x64 and convert them to RGB "
        "(otherwise they are refused)",
    )
    parser.add_argument("--force", action="store_true", help="overwrite OUT.h5 if it exists")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from reference.data.importer import import_images

    result = import_images(
        args.src_dir, args.out_h5, split=args.split, resize=args.resize, force=args.force
    )
    print(result.summary())
    return 0
