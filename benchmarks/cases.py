"""What is timed: per-layer forward/backward callables, training-step and epoch runners per backend.

Every callable is built from canonical NumPy arrays (activations NHWC, kernels HWIO) and converted
to each framework's tensors *before* timing, so only the operation itself is timed.

Layer inputs are the real activations of one batch (``reference.model.model_forward`` on the
course's initial weights): ReLU zeros and pooling ties are as in training. Upstream gradients are
seeded standard-normal arrays of the output's shape.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from reference import fast_layers
from reference import layers as loop_layers
from reference import model as np_model
from reference.data.batches import epoch_mini_batches
from reference.spec import COURSE_MODEL, COURSE_TRAINING, ModelSpec, TrainSpec

__all__ = [
    "LayerCase",
    "layer_cases",
    "loop_layer_fns",
    "numpy_layer_fns",
    "torch_layer_fns",
    "tf_layer_fns",
    "make_stepper",
    "KerasFit",
    "TF1Course",
    "run_epoch",
]


@dataclass
class LayerCase:
    """One layer of the course model with its batch of inputs (canonical layouts).

    Attributes
    ----------
    name : "conv1", "pool1", "conv2", "pool2" or "dense"
    kind : "conv", "pool" or "dense"
    x : layer input, NHWC (m, n_H, n_W, n_C) (dense: F (m, n_flat))
    g : upstream gradient, the shape of the layer's output
    w : HWIO kernel (conv), (n_flat, n_classes) (dense) or None
    b : dense bias (n_classes,) or None
    hp : the course API's hparameters: conv {"stride", "pad"}, pool {"stride", "f", "pad"}
    """

    name: str
    kind: str
    x: np.ndarray
    g: np.ndarray
    w: np.ndarray | None = None
    b: np.ndarray | None = None
    hp: dict | None = None


def layer_cases(params: dict, X: np.ndarray, spec: ModelSpec = COURSE_MODEL, seed: int = 0) -> list[LayerCase]:
    """The five layers of the model on batch ``X`` (m, 64, 64, 3) NHWC, in forward order."""
    acts = np_model.model_forward(params, X, spec)
    rng = np.random.default_rng(seed)

    def upstream(shape):
        return rng.standard_normal(shape).astype(X.dtype)

    conv_hp = lambda c: {"stride": c.stride, "pad": c.padding}
    pool_hp = lambda p: {"stride": p.stride, "f": p.window, "pad": p.padding}
    return [
        LayerCase(spec.conv1.name, "conv", X, upstream(acts["Z1"].shape), params["W1"], hp=conv_hp(spec.conv1)),
        LayerCase(spec.pool1.name, "pool", acts["A1"], upstream(acts["P1"].shape), hp=pool_hp(spec.pool1)),
        LayerCase(spec.conv2.name, "conv", acts["P1"], upstream(acts["Z2"].shape), params["W2"], hp=conv_hp(spec.conv2)),
        LayerCase(spec.pool2.name, "pool", acts["A2"], upstream(acts["P2"].shape), hp=pool_hp(spec.pool2)),
        LayerCase(spec.dense_name, "dense", acts["F"], upstream(acts["Z3"].shape), params["W3"], params["b3"]),
    ]


Fns = tuple[Callable[[], object], Callable[[], object]]


# --------------------------------------------------------------------------------------------
# NumPy: the course's loops and the fast layers
# --------------------------------------------------------------------------------------------


def loop_layer_fns(case: LayerCase, images: int) -> Fns | None:
    """The course's loop ``conv_forward``/``conv_backward`` (or pool) on the first ``images``
    examples; None for the dense layer (the course has no loop version of it)."""
    if case.kind == "dense":
        return None
    x, g = case.x[:images], case.g[:images]
    if case.kind == "conv":
        _, cache = loop_layers.conv_forward(x, case.w, None, case.hp)
        return (lambda: loop_layers.conv_forward(x, case.w, None, case.hp),
                lambda: loop_layers.conv_backward(g, cache))
    _, cache = loop_layers.pool_forward(x, case.hp, "max")
    return (lambda: loop_layers.pool_forward(x, case.hp, "max"),
            lambda: loop_layers.pool_backward(g, cache, "max"))


def numpy_layer_fns(case: LayerCase) -> Fns:
    """``reference.fast_layers`` (course API) and ``reference.model``'s dense layer."""
    if case.kind == "conv":
        cache = (case.x, case.w, None, case.hp)
        return (lambda: fast_layers.conv_forward_fast(case.x, case.w, None, case.hp),
                lambda: fast_layers.conv_backward_fast(case.g, cache))
    if case.kind == "pool":
        cache = (case.x, case.hp)
        return (lambda: fast_layers.pool_forward_fast(case.x, case.hp, "max"),
                lambda: fast_layers.pool_backward_fast(case.g, cache, "max"))
    return (lambda: np_model.dense_forward(case.x, case.w, case.b),
            lambda: np_model.dense_backward(case.g, case.x, case.w))


