"""Max-pool near-ties: prove that a float32 gradient difference is only a routing choice.

Every framework sends a max-pool window's gradient to the first maximum of *its own* float32
activations. When two cells of a window differ by a couple of ulps (flat regions of real photos),
frameworks that agree on every activation to 1e-7 can pick different cells; one gradient element
then moves to a neighbouring pixel and dX (sometimes dW1) differ far beyond their tolerance.

A failing gradient comparison of a backend pair is classified as a *tie* (not a failure) only when
all of these hold (:func:`classify_ties`):

(a) the pair agrees on every forward quantity and the cost within tolerance;
(b) some max-pool windows route differently between the two backends, and in every such window
    the two cells' values lie within the *tie band* of that pool's input: the forward tolerance of
    the activation (A1 for pool1, A2 for pool2) times the largest magnitude either backend holds,
    i.e. the two cells are indistinguishable at the precision the frameworks are proven to agree;
(c) confirmation: for each side that is not NumPy, the NumPy reference backward (same float32
    weights, inputs and reference activations) recomputed with those windows re-routed that
    side's way agrees with that side's gradients within the normal tolerance. Re-routing is
    limited to cells inside the tie band; the cell is inferred as the side's own first maximum,
    or else the runner-up of the reference window (each candidate assignment is tried).

The float32 single Adam steps are proven the same way (:func:`classify_step_ties`): (a) is the
step's forward pass (and its cost), (c) re-runs the NumPy reference *step*: the re-routed backward,
then the reference Adam update from the same state, which must reproduce the side's parameters and
moments within the Adam tolerance; the NumPy side, whose Trainer is code of its own, must match the
un-routed reference step.

For a pair without NumPy (tf-torch), (c) confirms each side against the re-routed reference
separately (the numpy-tf and numpy-torch proofs). The reference is computed here when NumPy is
not among the compared backends. Anything else (a forward failure, a window outside the band, a
re-routed reference that still disagrees, float64) stays FAIL.

Pure NumPy: built from the public functions of :mod:`reference.model` and
:mod:`reference.fast_layers`; nothing here imports a framework.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from reference import fast_layers, model
from reference.adam import Adam
from reference.layers import PoolGeometry
from reference.padding import pad_spatial
from reference.spec import (ACTIVATION_NAMES, COURSE_MODEL, COURSE_TRAINING, GRADIENT_NAMES,
                            PARAM_NAMES, ModelSpec, TrainSpec)
from signs.compare import compare, compare_results, format_number
from signs.tolerances import parity_tolerance

__all__ = [
    "REFERENCE",
    "Reroute",
    "Confirmation",
    "pool_windows",
    "pool_argmax",
    "tie_band",
    "routing_differences",
    "rerouted_backward",
    "confirm_routing",
    "classify_ties",
    "classify_step_ties",
]

REFERENCE = "numpy"  # the backend whose results are the reference's own
FORWARD_NAMES: tuple[str, ...] = tuple(ACTIVATION_NAMES) + ("cost",)
_MAX_NOTED_WINDOWS = 3  # windows spelled out per pair in the explanation

# Condition (c)'s test for one backend: re-routed reference gradients (GRADIENT_NAMES) ->
# (every compared quantity within tolerance, worst relative error, its quantity's name).
Agreement = Callable[[dict], tuple[bool, float, str]]


def _pools(spec: ModelSpec):
    """(PoolSpec, name of its input activation) in forward order."""
    return ((spec.pool1, "A1"), (spec.pool2, "A2"))


def pool_windows(A: np.ndarray, pool) -> tuple[np.ndarray, tuple[int, int]]:
    """Every window of a max pool, and the (top, left) padding.

    Parameters
    ----------
    A : (m, n_H, n_W, n_C) NHWC, the pool's input.
    pool : reference.spec.PoolSpec, any padding (padding cells are -inf, as the max pool pads).

    Returns
    -------
    windows : (m, n_H_out, n_W_out, n_C, f * f), each window's cells in row-major order
        (:func:`reference.fast_layers.pool_windows`, the layout the max-pool backward uses).
    (top, left) : padding added before row 0 and column 0.
    """
    g = PoolGeometry(A, pool.hparameters)
    windows = fast_layers.pool_windows(pad_spatial(A, g.padding, -np.inf), g)
    (top, _), (left, _) = g.padding
    return windows, (top, left)


def pool_argmax(A: np.ndarray, pool) -> np.ndarray:
    """Index (row-major, within the window) of the first maximum of every window of a max pool.

    Parameters
    ----------
    A : (m, n_H, n_W, n_C) NHWC, the pool's input.
    pool : reference.spec.PoolSpec (window, stride, padding; padding cells are -inf).

    Returns
    -------
    int64 (m, n_H_out, n_W_out, n_C): the cell of each window that receives its gradient.
    """
    windows, _ = pool_windows(A, pool)
    return np.argmax(windows, axis=-1)


def tie_band(A_a: np.ndarray, A_b: np.ndarray, name: str, dtype) -> float:
    """Absolute width within which two cells of a pool input cannot be told apart.

    The forward tolerance of ``name`` (e.g. A1) times the largest magnitude either backend holds:
    the comparison of ``name`` only proves the backends agree to that much.
    """
    scale = max(float(np.max(np.abs(A_a))), float(np.max(np.abs(A_b))))
    return parity_tolerance(name, dtype) * scale


@dataclass(frozen=True)
class Reroute:
    """One max-pool window whose gradient goes to ``to_cell`` instead of ``from_cell``.

    ``window`` is (sample, out_row, out_col, channel) of the pool output; cells are (row, col) of
    the pool input (NHWC, unpadded); values are the reference's activations at those cells.
    """

    pool: str
    window: tuple[int, int, int, int]
    from_cell: tuple[int, int]
    to_cell: tuple[int, int]
    from_value: float
    to_value: float

    def describe(self, from_label: str, to_label: str) -> str:
        n, oh, ow, c = self.window
        gap = abs(self.from_value - self.to_value)
        return (f"{self.pool} window (sample {n}, row {oh}, col {ow}, channel {c}): {from_label} -> "
                f"cell {self.from_cell} = {self.from_value:.9g}, {to_label} -> cell "
                f"{self.to_cell} = {self.to_value:.9g} (gap {format_number(gap, 1)})")

    def to_dict(self) -> dict:
        return {"pool": self.pool, "window": list(self.window), "from_cell": list(self.from_cell),
                "to_cell": list(self.to_cell), "from_value": self.from_value,
                "to_value": self.to_value}


def _cell(flat_index: int, window: tuple[int, ...], pool, pad: tuple[int, int]) -> tuple[int, int]:
    """Window-local row-major index -> (row, col) in the unpadded pool input."""
    i, j = divmod(int(flat_index), pool.window)
    return (window[1] * pool.stride + i - pad[0], window[2] * pool.stride + j - pad[1])


def routing_differences(A_a: np.ndarray, A_b: np.ndarray, pool, band: float, *,
                        values: np.ndarray | None = None) -> tuple[list[Reroute], list[tuple]]:
    """Windows whose first maximum differs between two backends' pool inputs.

    Parameters
    ----------
    A_a, A_b : (m, n_H, n_W, n_C) NHWC, the same pool input as computed by backends a and b.
    band : tie band (:func:`tie_band`).
    values : the activations whose values are reported (default ``A_a``).

    Returns
    -------
    near_ties : a Reroute (a's cell -> b's cell) per differing window whose two cells lie within
        ``band`` in both backends' values.
    outside : (window, a's cell, b's cell) of differing windows that are not near-ties.
    """
    values = A_a if values is None else values
    windows_a, pad = pool_windows(A_a, pool)
    windows_b, _ = pool_windows(A_b, pool)
    windows_v, _ = pool_windows(values, pool)
    first_a, first_b = windows_a.argmax(axis=-1), windows_b.argmax(axis=-1)
    near_ties, outside = [], []
    for window in map(tuple, np.argwhere(first_a != first_b)):
        window = tuple(int(k) for k in window)
        ka, kb = int(first_a[window]), int(first_b[window])
        gaps = (abs(windows_a[window][ka] - windows_a[window][kb]),
                abs(windows_b[window][ka] - windows_b[window][kb]))
        cells = (_cell(ka, window, pool, pad), _cell(kb, window, pool, pad))
        if max(gaps) <= band:
            near_ties.append(Reroute(pool.name, window, *cells, float(windows_v[window][ka]),
                                     float(windows_v[window][kb])))
        else:
            outside.append((window, *cells))
    return near_ties, outside


def _move_gradient(dA: np.ndarray, dP: np.ndarray, reroutes) -> None:
    """In place: send window gradient ``dP[window]`` to ``to_cell`` instead of ``from_cell``."""
    for r in reroutes:
        n, _, _, c = r.window
        g = dP[r.window]
        dA[n, r.from_cell[0], r.from_cell[1], c] -= g
        dA[n, r.to_cell[0], r.to_cell[1], c] += g


def rerouted_backward(params: dict, X: np.ndarray, Y: np.ndarray, activations: dict,
                      reroutes=(), spec: ModelSpec = COURSE_MODEL) -> dict[str, np.ndarray]:
    """The reference backward pass (``reference.model.model_backward``, fast layers) with some
    max-pool windows routed to another cell; with no reroutes it is the NumPy backend's result.

    Parameters
    ----------
    params : canonical dict W1 W2 (HWIO), W3 (n_flat, n_classes), b3; one dtype.
    X : (m, n_H, n_W, n_C) NHWC. Y : (m, n_classes).
    activations : the reference's Z1 A1 P1 Z2 A2 P2 (NHWC), F, Z3 for these params and X.
    reroutes : Reroute records (pool names of ``spec``); windows must not overlap (stride ==
        window, as in the course model) for the move to be exact.

    Returns
    -------
    {"dW1", "dW2" (HWIO), "dW3", "db3", "dX" (NHWC)} in the params' dtype.
    """
    by_pool: dict[str, list[Reroute]] = {spec.pool1.name: [], spec.pool2.name: []}
    for r in reroutes:
        by_pool[r.pool].append(r)

    def route(pool, dP, dA):
        _move_gradient(dA, dP, by_pool[pool.name])

    return model.model_backward(params, X, Y, activations, spec, route=route)


@dataclass
class Confirmation:
    """Does the reference, re-routed a backend's way, reproduce that backend's gradients?

    ``confirmed``: every gradient agrees within its parity tolerance. ``worst``: the largest
    relative error over the gradients (of the best candidate tried), ``worst_name`` its quantity.
    ``reroutes``: the windows re-routed (reference cell -> backend cell). ``reason``: why not.
    """

    backend: str
    confirmed: bool
    reroutes: list[Reroute] = field(default_factory=list)
    worst: float | None = None
    worst_name: str | None = None
    reason: str = ""

    def to_dict(self) -> dict:
        return {"backend": self.backend, "confirmed": self.confirmed, "worst_rel": self.worst,
                "worst_name": self.worst_name, "reason": self.reason,
                "reroutes": [r.to_dict() for r in self.reroutes]}


def _worst_agreement(ours: dict, theirs: dict, names, dtype,
                     tolerances: dict | None = None) -> tuple[bool, float, str]:
    """(all within tolerance, worst max_rel, its name) of ``names``, reference vs backend; the
    parity tolerance of each name unless ``tolerances`` gives it."""
    worst, worst_name, ok = -1.0, "", True
    for name in names:
        tolerance = None if tolerances is None else tolerances[name]
        c = compare(name, ours[name], theirs[name], dtype, tolerance=tolerance)
        rel = np.inf if c.max_rel is None or np.isnan(c.max_rel) else c.max_rel
        ok = ok and c.ok
        if rel > worst:
            worst, worst_name = rel, name
    return ok, float(worst), worst_name


def _candidate_assignments(reference_acts: dict, reroutes: list[Reroute], bands: dict,
                           spec: ModelSpec) -> list[list[Reroute]]:
    """Ways to re-route the windows: the backend's own first maximum (as inferred from its
    activations), then the reference window's runner-up inside the tie band, per window."""
    runner_up = []
    for r in reroutes:
        pool, name = next((p, n) for p, n in _pools(spec) if p.name == r.pool)
        windows, pad = pool_windows(reference_acts[name], pool)
        w = windows[r.window]
        k_first = int(np.argmax(w))
        order = [int(k) for k in np.argsort(-w, kind="stable") if int(k) != k_first]
        order = [k for k in order if w[k_first] - w[k] <= bands[name]]
        cell = _cell(order[0], r.window, pool, pad) if order else r.to_cell
        value = float(w[order[0]]) if order else r.to_value
        runner_up.append(Reroute(r.pool, r.window, r.from_cell, cell, r.from_value, value))
    candidates = [list(reroutes)]
    if runner_up != list(reroutes):
        candidates.append(runner_up)
    return candidates


