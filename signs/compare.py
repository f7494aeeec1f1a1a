"""Compare the outputs of two or more backends, quantity by quantity, and report where they part.

Pure NumPy: nothing here imports a framework. The building block is :func:`compare`, which checks
two arrays in the order that makes a failure easiest to read (shape, then dtype, then values) and
returns a :class:`Comparison` record. :func:`compare_results` runs it over every pair of backends
and every named quantity and returns a :class:`Report`; :func:`first_divergence` names the first
quantity that fails, in the order the network computes them.

Error measure (``signs.tolerances.relative_error``): the largest absolute difference divided by the
largest magnitude either tensor holds. Because the denominator is one number per tensor, the element
with the largest absolute difference is also the element with the largest relative difference; its
index is reported as the "worst element".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations
from typing import Mapping, Sequence

import numpy as np

from reference.spec import ACTIVATION_NAMES, COURSE_MODEL, ModelSpec
from signs.tolerances import parity_tolerance, relative_error

__all__ = [
    "FORWARD_ORDER",
    "BACKWARD_ORDER",
    "DIVERGENCE_ORDER",
    "Comparison",
    "Divergence",
    "Report",
    "compare",
    "assert_close",
    "compare_results",
    "first_divergence",
    "layer_of",
    "format_number",
]

# The order the forward pass computes its quantities: each depends only on those before it.
FORWARD_ORDER: tuple[str, ...] = tuple(ACTIVATION_NAMES) + ("cost",)

# The order backpropagation produces the gradients. It starts from dZ3 = (softmax(Z3) - Y) / m:
#   db3 = sum_rows(dZ3)                 needs dZ3 only            -> first
#   dW3 = F^T dZ3                       needs dZ3 and F           -> second
#   dF = dZ3 W3^T -> dP2 -> dA2 (pool2 routing) -> dZ2 (relu2 mask)
#   dW2 = conv2 weight gradient of dZ2  needs dZ2 and P1          -> third
#   dP1 = conv2 input gradient of dZ2 -> dA1 (pool1 routing) -> dZ1 (relu1 mask)
#   dW1 = conv1 weight gradient of dZ1  needs dZ1 and X           -> fourth
#   dX  = conv1 input gradient of dZ1   needs dZ1 and W1          -> last
# A disagreement in a quantity propagates to everything after it, so the first failing quantity in
# this order is the one closest to the cause. Forward quantities come first: a wrong activation
# makes every gradient wrong too.
BACKWARD_ORDER: tuple[str, ...] = ("db3", "dW3", "dW2", "dW1", "dX")
DIVERGENCE_ORDER: tuple[str, ...] = FORWARD_ORDER + BACKWARD_ORDER


def layer_of(name: str, spec: ModelSpec = COURSE_MODEL) -> str:
    """The layer that computes quantity ``name`` (e.g. "P1" -> "pool1", "dW2" -> "conv2 backward").

    Optimizer names ("costs", "W1", "m.W1", "v.b3", "t") are described; unknown names are
    returned unchanged.
    """
    forward = {
        "Z1": spec.conv1.name,
        "A1": "relu1",
        "P1": spec.pool1.name,
        "Z2": spec.conv2.name,
        "A2": "relu2",
        "P2": spec.pool2.name,
        "F": spec.flatten_name,
        "Z3": spec.dense_name,
        "cost": "softmax cross-entropy",
        "db3": f"{spec.dense_name} backward",
        "dW3": f"{spec.dense_name} backward",
        "dW2": f"{spec.conv2.name} backward",
        "dW1": f"{spec.conv1.name} backward",
        "dX": f"{spec.conv1.name} backward (input gradient)",
    }
    if name in forward:
        return forward[name]
    # Optimizer comparisons (signs.verify.adam_steps.compare_training): costs, weights, Adam moments, t.
    if name == "costs":
        return "cost of each step"
    if name == "t":
        return "Adam step count"
    moment, _, param = name.rpartition(".")
    owner = {"W1": spec.conv1.name, "W2": spec.conv2.name, "W3": spec.dense_name,
             "b3": spec.dense_name}.get(param)
    if owner is None:
        return name
    what = "bias" if param.startswith("b") else "kernel"
    return f"Adam {moment} of {owner} {what}" if moment else f"{owner} {what} after the steps"


def format_number(value: float | None, digits: int = 1) -> str:
    """Scientific notation with ``digits`` decimals ("3.1e-07"); "0" for zero, "-" for None."""
    if value is None:
        return "-"
    if value == 0:
        return "0"
    if not np.isfinite(value):
        return str(value)
    return f"{value:.{digits}e}"


def _format_value(value: float | None) -> str:
    """An element's value with enough digits to see a float32 difference."""
    if value is None:
        return "-"
    return f"{value:.9g}"


