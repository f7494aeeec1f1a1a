"""How far free-running trajectories of the backends stay together, and where they part.

The single-step check (:func:`signs.verify.adam_steps.single_steps_report`) proves that each
backend's Adam step agrees with the others' from the same state. That does not make K free-running
float32 steps agree: a last-bit difference can move a max-pool argmax or a ReLU kink, or land on an
almost-zero gradient that Adam's normalised update turns into a full step, and from there the
trajectories follow different paths (README, "Training results"). This module measures that path:
after every step, the relative difference of every quantity (cost, weights, Adam moments) between
each pair of backends, and the first step at which the largest of them exceeds the single-step
tolerance (``adam_tolerance``), i.e. the first step at which the trajectories differ by more than
one step from a shared state may. It is a description, not a check: ``signs verify`` does not fail
on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations
from typing import Sequence

import numpy as np

from reference.spec import COURSE_MODEL, COURSE_TRAINING, ModelSpec, TrainSpec
from signs.tolerances import adam_tolerance, relative_error
from signs.verify.adam_steps import TRAINING_NAMES, flatten_training
from signs.verify.forward import backend_device

__all__ = ["TRAJECTORY_NAMES", "StepDifference", "PairTrajectory", "TrajectoryReport",
           "free_running_states", "trajectory_report"]

# What is compared after each step: that step's cost (taken before its update), the weights and
# the Adam moments; not t, which every backend counts the same way.
TRAJECTORY_NAMES: tuple[str, ...] = ("cost",) + tuple(n for n in TRAINING_NAMES if n not in ("costs", "t"))


@dataclass(frozen=True)
class StepDifference:
    """After 1-based ``step``: the quantity that differs most between two backends, and by how much."""

    step: int
    quantity: str
    max_rel: float


@dataclass
class PairTrajectory:
    """Two backends' free-running trajectories compared step by step.

    ``worst``: one StepDifference per step. ``parted_at``: the first StepDifference above the
    threshold, or None when the two stay together for every step.
    """

    pair: tuple[str, str]
    worst: list[StepDifference]
    parted_at: StepDifference | None

    def summary(self) -> str:
        name = "-".join(self.pair)
        if self.parted_at is None:
            top = max(self.worst, key=lambda d: d.max_rel)
            return (f"{name}: together for all {len(self.worst)} steps (largest difference "
                    f"{top.max_rel:.1e} in {top.quantity} after step {top.step})")
        part = self.parted_at
        before = self.worst[part.step - 2] if part.step > 1 else None
        growth = (f", {part.max_rel / before.max_rel:.0f}x the difference after step {before.step} "
                  f"({before.max_rel:.1e} in {before.quantity})") if before and before.max_rel > 0 else ""
        return (f"{name}: together for {part.step - 1} steps, part at step {part.step}: "
                f"{part.quantity} differs by {part.max_rel:.1e}{growth}")

    def to_dict(self) -> dict:
        return {
            "pair": list(self.pair),
            "parted_at": None if self.parted_at is None else vars(self.parted_at),
            "worst_per_step": [vars(d) for d in self.worst],
        }


@dataclass
class TrajectoryReport:
    """Every pair of backends over K free-running steps in one dtype."""

    dtype: str
    steps: int
    threshold: float
    pairs: list[PairTrajectory] = field(default_factory=list)

    def title(self) -> str:
        return (f"{self.dtype}: {self.steps} Adam steps, free-running (a description, not a check: "
                f"they part where the largest relative difference first exceeds {self.threshold:g}, "
                "the single-step tolerance)")

    def format_text(self) -> str:
        return "\n".join([self.title(), *(f"  {pair.summary()}" for pair in self.pairs)])

    def to_dict(self) -> dict:
        return {"dtype": self.dtype, "steps": self.steps, "threshold": self.threshold,
                "pairs": [pair.to_dict() for pair in self.pairs]}


def free_running_states(backend, name: str, params: dict, batches, *, spec: ModelSpec = COURSE_MODEL,
                        train: TrainSpec = COURSE_TRAINING, device: str = "cpu") -> list[dict[str, np.ndarray]]:
    """One backend's Trainer over ``batches`` from ``params``; its state after every step.

    Returns one dict per step, keyed by :data:`TRAJECTORY_NAMES`: ``cost`` (that step's cost,
    computed before its update, 0-d), the weights and Adam moments after it (canonical layouts).
    """
    trainer = backend.Trainer({k: v.copy() for k, v in params.items()}, train=train, spec=spec,
                              device=backend_device(name, device))
    states = []
    for X, Y in batches:
        cost = trainer.step(X.copy(), Y.copy())
        flat = flatten_training(trainer, [cost])
        flat["cost"] = flat["costs"].reshape(())
        states.append({quantity: flat[quantity] for quantity in TRAJECTORY_NAMES})
    return states


def compare_pair(pair: tuple[str, str], ours: Sequence[dict], theirs: Sequence[dict],
                 threshold: float) -> PairTrajectory:
    """Step by step, the quantity with the largest relative difference; the first above ``threshold``."""
    worst = []
    for step, (a, b) in enumerate(zip(ours, theirs), start=1):
        differences = {quantity: relative_error(a[quantity], b[quantity]) for quantity in TRAJECTORY_NAMES}
        quantity = max(TRAJECTORY_NAMES, key=lambda q: differences[q])  # ties: the first in order
        worst.append(StepDifference(step, quantity, differences[quantity]))
    parted = next((d for d in worst if not d.max_rel <= threshold), None)  # NaN parts too
    return PairTrajectory(pair, worst, parted)


def trajectory_report(backends: dict, params: dict, batches, dtype, *, spec: ModelSpec = COURSE_MODEL,
                      train: TrainSpec = COURSE_TRAINING, device: str = "cpu") -> TrajectoryReport:
    """Every backend free-running over ``batches`` from ``params`` in ``dtype``; every pair compared.

    Parameters
    ----------
    backends : {name: backend module}, at least two.
    params : canonical weights (any float dtype; cast to ``dtype``).
    batches : [(X (b, 64, 64, 3) NHWC, Y (b, 6) one-hot)], cast to ``dtype``.
    """
    dtype = np.dtype(dtype)
    typed = {k: np.asarray(v, dtype=dtype) for k, v in params.items()}
    typed_batches = [(X.astype(dtype), Y.astype(dtype)) for X, Y in batches]
    states = {name: free_running_states(backend, name, typed, typed_batches, spec=spec, train=train, device=device)
              for name, backend in backends.items()}
    threshold = adam_tolerance(dtype)
    report = TrajectoryReport(str(dtype), len(typed_batches), threshold)
    for pair in combinations(backends, 2):
        report.pairs.append(compare_pair(pair, states[pair[0]], states[pair[1]], threshold))
    return report