def confirm_routing(backend: str, backend_results: dict, reference: dict, params: dict,
                    X: np.ndarray, Y: np.ndarray, dtype, spec: ModelSpec = COURSE_MODEL,
                    agreement: Agreement | None = None) -> Confirmation:
    """(b) and (c) for one backend against the NumPy reference (see the module docstring).

    Parameters
    ----------
    backend_results, reference : forward_backward outputs (activations NHWC, gradients) of the
        backend and of the NumPy reference, same params (``dtype``), X, Y.
    agreement : what the re-routed reference gradients must reproduce; default the backend's
        gradients at their parity tolerance (an Adam step check passes one that applies the
        step and compares the parameters and moments, :func:`classify_step_ties`).
    """
    if backend == REFERENCE and agreement is None:
        return Confirmation(backend, True, [], 0.0, None, "the reference itself")
    if agreement is None:
        agreement = lambda grads: _worst_agreement(grads, backend_results, GRADIENT_NAMES, dtype)
    if backend == REFERENCE:  # e.g. the NumPy Trainer's step: its own code, checked too
        ok, worst, worst_name = agreement(rerouted_backward(params, X, Y, reference, (), spec))
        reason = "" if ok else (f"the NumPy reference (not re-routed) differs from {backend}'s "
                                f"own result: {worst_name} {format_number(worst, 2)}")
        return Confirmation(backend, ok, [], worst, worst_name, reason)
    reroutes, bands = [], {}
    for pool, name in _pools(spec):
        bands[name] = tie_band(reference[name], backend_results[name], name, dtype)
        near, outside = routing_differences(reference[name], backend_results[name], pool,
                                            bands[name])
        if outside:
            window, cell_ref, cell_backend = outside[0]
            return Confirmation(backend, False, near, reason=(
                f"{pool.name} window {window} routes to {cell_ref} (numpy) vs {cell_backend} "
                f"({backend}), cells further apart than the tie band {format_number(bands[name])}"))
        reroutes += near
    best = None
    for assignment in _candidate_assignments(reference, reroutes, bands, spec):
        grads = rerouted_backward(params, X, Y, reference, assignment, spec)
        ok, worst, worst_name = agreement(grads)
        if best is None or ok or worst < best.worst:
            best = Confirmation(backend, ok, assignment, worst, worst_name)
        if ok:
            return best
    best.reason = (f"the reference re-routed {backend}'s way still differs from {backend}: "
                   f"{best.worst_name} {format_number(best.worst, 2)}")
    return best


