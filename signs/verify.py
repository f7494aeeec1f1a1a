"""Three-way verification: the same weights and inputs through NumPy, TensorFlow and PyTorch.

``signs verify`` (signs/commands/verify.py) is a thin shell around :func:`run_verification`.
With no options it checks the course-exact initial weights (``reference.init.course_init``) on
the course's test vectors in float32 and float64:

    np.random.seed(1)
    X = np.random.randn(2, 64, 64, 3)        # the course's forward_propagation test input
    Y = one_hot(argmax(np.random.randn(2, 6)))

The course's test cell fed ``Y = np.random.randn(2, 6)`` itself. Those labels are not a
distribution (they are negative and do not sum to one), and for such labels the frameworks'
gradients legitimately differ: TensorFlow's ``softmax_cross_entropy_with_logits`` backpropagates
``softmax(Z) - Y``, the derivative of ``-sum(Y log softmax(Z))`` is ``softmax(Z) * sum(Y) - Y``.
The backend interface accepts one-hot or soft labels only, so we keep the course's draw (the same
random stream, so ``X`` is bit for bit the course's) and turn each row into the one-hot label of
its largest entry.

Every backend's ``forward_backward`` output is compared between every pair of backends with
:mod:`signs.compare`: activations Z1..Z3, the cost, and the gradients in the order backprop
computes them (db3 dW3 dW2 dW1 dX). ``steps=K`` also runs K Adam steps of each backend's
``Trainer`` on the same mini-batches and compares per-step costs, weights and Adam moments: in
float64 free-running from the same weights; in float32 one step at a time from the same state
(the float64 trajectory's, rounded), because a float32 trajectory is chaotic (see
:func:`single_steps_report`).

Nothing here imports a framework at module level; ``signs.backends.get_backend`` imports each one
when it is asked for.
"""

from __future__ import annotations

import json
import textwrap
import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from reference.spec import (
    ACTIVATION_NAMES,
    COURSE_MODEL,
    COURSE_TRAINING,
    PARAM_NAMES,
    ModelSpec,
    TrainSpec,
)
from signs.backends import BACKENDS, BackendUnavailable, get_backend
from signs.compare import BACKWARD_ORDER, Report, compare_results, first_divergence
from signs.ties import classify_ties, pool_argmax
from signs.tolerances import adam_tolerance

__all__ = [
    "DEFAULT_BACKENDS",
    "DTYPES",
    "FORWARD_BACKWARD_NAMES",
    "COURSE_BATCH",
    "VerifyOptions",
    "Inputs",
    "VerifyResult",
    "parse_backends",
    "parse_dtypes",
    "load_backends",
    "course_vectors",
    "data_inputs",
    "load_params",
    "backend_device",
    "forward_backward_all",
    "training_batches",
    "train_all",
    "flatten_training",
    "pool_argmax",
    "near_tie_notes",
    "classify_ties",
    "TRAINING_NAMES",
    "compare_training",
    "float64_states",
    "single_steps_report",
    "run_verification",
]

DEFAULT_BACKENDS: tuple[str, ...] = tuple(BACKENDS)  # numpy, tf, torch
DTYPES: tuple[str, ...] = ("float32", "float64")
# Table rows: the forward pass in order, the cost, then gradients in the order backprop makes them.
FORWARD_BACKWARD_NAMES: tuple[str, ...] = tuple(ACTIVATION_NAMES) + ("cost",) + BACKWARD_ORDER
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


