"""``signs verify --steps K``'s free-running float32 trajectories: where two backends part.

The numpy backend against itself, and against a copy bent at a chosen step: the report must find
that step and the quantity that was bent, and find nothing in two identical trajectories.
"""

from __future__ import annotations

import types

import numpy as np
import pytest

import reference.backend as numpy_backend
from reference.init import course_init
from signs.tolerances import adam_tolerance
from signs.verify.options import course_vectors
from signs.verify.trajectories import TRAJECTORY_NAMES, trajectory_report

STEPS = 4
BENT_STEP = 3  # 1-based


def bent_backend(step: int, name: str, factor: float):
    """The numpy backend, whose Trainer scales one element of ``name`` by ``factor`` after ``step``."""

    class BentTrainer(numpy_backend.Trainer):
        steps = 0

        def step(self, X, Y):
            cost = super().step(X, Y)
            self.steps += 1
            if self.steps == step:
                self._params[name].flat[0] *= factor
            return cost

    return types.SimpleNamespace(NAME="bent", Trainer=BentTrainer)


@pytest.fixture(scope="module")
def batches():
    inputs = course_vectors(2)
    return [(inputs.X, inputs.Y)] * STEPS


def test_identical_trajectories_stay_together(batches):
    report = trajectory_report({"numpy": numpy_backend, "again": numpy_backend}, course_init(), batches, np.float32)
    (pair,) = report.pairs
    assert pair.parted_at is None and [d.max_rel for d in pair.worst] == [0.0] * STEPS
    assert "together for all 4 steps" in pair.summary()


def test_the_step_and_quantity_that_jump_are_named(batches):
    backends = {"numpy": numpy_backend, "bent": bent_backend(BENT_STEP, "W1", 1.01)}
    report = trajectory_report(backends, course_init(), batches, np.float32)
    (pair,) = report.pairs
    assert report.threshold == adam_tolerance(np.float32)
    assert [d.step for d in pair.worst] == list(range(1, STEPS + 1))
    assert all(d.max_rel == 0.0 for d in pair.worst[: BENT_STEP - 1])
    assert (pair.parted_at.step, pair.parted_at.quantity) == (BENT_STEP, "W1")
    assert pair.parted_at.max_rel == pytest.approx(0.01 * abs(course_init()["W1"].flat[0]) / np.abs(course_init()["W1"]).max(), rel=0.2)
    assert "part at step 3: W1 differs by" in pair.summary()
    assert pair.to_dict()["parted_at"]["quantity"] == "W1"


def test_a_difference_below_the_single_step_tolerance_is_not_a_parting(batches):
    backends = {"numpy": numpy_backend, "bent": bent_backend(BENT_STEP, "W3", 1.0 + 1e-6)}
    (pair,) = trajectory_report(backends, course_init(), batches, np.float32).pairs
    assert pair.parted_at is None
    assert pair.worst[BENT_STEP - 1].quantity == "W3" and 0 < pair.worst[BENT_STEP - 1].max_rel < 1e-5
    assert set(TRAJECTORY_NAMES) >= {"cost", "W1", "m.W1", "v.b3"} and "t" not in TRAJECTORY_NAMES