def _format_shape(shape: tuple[int, ...]) -> str:
    """Compact shape: (2,64,64,8); (6,) for a vector; () for a scalar."""
    if len(shape) == 1:
        return f"({shape[0]},)"
    return "(" + ",".join(str(n) for n in shape) + ")"


@dataclass(frozen=True)
class Comparison:
    """The result of comparing one quantity between two backends ("ours" and "theirs").

    ``failure`` is None when the quantity agrees within ``tolerance``; otherwise one of
    "shape", "dtype", "non-finite" or "values". ``worst_index`` is the index (in the arrays' own
    layout, e.g. NHWC) of the element with the largest absolute difference, ``ours_value`` and
    ``theirs_value`` the two values there. Shape and dtype failures leave the numbers as None.
    """

    name: str
    ours: str
    theirs: str
    dtype: str
    tolerance: float
    ours_shape: tuple[int, ...]
    theirs_shape: tuple[int, ...]
    ours_dtype: str
    theirs_dtype: str
    max_abs: float | None = None
    max_rel: float | None = None
    worst_index: tuple[int, ...] | None = None
    ours_value: float | None = None
    theirs_value: float | None = None
    failure: str | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None

    def message(self) -> str:
        """One line: what was compared, the verdict and, for values, ours next to theirs."""
        head = f"{self.name} ({self.dtype}, {self.ours} vs {self.theirs})"
        if self.failure == "shape":
            return (
                f"{head}: shape mismatch: {self.ours} {_format_shape(self.ours_shape)}, "
                f"{self.theirs} {_format_shape(self.theirs_shape)}"
            )
        if self.failure == "dtype":
            return (
                f"{head}: dtype mismatch: expected {self.dtype}, got {self.ours} {self.ours_dtype}, "
                f"{self.theirs} {self.theirs_dtype}"
            )
        verdict = "ok" if self.ok else ("NON-FINITE" if self.failure == "non-finite" else "FAIL")
        relation = "<=" if self.ok else ">"
        return (
            f"{head}: {verdict}: max rel {format_number(self.max_rel, 2)} {relation} tol "
            f"{format_number(self.tolerance)} (max abs {format_number(self.max_abs, 2)}) "
            f"at index {self.worst_index}: {self.ours}={_format_value(self.ours_value)} "
            f"{self.theirs}={_format_value(self.theirs_value)}"
        )

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "layer": layer_of(self.name),
            "ours": self.ours,
            "theirs": self.theirs,
            "dtype": self.dtype,
            "shape": list(self.ours_shape),
            "theirs_shape": list(self.theirs_shape),
            "ours_dtype": self.ours_dtype,
            "theirs_dtype": self.theirs_dtype,
            "max_abs": _json_float(self.max_abs),
            "max_rel": _json_float(self.max_rel),
            "worst_index": None if self.worst_index is None else list(self.worst_index),
            "ours_value": _json_float(self.ours_value),
            "theirs_value": _json_float(self.theirs_value),
            "tolerance": self.tolerance,
            "ok": self.ok,
            "failure": self.failure,
        }


