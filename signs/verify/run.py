"""The whole check (:func:`run_verification`) and what ``signs verify`` prints (:class:`VerifyResult`)."""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass, field

import numpy as np

from reference.spec import COURSE_MODEL, COURSE_TRAINING, ModelSpec, TrainSpec
from signs.compare import Report, compare_results, first_divergence
from signs.ties import classify_ties
from signs.upstream import classify_keras_float64_matmul
from signs.verify.adam_steps import compare_training, float64_states, single_steps_report, train_all, training_batches
from signs.verify.forward import FORWARD_BACKWARD_NAMES, forward_backward_all, near_tie_notes
from signs.verify.trajectories import TrajectoryReport, trajectory_report
from signs.verify.options import (
    COURSE_BATCH,
    VerifyOptions,
    cast_arrays,
    check_positive,
    course_vectors,
    data_inputs,
    load_backends,
    load_params,
)

__all__ = ["VerifyResult", "run_verification"]

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
    # How each runtime that is not a framework of its own runs ({backend: line}; e.g. a subprocess).
    notes: dict[str, str] = field(default_factory=dict)
    # float32 free-running trajectories: where they part (a description, never a failure).
    trajectories: list[TrajectoryReport] = field(default_factory=list)

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
    def n_known(self) -> int:
        """Comparisons whose verdict is "known" (proven known upstream defects, signs.upstream)."""
        return sum(1 for r in self.reports for pair in r.pairs for name in r.names
                   if r.verdict_of(pair, name) == "known")

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
        for name, note in self.notes.items():
            lines.append(_wrap(f"  {name}: {note}"))
        for name, reason in self.skipped.items():
            lines.append(_wrap(f"  skipped {name}: {reason}"))
        for report in self.reports:
            lines += ["", report.format_table()]
            lines += [_wrap(line) for line in report.summary().splitlines()]
        for trajectory in self.trajectories:
            lines += [""] + [_wrap(line) for line in trajectory.format_text().splitlines()]
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
        ties = (f"; {self.n_ties} comparison(s) differ only by proven max-pool "
                "near-ties (tie*, see the notes)") if self.n_ties else ""
        if self.n_known:
            ties += (f"; {self.n_known} comparison(s) differ only by a proven known upstream defect "
                     "(known*, see the notes)")
        if self.ok:
            if self.n_ties or self.n_known:
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
            "known": self.n_known,
            "notes": dict(self.notes),
            "backends": list(self.backends),
            "skipped": dict(self.skipped),
            "device": self.options.device,
            "weights": self.weights,
            "inputs": self.inputs,
            "batch": self.batch,
            "dtypes": list(self.options.dtypes),
            "steps": self.options.steps,
            "reports": [r.to_dict() for r in self.reports],
            "trajectories": [t.to_dict() for t in self.trajectories],
            "seconds": self.seconds,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


