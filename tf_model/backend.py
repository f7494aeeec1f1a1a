"""The TensorFlow 2 / Keras 3 backend (interface: signs/backends.py).

Every function takes and returns canonical NumPy arrays (activations NHWC, kernels HWIO, W3
(n_flat, 6) in NHWC-flatten row order); Keras uses the same layouts, so nothing is transposed.
The cost is the course's ``tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=Y,
logits=Z3))``, valid for one-hot and soft labels.
"""

from __future__ import annotations

import time

import keras
import numpy as np
import tensorflow as tf

from reference.spec import COURSE_MODEL, COURSE_TRAINING, PARAM_NAMES, ModelSpec, TrainSpec
from reference.validate import check_batch, check_learning_rate, check_optimizer_state, check_params
from tf_model.convert import get_keras_weights, keras_variable, set_keras_weights
from tf_model.model import as_numpy_activations, build_model, cached_model, make_adam, training_model

__all__ = ["NAME", "tf_device", "course_cost", "forward_backward", "predict_logits", "Trainer"]

NAME = "tf"


def tf_device(device: str) -> str:
    """"cpu" -> "/CPU:0"; "cuda" or "gpu" -> "/GPU:0" when TensorFlow sees a GPU; else ValueError."""
    name = str(device).lower()
    if name == "cpu":
        return "/CPU:0"
    if name in ("cuda", "gpu"):
        if not tf.config.list_physical_devices("GPU"):
            raise ValueError(f"device: {device!r} requested but TensorFlow sees no GPU on this machine")
        return "/GPU:0"
    raise ValueError(f"device: expected 'cpu', 'cuda' or 'gpu', got {device!r}")


def course_cost(Y, Z3):
    """The course's cost: mean over the batch of the softmax cross-entropy of logits Z3 (m, 6)."""
    return tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=Y, logits=Z3))


def forward_backward(params, X, Y, *, spec: ModelSpec = COURSE_MODEL, device: str = "cpu") -> dict[str, np.ndarray]:
    """One forward and backward pass (see signs/backends.py).

    Parameters
    ----------
    params : canonical dict, W1 (4, 4, 3, 8) HWIO, W2 (2, 2, 8, 16) HWIO, W3 (n_flat, 6), b3 (6,).
    X : (m, n_H, n_W, n_C) NHWC, the params' dtype.
    Y : (m, 6) one-hot or soft labels, the params' dtype.

    Returns
    -------
    dict of NumPy arrays: Z1 A1 P1 Z2 A2 P2 (NHWC), F (m, n_flat), Z3 (m, 6); "cost" (0-d); dW1 dW2
    (HWIO), dW3 (n_flat, 6), db3 (6,), dX (m, n_H, n_W, n_C) NHWC: gradients of the cost.
    """
    dtype = check_params(params, spec)
    check_batch(X, Y, dtype, spec)
    model, activations = cached_model(spec, dtype.name)
    set_keras_weights(model, params, spec)
    variables = [keras_variable(model, name, spec) for name in PARAM_NAMES]
    with tf.device(tf_device(device)):
        X_t = tf.constant(X)
        Y_t = tf.constant(Y)
        with tf.GradientTape() as tape:
            tape.watch(X_t)
            outputs = activations(X_t, training=False)
            cost = course_cost(Y_t, outputs["Z3"])
        grads = tape.gradient(cost, [v.value for v in variables] + [X_t])
    result = as_numpy_activations(outputs)
    result["cost"] = np.asarray(cost.numpy())
    for name, grad in zip(PARAM_NAMES + ("X",), grads):
        result[f"d{name}"] = grad.numpy()
    return result


def predict_logits(params, X, *, spec: ModelSpec = COURSE_MODEL, device: str = "cpu") -> np.ndarray:
    """Logits Z3 (m, 6) of X (m, n_H, n_W, n_C) NHWC, in the params' dtype."""
    dtype = check_params(params, spec)
    check_batch(X, None, dtype, spec)
    model, _ = cached_model(spec, dtype.name)
    set_keras_weights(model, params, spec)
    with tf.device(tf_device(device)):
        return model(tf.constant(X), training=False).numpy()