# --------------------------------------------------------------------------------------------
# PyTorch: the ops the model runs (torch_model.ops), backward through autograd
# --------------------------------------------------------------------------------------------


def torch_layer_fns(case: LayerCase) -> Fns:
    """Forward under ``no_grad``; backward = ``autograd.grad`` of the retained graph for the
    input and the weights (dense: also the bias).

    Activations are the model's: an NHWC tensor viewed as NCHW (``nhwc_to_nchw``, i.e. PyTorch's
    channels_last memory format), kernels OIHW contiguous as ``torch_model.convert`` loads them.
    """
    import torch
    import torch.nn.functional as F

    from torch_model import ops

    x = torch.from_numpy(np.ascontiguousarray(case.x))
    g = torch.from_numpy(np.ascontiguousarray(case.g))
    if case.kind in ("conv", "pool"):
        x, g = ops.nhwc_to_nchw(x), ops.nhwc_to_nchw(g)
    if case.kind == "conv":
        w = ops.hwio_to_oihw(torch.from_numpy(case.w)).contiguous()
        stride, padding = case.hp["stride"], case.hp["pad"]
        layer = lambda x_, w_: ops.conv2d(x_, w_, stride, padding)
        leaves = [x.detach().requires_grad_(True), w.detach().requires_grad_(True)]
        forward_args = (x, w)
    elif case.kind == "pool":
        f, stride, padding = case.hp["f"], case.hp["stride"], case.hp["pad"]
        layer = lambda x_: ops.max_pool2d(x_, f, stride, padding)
        leaves = [x.detach().requires_grad_(True)]
        forward_args = (x,)
    else:
        w = ops.dense_kernel_to_torch(torch.from_numpy(case.w)).contiguous()
        b = torch.from_numpy(case.b)
        layer = lambda x_, w_, b_: F.linear(x_, w_, b_)
        leaves = [x.detach().requires_grad_(True), w.detach().requires_grad_(True), b.detach().requires_grad_(True)]
        forward_args = (x, w, b)
    out = layer(*leaves)

    def forward():
        with torch.no_grad():
            return layer(*forward_args)

    def backward():
        return torch.autograd.grad(out, leaves, grad_outputs=g, retain_graph=True)

    return forward, backward


# --------------------------------------------------------------------------------------------
# TensorFlow: tf.function of the ops Keras' layers call, backward = the registered gradient ops
# --------------------------------------------------------------------------------------------


def tf_layer_fns(case: LayerCase) -> Fns:
    """``tf.function`` forward (``tf.nn.conv2d``, ``tf.nn.max_pool2d``, matmul + bias) and backward
    (the ops TF's gradient registry emits: ``Conv2DBackpropInput`` + ``Conv2DBackpropFilter``,
    ``MaxPoolGrad``, two matmuls + a reduce_sum), all NHWC as Keras runs them."""
    import tensorflow as tf

    x = tf.constant(case.x)
    g = tf.constant(case.g)
    if case.kind == "conv":
        w = tf.constant(case.w)
        s = case.hp["stride"]
        strides, padding = [1, s, s, 1], case.hp["pad"].upper()
        forward = tf.function(lambda: tf.nn.conv2d(x, w, strides=strides, padding=padding))
        backward = tf.function(lambda: (
            tf.raw_ops.Conv2DBackpropInput(input_sizes=tf.shape(x), filter=w, out_backprop=g,
                                           strides=strides, padding=padding),
            tf.raw_ops.Conv2DBackpropFilter(input=x, filter_sizes=tf.shape(w), out_backprop=g,
                                            strides=strides, padding=padding),
        ))
    elif case.kind == "pool":
        f, s = case.hp["f"], case.hp["stride"]
        ksize, strides, padding = [1, f, f, 1], [1, s, s, 1], case.hp["pad"].upper()
        y = tf.nn.max_pool2d(x, ksize, strides, padding)
        forward = tf.function(lambda: tf.nn.max_pool2d(x, ksize, strides, padding))
        backward = tf.function(lambda: tf.raw_ops.MaxPoolGrad(
            orig_input=x, orig_output=y, grad=g, ksize=ksize, strides=strides, padding=padding))
    else:
        w, b = tf.constant(case.w), tf.constant(case.b)
        forward = tf.function(lambda: tf.nn.bias_add(tf.matmul(x, w), b))
        backward = tf.function(lambda: (
            tf.matmul(g, w, transpose_b=True), tf.matmul(x, g, transpose_a=True), tf.reduce_sum(g, axis=0)))
    return forward, backward