def _pair_failures(report, pair) -> list:
    return [c for c in report.comparisons[pair].values() if not c.ok]


def _explain(pair, failing_names, near, confirmations, n_windows, recomputed: str) -> str:
    a, b = pair
    lines = [f"{'-'.join(pair)}: {', '.join(failing_names)} differ only by max-pool routing in "
             f"{n_windows} near-tie window(s) (cells within the forward tolerance):"]
    lines += [f"  {r.describe(a, b)}" for r in near[:_MAX_NOTED_WINDOWS]]
    if n_windows > _MAX_NOTED_WINDOWS:
        lines.append(f"  ... and {n_windows - _MAX_NOTED_WINDOWS} more")
    for side in pair:
        conf = confirmations[side]
        if side == REFERENCE and conf.worst_name is not None:
            lines.append(f"  the NumPy reference {recomputed} (not re-routed) agrees with {side}'s "
                         f"own to {format_number(conf.worst, 1)} (worst: {conf.worst_name})")
        if side == REFERENCE:
            continue
        lines.append(f"  the NumPy reference {recomputed} re-routed {side}'s way "
                     f"({len(conf.reroutes)} window(s)) agrees with {side} to "
                     f"{format_number(conf.worst, 1)} (worst: {conf.worst_name})")
    return "\n".join(lines)


