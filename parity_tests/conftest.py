"""Fixtures of the cross-framework parity suite: the backends, shared weights and inputs.

Frameworks are slow to import and to build (TensorFlow above all), so every fixture that touches
one is session-scoped and reused by all parity tests. A backend whose framework is missing is
skipped with the one-line reason from ``signs.backends.BackendUnavailable`` (under ``CI=true``
that is a failure: CI installs all three). The data fixtures ``signs_data_dir`` and
``signs_train_h5`` come from the root conftest.py.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

# Before anything imports TensorFlow (the root conftest.py sets the same, as does signs.cli).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # as the `signs` CLI runs TF (signs/cli.py)
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from parity_helpers import (  # noqa: E402  (the environment above must be set first)
    WEIGHT_KINDS,
    load_available_backends,
    make_weights,
)


def _skip_or_fail(message: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def backend_modules() -> tuple[dict, dict[str, str]]:
    """({name: backend module} of the available backends, {name: why it is unavailable})."""
    return load_available_backends()


@pytest.fixture(scope="session")
def parity_backends(backend_modules) -> dict:
    """The available backends (at least two, else the test is skipped), numpy, tf, torch order."""
    modules, skipped = backend_modules
    if len(modules) < 2:
        _skip_or_fail(f"parity needs at least two backends; unavailable: {skipped}")
    if skipped and os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but backends are unavailable: {skipped}")
    return modules


@pytest.fixture(scope="session")
def all_three_backends(backend_modules) -> dict:
    """numpy, tf and torch, or skip naming the missing ones (tests that blame one backend)."""
    modules, skipped = backend_modules
    if skipped:
        _skip_or_fail(f"needs all three backends; unavailable: {skipped}")
    return modules


@pytest.fixture(scope="session")
def framework_modules():
    """``(tf, torch, torch_ops, fast_layers)`` for the layer sweeps; None for a missing one."""
    import importlib

    def optional(name):
        try:
            return importlib.import_module(name)
        except ImportError:
            return None

    return {
        "tf": optional("tensorflow"),
        "torch": optional("torch"),
        "torch_ops": optional("torch_model.ops"),
        "fast_layers": optional("reference.fast_layers"),
    }


@pytest.fixture(scope="session")
def shared_weights(parity_backends) -> dict[str, dict[str, np.ndarray]]:
    """{kind: float64 canonical params} for every kind in WEIGHT_KINDS (built once)."""
    return {kind: make_weights(kind, parity_backends) for kind in WEIGHT_KINDS}


@pytest.fixture(scope="session")
def signs_test_arrays(signs_data_dir) -> tuple[np.ndarray, np.ndarray]:
    """The course's test images as the notebook feeds them: X (120, 64, 64, 3) float64 X/255,
    Y (120, 6) one-hot, from ``signs_data_dir/test_signs.h5`` (or the test image folder)."""
    from reference.data.dataset import load_signs

    data = load_signs(signs_data_dir, dtype=np.float64, splits=("test",), progress=False)
    return data.X_test, data.Y_test


@pytest.fixture(scope="session")
def signs_train_arrays(signs_train_h5) -> tuple[np.ndarray, np.ndarray]:
    """The 1080 training images (jpg/train imported once by the root conftest): X/255, one-hot."""
    from reference.data.course_h5 import read_signs_h5
    from reference.data.dataset import normalize_images, one_hot

    X_orig, y, _, _ = read_signs_h5(signs_train_h5, "train")
    return normalize_images(X_orig, np.float64), one_hot(y, dtype=np.float64)
