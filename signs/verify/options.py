"""What ``signs verify`` checks: its options, the weights, and the inputs every backend sees."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from reference.spec import COURSE_MODEL, ModelSpec
from signs.backends import BACKENDS, BackendUnavailable, get_backend

__all__ = [
    "DEFAULT_BACKENDS",
    "DTYPES",
    "COURSE_BATCH",
    "COURSE_SEED",
    "VerifyOptions",
    "Inputs",
    "parse_backends",
    "parse_dtypes",
    "load_backends",
    "course_vectors",
    "data_inputs",
    "load_params",
    "check_positive",
    "cast_arrays",
]

DEFAULT_BACKENDS: tuple[str, ...] = tuple(BACKENDS)  # numpy, tf, torch
DTYPES: tuple[str, ...] = ("float32", "float64")
COURSE_BATCH = 2  # the course's forward_propagation test fed randn(2, 64, 64, 3)
COURSE_SEED = 1  # ... right after np.random.seed(1)


@dataclass(frozen=True)
class VerifyOptions:
    """What to verify; the defaults are ``signs verify`` with no options.

    ``batch`` None means: 2 course vectors, or every test image with ``data``.
    """

    backends: tuple[str, ...] = DEFAULT_BACKENDS
    dtypes: tuple[str, ...] = DTYPES
    weights: str | None = None
    data: str | None = None
    batch: int | None = None
    steps: int = 0
    device: str = "cpu"
    seed: int = COURSE_SEED
    strict: bool = False  # proven max-pool near-ties ("tie") fail too


@dataclass(frozen=True)
class Inputs:
    """The examples every backend sees, kept in float64 and cast per dtype.

    X : (m, 64, 64, 3) NHWC. Y : (m, 6), one-hot rows.
    """

    X: np.ndarray
    Y: np.ndarray
    description: str


def parse_backends(text: str | Sequence[str]) -> tuple[str, ...]:
    """``"numpy,tf"`` -> ("numpy", "tf"); at least two distinct known names, in the given order."""
    names = [n.strip() for n in text.split(",")] if isinstance(text, str) else list(text)
    names = [n for n in names if n]
    unknown = [n for n in names if n not in BACKENDS]
    if unknown:
        raise ValueError(f"--backends: expected names from {', '.join(BACKENDS)}, got {unknown}")
    if len(set(names)) != len(names):
        raise ValueError(f"--backends: expected distinct names, got {names}")
    if len(names) < 2:
        raise ValueError(f"--backends: expected at least two backends to compare, got {names}")
    return tuple(names)


def parse_dtypes(text: str) -> tuple[str, ...]:
    """``"float32"``, ``"float64"`` or ``"both"`` -> the dtypes to check."""
    if text == "both":
        return DTYPES
    if text not in DTYPES:
        raise ValueError(f"--dtype: expected float32, float64 or both, got {text!r}")
    return (text,)


def load_backends(names: Sequence[str]) -> tuple[dict, dict[str, str]]:
    """Import each backend; return ({name: module} of those available, {name: reason} skipped)."""
    modules, skipped = {}, {}
    for name in names:
        try:
            modules[name] = get_backend(name)
        except BackendUnavailable as exc:
            skipped[name] = str(exc)
    return modules, skipped


# ----------------------------------------------------------------------------------------------
# Inputs and weights


def course_vectors(m: int = COURSE_BATCH, seed: int = COURSE_SEED,
                   spec: ModelSpec = COURSE_MODEL) -> Inputs:
    """The course's test vectors with one-hot labels (see the module docstring).

    ``np.random.seed(seed); X = randn(m, n_H, n_W, n_C); Y = one_hot(argmax(randn(m, n_classes)))``,
    drawn from a private ``RandomState`` (the same stream as the global seed, without touching it).

    Returns
    -------
    Inputs : X float64 (m, n_H, n_W, n_C) NHWC, Y float64 (m, n_classes) one-hot.
    """
    check_positive(m, "batch")
    rng = np.random.RandomState(seed)
    X = rng.randn(m, *spec.input_shape)
    labels = np.argmax(rng.randn(m, spec.n_classes), axis=1)
    Y = np.eye(spec.n_classes)[labels]
    description = (f"course vectors: np.random.seed({seed}); X = randn{(m, *spec.input_shape)}; "
                   f"Y = one-hot argmax of randn({m}, {spec.n_classes})")
    return Inputs(X, Y, description)


def data_inputs(data_dir: str, m: int | None = None) -> Inputs:
    """The first ``m`` (default: all) test images of ``data_dir``, ``X / 255`` and one-hot labels.

    Returns
    -------
    Inputs : X float64 (m, 64, 64, 3) NHWC in [0, 1], Y float64 (m, 6) one-hot.
    """
    from reference.data.dataset import load_signs

    data = load_signs(data_dir, dtype=np.float64, splits=("test",), progress=False)
    total = data.X_test.shape[0]
    if m is None:
        m = total
    check_positive(m, "batch")
    if m > total:
        raise ValueError(f"--batch: expected at most {total} (the test images in {data_dir}), got {m}")
    source = data.sources["test"]
    return Inputs(data.X_test[:m], data.Y_test[:m], f"test images {source}, first {m} of {total}, "
                  "X / 255, one-hot Y")


def load_params(weights: str | None) -> tuple[dict[str, np.ndarray], str]:
    """Course-exact initial weights, or the weights in file ``weights`` (any signs.convert format)."""
    if weights is None:
        from reference.init import course_init

        return course_init(dtype=np.float64), "course-exact initial weights (reference.init.course_init)"
    from signs.convert import load_weights

    params, metadata = load_weights(weights)
    fmt = metadata.get("source_format", "")
    return params, f"{weights}" + (f" ({fmt})" if fmt else "")


def check_positive(value, name: str) -> int:
    """``value`` as an int if it is a positive integer, else ValueError naming ``--{name}``."""
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(f"--{name}: expected a positive integer, got {value!r}")
    return int(value)


def cast_arrays(arrays: dict[str, np.ndarray], dtype) -> dict[str, np.ndarray]:
    """Copies of every array of ``arrays`` in ``dtype`` (same keys)."""
    return {name: np.asarray(value).astype(dtype) for name, value in arrays.items()}