def _prove_pairs(report, forward_failures: Callable, results_by_backend: dict, params: dict,
                 X: np.ndarray, Y: np.ndarray, spec: ModelSpec, agreement_for: Callable,
                 recomputed: str) -> dict:
    """(a), (b), (c) for every failing pair of ``report``; ties go to ``report.ties``.

    ``forward_failures(pair, failing)``: the names that break (a) for the pair (``failing``: its
    failing comparisons in ``report``). ``agreement_for(side)``: the :data:`Agreement` of (c) for
    one backend, or None for the gradient comparison. ``recomputed``: what the explanation says
    the reference re-ran ("backward", "Adam step"). Returns {pair: reason} of pairs that stay
    FAIL (the contract of :func:`classify_ties`).
    """
    dtype = np.dtype(report.dtype)
    not_ties: dict = {}
    failing_pairs = [pair for pair in report.pairs if _pair_failures(report, pair)]
    if not failing_pairs:
        return not_ties
    if dtype != np.float32:
        return {pair: "near-ties are only accepted in float32" for pair in failing_pairs}
    if REFERENCE in results_by_backend:
        reference = results_by_backend[REFERENCE]
    else:
        reference = model.forward_backward(params, X, Y, spec)
    confirmations: dict[str, Confirmation] = {}

    def confirmation(side):
        if side not in confirmations:
            confirmations[side] = confirm_routing(side, results_by_backend[side], reference,
                                                  params, X, Y, dtype, spec, agreement_for(side))
        return confirmations[side]

    for pair in failing_pairs:
        failing = _pair_failures(report, pair)
        forward = forward_failures(pair, failing)
        if forward:  # (a)
            not_ties[pair] = f"forward quantities fail: {', '.join(forward)}"
            continue
        a, b = pair
        near, outside = [], []
        for pool, name in _pools(spec):  # (b): the pair routes differently, only in near-ties
            band = tie_band(results_by_backend[a][name], results_by_backend[b][name], name, dtype)
            n, o = routing_differences(results_by_backend[a][name], results_by_backend[b][name],
                                       pool, band)
            near += n
            outside += o
        if not near or outside:
            not_ties[pair] = ("no window routes differently" if not near
                              else "a window routes differently outside the tie band")
            continue
        sides = {side: confirmation(side) for side in pair}  # (c)
        unconfirmed = [c for c in sides.values() if not c.confirmed]
        if unconfirmed:
            not_ties[pair] = "; ".join(c.reason for c in unconfirmed)
            continue
        names = tuple(c.name for c in failing)
        report.ties[pair] = {
            "names": list(names),
            "explanation": _explain(pair, names, near, sides, len(near), recomputed),
            "windows": [r.to_dict() for r in near],
            "confirmations": {side: c.to_dict() for side, c in sides.items()},
        }
    return not_ties


