"""The ``signs`` command line: ``signs verify`` (the main job), ``compare`` (a user's own port),
``init``, ``convert``,
``import-images``, ``train``, ``evaluate``, ``predict`` and ``bench``."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from signs.commands import COMMANDS
from signs.quiet import filtered_native_stderr


def quiet_frameworks() -> None:
    """Silence TensorFlow's start-up log noise before anything imports it."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # C++ INFO/WARNING/ERROR lines
    # TF enables its oneDNN kernels only on CPUs it recognises (not on this project's AMD EPYC
    # machines, for example); they make the TF step 3-4x faster and pass the same parity checks
    # (BENCHMARKS.md). A user's own setting wins.
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="signs",
        description="The SIGNS ConvNet of the deeplearning.ai CNN course in NumPy, TensorFlow and "
        "PyTorch, with one set of weights and proof that all three agree.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"signs.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"signs.commands.{name}":
                raise
            continue  # a command not built yet is simply not offered
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    quiet_frameworks()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        with filtered_native_stderr():
            return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, FileExistsError) as exc:
        print(f"signs {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"signs {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
