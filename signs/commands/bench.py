"""``signs bench``: time the three implementations and the course's TF1 code; write BENCHMARKS.md."""

from __future__ import annotations

import argparse

DESCRIPTION = """\
Benchmark the course ConvNet (float32, batch 64 of 64x64x3) on this machine and write a Markdown
report (BENCHMARKS.md) and JSON (benchmarks/results.json).

Sections (--only, comma-separated; default all):
{sections}

Candidates of a group run interleaved (A B C A B C ...) after a warm-up; the tables show the median
with min-max. Run it on a quiet machine (the report records the load average).
"""


def register(subparsers) -> None:
    from benchmarks.settings import add_arguments, describe_sections

    parser = subparsers.add_parser(
        "bench",
        help="benchmark NumPy, PyTorch, TensorFlow and the course's TF1 code; write BENCHMARKS.md",
        description=DESCRIPTION.format(sections=describe_sections()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from benchmarks.run import run_benchmark
    from benchmarks.settings import settings_from_args

    run_benchmark(settings_from_args(args))
    return 0