@dataclass
class VerifyResult:
    """Everything ``signs verify`` prints, as data.

    ``exit_code``: 0 every check holds, 1 some check fails, 2 fewer than two backends ran. A
    comparison whose only difference is a proven float32 max-pool near-tie (verdict "tie", see
    :mod:`signs.ties`) holds, unless ``options.strict``.
    """

    options: VerifyOptions
    backends: tuple[str, ...]
    skipped: dict[str, str]
    weights: str
    inputs: str
    batch: int
    reports: list[Report] = field(default_factory=list)
    seconds: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        if self.options.strict:
            return len(self.backends) >= 2 and all(r.strict_ok for r in self.reports)
        return len(self.backends) >= 2 and all(r.ok for r in self.reports)

    @property
    def n_ties(self) -> int:
        """Comparisons whose verdict is "tie" (proven max-pool near-ties)."""
        return sum(len(r.tied()) for r in self.reports)

    @property
    def exit_code(self) -> int:
        if len(self.backends) < 2:
            return 2
        return 0 if self.ok else 1

    def format_text(self) -> str:
        """The human-readable output: header, one table per report, verdict (< 100 columns)."""
        lines = [
            f"signs verify: {', '.join(self.backends) or 'no backend'} on {self.options.device}",
            _wrap(f"  weights: {self.weights}"),
            _wrap(f"  inputs:  {self.inputs}"),
        ]
        for name, reason in self.skipped.items():
            lines.append(_wrap(f"  skipped {name}: {reason}"))
        for report in self.reports:
            lines += ["", report.format_table()]
            lines += [_wrap(line) for line in report.summary().splitlines()]
        if self.seconds:
            lines += ["", "seconds per backend:"]
            lines += [_wrap(f"  {label}: " + ", ".join(f"{b} {s:.2f}" for b, s in per.items()))
                      for label, per in self.seconds.items()]
        lines += ["", _wrap(self.verdict())]
        return "\n".join(lines)

    def verdict(self) -> str:
        if len(self.backends) < 2:
            return ("verdict: NOT RUN: need at least two backends, "
                    f"available: {', '.join(self.backends) or 'none'}")
        checked = f"{len(self.reports)} checks of {', '.join(self.backends)}"
        skipped = f"; skipped {', '.join(self.skipped)}" if self.skipped else ""
        ties = (f"; {self.n_ties} gradient comparison(s) differ only by proven max-pool "
                "near-ties (tie*, see the notes)") if self.n_ties else ""
        if self.ok:
            if self.n_ties:
                return (f"verdict: OK: every quantity agrees within tolerance ({checked}{skipped})"
                        f"{ties}; --strict fails them")
            return f"verdict: OK: every quantity agrees within tolerance ({checked}{skipped})"
        failed = [r for r in self.reports if not r.ok]
        if not failed:  # --strict: only ties
            return (f"verdict: FAIL (--strict): {checked}{skipped}{ties}")
        firsts = []
        for report in failed:
            divergence = first_divergence(report)
            firsts.append(f"{report.title}: {divergence.name} ({divergence.layer})")
        return (f"verdict: FAIL: {len(failed)} of {len(self.reports)} checks fail "
                f"({checked}{skipped}); first divergence: " + "; ".join(firsts) + ties)

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "exit_code": self.exit_code,
            "strict": self.options.strict,
            "ties": self.n_ties,
            "backends": list(self.backends),
            "skipped": dict(self.skipped),
            "device": self.options.device,
            "weights": self.weights,
            "inputs": self.inputs,
            "batch": self.batch,
            "dtypes": list(self.options.dtypes),
            "steps": self.options.steps,
            "reports": [r.to_dict() for r in self.reports],
            "seconds": self.seconds,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


def _wrap(line: str, width: int = 100) -> str:
    """Wrap a long line for a 100-column terminal, continuation lines indented."""
    return textwrap.fill(line, width=width, subsequent_indent="      ", break_long_words=False,
                         break_on_hyphens=False)


# ----------------------------------------------------------------------------------------------
# Options


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
    _check_positive(m, "batch")
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
    _check_positive(m, "batch")
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


def _check_positive(value, name: str) -> int:
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(f"--{name}: expected a positive integer, got {value!r}")
    return int(value)


def _cast(arrays: dict[str, np.ndarray], dtype) -> dict[str, np.ndarray]:
    return {name: np.asarray(value).astype(dtype) for name, value in arrays.items()}


# ----------------------------------------------------------------------------------------------
# Running the backends


def backend_device(name: str, device: str) -> str:
    """The device a backend runs on: ``device`` for tf and torch; the NumPy backend is CPU-only."""
    return "cpu" if name == "numpy" else device