def _json_float(value: float | None) -> float | str | None:
    """JSON has no NaN or infinity: spell them as strings."""
    if value is None or np.isfinite(value):
        return value
    return str(value)


def compare(
    name: str,
    ours,
    theirs,
    dtype=None,
    *,
    tolerance: float | None = None,
    labels: tuple[str, str] = ("ours", "theirs"),
) -> Comparison:
    """Compare two arrays: shape, then dtype, then values.

    Parameters
    ----------
    name : str
        The quantity, e.g. "Z1", "cost", "dW2"; it selects the tolerance
        (``signs.tolerances.parity_tolerance(name, dtype)``) unless ``tolerance`` is given.
    ours, theirs : array_like
        Same shape (any layout, compared element by element), both of dtype ``dtype``.
    dtype : numpy dtype or None
        The dtype both arrays must have (float32 or float64). None: they must share one dtype and
        that dtype selects the tolerance.
    tolerance : float, optional
        Relative tolerance to use instead of the per-quantity parity tolerance.
    labels : (str, str)
        Names of the two sides in messages, e.g. ("numpy", "torch").
    """
    ours = np.asarray(ours)
    theirs = np.asarray(theirs)
    expected = np.dtype(dtype) if dtype is not None else ours.dtype
    if tolerance is None:
        tolerance = parity_tolerance(name, expected)
    record = dict(
        name=name,
        ours=labels[0],
        theirs=labels[1],
        dtype=str(expected),
        tolerance=float(tolerance),
        ours_shape=tuple(ours.shape),
        theirs_shape=tuple(theirs.shape),
        ours_dtype=str(ours.dtype),
        theirs_dtype=str(theirs.dtype),
    )
    if ours.shape != theirs.shape:
        return Comparison(**record, failure="shape")
    if ours.dtype != expected or theirs.dtype != expected:
        return Comparison(**record, failure="dtype")
    return Comparison(**record, **_value_difference(ours, theirs, tolerance))


def _value_difference(ours: np.ndarray, theirs: np.ndarray, tolerance: float) -> dict:
    """max abs and rel difference, the worst element and the verdict, in float64."""
    a = ours.astype(np.float64)
    b = theirs.astype(np.float64)
    if a.size == 0:
        return dict(max_abs=0.0, max_rel=0.0, worst_index=None)
    finite = np.isfinite(a) & np.isfinite(b)
    if not finite.all():
        # A NaN or infinity is a failure whatever the other side holds; point at the first one.
        flat = int(np.flatnonzero(~finite)[0])
        index = tuple(int(i) for i in np.unravel_index(flat, a.shape))
        return dict(
            max_abs=float("nan"),
            max_rel=float("nan"),
            worst_index=index,
            ours_value=float(a[index]),
            theirs_value=float(b[index]),
            failure="non-finite",
        )
    difference = np.abs(a - b)
    index = tuple(int(i) for i in np.unravel_index(int(np.argmax(difference)), a.shape))
    max_rel = relative_error(a, b)
    return dict(
        max_abs=float(difference[index]),
        max_rel=max_rel,
        worst_index=index,
        ours_value=float(a[index]),
        theirs_value=float(b[index]),
        failure=None if max_rel <= tolerance else "values",
    )


def assert_close(name: str, ours, theirs, dtype=None, *, tolerance: float | None = None,
                 labels: tuple[str, str] = ("ours", "theirs")) -> Comparison:
    """:func:`compare`, raising AssertionError with the comparison's message when it fails."""
    result = compare(name, ours, theirs, dtype, tolerance=tolerance, labels=labels)
    if not result.ok:
        raise AssertionError(result.message())
    return result


