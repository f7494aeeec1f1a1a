"""Adam-step checks: each backend's ``Trainer`` over the same mini-batches, compared step by step."""

from __future__ import annotations

import time
from typing import Sequence

import numpy as np

from reference.spec import COURSE_MODEL, COURSE_TRAINING, PARAM_NAMES, ModelSpec, TrainSpec
from signs.compare import Report, compare_results
from signs.ties import classify_step_ties
from signs.tolerances import adam_tolerance
from signs.verify.forward import backend_device, forward_backward_all, near_tie_notes
from signs.verify.options import cast_arrays

__all__ = [
    "TRAINING_NAMES",
    "training_batches",
    "train_all",
    "flatten_training",
    "float64_states",
    "single_steps_report",
    "compare_training",
]

TRAINING_NAMES: tuple[str, ...] = (
    ("costs",) + tuple(PARAM_NAMES) + tuple(f"m.{p}" for p in PARAM_NAMES)
    + tuple(f"v.{p}" for p in PARAM_NAMES) + ("t",)
)
# What a max-pool routing choice can change in one step (the gradients feed them); the cost is
# computed before the routing and t is a count.
TIEABLE_NAMES: tuple[str, ...] = tuple(n for n in TRAINING_NAMES if n not in ("costs", "t"))


def training_batches(X: np.ndarray, Y: np.ndarray, steps: int,
                     train: TrainSpec = COURSE_TRAINING) -> list[tuple[np.ndarray, np.ndarray]]:
    """The first ``steps`` mini-batches of the course's schedule over (X, Y).

    Epoch e uses ``random_mini_batches(X, Y, min(64, m), seed=first_seed + 1 + e)`` (seed 4 for the
    first epoch, as the course); epochs follow each other until ``steps`` batches are collected.
    Like the course, this reseeds NumPy's global RNG.
    """
    from reference.data.batches import epoch_mini_batches

    size = min(train.mini_batch_size, X.shape[0])
    batches: list[tuple[np.ndarray, np.ndarray]] = []
    epoch = 0
    while len(batches) < steps:
        batches += epoch_mini_batches(X, Y, epoch, mini_batch_size=size, first_seed=train.first_seed)
        epoch += 1
    return batches[:steps]


def train_all(backends: dict, params: dict, batches, *, spec: ModelSpec = COURSE_MODEL,
              train: TrainSpec = COURSE_TRAINING, device: str = "cpu", state: dict | None = None,
              seconds: dict | None = None) -> dict[str, dict[str, np.ndarray]]:
    """Run each backend's Trainer over ``batches`` from ``params``; flatten what it ends with.

    ``state`` (``{"t", "m", "v"}`` as ``Trainer.get_optimizer_state`` returns it, canonical
    layouts, the params' dtype) is restored into every Trainer before the first step; None starts
    Adam from zero moments and t = 0.

    Returns {backend: :func:`flatten_training` of its Trainer after the last batch}.
    """
    results = {}
    for name, backend in backends.items():
        start = time.perf_counter()
        trainer = backend.Trainer({k: v.copy() for k, v in params.items()}, train=train, spec=spec,
                                  device=backend_device(name, device))
        if state is not None:
            trainer.set_optimizer_state(state)
        costs = [trainer.step(X.copy(), Y.copy()) for X, Y in batches]
        results[name] = flatten_training(trainer, costs)
        if seconds is not None:
            seconds[name] = time.perf_counter() - start
    return results


def flatten_training(trainer, costs: Sequence[float]) -> dict[str, np.ndarray]:
    """A Trainer's state as one flat dict of arrays, keyed by :data:`TRAINING_NAMES`.

    ``costs`` (K,) (each step's cost, computed before its update), the parameters ``W1 W2 W3 b3``,
    the Adam moments ``m.W1 ... v.b3`` (canonical layouts) and ``t`` (0-d), all in the
    parameters' dtype so that they compare like the rest.
    """
    params = trainer.get_params()
    state = trainer.get_optimizer_state()
    dtype = params[PARAM_NAMES[0]].dtype
    flat = {"costs": np.asarray(costs, dtype=dtype), "t": np.asarray(state["t"], dtype=dtype)}
    flat.update({p: np.asarray(params[p]) for p in PARAM_NAMES})
    for moment in ("m", "v"):
        flat.update({f"{moment}.{p}": np.asarray(state[moment][p]) for p in PARAM_NAMES})
    return {name: flat[name] for name in TRAINING_NAMES}


def float64_states(backend, params: dict, batches, *, spec: ModelSpec = COURSE_MODEL,
                   train: TrainSpec = COURSE_TRAINING) -> list[tuple[dict, dict]]:
    """One backend's float64 trajectory: (params, optimizer state) before each batch.

    ``params`` and ``batches`` are cast to float64; the states are canonical NumPy copies.
    """
    trainer = backend.Trainer(cast_arrays(params, np.float64), train=train, spec=spec, device="cpu")
    states = []
    for X, Y in batches:
        states.append((trainer.get_params(), trainer.get_optimizer_state()))
        trainer.step(X.astype(np.float64), Y.astype(np.float64))
    return states


