"""Helpers shared by the training tests (imported by name: pytest puts this folder on sys.path)."""

from __future__ import annotations

import os
from types import SimpleNamespace

import numpy as np
import pytest

BACKEND_NAMES = ("numpy", "tf", "torch")
SMALL = 128  # examples per split in the training tests (2 batches of 64): TF is slow
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CLI_BACKEND = "numpy"  # the CLI tests' backend, the fastest to start; every backend: test_training_backends.py
CLI_LIMIT = 64  # examples per split in the CLI tests: one batch of 64 per epoch, so step n is epoch n - 1


def train_argv(data_dir, out, *extra) -> list[str]:
    """``signs train`` arguments for a quiet CLI run: CLI_BACKEND, CLI_LIMIT examples, no mid-run evaluation."""
    return ["train", "--backend", CLI_BACKEND, "--data", str(data_dir), "--limit", str(CLI_LIMIT),
            "--eval-every", "0", "--out", str(out), "--no-progress", *extra]


def backend_or_skip(name: str):
    """The backend module ``name``; skip if its framework is missing (fail under CI=true)."""
    from signs.backends import BackendUnavailable, get_backend

    try:
        return get_backend(name)
    except BackendUnavailable as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(str(exc))
        pytest.skip(str(exc))


def trainer_proxy(backend, on_step):
    """A stand-in backend module whose Trainer.step asks ``on_step(n, real_step)`` for the n-th step.

    ``on_step`` returns the cost to report (``real_step()`` runs the real update); it may raise
    (e.g. KeyboardInterrupt) or return NaN.
    """

    class HookedTrainer(backend.Trainer):
        calls = 0

        def step(self, X, Y):
            HookedTrainer.calls += 1
            return on_step(HookedTrainer.calls, lambda: super(HookedTrainer, self).step(X, Y))

    return SimpleNamespace(
        NAME=backend.NAME,
        Trainer=HookedTrainer,
        predict_logits=backend.predict_logits,
        forward_backward=backend.forward_backward,
    )


def assert_params_bitwise_equal(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for name in a:
        assert a[name].dtype == b[name].dtype, name
        assert np.array_equal(a[name], b[name]), f"{name} differs: max |diff| {np.max(np.abs(a[name] - b[name]))}"