@dataclass(frozen=True)
class Divergence:
    """The first quantity (in :data:`DIVERGENCE_ORDER`) on which some pair of backends fails.

    ``suspect`` names the backend that is in every failing pair while the pairs without it agree
    (only decidable with three or more backends); None otherwise.
    """

    name: str
    layer: str
    failures: tuple[Comparison, ...]
    suspect: str | None

    def message(self) -> str:
        who = ""
        if self.suspect is not None:
            others = sorted({c.ours for c in self.failures} | {c.theirs for c in self.failures})
            others = [b for b in others if b != self.suspect]
            who = f": {self.suspect} disagrees with {' and '.join(others)}"
        lines = [f"first divergence: {self.name} ({self.layer}){who}"]
        lines += [f"  {c.message()}" for c in self.failures]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "layer": self.layer,
            "suspect": self.suspect,
            "failures": [c.to_dict() for c in self.failures],
        }


@dataclass
class Report:
    """Every quantity compared between every pair of backends at one dtype.

    ``comparisons[(a, b)][name]`` is the :class:`Comparison` of quantity ``name`` with backend
    ``a`` as "ours" and ``b`` as "theirs"; pairs follow the order of ``backends``.
    """

    dtype: str
    backends: tuple[str, ...]
    names: tuple[str, ...]
    comparisons: dict[tuple[str, str], dict[str, Comparison]] = field(default_factory=dict)
    title: str = ""
    # Diagnoses attached by the caller (e.g. signs.verify.forward.near_tie_notes, the max-pool
    # near-tie check); they explain a failure, they never change the verdict.
    notes: list[str] = field(default_factory=list)
    # Proven max-pool near-ties (signs.ties.classify_ties): {pair: {"names": [gradient names],
    # "explanation": str, ...JSON-able details}}. A failing comparison of a listed name in that
    # pair has the verdict "tie" instead of "FAIL": it does not count against ``ok`` (it does
    # against ``strict_ok``).
    ties: dict[tuple[str, str], dict] = field(default_factory=dict)

    @property
    def pairs(self) -> list[tuple[str, str]]:
        return list(self.comparisons)

    def verdict_of(self, pair: tuple[str, str], name: str) -> str:
        """"ok", "tie" (fails, explained by a proven near-tie) or "FAIL"."""
        if self.comparisons[pair][name].ok:
            return "ok"
        if name in self.ties.get(pair, {}).get("names", ()):
            return "tie"
        return "FAIL"

    @property
    def ok(self) -> bool:
        """No comparison FAILs (proven near-ties allowed)."""
        return not self.failures()

    @property
    def strict_ok(self) -> bool:
        """Every comparison within tolerance (near-ties count as failures)."""
        return all(c.ok for row in self.comparisons.values() for c in row.values())

    def tied(self) -> list[Comparison]:
        """Comparisons with the verdict "tie", in divergence order, then pair order."""
        return [
            self.comparisons[pair][name]
            for name in _ordered(self.names)
            for pair in self.pairs
            if self.verdict_of(pair, name) == "tie"
        ]

    def failures(self) -> list[Comparison]:
        """Failing comparisons (not ties), in divergence order, then pair order."""
        return [
            self.comparisons[pair][name]
            for name in _ordered(self.names)
            for pair in self.pairs
            if self.verdict_of(pair, name) == "FAIL"
        ]

    def worst(self, name: str) -> float:
        """The largest relative difference of ``name`` over all pairs (NaN if any is NaN)."""
        values = [self.comparisons[pair][name].max_rel for pair in self.pairs]
        values = [np.nan if v is None else v for v in values]
        return float(np.max(values)) if values else 0.0

    def format_table(self) -> str:
        """A table readable in 100 columns: one row per quantity, abs and rel per backend pair."""
        return format_table(self)

    def summary(self) -> str:
        """One line (all agree) or the first divergence and its failing comparisons."""
        divergence = first_divergence(self)
        label = f"{self.title}: " if self.title else f"{self.dtype}: "
        tie_lines = [f"tie* {tie['explanation']}" for tie in self.ties.values()]
        if divergence is None and not self.ties:
            pairs = len(self.pairs)
            return (f"{label}all {len(self.names)} quantities agree within tolerance "
                    f"({pairs} pair{'s' if pairs > 1 else ''})")
        if divergence is None:
            tied = sorted({c.name for c in self.tied()}, key=_ordered(self.names).index)
            lines = [f"{label}all quantities agree within tolerance except {', '.join(tied)} "
                     "(tie*: proven max-pool near-ties, see below; --strict fails them)"]
            return "\n".join(lines + tie_lines)
        n_failed = len({c.name for c in self.failures()})
        lines = [f"{label}{n_failed} of {len(self.names)} quantities FAIL", divergence.message()]
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines + tie_lines)

    def raise_for_failure(self) -> None:
        """AssertionError with the table and the first divergence when any comparison fails."""
        if not self.ok:
            raise AssertionError(f"{self.format_table()}\n{self.summary()}")

    def to_dict(self) -> dict:
        divergence = first_divergence(self)
        return {
            "title": self.title,
            "dtype": self.dtype,
            "backends": list(self.backends),
            "pairs": ["-".join(p) for p in self.pairs],
            "ok": self.ok,
            "strict_ok": self.strict_ok,
            "first_divergence": None if divergence is None else divergence.to_dict(),
            "notes": list(self.notes),
            "ties": [{"pair": "-".join(pair), **tie} for pair, tie in self.ties.items()],
            "rows": [
                {
                    "name": name,
                    "layer": layer_of(name),
                    "verdict": _row_verdict([self.verdict_of(pair, name) for pair in self.pairs]),
                    "pairs": {
                        "-".join(pair): {**self.comparisons[pair][name].to_dict(),
                                         "verdict": self.verdict_of(pair, name)}
                        for pair in self.pairs
                    },
                }
                for name in self.names
            ],
        }