def single_steps_report(backends: dict, states: Sequence[tuple[dict, dict]], batches, dtype, *,
                        steps: Sequence[int] | None = None, spec: ModelSpec = COURSE_MODEL,
                        train: TrainSpec = COURSE_TRAINING, device: str = "cpu",
                        title: str = "", seconds: dict | None = None) -> Report:
    """Each backend takes single Adam steps in ``dtype`` from the same states; compare each step.

    Why: a free-running float32 trajectory is chaotic (a one-ulp weight difference can move a
    max-pool argmax or a ReLU kink, and Adam's normalised update turns the changed gradient
    element into a full step; see parity_tests/README.md), so float32 Adam is checked one step at
    a time from the float64 trajectory's state rounded to ``dtype``.

    Parameters
    ----------
    states : :func:`float64_states` of the same ``batches``.
    steps : the 0-based steps to re-run (default: all).

    Returns
    -------
    Report over TRAINING_NAMES whose comparison for each (pair, quantity) is the worst over the
    steps; ``notes`` name the step of each failing quantity. A float32 step whose parameters and
    moments differ only because a max-pool near-tie routes the gradient differently is proven a
    tie by :func:`signs.ties.classify_step_ties` (verdict "tie", ``ties`` name the step).
    """
    steps = range(len(batches)) if steps is None else steps
    worst: dict = {}
    notes = []
    ties = _StepTies()
    timing = {name: 0.0 for name in backends}
    for step in steps:
        params, state = states[step]
        typed_params = cast_arrays(params, dtype)
        typed_state = {"t": state["t"], "m": cast_arrays(state["m"], dtype), "v": cast_arrays(state["v"], dtype)}
        X, Y = (a.astype(dtype) for a in batches[step])
        per_step: dict[str, float] = {}
        results = train_all(backends, typed_params, [(X, Y)], spec=spec, train=train, device=device,
                            state=typed_state, seconds=per_step)
        for name, value in per_step.items():
            timing[name] += value
        report = compare_training(results, dtype)
        if not report.ok:
            # Was it a max-pool near-tie? Look at each backend's activations for this step, and
            # prove it (signs.ties) or keep FAIL.
            activations = forward_backward_all(backends, typed_params, X, Y, spec=spec, device=device)
            not_ties = classify_step_ties(report, results, activations, typed_params, typed_state,
                                          X, Y, tieable=TIEABLE_NAMES, spec=spec, train=train)
            if not report.ok:
                failing = sorted({f"{c.name} ({c.ours}-{c.theirs})" for c in report.failures()})
                notes.append(f"step {step + 1} fails: {', '.join(failing)}")
                notes += [f"step {step + 1}: {note}" for note in near_tie_notes(activations, spec)]
            notes += [f"step {step + 1}: {'-'.join(pair)} is not a near-tie: {why}"
                      for pair, why in not_ties.items() if why and np.dtype(dtype) == np.float32]
        ties.add(step, report)
        for pair, row in report.comparisons.items():
            for name, comparison in row.items():
                current = worst.get((pair, name))
                if current is None or _worse(comparison, current):
                    worst[(pair, name)] = comparison
    merged = Report(dtype=str(np.dtype(dtype)), backends=tuple(backends), names=TRAINING_NAMES,
                    title=title, notes=notes)
    for (pair, name), comparison in worst.items():
        merged.comparisons.setdefault(pair, {})[name] = comparison
    merged.ties = ties.merged()
    if seconds is not None:
        seconds.update(timing)
    return merged


class _StepTies:
    """The proven ties of every step, merged for the worst-step report.

    A (pair, quantity) is a tie in the merged report only when every step where it fails is a
    proven tie: one unexplained failing step keeps it FAIL (its comparison may not be the worst).
    """

    def __init__(self):
        self.tied: dict = {}  # pair -> {"names": set, "explanations": [...], "steps": [...]}
        self.unexplained: set = set()  # (pair, name) failing at some step without a tie

    def add(self, step: int, report: Report) -> None:
        for pair in report.pairs:
            for name in report.names:
                verdict = report.verdict_of(pair, name)
                if verdict == "FAIL":
                    self.unexplained.add((pair, name))
            tie = report.ties.get(pair)
            if tie is not None:
                merged = self.tied.setdefault(pair, {"names": set(), "explanation": [], "steps": []})
                merged["names"].update(tie["names"])
                merged["explanation"].append(f"step {step + 1}: {tie['explanation']}")
                merged["steps"].append({"step": step + 1, **tie})

    def merged(self) -> dict:
        """{pair: tie} in the shape of ``Report.ties`` (names, explanation, steps)."""
        return {
            pair: {"names": [n for n in TRAINING_NAMES
                             if n in tie["names"] and (pair, n) not in self.unexplained],
                   "explanation": "\n".join(tie["explanation"]), "steps": tie["steps"]}
            for pair, tie in self.tied.items()
        }


def _worse(a, b) -> bool:
    """Is comparison ``a`` worse than ``b``: a failure beats a pass, then the larger max_rel."""
    if a.ok != b.ok:
        return not a.ok
    def size(c) -> float:
        return np.inf if c.max_rel is None or np.isnan(c.max_rel) else c.max_rel

    return size(a) > size(b)


def compare_training(results_by_backend: dict, dtype, *, title: str = "") -> Report:
    """Compare :func:`train_all` outputs; every quantity at ``adam_tolerance(dtype)``, t exactly."""
    tolerance = adam_tolerance(dtype)
    tolerances = {name: tolerance for name in TRAINING_NAMES}
    tolerances["t"] = 0.0
    return compare_results(results_by_backend, TRAINING_NAMES, dtype, tolerances=tolerances,
                           title=title)