def forward_backward_all(backends: dict, params: dict, X: np.ndarray, Y: np.ndarray, *,
                         spec: ModelSpec = COURSE_MODEL, device: str = "cpu",
                         seconds: dict | None = None) -> dict[str, dict[str, np.ndarray]]:
    """Each backend's ``forward_backward`` on the same arrays; {backend: {name: array}}.

    Every backend gets its own copies, so one that writes into its inputs cannot affect the next.
    ``seconds``, if given, receives each backend's wall time.
    """
    results = {}
    for name, backend in backends.items():
        start = time.perf_counter()
        results[name] = backend.forward_backward(
            {k: v.copy() for k, v in params.items()}, X.copy(), Y.copy(), spec=spec,
            device=backend_device(name, device),
        )
        if seconds is not None:
            seconds[name] = time.perf_counter() - start
    return results


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


# ----------------------------------------------------------------------------------------------
# Diagnosis: max-pool near-ties


def near_tie_notes(results_by_backend: dict, spec: ModelSpec = COURSE_MODEL) -> list[str]:
    """Explain gradient differences caused by max-pool windows that route differently.

    Every framework sends a window's gradient to the first maximum of *its own* activations. When
    the two largest values of a window differ by less than the dtype's rounding noise (a near-tie,
    common in flat regions of real photos in float32), frameworks that agree on every activation
    to 1e-7 can still pick different cells, moving one gradient element: dX and dW1 then differ
    by much more than the forward pass. Returns one line per backend pair and pool with such
    windows (empty when every window routes alike).
    """
    notes = []
    names = list(results_by_backend)
    for pool, activation in ((spec.pool1, "A1"), (spec.pool2, "A2")):
        argmax = {name: pool_argmax(results_by_backend[name][activation], pool) for name in names}
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                differ = argmax[a] != argmax[b]
                if differ.any():
                    index = tuple(int(k) for k in np.argwhere(differ)[0])
                    notes.append(
                        f"{pool.name} routes the gradient to a different cell in "
                        f"{int(differ.sum())} window(s) ({a} vs {b}, first at {index}): "
                        "near-ties in the pooled values, so the gradients below it differ"
                    )
    return notes


TRAINING_NAMES: tuple[str, ...] = (
    ("costs",) + tuple(PARAM_NAMES) + tuple(f"m.{p}" for p in PARAM_NAMES)
    + tuple(f"v.{p}" for p in PARAM_NAMES) + ("t",)
)