def _row_verdict(verdicts: Sequence[str]) -> str:
    """A table row's verdict from its pairs': FAIL beats tie beats ok."""
    if "FAIL" in verdicts:
        return "FAIL"
    return "tie" if "tie" in verdicts else "ok"


def _ordered(names: Sequence[str]) -> list[str]:
    """``names`` in divergence order; names outside it keep their own order, after the known ones."""
    known = [n for n in DIVERGENCE_ORDER if n in names]
    return known + [n for n in names if n not in DIVERGENCE_ORDER]


def compare_results(
    results_by_backend: Mapping[str, Mapping[str, np.ndarray]],
    names: Sequence[str],
    dtype,
    *,
    tolerances: Mapping[str, float] | None = None,
    title: str = "",
) -> Report:
    """Compare every quantity in ``names`` between every pair of backends.

    Parameters
    ----------
    results_by_backend : {backend: {name: array}}
        E.g. the outputs of each backend's ``forward_backward`` (activations NHWC, gradients in
        canonical layouts). At least two backends; pairs are taken in this mapping's order
        (numpy, tf, torch gives numpy-tf, numpy-torch, tf-torch).
    names : sequence of str
        The quantities to compare, e.g. ACTIVATION_NAMES + ("cost",) + GRADIENT_NAMES. A name
        missing from a backend's results raises ValueError.
    dtype : numpy dtype
        Expected dtype of every array; selects the per-quantity tolerance.
    tolerances : {name: float}, optional
        Overrides of the parity tolerance per name (e.g. the Adam tolerance for optimizer state).
    """
    backends = tuple(results_by_backend)
    if len(backends) < 2:
        raise ValueError(f"results_by_backend: expected at least 2 backends, got {list(backends)}")
    for backend, results in results_by_backend.items():
        missing = [n for n in names if n not in results]
        if missing:
            raise ValueError(f"results_by_backend[{backend!r}]: expected keys {list(names)}, "
                             f"missing {missing}")
    tolerances = dict(tolerances or {})
    report = Report(dtype=str(np.dtype(dtype)), backends=backends, names=tuple(names), title=title)
    for a, b in combinations(backends, 2):
        report.comparisons[(a, b)] = {
            name: compare(
                name,
                results_by_backend[a][name],
                results_by_backend[b][name],
                dtype,
                tolerance=tolerances.get(name),
                labels=(a, b),
            )
            for name in names
        }
    return report


