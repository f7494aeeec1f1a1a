"""The one validation module: parameters, batches, optimizer state and learning rates. NumPy only.

Every backend (``reference``, ``tf_model``, ``torch_model``) calls these once where data enters it
(``forward_backward``, ``predict_logits``, ``Trainer``), so all three refuse the same inputs with the
same message. One message style: ``{argument}: expected {what}, got {what was given}``, one line,
naming the argument (``params['W3']``, ``X``, ``state['t']``, ``lr``); nothing is reshaped or cast.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from reference.spec import COURSE_MODEL, PARAM_NAMES, ModelSpec, param_shapes

__all__ = [
    "check_params",
    "check_batch",
    "check_positive_finite",
    "check_learning_rate",
    "check_optimizer_state",
]

STATE_KEYS: tuple[str, ...] = ("m", "t", "v")  # an optimizer state: Adam's step count and moments


def check_params(params, spec: ModelSpec | None = COURSE_MODEL, *, source: str = "params") -> np.dtype:
    """Check a canonical parameter dict; return its dtype. The project's one parameter validator.

    Exactly the names W1, W2, W3, b3; NumPy float32 or float64 arrays, all of one dtype; and, when
    ``spec`` is given, the shapes of ``param_shapes(spec)``. Raises ValueError naming the tensor
    (``params['W1']: expected shape (4, 4, 3, 8), got (4, 4, 24)``; ``source`` replaces "params",
    e.g. with a file name). Never reshapes.
    """
    if not isinstance(params, dict):
        raise ValueError(f"{source}: expected a dict with keys {list(PARAM_NAMES)}, got {type(params).__name__}")
    missing = [n for n in PARAM_NAMES if n not in params]
    unexpected = sorted(set(params) - set(PARAM_NAMES))
    if missing or unexpected:
        raise ValueError(
            f"{source}: expected keys {sorted(PARAM_NAMES)}, got {sorted(params)} "
            f"(missing {missing}, unexpected {unexpected})"
        )
    expected_shapes = param_shapes(spec) if spec is not None else {}
    dtypes = set()
    for name in PARAM_NAMES:
        value, where = params[name], f"{source}[{name!r}]"
        if not isinstance(value, np.ndarray):
            raise ValueError(f"{where}: expected a NumPy array, got {type(value).__name__}")
        if value.dtype not in (np.float32, np.float64):
            raise ValueError(f"{where}: expected dtype float32 or float64, got {value.dtype}")
        if name in expected_shapes and value.shape != expected_shapes[name]:
            raise ValueError(f"{where}: expected shape {expected_shapes[name]}, got {value.shape}")
        dtypes.add(value.dtype)
    if len(dtypes) != 1:
        got = {n: str(params[n].dtype) for n in PARAM_NAMES}
        raise ValueError(f"{source}: expected one dtype for every array, got {got}")
    return dtypes.pop()


def _dtype_name(value) -> str:
    """``float32`` for a NumPy array or a framework tensor (``torch.float32``); a byte-swapped
    NumPy dtype keeps its byte order (``>f4``) so that it never passes for a native one."""
    if isinstance(value, np.ndarray):
        return value.dtype.name if value.dtype.isnative else value.dtype.str
    return str(value.dtype).rpartition(".")[2]


def _check_array(name: str, value, shape: tuple, dtype, layout: str, array_types: tuple) -> None:
    """ValueError unless ``value`` is one of ``array_types`` of ``shape`` (None: any m >= 1), ``dtype``."""
    want = "(" + ", ".join("m" if s is None else str(s) for s in shape) + ")" + layout
    if not isinstance(value, array_types):
        raise ValueError(f"{name}: expected a NumPy array of shape {want}, got {type(value).__name__}")
    got = tuple(value.shape)
    if len(got) != len(shape) or any(s is not None and s != g for s, g in zip(shape, got)):
        raise ValueError(f"{name}: expected a NumPy array of shape {want}, got {got}")
    if got[0] == 0:
        raise ValueError(f"{name}: expected at least one example, got shape {got}")
    expected_dtype = np.dtype(dtype).name
    if _dtype_name(value) != expected_dtype:
        raise ValueError(f"{name}: expected dtype {expected_dtype} (the params' dtype), got {_dtype_name(value)}")


def check_batch(X, Y, dtype, spec: ModelSpec = COURSE_MODEL, *, array_types: tuple = (np.ndarray,)) -> None:
    """Check a batch: ``X`` (m, n_H, n_W, n_C) NHWC with m >= 1 and, unless None, ``Y`` (m, n_classes).

    Both must be ``dtype`` (the params' dtype) and instances of ``array_types`` (NumPy arrays; the
    torch backend also admits tensors).
    """
    _check_array("X", X, (None, *spec.input_shape), dtype, " NHWC", array_types)
    if Y is not None:
        _check_array("Y", Y, (X.shape[0], spec.n_classes), dtype, "", array_types)


def check_positive_finite(value, name: str, *, below_one: bool = False) -> float:
    """``value`` as a float if it is a finite number > 0 (and < 1 with ``below_one``), else ValueError."""
    try:
        if isinstance(value, (bool, str)):
            raise TypeError
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a finite number, got {value!r}") from None
    if not np.isfinite(value) or value <= 0 or (below_one and value >= 1):
        bound = "in (0, 1)" if below_one else "> 0"
        raise ValueError(f"{name}: expected a finite number {bound}, got {value!r}")
    return value


def check_learning_rate(value, name: str = "learning_rate") -> float:
    """A learning rate: a finite number > 0 (an infinite or NaN rate is refused, not trained on)."""
    return check_positive_finite(value, name)


def check_optimizer_state(state, dtype, spec: ModelSpec | None = COURSE_MODEL, *, source: str = "state") -> int:
    """Check ``{"t": steps, "m": params-like, "v": params-like}``; return ``t``.

    ``t`` a non-negative integer; ``m`` and ``v`` canonical dicts (:func:`check_params`) of the
    params' ``dtype``, canonical layouts (shapes of ``spec``; ``None``: any shapes).
    """
    if not isinstance(state, Mapping) or set(state) != set(STATE_KEYS):
        got = sorted(state) if isinstance(state, Mapping) else type(state).__name__
        raise ValueError(f"{source}: expected a dict with keys {list(STATE_KEYS)}, got {got}")
    t = state["t"]
    if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or t < 0:
        raise ValueError(f"{source}['t']: expected a non-negative integer, got {t!r}")
    for kind in ("m", "v"):
        got = check_params(state[kind], spec, source=f"{source}[{kind!r}]")
        if got != np.dtype(dtype):
            raise ValueError(f"{source}[{kind!r}]: expected dtype {np.dtype(dtype)} (the params'), got {got}")
    return int(t)
