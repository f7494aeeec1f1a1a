"""Shared helpers of the tf_model tests (random params and batches, the small test spec)."""

from __future__ import annotations

import numpy as np

from reference.spec import COURSE_MODEL, param_shapes

# A 16x16 input keeps gradient checks and training steps cheap: P1 (2, 2, 8), P2 (1, 1, 16), W3 (16, 6).
SMALL_SPEC = COURSE_MODEL.with_input(16, 16)


def random_params(seed: int, spec=COURSE_MODEL, dtype=np.float32) -> dict[str, np.ndarray]:
    """Random canonical params (nonzero bias, so that a bias mix-up cannot pass)."""
    rng = np.random.default_rng(seed)
    return {name: (0.3 * rng.standard_normal(shape)).astype(dtype) for name, shape in param_shapes(spec).items()}


def random_batch(seed: int, m: int, spec=COURSE_MODEL, dtype=np.float32, soft: bool = False):
    """X (m, n_H, n_W, n_C) NHWC standard normal; Y (m, 6) one-hot, or soft (rows summing to 1)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m,) + tuple(spec.input_shape)).astype(dtype)
    if soft:
        Y = rng.random((m, spec.n_classes))
        Y = (Y / Y.sum(axis=1, keepdims=True)).astype(dtype)
    else:
        Y = np.eye(spec.n_classes, dtype=dtype)[rng.integers(0, spec.n_classes, m)]
    return X, Y