# --------------------------------------------------------------------------------------------
# Training steps and epochs
# --------------------------------------------------------------------------------------------

class TF1Course:
    """The course's TF1 graph in a compat.v1 session; ``step`` is the notebook's loop body
    ``sess.run([optimizer, cost], feed_dict={X: minibatch_X, Y: minibatch_Y})``."""

    def __init__(self, params: dict, spec: ModelSpec = COURSE_MODEL, train: TrainSpec = COURSE_TRAINING):
        import tensorflow as tf

        from tf_model.tf1_course import build_course_graph

        self.course = build_course_graph(spec, tf.float32, params, train)
        self._fetches = [self.course.train_op, self.course.cost]

    def step(self, X: np.ndarray, Y: np.ndarray) -> float:
        _, cost = self.course.session.run(self._fetches, feed_dict={self.course.X: X, self.course.Y: Y})
        return float(cost)

    def close(self) -> None:
        self.course.close()


class KerasFit:
    """``model.fit`` of the Keras model (its ``training_model``, as the custom loop trains), batch
    64, no shuffle, verbose 0, compiled with ``steps_per_execution`` = the epoch's batch count (one
    compiled call per epoch).

    ``epoch()`` runs ``fit(..., epochs=2)`` and returns the second epoch's wall time, taken by a
    callback: what each of ``fit(epochs=100)``'s epochs costs, without the once-per-``fit`` work
    (its data adapter copies the whole dataset into a ``tf.data`` pipeline: 50-150 ms here).
    ``step_time()`` is that epoch over its batch count.
    """

    def __init__(self, params: dict, X_all: np.ndarray, Y_all: np.ndarray, spec: ModelSpec = COURSE_MODEL,
                 train: TrainSpec = COURSE_TRAINING):
        import keras

        from tf_model.convert import set_keras_weights
        from tf_model.model import build_model, compile_model, training_model

        course_order = build_model(spec, "float32", seed=0)
        set_keras_weights(course_order, params, spec)
        # What the custom loop trains too: the same layers and weights, each ReLU after its pool.
        self.model = training_model(course_order, spec)
        self.X, self.Y, self.batch = X_all, Y_all, train.mini_batch_size
        self.n_batches = -(-X_all.shape[0] // self.batch)
        compile_model(self.model, train, steps_per_execution=self.n_batches)
        starts: list[float] = []
        self._epoch_times: list[float] = []

        class EpochClock(keras.callbacks.Callback):
            def on_epoch_begin(clock, epoch, logs=None):
                starts.append(time.perf_counter())

            def on_epoch_end(clock, epoch, logs=None):
                self._epoch_times.append(time.perf_counter() - starts[-1])

        self._clock = EpochClock()

    def step_time(self) -> float:
        return self.epoch() / self.n_batches

    def fit_once(self) -> None:
        """One ``fit(epochs=1)`` call, set-up included (the memory section's epoch)."""
        self.model.fit(self.X, self.Y, batch_size=self.batch, epochs=1, shuffle=False, verbose=0)

    def epoch(self) -> float:
        self._epoch_times.clear()
        self.model.fit(self.X, self.Y, batch_size=self.batch, epochs=2, shuffle=False, verbose=0,
                       callbacks=[self._clock])
        return self._epoch_times[-1]


def make_stepper(key: str, params: dict, spec: ModelSpec = COURSE_MODEL):
    """An object with ``step(X, Y) -> float`` for backend ``key`` (not "keras_fit")."""
    if key == "tf1":
        return TF1Course(params, spec)
    from signs.backends import get_backend

    return get_backend(key).Trainer(params, spec=spec)


def run_epoch(stepper, X_all: np.ndarray, Y_all: np.ndarray, epoch: int = 0,
              train: TrainSpec = COURSE_TRAINING) -> float:
    """The course's epoch: ``random_mini_batches`` with the epoch's seed, then ``step`` on every
    batch (the last one smaller), as ``signs train`` runs it; returns the wall time in seconds,
    batching included."""
    start = time.perf_counter()
    batches = epoch_mini_batches(X_all, Y_all, epoch, mini_batch_size=train.mini_batch_size,
                                 first_seed=train.first_seed)
    for batch_X, batch_Y in batches:
        stepper.step(batch_X, batch_Y)
    return time.perf_counter() - start