def classify_ties(report, results_by_backend: dict, params: dict, X: np.ndarray, Y: np.ndarray,
                  spec: ModelSpec = COURSE_MODEL) -> dict:
    """Attach a tie to every failing pair of ``report`` that meets (a), (b) and (c).

    Parameters
    ----------
    report : signs.compare.Report of forward_backward outputs (float32).
    results_by_backend : {backend: forward_backward output} that the report compares.
    params : canonical params in the report's dtype; X (m, n_H, n_W, n_C) NHWC, Y (m, n_classes).

    Returns
    -------
    {pair: reason} for failing pairs that stay FAIL (empty reason: not a gradient-only failure).
    Ties are stored in ``report.ties[pair]`` (see signs.compare.Report).
    """
    def forward_failures(pair, failing):
        forward = [c.name for c in failing if c.name in FORWARD_NAMES]
        if not forward and any(c.name not in GRADIENT_NAMES for c in failing):
            forward = ["non-gradient"]
        return forward

    return _prove_pairs(report, forward_failures, results_by_backend, params, X, Y, spec,
                        lambda side: None, "backward")


def _copies(arrays: dict) -> dict:
    return {name: np.array(value, copy=True) for name, value in arrays.items()}


def _reference_step(params: dict, state: dict, grads: dict, train: TrainSpec) -> dict:
    """The reference Adam update (reference.adam.Adam) of ``params`` from ``state`` by ``grads``.

    Returns the parameters after the step and the moments, flat: ``W1 ... b3``, ``m.W1 ...``,
    ``v.W1 ...`` (canonical layouts, the params' dtype), as signs.verify.adam_steps flattens.
    """
    optimizer = Adam.from_spec(train)
    optimizer.load_state_dict({"t": state["t"], "m": _copies(state["m"]), "v": _copies(state["v"])})
    stepped = _copies({name: params[name] for name in PARAM_NAMES})
    optimizer.step(stepped, grads)
    flat = dict(stepped)
    for moment, arrays in (("m", optimizer.m), ("v", optimizer.v)):
        flat.update({f"{moment}.{name}": arrays[name] for name in PARAM_NAMES})
    return flat


