"""The NumPy backend: the interface of ``signs.backends`` over :mod:`reference.model`.

``forward_backward`` and ``predict_logits`` use the vectorised layers (the loop layers are the
course's teaching code, far too slow for whole batches); ``Trainer`` uses the fused training step
:func:`reference.model.train_gradients` and TF1-exact :class:`reference.adam.Adam`.
"""

from __future__ import annotations

import numpy as np

from reference import model
from reference.adam import Adam
from reference.spec import COURSE_MODEL, COURSE_TRAINING, PARAM_NAMES, ModelSpec, TrainSpec, param_shapes
from reference.validate import check_learning_rate, check_optimizer_state, check_params

__all__ = ["NAME", "forward_backward", "predict_logits", "Trainer"]

NAME = "numpy"


def _check_device(device) -> None:
    if device != "cpu":
        raise ValueError(f"device: expected 'cpu' (the NumPy backend runs on the CPU only), got {device!r}")


def forward_backward(params, X, Y, *, spec: ModelSpec = COURSE_MODEL, device: str = "cpu") -> dict:
    """One forward and backward pass of the course ConvNet (see ``signs.backends``).

    Parameters
    ----------
    params : canonical dict W1 (f1, f1, n_C0, n_C1) HWIO, W2 HWIO, W3 (n_flat, n_classes) NHWC-flatten
        rows, b3 (n_classes,); all float32 or all float64
    X : (m, n_H, n_W, n_C) NHWC, the params' dtype
    Y : (m, n_classes) one-hot or soft labels, the params' dtype

    Returns
    -------
    dict of NumPy arrays in the params' dtype: Z1 A1 P1 Z2 A2 P2 (NHWC), F (m, n_flat),
    Z3 (m, n_classes), "cost" (0-d), dW1 dW2 (HWIO), dW3, db3, dX (NHWC).
    """
    _check_device(device)
    return model.forward_backward(params, X, Y, spec)


def predict_logits(params, X, *, spec: ModelSpec = COURSE_MODEL, device: str = "cpu") -> np.ndarray:
    """Logits (m, n_classes) in the params' dtype."""
    _check_device(device)
    return model.predict_logits(params, X, spec)


class Trainer:
    """Adam (TF1's update rule) on a private copy of ``params``.

    Parameters
    ----------
    params : canonical dict, all float32 or all float64 (copied)
    train : TrainSpec, the Adam hyperparameters (default ``COURSE_TRAINING``)
    spec : ModelSpec
    device : "cpu" only
    """

    def __init__(self, params, *, train: TrainSpec = COURSE_TRAINING, spec: ModelSpec = COURSE_MODEL, device: str = "cpu"):
        _check_device(device)
        self.dtype = check_params(params, spec)
        check_learning_rate(train.learning_rate, "train.learning_rate")
        self.spec = spec
        self.train = train
        self._params = {name: np.array(params[name], copy=True) for name in PARAM_NAMES}
        self._optimizer = Adam.from_spec(train)
        self._optimizer.load_state_dict(self._zero_state())

    def _zero_state(self) -> dict:
        shapes = param_shapes(self.spec)
        zeros = lambda: {name: np.zeros(shapes[name], dtype=self.dtype) for name in PARAM_NAMES}
        return {"t": 0, "m": zeros(), "v": zeros()}

    def step(self, X, Y) -> float:
        """One Adam update on the batch X (m, n_H, n_W, n_C) NHWC, Y (m, n_classes); returns the
        batch cost computed before the update (as the course's ``sess.run([optimizer, cost])``)."""
        cost, grads = model.train_gradients(self._params, X, Y, self.spec)
        self._optimizer.step(self._params, grads)
        return float(cost)

    def set_learning_rate(self, lr: float) -> None:
        """Use ``lr`` (> 0) from the next step on (e.g. a per-epoch schedule); Adam state is kept."""
        self._optimizer.learning_rate = check_learning_rate(lr, "lr")

    def get_params(self) -> dict[str, np.ndarray]:
        """Copies of the current canonical parameters."""
        return {name: self._params[name].copy() for name in PARAM_NAMES}

    def get_optimizer_state(self) -> dict:
        """``{"t": int, "m": {name: arr}, "v": {name: arr}}`` (copies, canonical layouts)."""
        state = self._optimizer.state_dict()
        return {"t": state["t"], "m": state["m"], "v": state["v"]}

    def set_optimizer_state(self, state) -> None:
        """Restore a state from :meth:`get_optimizer_state` (or another backend's) exactly."""
        check_optimizer_state(state, self.dtype, self.spec)
        self._optimizer.load_state_dict({"t": state["t"], "m": state["m"], "v": state["v"]})