def float64_states(backend, params: dict, batches, *, spec: ModelSpec = COURSE_MODEL,
                   train: TrainSpec = COURSE_TRAINING) -> list[tuple[dict, dict]]:
    """One backend's float64 trajectory: (params, optimizer state) before each batch.

    ``params`` and ``batches`` are cast to float64; the states are canonical NumPy copies.
    """
    trainer = backend.Trainer(_cast(params, np.float64), train=train, spec=spec, device="cpu")
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
    steps; ``notes`` name the step of each failing quantity.
    """
    steps = range(len(batches)) if steps is None else steps
    worst: dict = {}
    notes = []
    timing = {name: 0.0 for name in backends}
    for step in steps:
        params, state = states[step]
        typed_state = {"t": state["t"], "m": _cast(state["m"], dtype), "v": _cast(state["v"], dtype)}
        X, Y = batches[step]
        per_step: dict[str, float] = {}
        results = train_all(backends, _cast(params, dtype), [(X.astype(dtype), Y.astype(dtype))],
                            spec=spec, train=train, device=device, state=typed_state,
                            seconds=per_step)
        for name, value in per_step.items():
            timing[name] += value
        report = compare_training(results, dtype)
        for pair, row in report.comparisons.items():
            for name, comparison in row.items():
                current = worst.get((pair, name))
                if current is None or _worse(comparison, current):
                    worst[(pair, name)] = comparison
        if not report.ok:
            failing = sorted({f"{c.name} ({c.ours}-{c.theirs})" for c in report.failures()})
            notes.append(f"step {step + 1} fails: {', '.join(failing)}")
            # Was it a max-pool near-tie? Look at each backend's activations for this step.
            activations = forward_backward_all(backends, _cast(params, dtype), X.astype(dtype),
                                               Y.astype(dtype), spec=spec, device=device)
            notes += [f"step {step + 1}: {note}" for note in near_tie_notes(activations, spec)]
    merged = Report(dtype=str(np.dtype(dtype)), backends=tuple(backends), names=TRAINING_NAMES,
                    title=title, notes=notes)
    for (pair, name), comparison in worst.items():
        merged.comparisons.setdefault(pair, {})[name] = comparison
    if seconds is not None:
        seconds.update(timing)
    return merged


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


# ----------------------------------------------------------------------------------------------
# The whole check


def run_verification(options: VerifyOptions = VerifyOptions(), *,
                     spec: ModelSpec = COURSE_MODEL,
                     train: TrainSpec = COURSE_TRAINING) -> VerifyResult:
    """Load the backends, weights and inputs; compare forward/backward (and Adam steps) per dtype.

    Raises ValueError / FileNotFoundError for bad options, a weight file or data folder that cannot
    be read. A missing framework is not an error: it is listed in ``skipped``; with fewer than two
    backends nothing is compared and ``exit_code`` is 2.
    """
    if options.steps < 0:
        raise ValueError(f"--steps: expected a non-negative integer, got {options.steps}")
    if options.batch is not None:
        _check_positive(options.batch, "batch")
    # Weights and inputs first: a bad file or folder is reported before the frameworks load.
    params, weights_text = load_params(options.weights)
    if options.data is None:
        m = COURSE_BATCH if options.batch is None else options.batch
        inputs = course_vectors(m, options.seed, spec)
    else:
        inputs = data_inputs(options.data, options.batch)
    backends, skipped = load_backends(options.backends)
    result = VerifyResult(options, tuple(backends), skipped, weights_text, inputs.description,
                          inputs.X.shape[0])
    if len(backends) < 2:
        return result
    batches = training_batches(inputs.X, inputs.Y, options.steps, train) if options.steps else []
    states = []
    if batches and "float32" in options.dtypes:
        first = next(iter(backends))
        states = float64_states(backends[first], params, batches, spec=spec, train=train)
    for dtype_name in options.dtypes:
        dtype = np.dtype(dtype_name)
        typed_params = _cast(params, dtype)
        X, Y = inputs.X.astype(dtype), inputs.Y.astype(dtype)
        timing: dict[str, float] = {}
        results = forward_backward_all(backends, typed_params, X, Y, spec=spec,
                                       device=options.device, seconds=timing)
        title = f"{dtype_name}: forward and backward, batch {X.shape[0]}"
        report = compare_results(results, FORWARD_BACKWARD_NAMES, dtype, title=title)
        if not report.ok:
            report.notes += near_tie_notes(results, spec)
            # A gradient-only float32 failure may be a max-pool near-tie: prove it or keep FAIL.
            not_ties = classify_ties(report, results, typed_params, X, Y, spec)
            report.notes += [f"{'-'.join(pair)} is not a near-tie: {why}"
                             for pair, why in not_ties.items() if why and dtype == np.float32]
        result.reports.append(report)
        result.seconds[f"{dtype_name} forward+backward"] = timing
        if batches and dtype == np.float64:
            typed_batches = [(bx.astype(dtype), by.astype(dtype)) for bx, by in batches]
            timing = {}
            trained = train_all(backends, typed_params, typed_batches, spec=spec, train=train,
                                device=options.device, seconds=timing)
            title = f"{dtype_name}: {options.steps} Adam steps, free-running"
            result.reports.append(compare_training(trained, dtype, title=title))
            result.seconds[f"{dtype_name} {options.steps} Adam steps"] = timing
        elif batches:
            timing = {}
            title = (f"{dtype_name}: {options.steps} single Adam steps from the float64 states "
                     f"of {next(iter(backends))} (worst step)")
            result.reports.append(single_steps_report(
                backends, states, batches, dtype, spec=spec, train=train, device=options.device,
                title=title, seconds=timing))
            result.seconds[f"{dtype_name} {options.steps} single Adam steps"] = timing
    return result
