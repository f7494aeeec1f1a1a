"""Initial weights: the course's exact TF1 starting point, and seeded Glorot-uniform.

``course_init`` reproduces, bit for bit and without TensorFlow, what the course's notebook built::

    tf.set_random_seed(1)
    W1 = tf.get_variable("W1", [4, 4, 3, 8], initializer=tf.contrib.layers.xavier_initializer(seed=0))
    W2 = tf.get_variable("W2", [2, 2, 8, 16], initializer=tf.contrib.layers.xavier_initializer(seed=0))
    ...
    Z3 = tf.contrib.layers.fully_connected(F, 6, activation_fn=None)

``xavier_initializer(seed)`` was contrib's ``variance_scaling_initializer(factor=1.0, mode="FAN_AVG",
uniform=True)``: ``limit = sqrt(3.0 * factor / n)`` with ``n = (fan_in + fan_out) / 2`` (fans include
the receptive field), then ``random_uniform(shape, -limit, limit, seed=seed)``. ``fully_connected``
used the same initializer with ``seed=None``; TF1 then took the op seed from the graph's op count,
which is 45 for the course graph (``COURSE_TRAINING.dense_init_op_seed``). Its bias starts at zero.
W1 and W2 share the op seed 0, so W1 and W2 draw the *same* uniform stream (W2's first 384 draws
equal W1's, scaled by another limit): a quirk of the course that we keep.
"""

from __future__ import annotations

import math

import numpy as np

from reference.spec import COURSE_MODEL, COURSE_TRAINING, ModelSpec, TrainSpec, glorot_limit, param_shapes
from reference.tf_philox import tf_random_uniform_float32

__all__ = ["course_init", "glorot_init", "contrib_xavier_limit", "check_dtype", "perturb_one_ulp", "ULP_PERTURBED"]

# The tensors perturb_one_ulp chooses from: the weights, not the zero bias (one ulp of 0 is a
# subnormal, not a rounding-sized change).
ULP_PERTURBED = ("W1", "W2", "W3")

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def check_dtype(dtype) -> np.dtype:
    """Return ``np.dtype(dtype)`` if it is float32 or float64, else raise ValueError."""
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise ValueError(f"dtype: expected float32 or float64, got {dtype!r}") from exc
    if dt not in _FLOAT_DTYPES:
        raise ValueError(f"dtype: expected float32 or float64, got {dt}")
    return dt


def contrib_xavier_limit(shape: tuple[int, ...], factor: float = 1.0) -> float:
    """The limit of ``tf.contrib.layers.xavier_initializer``: sqrt(3 * factor / ((fan_in + fan_out) / 2)).

    Written with contrib's exact float operations, since a one-ulp difference in the limit would
    change the float32 weights.
    """
    fan_in = float(shape[-2]) if len(shape) > 1 else float(shape[-1])
    fan_out = float(shape[-1])
    for dim in shape[:-2]:
        fan_in *= float(dim)
        fan_out *= float(dim)
    n = (fan_in + fan_out) / 2.0
    return math.sqrt(3.0 * factor / n)


def course_init(
    spec: ModelSpec = COURSE_MODEL, dtype=np.float32, train: TrainSpec = COURSE_TRAINING
) -> dict[str, np.ndarray]:
    """The course notebook's initial weights, bit for bit (see the module docstring).

    The course's weights are float32; ``dtype=np.float64`` returns the same values widened
    exactly, so float32 and float64 runs start from the same point.

    Returns
    -------
    dict: W1 (4, 4, 3, 8) HWIO, W2 (2, 2, 8, 16) HWIO, W3 (64, 6) NHWC-flatten rows, b3 (6,) zeros.
    """
    dtype = check_dtype(dtype)
    shapes = param_shapes(spec)
    op_seeds = {"W1": train.conv_init_op_seed, "W2": train.conv_init_op_seed, "W3": train.dense_init_op_seed}
    params = {}
    for name, op_seed in op_seeds.items():
        limit = contrib_xavier_limit(shapes[name])
        params[name] = tf_random_uniform_float32(shapes[name], -limit, limit, train.graph_seed, op_seed)
    params["b3"] = np.zeros(shapes["b3"], dtype=np.float32)
    return {name: value.astype(dtype) for name, value in params.items()}


def glorot_init(seed: int, spec: ModelSpec = COURSE_MODEL, dtype=np.float32) -> dict[str, np.ndarray]:
    """Glorot-uniform weights from a NumPy ``default_rng(seed)`` stream, zero dense bias.

    Each tensor is drawn in float64 from U(-limit, limit) with limit = sqrt(6 / (fan_in + fan_out))
    (fans include the receptive field, as Keras and TF do), in the order W1, W2, W3, then cast.
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed: expected a non-negative int, got {seed!r}")
    dtype = check_dtype(dtype)
    rng = np.random.default_rng(int(seed))
    shapes = param_shapes(spec)
    params = {}
    for name in ("W1", "W2", "W3"):
        limit = glorot_limit(shapes[name])
        params[name] = rng.uniform(-limit, limit, size=shapes[name]).astype(dtype)
    params["b3"] = np.zeros(shapes["b3"], dtype=dtype)
    return params


def perturb_one_ulp(params: dict[str, np.ndarray], seed: int) -> tuple[dict[str, np.ndarray], dict]:
    """A copy of ``params`` with one seeded element moved by one ulp, and where it was.

    The element is drawn uniformly from all elements of W1, W2 and W3 (``ULP_PERTURBED``, in that
    order, each flattened in C order of its canonical layout) by ``default_rng(seed)``; its value
    becomes ``np.nextafter(value, +inf)`` in its own dtype. A run from such weights shows how far
    a float32 trajectory depends on the last bit of its start (README, "Training results").

    Returns
    -------
    (params, info): info holds ``seed``, ``name``, ``index`` (a tuple into the canonical layout,
    e.g. W1's HWIO), ``before`` and ``after`` (the element's values, as Python floats).
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed: expected a non-negative int, got {seed!r}")
    missing = [name for name in ULP_PERTURBED if name not in params]
    if missing:
        raise ValueError(f"params: expected the weights {ULP_PERTURBED}, missing {missing}")
    sizes = [params[name].size for name in ULP_PERTURBED]
    flat = int(np.random.default_rng(int(seed)).integers(0, sum(sizes)))
    which = int(np.searchsorted(np.cumsum(sizes), flat, side="right"))
    name = ULP_PERTURBED[which]
    index = np.unravel_index(flat - sum(sizes[:which]), params[name].shape)
    out = {key: np.array(value, copy=True) for key, value in params.items()}
    before = out[name][index]
    out[name][index] = np.nextafter(before, np.inf, dtype=out[name].dtype)
    info = {"seed": int(seed), "name": name, "index": [int(i) for i in index],
            "before": float(before), "after": float(out[name][index])}
    return out, info
