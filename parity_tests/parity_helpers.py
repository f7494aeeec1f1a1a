"""The cases of the parity suite, shared by the tests and by measure_tolerances.py.

A case is (weights, inputs, labels, dtype). Everything is generated in float64 from fixed seeds and
cast to the case's dtype, so float32 and float64 runs see the same numbers (rounded once).
"""

from __future__ import annotations

import numpy as np

from reference.spec import COURSE_MODEL, COURSE_TRAINING
from signs.compare import Report, compare_results
from signs.verify.forward import FORWARD_BACKWARD_NAMES, forward_backward_all
from signs.verify.options import DEFAULT_BACKENDS, course_vectors, load_backends

__all__ = [
    "WEIGHT_KINDS",
    "INPUT_KINDS",
    "LABEL_KINDS",
    "DTYPES",
    "TRAINED_STEPS",
    "load_available_backends",
    "make_weights",
    "make_images",
    "make_labels",
    "make_inputs",
    "cast",
    "check_case",
    "synthetic_train_set",
]

WEIGHT_KINDS = ("course", "glorot", "trained")
# course: the course's randn(2, 64, 64, 3); randomN: N seeded images; signs_test: the real test set.
INPUT_KINDS = ("course", "random1", "random7", "random64", "signs_test")
LABEL_KINDS = ("onehot", "soft")
DTYPES = (np.float32, np.float64)
GLOROT_SEED = 7
TRAINED_STEPS = 5  # "weights after a few training steps"
TRAINED_BATCH = 16


def load_available_backends() -> tuple[dict, dict[str, str]]:
    """({name: module}, {name: reason}) for numpy, tf, torch (in that order)."""
    return load_backends(DEFAULT_BACKENDS)


def make_weights(kind: str, backends: dict) -> dict[str, np.ndarray]:
    """float64 canonical params: course-exact init, seeded Glorot, or course init after
    TRAINED_STEPS Adam steps of one backend's Trainer (numpy's when available) on random batches."""
    from reference.init import course_init, glorot_init

    if kind == "course":
        return course_init(dtype=np.float64)
    if kind == "glorot":
        return glorot_init(GLOROT_SEED, dtype=np.float64)
    if kind != "trained":
        raise ValueError(f"kind: expected one of {WEIGHT_KINDS}, got {kind!r}")
    backend = backends.get("numpy") or next(iter(backends.values()))
    trainer = backend.Trainer(course_init(dtype=np.float64), train=COURSE_TRAINING)
    for step in range(TRAINED_STEPS):
        X = make_images(TRAINED_BATCH, seed=100 + step)
        trainer.step(X, make_labels("onehot", TRAINED_BATCH, seed=200 + step))
    return trainer.get_params()


def make_images(m: int, seed: int, *, kind: str = "uniform") -> np.ndarray:
    """(m, 64, 64, 3) float64 NHWC: uniform [0, 1) like X/255 photos, or standard normal."""
    rng = np.random.default_rng(seed)
    shape = (m, *COURSE_MODEL.input_shape)
    if kind == "uniform":
        return rng.random(shape)
    if kind == "normal":
        return rng.standard_normal(shape)
    raise ValueError(f"kind: expected 'uniform' or 'normal', got {kind!r}")


def make_labels(kind: str, m: int, seed: int) -> np.ndarray:
    """(m, 6) float64: one-hot rows of random classes, or soft rows (Dirichlet(1), sum to 1)."""
    rng = np.random.default_rng(seed)
    n = COURSE_MODEL.n_classes
    if kind == "onehot":
        return np.eye(n)[rng.integers(0, n, size=m)]
    if kind == "soft":
        return rng.dirichlet(np.ones(n), size=m)
    raise ValueError(f"kind: expected one of {LABEL_KINDS}, got {kind!r}")


def make_inputs(kind: str, signs_test=None) -> np.ndarray:
    """X float64 (m, 64, 64, 3) for an INPUT_KINDS entry; ``signs_test`` = (X, Y) real test set."""
    if kind == "course":
        return course_vectors().X
    if kind == "random1":
        return make_images(1, seed=11, kind="normal")
    if kind == "random7":
        return make_images(7, seed=12, kind="normal")
    if kind == "random64":
        return make_images(64, seed=13)
    if kind == "signs_test":
        if signs_test is None:
            raise ValueError("signs_test: the real test arrays are needed for kind 'signs_test'")
        return signs_test[0]
    raise ValueError(f"kind: expected one of {INPUT_KINDS}, got {kind!r}")


def cast(arrays: dict[str, np.ndarray], dtype) -> dict[str, np.ndarray]:
    return {name: np.asarray(value).astype(dtype) for name, value in arrays.items()}


def check_case(backends: dict, params: dict, X: np.ndarray, Y: np.ndarray, dtype,
               title: str = "") -> tuple[Report, dict]:
    """Every backend's forward_backward on the same (params, X, Y) in ``dtype``, compared pairwise.

    Returns (report, results_by_backend).
    """
    results = forward_backward_all(backends, cast(params, dtype), X.astype(dtype), Y.astype(dtype))
    report = compare_results(results, FORWARD_BACKWARD_NAMES, dtype, title=title)
    return report, results


def synthetic_train_set(m: int = 1080, seed: int = 1080) -> tuple[np.ndarray, np.ndarray]:
    """A stand-in for the course's training set: m uniform [0, 1) images, balanced one-hot labels
    in a seeded random order. X (m, 64, 64, 3) float64, Y (m, 6) float64."""
    rng = np.random.default_rng(seed)
    n = COURSE_MODEL.n_classes
    labels = rng.permutation(np.arange(m) % n)
    return rng.random((m, *COURSE_MODEL.input_shape)), np.eye(n)[labels]
