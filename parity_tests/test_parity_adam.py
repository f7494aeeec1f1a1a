"""Optimizer parity: one course epoch of Adam (17 steps) in every framework from the same weights.

The batches are the first epoch of the course's schedule: ``random_mini_batches(X, Y, 64, seed=4)``
over 1080 examples, i.e. 16 batches of 64 and a last one of 56. Two data sets: a synthetic one
(1080 uniform images, balanced labels; always runs) and the real SIGNS jpg/train images (when the
data folder is present).

float64, free-running: each backend's Trainer runs all 17 steps on its own; the per-step costs,
the weights W1 W2 W3 b3, the Adam moments m and v, and t agree between every pair of backends to
1e-9 relative (signs.tolerances.FLOAT64_ADAM_STEPS).

float32, step by step: a float32 trajectory is chaotic. A difference of one float32 rounding
(~1e-7) in the weights can move a max-pool argmax or a ReLU kink, which changes one gradient
element by a few percent, and Adam's normalised update turns that into a full-size step
(parity_tests/README.md records 1e-1 after 17 free-running float32 steps on the real images, for
frameworks that agree to 1e-15 in float64). So in float32 each backend takes single steps from
the *same* state (the float64 trajectory's weights and Adam moments, rounded to float32) at
several points of the epoch, and each step must agree to FLOAT32_ADAM_STEPS.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from parity_helpers import synthetic_train_set
from reference.data.batches import epoch_mini_batches
from reference.spec import COURSE_TRAINING, PARAM_NAMES
from signs.verify.adam_steps import (
    TRAINING_NAMES,
    compare_training,
    flatten_training,
    single_steps_report,
)

EPOCH_STEPS = 17  # ceil(1080 / 64)
# Steps (0-based) re-run in float32 from the float64 state: t = 2 (both moments already hold two
# gradients) and the last, short batch of 56.
FLOAT32_CHECKPOINTS = (1, 16)


@dataclass
class Epoch:
    """A float64 epoch: every backend's final state, and the reference backend's state before each
    step in FLOAT32_CHECKPOINTS."""

    batches: list
    final: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    states: dict[int, tuple[dict, dict]] = field(default_factory=dict)


def first_epoch(X, Y):
    """The course's first-epoch batches (seed 4): (X (b, 64, 64, 3), Y (b, 6)) float64."""
    batches = epoch_mini_batches(X, Y, 0, mini_batch_size=COURSE_TRAINING.mini_batch_size)
    assert len(batches) == EPOCH_STEPS and batches[-1][0].shape[0] == 1080 - 16 * 64
    return batches


def run_float64_epoch(backends, weights, X, Y) -> Epoch:
    epoch = Epoch(first_epoch(X, Y))
    reference = next(iter(backends))  # numpy when available
    for name, backend in backends.items():
        trainer = backend.Trainer({k: v.copy() for k, v in weights.items()}, train=COURSE_TRAINING)
        costs = []
        for step, (bx, by) in enumerate(epoch.batches):
            if name == reference and step in FLOAT32_CHECKPOINTS:
                epoch.states[step] = (trainer.get_params(), trainer.get_optimizer_state())
            costs.append(trainer.step(bx, by))
        epoch.final[name] = flatten_training(trainer, costs)
    return epoch


def check_float64_epoch(epoch: Epoch, weights, title):
    for backend, result in epoch.final.items():
        assert int(result["t"]) == EPOCH_STEPS, backend
        moved = np.abs(result["W1"] - weights["W1"]).max()
        assert moved > 1e-3, f"{backend}: W1 did not move ({moved})"  # the check is not vacuous
    compare_training(epoch.final, np.float64, title=title).raise_for_failure()


def check_float32_steps(backends, epoch: Epoch, title):
    report = single_steps_report(backends, epoch.states, epoch.batches, np.float32,
                                 steps=FLOAT32_CHECKPOINTS, title=title)
    assert report.comparisons  # every checkpoint ran
    report.raise_for_failure()


@pytest.fixture(scope="module")
def synthetic_epoch(parity_backends, shared_weights):
    X, Y = synthetic_train_set()
    return run_float64_epoch(parity_backends, shared_weights["course"], X, Y)


@pytest.fixture(scope="module")
def signs_epoch(parity_backends, shared_weights, signs_train_arrays):
    X, Y = signs_train_arrays
    assert X.shape == (1080, 64, 64, 3)
    return run_float64_epoch(parity_backends, shared_weights["course"], X, Y)


def test_float64_epoch_agrees_on_synthetic_data(synthetic_epoch, shared_weights):
    check_float64_epoch(synthetic_epoch, shared_weights["course"], "17 Adam steps, synthetic, float64")


def test_float32_steps_agree_on_synthetic_data(parity_backends, synthetic_epoch):
    check_float32_steps(parity_backends, synthetic_epoch, "float32 Adam, synthetic")


@pytest.mark.data
def test_float64_epoch_agrees_on_signs_train(signs_epoch, shared_weights):
    check_float64_epoch(signs_epoch, shared_weights["course"], "17 Adam steps, SIGNS train, float64")


@pytest.mark.data
def test_float32_steps_agree_on_signs_train(parity_backends, signs_epoch):
    check_float32_steps(parity_backends, signs_epoch, "float32 Adam, SIGNS train")


def test_training_report_covers_weights_and_adam_state():
    assert TRAINING_NAMES[0] == "costs" and TRAINING_NAMES[-1] == "t"
    for name in PARAM_NAMES:
        assert {name, f"m.{name}", f"v.{name}"} <= set(TRAINING_NAMES)
