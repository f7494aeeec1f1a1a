"""Every numeric tolerance of the project, declared once, per dtype.

The error measure everywhere is the *relative error to the tensor's scale*:

    rel = max|a - b| / max(max|a|, max|b|, tiny)

which is what a user cares about when moving a model: how large the worst disagreement is compared
with the values the tensor actually holds. Never loosen a number here to make a test pass: find the
bug. Observed worst cases are recorded beside each tolerance (how they were measured is in
parity_tests/README.md).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "TINY",
    "FLOAT64_PARITY",
    "FLOAT32_PARITY",
    "FLOAT64_ADAM_STEPS",
    "FLOAT32_ADAM_STEPS",
    "LOOP_VS_FAST_FLOAT64",
    "LOOP_VS_FAST_FLOAT32",
    "GRADIENT_CHECK",
    "RUNTIME_PARITY",
    "TF32_PARITY",
    "parity_tolerance",
    "runtime_tolerance",
    "onnx_tolerance",
    "adam_tolerance",
    "relative_error",
]

TINY = 1e-30

# Cross-framework parity, float64: every activation, the loss and every gradient.
FLOAT64_PARITY = 1e-10

# Cross-framework parity, float32: one tolerance per quantity (no looser than 1e-4 by policy).
FLOAT32_PARITY: dict[str, float] = {
    "Z1": 1e-5,
    "A1": 1e-5,
    "P1": 1e-5,
    "Z2": 1e-5,
    "A2": 1e-5,
    "P2": 1e-5,
    "F": 1e-5,
    "Z3": 1e-5,
    "cost": 1e-5,
    "dW1": 1e-4,
    "dW2": 1e-5,
    "dW3": 1e-5,
    "db3": 1e-5,
    "dX": 1e-4,
}

# The runtimes checked against the three frameworks (signs verify --backends onnx,keras-torch,
# keras-jax) are held to the same per-quantity tolerances: each runs the same float32 / float64
# arithmetic (ONNX Runtime's MLAS convolutions, Keras' ops on torch and JAX), so nothing justifies
# a looser number, and the observed worst cases (parity_tests/README.md) sit as far below them as
# the native pairs do. Which quantities and dtypes each one computes:
RUNTIME_PARITY: dict[str, dict] = {
    # forward activations only (an inference runtime: no cost, no gradients), float32 only
    # (onnxruntime's CPU provider has no float64 Conv kernel).
    "onnx": {"names": ("Z1", "A1", "P1", "Z2", "A2", "P2", "F", "Z3"), "dtypes": ("float32",)},
    # everything; in float64 the keras-torch dense layer multiplies in float32 (keras-team/keras
    # #23704): that shows as the verdict known* (signs/upstream.py), never as a looser tolerance.
    "keras-torch": {"names": tuple(FLOAT32_PARITY), "dtypes": ("float32", "float64")},
    "keras-jax": {"names": tuple(FLOAT32_PARITY), "dtypes": ("float32", "float64")},
}

# Weights and Adam state after K optimizer steps from the same start on the same batches.
FLOAT64_ADAM_STEPS = 1e-9
FLOAT32_ADAM_STEPS = 1e-4

# NumPy loop (course) implementation against the vectorised one, same dtype.
LOOP_VS_FAST_FLOAT64 = 1e-12
LOOP_VS_FAST_FLOAT32 = 1e-5

# A float32 run on CUDA with TF32 enabled against the float64 reference, every quantity: TF32
# rounds conv/matmul operands to a 10-bit mantissa (unit roundoff 2^-11 = 4.9e-4), so errors of a
# few 1e-4 to 1e-3 are its signature. Used only to attribute a divergence to TF32 (signs.port.traps),
# never to pass a comparison. Not measured on hardware in this project (no CUDA machine).
TF32_PARITY = 1e-2

# Centred finite differences in float64 against the analytic backward.
GRADIENT_CHECK = 1e-7


def parity_tolerance(name: str, dtype) -> float:
    """Relative tolerance for quantity ``name`` (e.g. "Z1", "cost", "dW1") at ``dtype``."""
    dtype = np.dtype(dtype)
    if dtype == np.float64:
        return FLOAT64_PARITY
    if dtype == np.float32:
        if name not in FLOAT32_PARITY:
            raise ValueError(f"name: expected one of {sorted(FLOAT32_PARITY)}, got {name!r}")
        return FLOAT32_PARITY[name]
    raise ValueError(f"dtype: expected float32 or float64, got {dtype}")


def runtime_tolerance(runtime: str, name: str, dtype) -> float:
    """Relative tolerance of quantity ``name`` between runtime ``runtime`` (a key of
    :data:`RUNTIME_PARITY`) and any other backend; ValueError where it computes no such quantity."""
    if runtime not in RUNTIME_PARITY:
        raise ValueError(f"runtime: expected one of {sorted(RUNTIME_PARITY)}, got {runtime!r}")
    checked = RUNTIME_PARITY[runtime]
    if np.dtype(dtype).name not in checked["dtypes"]:
        raise ValueError(f"dtype: {runtime} is checked in {', '.join(checked['dtypes'])} only, got {np.dtype(dtype)}")
    if name not in checked["names"]:
        raise ValueError(f"name: {runtime} computes {', '.join(checked['names'])} only, got {name!r}")
    return parity_tolerance(name, dtype)


def onnx_tolerance(name: str, dtype) -> float:
    """:func:`runtime_tolerance` of the onnx runtime (forward quantities, float32)."""
    return runtime_tolerance("onnx", name, dtype)


def adam_tolerance(dtype) -> float:
    """Relative tolerance for weights and Adam moments after several optimizer steps."""
    dtype = np.dtype(dtype)
    if dtype == np.float64:
        return FLOAT64_ADAM_STEPS
    if dtype == np.float32:
        return FLOAT32_ADAM_STEPS
    raise ValueError(f"dtype: expected float32 or float64, got {dtype}")


def relative_error(a, b) -> float:
    """max|a - b| / max(max|a|, max|b|, TINY), computed in float64."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes: expected equal shapes, got {a.shape} and {b.shape}")
    if a.size == 0:
        return 0.0
    scale = max(float(np.max(np.abs(a))), float(np.max(np.abs(b))), TINY)
    return float(np.max(np.abs(a - b))) / scale