class Trainer:
    """Adam (TF1's update rule, Keras 3 ``Adam``) on a private Keras model, one compiled step per batch.

    ``step`` runs a ``tf.function`` whose input signature has a ``None`` batch dimension, so it is
    traced once per Trainer, whatever the size of the last mini-batch (``trace_count`` tells).
    An epoch is ``step`` per batch. A compiled loop over the whole epoch (one ``tf.function``
    ``while`` loop over the concatenated batches) was measured and removed: its fresh 53 MB input
    tensor per epoch made epochs swing between 154 and 621 ms on this project's VM, against a steady
    170-220 ms for the step loop (BENCHMARKS.md, README "Speed").
    ``jit_compile=True`` (XLA) was measured and is not used: 3.1x slower per step on this CPU
    (``scripts/time_compilers.py``).
    The step trains :func:`tf_model.model.training_model` (the same layers and weights, each ReLU
    after its max-pool: the same values and gradients, the ReLU on 64x fewer elements).

    Parameters
    ----------
    params : canonical initial weights (copied), all float32 or all float64.
    train : the recipe (learning rate, betas, epsilon).
    spec : the architecture.
    device : "cpu", or "cuda" / "gpu" for the first GPU.
    """

    def __init__(
        self,
        params,
        *,
        train: TrainSpec = COURSE_TRAINING,
        spec: ModelSpec = COURSE_MODEL,
        device: str = "cpu",
    ) -> None:
        self.dtype = check_params(params, spec)
        check_learning_rate(train.learning_rate, "train.learning_rate")
        self.spec = spec
        self.train = train
        self.device = tf_device(device)
        with tf.device(self.device):
            self.model = build_model(spec, self.dtype.name, seed=0)
            set_keras_weights(self.model, params, spec)
            self.training_model = training_model(self.model, spec)  # same weights, ReLU after each pool
            self._variables = [keras_variable(self.model, name, spec) for name in PARAM_NAMES]
            # A variable, not a constant, so set_learning_rate() needs no retrace of the step.
            self._learning_rate = tf.Variable(
                float(train.learning_rate), dtype=self.dtype.name, trainable=False, name="learning_rate"
            )
            self.optimizer = make_adam(train, self.dtype.name, learning_rate=self._learning_rate)
            self.optimizer.build(self._variables)
        self._momentums = self._slots("momentum")
        self._velocities = self._slots("velocity")
        shape = (None,) + tuple(spec.input_shape)
        signature = [
            tf.TensorSpec(shape, tf.as_dtype(self.dtype.name)),
            tf.TensorSpec((None, spec.n_classes), tf.as_dtype(self.dtype.name)),
        ]
        self._compiled_step = tf.function(self._train_step, input_signature=signature)
        self._step_graph = None  # its concrete function, traced at the first step

    def _slots(self, kind: str) -> dict[str, keras.Variable]:
        """Canonical name -> Adam slot variable ("momentum" = m, "velocity" = v).

        Keras 3 names a slot ``{variable.path with '/' -> '_'}_{kind}`` (BaseOptimizer.
        add_variable_from_reference), e.g. ``conv1_kernel_momentum``.
        """
        by_name = {v.name: v for v in self.optimizer.variables}
        slots = {}
        for name, variable in zip(PARAM_NAMES, self._variables):
            key = f"{variable.path.replace('/', '_')}_{kind}"
            if key not in by_name:
                raise RuntimeError(f"Keras Adam: expected a slot variable {key!r}, found {sorted(by_name)}")
            slots[name] = by_name[key]
        return slots

    def _train_step(self, X, Y):
        """Forward, cost, gradients, Adam update; returns the cost before the update."""
        with tf.GradientTape() as tape:
            logits = self.training_model(X, training=True)
            cost = course_cost(Y, logits)
        grads = tape.gradient(cost, [v.value for v in self._variables])
        self._apply_adam(grads)
        return cost

    def _apply_adam(self, grads) -> None:
        """One Adam update with TF1's own ``ApplyAdam`` kernel (what ``tf.compat.v1.train.
        AdamOptimizer`` runs) on the Keras optimizer's slots and step counter.

        The kernel's formula is Keras 3 Adam's (module docstring of ``tf_model.model``), with the
        same constants: the powers ``beta ** (iterations + 1)`` by ``pow`` as Keras forms them, so
        the result is Keras' ``optimizer.apply`` to the bit (tests/tf_model/test_tf_backend.py)
        in one kernel per variable instead of about twelve ops (measured: 3-6 % of a step).
        """
        dtype = self.dtype.name
        beta1, beta2, epsilon = (tf.constant(float(x), dtype) for x in (self.train.beta1, self.train.beta2, self.train.epsilon))
        local_step = tf.cast(self.optimizer.iterations + 1, dtype)  # Keras: iterations counts finished steps
        beta1_power, beta2_power = tf.pow(beta1, local_step), tf.pow(beta2, local_step)
        for name, variable, grad in zip(PARAM_NAMES, self._variables, grads):
            tf.raw_ops.ResourceApplyAdam(
                var=variable.value.handle, m=self._momentums[name].value.handle, v=self._velocities[name].value.handle,
                beta1_power=beta1_power, beta2_power=beta2_power, lr=self._learning_rate,
                beta1=beta1, beta2=beta2, epsilon=epsilon, grad=grad,
            )
        self.optimizer.iterations.assign_add(1)

    @property
    def trace_count(self) -> int:
        """How many times the compiled step was traced (1 after any number of steps)."""
        return self._compiled_step.experimental_get_tracing_count()

    def step(self, X: np.ndarray, Y: np.ndarray) -> float:
        """One Adam update on the batch X (b, n_H, n_W, n_C) NHWC, Y (b, 6); the cost before it."""
        check_batch(X, Y, self.dtype, self.spec)
        with tf.device(self.device):
            if self._step_graph is None:
                # Calling the concrete function skips tf.function's per-call argument matching:
                # 0.4 ms of an 8.8 ms step (measured, interleaved). check_batch guarantees the
                # signature's dtype and shapes.
                self._step_graph = self._compiled_step.get_concrete_function()
            cost = self._step_graph(tf.constant(X), tf.constant(Y))
        return float(cost.numpy())

    def set_learning_rate(self, lr: float) -> None:
        """Use ``lr`` (> 0) from the next step on (e.g. a per-epoch schedule); Adam state is kept."""
        self._learning_rate.assign(check_learning_rate(lr, "lr"))

    def time_steps(self, X: np.ndarray, Y: np.ndarray, n: int = 30, warmup: int = 3) -> list[float]:
        """Wall time (s) of ``n`` steps on one batch after ``warmup`` steps (updates the weights)."""
        for _ in range(warmup):
            self.step(X, Y)
        times = []
        for _ in range(n):
            start = time.perf_counter()
            self.step(X, Y)
            times.append(time.perf_counter() - start)
        return times

    def get_params(self) -> dict[str, np.ndarray]:
        """Current weights as canonical NumPy arrays (copies)."""
        return get_keras_weights(self.model, self.spec)

    def get_optimizer_state(self) -> dict:
        """``{"t": completed steps, "m": {W1..b3}, "v": {W1..b3}}``, canonical layouts, copies."""
        return {
            "t": int(self.optimizer.iterations.numpy()),
            "m": {name: np.array(v.numpy(), copy=True) for name, v in self._momentums.items()},
            "v": {name: np.array(v.numpy(), copy=True) for name, v in self._velocities.items()},
        }

    def set_optimizer_state(self, state: dict) -> None:
        """Restore ``get_optimizer_state()``'s dict exactly (same dtype and shapes required)."""
        t = check_optimizer_state(state, self.dtype, self.spec)
        self.optimizer.iterations.assign(t)
        for name in PARAM_NAMES:
            self._momentums[name].assign(state["m"][name])
            self._velocities[name].assign(state["v"][name])
