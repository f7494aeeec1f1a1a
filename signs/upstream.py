"""Proven known upstream defects: a difference explained, never a tolerance widened.

One today. Keras 3.15's ``result_type`` maps float64 to float32 on every backend but TensorFlow,
and the torch backend's ``ops.matmul`` computes in that type (keras-team/keras#23704, open): the
course model's float64 ``Dense`` layer multiplies in float32 under ``KERAS_BACKEND=torch`` (its
bias add promotes the result back to float64, so the output *looks* float64). Z3 and everything
computed from it then differ from the other backends by float32 rounding (about 1e-7) while every
quantity before the dense layer agrees to 1e-15.

:func:`classify_keras_float64_matmul` gives such a pair the verdict "known" (table ``known*``;
passes unless ``--strict``) only when all of this is proven:

1. the backend's own child process reports that ``keras.ops.matmul`` of two float64 tensors
   returns float32 (the defect is present in the installed Keras, on that backend);
2. every quantity before the dense layer (Z1 A1 P1 Z2 A2 P2 F) agrees within the float64 tolerance;
3. every failing quantity agrees within its *float32* tolerance (the difference has the size of
   float32 rounding, not of a wrong computation).

Anything else stays FAIL.
"""

from __future__ import annotations

import numpy as np

from signs.tolerances import parity_tolerance

__all__ = ["KERAS_FLOAT64_ISSUE", "BEFORE_DENSE", "classify_keras_float64_matmul"]

KERAS_FLOAT64_ISSUE = "https://github.com/keras-team/keras/issues/23704"
BEFORE_DENSE = ("Z1", "A1", "P1", "Z2", "A2", "P2", "F")


def classify_keras_float64_matmul(report, backend: str, matmul_dtype: str) -> dict[tuple[str, str], dict]:
    """{pair: {"names", "explanation", "issue"}} for the pairs of ``backend`` (e.g. "keras-torch")
    in the float64 ``report`` whose failures are proven to be the float32 dense matmul."""
    if np.dtype(report.dtype) != np.float64 or matmul_dtype != "float32":
        return {}
    known = {}
    for pair in report.pairs:
        if backend not in pair:
            continue
        row = report.comparisons[pair]
        failing = [name for name in report.names if report.verdict_of(pair, name) == "FAIL"]
        if not failing or any(name in BEFORE_DENSE for name in failing):
            continue
        if not all(row[name].ok for name in BEFORE_DENSE if name in row):
            continue
        if not all(row[name].max_rel is not None and row[name].max_rel <= parity_tolerance(name, np.float32)
                   for name in failing):
            continue
        worst = max(row[name].max_rel for name in failing)
        known[pair] = {
            "names": failing,
            "explanation": (
                f"{backend} runs the float64 dense layer's matmul in float32 (keras.ops.matmul "
                f"of two float64 tensors returns {matmul_dtype} there, {KERAS_FLOAT64_ISSUE}); "
                f"Z1..F agree to the float64 tolerance, "
                f"{', '.join(failing)} to float32 rounding (worst {worst:.1e})"),
            "issue": KERAS_FLOAT64_ISSUE,
        }
    return known