def first_divergence(report: Report) -> Divergence | None:
    """The first failing quantity in forward order (Z1 A1 P1 Z2 A2 P2 F Z3 cost), then backward
    order (db3 dW3 dW2 dW1 dX, see :data:`BACKWARD_ORDER`), then any other names; None if all hold.
    """
    for name in _ordered(report.names):
        failing = tuple(
            report.comparisons[pair][name]
            for pair in report.pairs
            if report.verdict_of(pair, name) == "FAIL"
        )
        if failing:
            return Divergence(name, layer_of(name), failing, _suspect(report, name, failing))
    return None


def _suspect(report: Report, name: str, failing: tuple[Comparison, ...]) -> str | None:
    """The one backend in every failing pair, if every pair without it agrees on ``name``."""
    if len(report.backends) < 3:
        return None
    failing_pairs = {(c.ours, c.theirs) for c in failing}
    candidates = [b for b in report.backends if all(b in pair for pair in failing_pairs)]
    for backend in candidates:
        involved = {pair for pair in report.pairs if backend in pair}
        if failing_pairs == involved:
            return backend
    return None


# ----------------------------------------------------------------------------------------------
# Table

_CELL = 7  # width of one number: "1.2e-07"


def format_table(report: Report) -> str:
    """Rows: quantity, shape, max abs and max rel per pair, tolerance, verdict.

    Three pairs fit in about 85 columns. A shape or dtype failure shows "shape!"/"dtype!" in the
    pair's cells; a NaN or infinity shows "nan".
    """
    pairs = report.pairs
    name_w = max([4] + [len(n) for n in report.names])
    shapes = {name: _format_shape(report.comparisons[pairs[0]][name].ours_shape)
              for name in report.names}
    shape_w = max([5] + [len(s) for s in shapes.values()])
    pair_w = 2 * _CELL + 2  # "abs rel" plus the failure marker after rel
    head1 = " " * (name_w + shape_w + 2) + " ".join(
        f"{'-'.join(p):^{pair_w}}" for p in pairs
    )
    head2 = (
        f"{'name':<{name_w}} {'shape':<{shape_w}} "
        + " ".join(f"{'abs':>{_CELL}} {'rel':>{_CELL}} " for _ in pairs)
        + f" {'tol':>{_CELL - 2}} verdict"
    )
    lines = []
    if report.title:
        lines.append(report.title)
    lines += [head1.rstrip(), head2]
    for name in report.names:
        row = [report.comparisons[pair][name] for pair in pairs]
        cells = " ".join(_cells(c) for c in row)
        # "tie*": fails only by a proven max-pool near-tie (explained below the table).
        verdict = _row_verdict([report.verdict_of(pair, name) for pair in pairs])
        verdict = "tie*" if verdict == "tie" else verdict
        tolerance = format_number(row[0].tolerance, 0)
        lines.append(
            f"{name:<{name_w}} {shapes[name]:<{shape_w}} {cells} {tolerance:>{_CELL - 2}} {verdict}"
        )
    return "\n".join(lines)


def _cells(c: Comparison) -> str:
    """abs and rel of one pair; a "*" after rel marks the pair that fails."""
    if c.failure in ("shape", "dtype"):
        word = f"{c.failure}!"
        return f"{word:>{_CELL}} {word:>{_CELL}}*"
    marker = " " if c.ok else "*"
    return f"{format_number(c.max_abs):>{_CELL}} {format_number(c.max_rel):>{_CELL}}{marker}"
