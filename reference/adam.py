"""Adam with TensorFlow 1's ``ApplyAdam`` kernel arithmetic, in NumPy.

The course trains with ``tf.train.AdamOptimizer(learning_rate=0.009)``, whose kernel computes, in
the variable's dtype ``T`` and in this order::

    lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t)
    m   += (g - m) * (1 - beta1)
    v   += (g * g - v) * (1 - beta2)
    w   -= (m * lr_t) / (sqrt(v) + epsilon)

(``training_ops.cc``, ``ApplyAdamNonCuda``). Mathematically this is the textbook
``m = beta1 m + (1 - beta1) g`` etc.; written this way it rounds like TensorFlow, so the
frameworks agree to a few ulps in float64. Every scalar (``1 - beta1``, ``beta1^t``, ``lr_t``) is
computed in the parameters' dtype, as the kernel does with ``T(1) - beta1()``; ``beta^t`` is
``np.power`` in that dtype.
"""

from __future__ import annotations

import numpy as np

from reference.spec import COURSE_TRAINING, TrainSpec
from reference.validate import check_positive_finite

__all__ = ["Adam"]


class Adam:
    """TF1-exact Adam over a dict of NumPy arrays.

    Parameters
    ----------
    learning_rate, beta1, beta2, epsilon : float
        Default from ``COURSE_TRAINING`` (0.009, 0.9, 0.999, 1e-8).

    Attributes
    ----------
    t : int
        Steps taken so far (``beta^t`` uses ``t`` after the increment, i.e. 1 on the first step).
    m, v : dict[str, ndarray]
        First and second moments, keyed by parameter name, same shape and dtype as the parameter;
        empty until the first :meth:`step` (they start at zero).
    """

    def __init__(
        self,
        learning_rate: float = COURSE_TRAINING.learning_rate,
        beta1: float = COURSE_TRAINING.beta1,
        beta2: float = COURSE_TRAINING.beta2,
        epsilon: float = COURSE_TRAINING.epsilon,
    ):
        self.learning_rate = check_positive_finite(learning_rate, "learning_rate")
        self.beta1 = check_positive_finite(beta1, "beta1", below_one=True)
        self.beta2 = check_positive_finite(beta2, "beta2", below_one=True)
        self.epsilon = check_positive_finite(epsilon, "epsilon")
        self.t = 0
        self.m: dict[str, np.ndarray] = {}
        self.v: dict[str, np.ndarray] = {}

    @classmethod
    def from_spec(cls, train: TrainSpec = COURSE_TRAINING) -> "Adam":
        """Adam with the hyperparameters of a :class:`reference.spec.TrainSpec`."""
        return cls(train.learning_rate, train.beta1, train.beta2, train.epsilon)

    @staticmethod
    def _grad_for(name: str, grads: dict) -> np.ndarray:
        # Accept both the parameter's name ("W1") and the gradient's ("dW1", GRADIENT_NAMES).
        for key in (name, "d" + name):
            if key in grads:
                return grads[key]
        raise ValueError(f"grads: expected a gradient for {name!r} (key {name!r} or {'d' + name!r}), got keys {sorted(grads)}")

    def step(self, params: dict, grads: dict) -> None:
        """One Adam update of every array in ``params``, in place.

        Parameters
        ----------
        params : dict[str, ndarray], float32 or float64; updated in place
        grads : dict, the gradient of each parameter under its name or ``"d" + name``, same
            shape; cast to the parameter's dtype
        """
        staged = {}
        for name, w in params.items():
            g = np.asarray(self._grad_for(name, grads))
            if g.shape != w.shape:
                raise ValueError(f"grads[{name!r}]: expected shape {w.shape} (the parameter's), got {g.shape}")
            if w.dtype not in (np.float32, np.float64):
                raise ValueError(f"params[{name!r}]: expected dtype float32 or float64, got {w.dtype}")
            if name in self.m and (self.m[name].shape != w.shape or self.m[name].dtype != w.dtype):
                raise ValueError(
                    f"params[{name!r}]: expected shape {self.m[name].shape} and dtype {self.m[name].dtype} "
                    f"(the optimizer state's), got {w.shape} {w.dtype}"
                )
            staged[name] = g.astype(w.dtype, copy=False)
        self.t += 1
        for name, w in params.items():
            if name not in self.m:
                self.m[name] = np.zeros_like(w)
                self.v[name] = np.zeros_like(w)
            self._apply(w, self.m[name], self.v[name], staged[name])

    def _apply(self, w: np.ndarray, m: np.ndarray, v: np.ndarray, g: np.ndarray) -> None:
        """The ApplyAdam kernel for one variable, every scalar in ``w``'s dtype."""
        T = w.dtype.type
        one = T(1)
        beta1, beta2 = T(self.beta1), T(self.beta2)
        beta1_power = np.power(beta1, T(self.t))
        beta2_power = np.power(beta2, T(self.t))
        lr_t = T(self.learning_rate) * np.sqrt(one - beta2_power) / (one - beta1_power)
        tmp = np.subtract(g, m)
        tmp *= one - beta1
        m += tmp  # m += (g - m) * (1 - beta1)
        np.multiply(g, g, out=tmp)
        tmp -= v
        tmp *= one - beta2
        v += tmp  # v += (g^2 - v) * (1 - beta2)
        np.sqrt(v, out=tmp)
        tmp += T(self.epsilon)
        step = m * lr_t
        step /= tmp
        w -= step  # w -= (m * lr_t) / (sqrt(v) + epsilon)

    def state_dict(self) -> dict:
        """``{"t": int, "m": {name: arr}, "v": {name: arr}}`` (copies) plus the hyperparameters."""
        return {
            "t": int(self.t),
            "m": {name: arr.copy() for name, arr in self.m.items()},
            "v": {name: arr.copy() for name, arr in self.v.items()},
            "learning_rate": self.learning_rate,
            "beta1": self.beta1,
            "beta2": self.beta2,
            "epsilon": self.epsilon,
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore ``t``, ``m`` and ``v`` exactly (and the hyperparameters when present)."""
        if not isinstance(state, dict) or not {"t", "m", "v"} <= set(state):
            got = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"state: expected a dict with keys 't', 'm', 'v', got {got}")
        t = state["t"]
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or t < 0:
            raise ValueError(f"state['t']: expected an integer >= 0, got {t!r}")
        m, v = state["m"], state["v"]
        if not isinstance(m, dict) or not isinstance(v, dict) or set(m) != set(v):
            raise ValueError(f"state: expected 'm' and 'v' dicts with the same keys, got {sorted(m)} and {sorted(v)}")
        for name in m:
            mm, vv = np.asarray(m[name]), np.asarray(v[name])
            if mm.shape != vv.shape or mm.dtype != vv.dtype or mm.dtype not in (np.float32, np.float64):
                raise ValueError(
                    f"state['m'][{name!r}], state['v'][{name!r}]: expected float arrays of one shape and dtype, "
                    f"got {mm.shape} {mm.dtype} and {vv.shape} {vv.dtype}"
                )
        for key in ("learning_rate", "beta1", "beta2", "epsilon"):
            if key in state:
                setattr(self, key, check_positive_finite(state[key], key, below_one=key.startswith("beta")))
        self.t = int(t)
        self.m = {name: np.array(arr, copy=True) for name, arr in m.items()}
        self.v = {name: np.array(arr, copy=True) for name, arr in v.items()}