def classify_step_ties(step_report, trained_by_backend: dict, results_by_backend: dict,
                       params: dict, state: dict, X: np.ndarray, Y: np.ndarray, *,
                       tieable: Sequence[str], spec: ModelSpec = COURSE_MODEL,
                       train: TrainSpec = COURSE_TRAINING) -> dict:
    """The same proof for one single Adam step: a tie when the pair agrees on the step's forward
    pass, routes differently only in near-ties, and the NumPy reference step re-routed each
    side's way (:func:`rerouted_backward`, then the reference Adam update from the same state)
    reproduces that side's parameters and moments within the step report's tolerances.

    Parameters
    ----------
    step_report : signs.compare.Report of ``trained_by_backend`` (float32), the backends' states
        after the step keyed by ``signs.verify.adam_steps.TRAINING_NAMES``.
    results_by_backend : {backend: forward_backward output} at ``params`` on (X, Y): the
        activations each backend routes by.
    params : canonical params before the step; state: ``{"t", "m", "v"}`` before it (canonical,
        params' dtype). X (m, n_H, n_W, n_C) NHWC, Y (m, n_classes).
    tieable : the report's names a routing choice may change (parameters, m, v); any other
        failing name (the cost, t) or a failing forward quantity of the pair breaks (a).

    Returns
    -------
    {pair: reason} of failing pairs that stay FAIL; ties go to ``step_report.ties[pair]``.
    """
    dtype = np.dtype(step_report.dtype)
    forward_report = compare_results(results_by_backend, FORWARD_NAMES, dtype)
    pair_of = {side: next(pair for pair in step_report.pairs if side in pair)
               for side in trained_by_backend}

    def forward_failures(pair, failing):
        forward = [c.name for c in _pair_failures(forward_report, pair)]
        return forward + [c.name for c in failing if c.name not in tieable]

    def agreement_for(side):
        tolerances = {name: step_report.comparisons[pair_of[side]][name].tolerance
                      for name in tieable}
        return lambda grads: _worst_agreement(_reference_step(params, state, grads, train),
                                              trained_by_backend[side], tieable, dtype, tolerances)

    return _prove_pairs(step_report, forward_failures, results_by_backend, params, X, Y, spec,
                        agreement_for, "Adam step")
