"""``signs bench``: time the three implementations and the course's TF1 code; write BENCHMARKS.md."""

from __future__ import annotations

import argparse

DESCRIPTION = """\
Benchmark the course ConvNet (float32, batch 64 of 64x64x3) on this machine and write a Markdown
report (BENCHMARKS.md) and JSON (benchmarks/results.json).

Sections (--only, comma-separated; default all):
  limit    NumPy float32 matmul GFLOP/s and copy bandwidth, the model's FLOPs, the lower bounds
  layers   conv1 pool1 conv2 pool2 dense, forward and backward: the course's loop functions
           (timed on a few images, scaled to 64), fast NumPy, PyTorch, TensorFlow (tf.function)
  steps    one training step: NumPy, PyTorch, TF custom loop, Keras model.fit, the course's TF1 graph
  epoch    one epoch of 1080 images per backend (images/s, 100-epoch projection)
  memory   peak resident memory of one epoch per backend (one subprocess each)
  profile  where PyTorch's step loses time: torch.profiler and prototype variants
  inference images/s of the logits on the 120 test images, batch 1 and 120: NumPy, PyTorch,
           TensorFlow, onnxruntime (benchmarks/inference.py)

Candidates of a group run interleaved (A B C A B C ...) after a warm-up; the tables show the median
with min-max. Run it on a quiet machine (the report records the load average).
"""


def register(subparsers) -> None:
    from benchmarks.run import add_arguments

    parser = subparsers.add_parser(
        "bench",
        help="benchmark NumPy, PyTorch, TensorFlow and the course's TF1 code; write BENCHMARKS.md",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from benchmarks.run import run_benchmark, settings_from_args

    run_benchmark(settings_from_args(args))
    return 0
