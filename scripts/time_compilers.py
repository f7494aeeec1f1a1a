"""Measure the two compilers the speed issue asked about against the shipped training steps:
``torch.compile`` of the PyTorch module and XLA (``jit_compile=True``) of the TF step.

    python scripts/time_compilers.py [--reps 15] [--data ../shared/data/signs]

Each pair (shipped, compiled) starts from the course's initial weights and steps the same batch
of 64 (the first 64 training images, or seeded uniform images without data), interleaved A B A B
after a warm-up that covers compilation; prints the medians, the median of per-round ratios,
the compile time (first call) and the largest weight difference after one step from the same
weights. Neither compiler is used by the project; README "Speed" quotes this script's output.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

import numpy as np  # noqa: E402

from reference.init import course_init  # noqa: E402


def batch(data: str | None) -> tuple[np.ndarray, np.ndarray]:
    if data and os.path.isdir(data):
        from reference.data.dataset import load_signs

        signs = load_signs(data, splits=("train",), progress=False)
        return signs.X_train[:64], signs.Y_train[:64]
    rng = np.random.default_rng(0)
    return rng.random((64, 64, 64, 3), dtype=np.float32), np.eye(6, dtype=np.float32)[rng.integers(0, 6, 64)]


def interleaved(a, b, reps: int) -> tuple[list[float], list[float]]:
    times_a, times_b = [], []
    for _ in range(reps):
        for fn, times in ((a, times_a), (b, times_b)):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return times_a, times_b


def largest_difference(p: dict, q: dict) -> float:
    return max(float(np.max(np.abs(p[k] - q[k]))) for k in p)


def report(name: str, shipped: list[float], compiled: list[float], compile_s: float, diff: float) -> None:
    ratio = statistics.median(c / s for c, s in zip(compiled, shipped))
    print(f"{name}: shipped {1e3 * statistics.median(shipped):.2f} ms, compiled {1e3 * statistics.median(compiled):.2f} ms "
          f"per step (median of per-round ratios compiled/shipped {ratio:.2f}x); first compiled call {compile_s:.1f} s; "
          f"largest weight difference after one step {diff:.1e}")


def compare(name: str, shipped, compiled, X, Y, reps: int) -> None:
    """Time the compiled Trainer's first step (compilation), check one step against the shipped
    one from the same weights, warm both up, then time them interleaved."""
    start = time.perf_counter()
    compiled.step(X, Y)
    compile_s = time.perf_counter() - start
    shipped.step(X, Y)
    diff = largest_difference(shipped.get_params(), compiled.get_params())
    for _ in range(3):
        shipped.step(X, Y), compiled.step(X, Y)
    report(name, *interleaved(lambda: shipped.step(X, Y), lambda: compiled.step(X, Y), reps), compile_s, diff)


def torch_pair(X, Y, reps: int) -> None:
    import torch

    from torch_model.backend import Trainer

    torch.set_num_threads(os.cpu_count() or 1)
    params = course_init()
    shipped, compiled = Trainer(params), Trainer(params)
    # Compile the instance's forward (not the module: that would rename its state_dict keys).
    compiled.module.forward = torch.compile(compiled.module.forward, dynamic=False)
    compare("torch.compile (inductor, dynamic=False)", shipped, compiled, X, Y, reps)


def tf_pair(X, Y, reps: int) -> None:
    import tensorflow as tf

    from tf_model.backend import Trainer

    class XLATrainer(Trainer):
        def __init__(self, params):
            super().__init__(params)
            signature = self._compiled_step.input_signature
            self._compiled_step = tf.function(self._train_step, input_signature=signature, jit_compile=True)

    params = course_init()
    compare("TF jit_compile=True (XLA)", Trainer(params), XLATrainer(params), X, Y, reps)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--data", default=os.environ.get("SIGNS_DATA", "../shared/data/signs"))
    args = parser.parse_args()
    X, Y = batch(args.data)
    print(f"load average {os.getloadavg()}")
    torch_pair(X, Y, args.reps)
    tf_pair(X, Y, args.reps)
    print(f"load average {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
