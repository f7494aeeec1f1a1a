"""The ``signs`` command line: ``signs verify`` (the main job), ``compare`` (a user's own port),
``init``, ``convert``,
``import-images``, ``train``, ``evaluate``, ``predict`` and ``bench``."""

from __future__ import annotations

import argparse
import importlib
import sys

from signs.commands import COMMANDS
from signs.quiet import filtered_native_stderr, quiet_frameworks


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="signs",
        description="The SIGNS ConvNet of the deeplearning.ai CNN course in NumPy, TensorFlow and "
        "PyTorch, with one set of weights and proof that all three agree.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"signs.commands.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    quiet_frameworks()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return run_command(args)


def run_command(args: argparse.Namespace) -> int:
    """Run a parsed command; bad input becomes one line ``signs CMD: error: ...`` and exit 2."""
    try:
        with filtered_native_stderr():
            return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, FileExistsError) as exc:
        print(f"signs {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a write error no writer turned into a ValueError: still one line
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"signs {args.command}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"signs {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