def _wrap(line: str, width: int = 100) -> str:
    """Wrap a long line for a 100-column terminal, continuation lines indented."""
    return textwrap.fill(line, width=width, subsequent_indent="      ", break_long_words=False,
                         break_on_hyphens=False)


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
        check_positive(options.batch, "batch")
    # Weights and inputs first: a bad file or folder is reported before the frameworks load.
    params, weights_text = load_params(options.weights)
    if options.data is None:
        m = COURSE_BATCH if options.batch is None else options.batch
        inputs = course_vectors(m, options.seed, spec)
    else:
        inputs = data_inputs(options.data, options.batch, options.max_images)
    backends, skipped = load_backends(options.backends)
    result = VerifyResult(options, tuple(backends), skipped, weights_text, inputs.description,
                          inputs.X.shape[0])
    if len(backends) < 2:
        return result
    result.notes = {name: backend.NOTE for name, backend in backends.items() if getattr(backend, "NOTE", None)}
    # Adam steps need a Trainer: the three native backends only.
    trainers = {name: backend for name, backend in backends.items() if hasattr(backend, "Trainer")}
    steps = options.steps if len(trainers) >= 2 else 0
    if options.steps and not steps:
        result.notes["steps"] = f"--steps needs two backends with a Trainer (numpy, tf, torch); got {list(trainers)}"
    batches = training_batches(inputs.X, inputs.Y, steps, train) if steps else []
    states = []
    if batches and "float32" in options.dtypes:
        first = next(iter(trainers))
        states = float64_states(trainers[first], params, batches, spec=spec, train=train)
    for dtype_name in options.dtypes:
        dtype = np.dtype(dtype_name)
        typed_params = cast_arrays(params, dtype)
        X, Y = inputs.X.astype(dtype), inputs.Y.astype(dtype)
        report = _forward_backward_report(result, backends, typed_params, X, Y, spec, options.device)
        if report is not None:
            result.reports.append(report)
        if batches and dtype == np.float64:
            typed_batches = [(bx.astype(dtype), by.astype(dtype)) for bx, by in batches]
            timing = {}
            trained = train_all(trainers, typed_params, typed_batches, spec=spec, train=train,
                                device=options.device, seconds=timing)
            title = f"{dtype_name}: {steps} Adam steps, free-running"
            result.reports.append(compare_training(trained, dtype, title=title))
            result.seconds[f"{dtype_name} {steps} Adam steps"] = timing
        elif batches:
            timing = {}
            title = (f"{dtype_name}: {steps} single Adam steps from the float64 states "
                     f"of {next(iter(trainers))} (worst step)")
            result.reports.append(single_steps_report(
                trainers, states, batches, dtype, spec=spec, train=train, device=options.device,
                title=title, seconds=timing))
            result.seconds[f"{dtype_name} {steps} single Adam steps"] = timing
            result.trajectories.append(trajectory_report(trainers, typed_params, batches, dtype, spec=spec,
                                                         train=train, device=options.device))
    return result


def _forward_backward_report(result: VerifyResult, backends: dict, params: dict, X: np.ndarray,
                             Y: np.ndarray, spec: ModelSpec, device: str) -> Report | None:
    """Every backend that supports the dtype, forward and backward, compared pair by pair.

    Quantities a backend does not compute (an inference runtime's cost and gradients) are "n/a";
    a float32 gradient-only failure is checked for max-pool near-ties (signs.ties), a float64
    failure of a Keras backend for the known float32 dense matmul (signs.upstream). None when
    fewer than two backends support the dtype.
    """
    dtype = X.dtype
    active = {}
    for name, backend in backends.items():
        reason = getattr(backend, "UNSUPPORTED_DTYPES", {}).get(dtype.name)
        if reason:
            result.notes[f"{name} {dtype.name}"] = f"not checked: {reason}"
        else:
            active[name] = backend
    if len(active) < 2:
        return None
    timing: dict[str, float] = {}
    results = forward_backward_all(active, params, X, Y, spec=spec, device=device, seconds=timing)
    result.seconds[f"{dtype.name} forward+backward"] = timing
    title = f"{dtype.name}: forward and backward, batch {X.shape[0]}"
    not_applicable = {name: getattr(backend, "NOT_APPLICABLE", {}) for name, backend in active.items()}
    report = compare_results(results, FORWARD_BACKWARD_NAMES, dtype, title=title,
                             not_applicable=not_applicable)
    for name, backend in active.items():
        if hasattr(backend, "float64_matmul_dtype"):
            report.known.update(classify_keras_float64_matmul(
                report, name, backend.float64_matmul_dtype(device=device)))
    if not report.ok:
        native = {name: r for name, r in results.items() if not not_applicable[name]}
        report.notes += near_tie_notes(native, spec)
        # A gradient-only float32 failure may be a max-pool near-tie: prove it or keep FAIL.
        not_ties = classify_ties(report, results, params, X, Y, spec)
        report.notes += [f"{'-'.join(pair)} is not a near-tie: {why}"
                         for pair, why in not_ties.items() if why and dtype == np.float32]
    return report
