"""Forward/backward checks: every backend's ``forward_backward`` on the same arrays, and the
max-pool routing note that explains a gradient-only difference."""

from __future__ import annotations

import time

import numpy as np

from reference.spec import ACTIVATION_NAMES, COURSE_MODEL, ModelSpec
from signs.compare import BACKWARD_ORDER, format_number
from signs.ties import routing_differences, tie_band

__all__ = ["FORWARD_BACKWARD_NAMES", "backend_device", "forward_backward_all", "near_tie_notes"]

# Table rows: the forward pass in order, the cost, then gradients in the order backprop makes them.
FORWARD_BACKWARD_NAMES: tuple[str, ...] = tuple(ACTIVATION_NAMES) + ("cost",) + BACKWARD_ORDER


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


def near_tie_notes(results_by_backend: dict, spec: ModelSpec = COURSE_MODEL) -> list[str]:
    """Explain gradient differences caused by max-pool windows that route differently.

    Every framework sends a window's gradient to the first maximum of *its own* activations. When
    the two largest values of a window differ by less than the dtype's rounding noise (a near-tie,
    common in flat regions of real photos in float32), frameworks that agree on every activation
    to 1e-7 can still pick different cells, moving one gradient element: dX and dW1 then differ
    by much more than the forward pass. Windows are found and measured by
    :func:`signs.ties.routing_differences`: a window is called a near-tie only when its two cells
    lie within the tie band (:func:`signs.ties.tie_band`); the others are said to be outside it.
    Returns one line per backend pair and pool with such windows (empty when every window routes
    alike).
    """
    notes = []
    names = list(results_by_backend)
    for pool, activation in ((spec.pool1, "A1"), (spec.pool2, "A2")):
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                A_a, A_b = results_by_backend[a][activation], results_by_backend[b][activation]
                band = tie_band(A_a, A_b, activation, A_a.dtype)
                near, outside = routing_differences(A_a, A_b, pool, band)
                if not near and not outside:
                    continue
                first = min([r.window for r in near] + [window for window, *_ in outside])
                why = ("near-ties in the pooled values (cells within the tie band "
                       f"{format_number(band)}), so the gradients below it differ" if not outside else
                       f"{len(outside)} of them with cells further apart than the tie band "
                       f"{format_number(band)}: not near-ties")
                notes.append(
                    f"{pool.name} routes the gradient to a different cell in "
                    f"{len(near) + len(outside)} window(s) ({a} vs {b}, first at {first}): {why}"
                )
    return notes
