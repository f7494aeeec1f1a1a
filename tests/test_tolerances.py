"""Every tolerance of signs/tolerances.py is bounded here, so loosening one fails a test.

The ceilings are the project's policy, written here independently of the module: a change to a
tolerance must change this file too, in the same reviewed commit, with the measurement that
justifies it (parity_tests/README.md). The floors keep a typo (a tolerance of 0 or 1e-100) from
turning every comparison into a false alarm.
"""

from __future__ import annotations

import numpy as np
import pytest

from signs import tolerances
from signs.tolerances import adam_tolerance, parity_tolerance

# name -> (floor, ceiling), both inclusive.
BOUNDS = {
    "FLOAT64_PARITY": (1e-14, 1e-10),
    "FLOAT64_ADAM_STEPS": (1e-13, 1e-9),
    "FLOAT32_ADAM_STEPS": (1e-6, 1e-4),
    "LOOP_VS_FAST_FLOAT64": (1e-15, 1e-12),
    "LOOP_VS_FAST_FLOAT32": (1e-7, 1e-5),
    "GRADIENT_CHECK": (1e-10, 1e-7),
    # Not a pass bound: the most a TF32-computed result may differ for the tf32 trap to blame TF32
    # (signs/port/traps.py). Looser would let TF32 explain real bugs; tighter, miss TF32 itself.
    "TF32_PARITY": (1e-3, 1e-2),
}
FLOAT32_PARITY_BOUNDS = (1e-7, 1e-4)  # per quantity; the module's policy: none looser than 1e-4
FLOAT32_PARITY_NAMES = {"Z1", "A1", "P1", "Z2", "A2", "P2", "F", "Z3", "cost", "dW1", "dW2", "dW3", "db3", "dX"}


@pytest.mark.parametrize("name", sorted(BOUNDS))
def test_each_scalar_tolerance_is_bounded(name):
    floor, ceiling = BOUNDS[name]
    assert floor <= getattr(tolerances, name) <= ceiling


def test_every_declared_tolerance_is_bounded_here():
    declared = {n for n in tolerances.__all__ if n.isupper() and n not in ("TINY", "FLOAT32_PARITY", "RUNTIME_PARITY")}
    assert declared == set(BOUNDS)


def test_each_float32_parity_tolerance_is_bounded():
    assert set(tolerances.FLOAT32_PARITY) == FLOAT32_PARITY_NAMES
    floor, ceiling = FLOAT32_PARITY_BOUNDS
    for name in FLOAT32_PARITY_NAMES:
        assert floor <= parity_tolerance(name, np.float32) <= ceiling, name
        assert parity_tolerance(name, np.float64) == tolerances.FLOAT64_PARITY, name


def test_adam_tolerance_returns_the_bounded_constants():
    assert adam_tolerance(np.float64) == tolerances.FLOAT64_ADAM_STEPS
    assert adam_tolerance(np.float32) == tolerances.FLOAT32_ADAM_STEPS


def test_runtime_tolerances_are_the_parity_ones():
    """The onnx / Keras-backend rows declare which quantities they compute, never a number of
    their own: every one of their tolerances is the bounded parity tolerance."""
    from signs.tolerances import RUNTIME_PARITY, runtime_tolerance

    for runtime, checked in RUNTIME_PARITY.items():
        assert set(checked) == {"names", "dtypes"}, runtime
        for dtype in checked["dtypes"]:
            for name in checked["names"]:
                assert runtime_tolerance(runtime, name, dtype) == parity_tolerance(name, dtype), (runtime, name)
