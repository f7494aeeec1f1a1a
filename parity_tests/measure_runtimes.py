"""Measure the worst disagreement between each runtime (onnx, keras-torch, keras-jax) and the three
frameworks, per dtype and quantity, over weights x inputs (parity_helpers' cases).

Usage (from the repository root)::

    python parity_tests/measure_runtimes.py [--data ../shared/data/signs]

Weights: course-exact, Glorot seed 7, 5 Adam steps; inputs: the course's randn(2, ...), 7 seeded
images, and the 120 real test images when the data folder exists; one-hot labels; float32 and
float64 (onnx: float32 only). Prints the largest relative error over every case and every pair
that includes the runtime, with the declared tolerance; comparisons with the verdict "known"
(keras-torch float64, keras#23704) are reported in their own column. parity_tests/README.md
records the output.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

from parity_helpers import load_available_backends, make_weights, runtime_report  # noqa: E402
from signs.tolerances import RUNTIME_PARITY  # noqa: E402
from signs.verify.options import cast_arrays, load_backends  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "signs"


def _inputs(data: Path | None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    from reference.data.dataset import load_signs
    from signs.verify.options import course_vectors

    course = course_vectors(2)
    rng = np.random.RandomState(11)
    inputs = {"course": (course.X, course.Y),
              "random7": (rng.rand(7, 64, 64, 3), np.eye(6)[rng.randint(0, 6, size=7)])}
    if data is not None and data.is_dir():
        signs = load_signs(data, dtype=np.float64, splits=("test",), progress=False)
        inputs["signs_test"] = (signs.X_test, signs.Y_test)
    return inputs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    natives, skipped = load_available_backends()
    runtimes, missing = load_backends(tuple(RUNTIME_PARITY))
    if skipped or missing:
        print(f"unavailable: {skipped | missing}")
    weights = {kind: make_weights(kind, natives) for kind in ("course", "glorot", "trained")}
    worst: dict = {}
    for runtime, module in runtimes.items():
        for dtype_name in RUNTIME_PARITY[runtime]["dtypes"]:
            dtype = np.dtype(dtype_name)
            for wkind, params in weights.items():
                for ikind, (X, Y) in _inputs(args.data).items():
                    report = runtime_report(runtime, module, natives, cast_arrays(params, dtype),
                                            X.astype(dtype), Y.astype(dtype))
                    for pair in report.pairs:
                        if runtime not in pair:
                            continue
                        for name, comparison in report.comparisons[pair].items():
                            verdict = report.verdict_of(pair, name)
                            if verdict == "n/a":
                                continue
                            column = "known" if verdict == "known" else "max_rel"
                            key = (runtime, dtype_name, name)
                            entry = worst.setdefault(key, {"max_rel": 0.0, "known": None, "tol": comparison.tolerance,
                                                           "where": ""})
                            if entry[column] is None or comparison.max_rel > entry[column]:
                                entry[column] = comparison.max_rel
                                if column == "max_rel":
                                    entry["where"] = f"{'-'.join(pair)} {wkind}/{ikind}"
                    print(f"done {runtime} {dtype_name} {wkind} {ikind}", file=sys.stderr, flush=True)
    print("| runtime | dtype | quantity | worst rel | tol | worst/tol | where | known* (keras#23704) |")
    print("|---|---|---|---|---|---|---|---|")
    for (runtime, dtype_name, name), e in worst.items():
        known = "-" if e["known"] is None else f"{e['known']:.1e}"
        print(f"| {runtime} | {dtype_name} | {name} | {e['max_rel']:.1e} | {e['tol']:g} | "
              f"{e['max_rel'] / e['tol']:.3g} | {e['where']} | {known} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
