"""The course ConvNet in NumPy: forward, cost and backward.

CONV (W1, stride 1, SAME, no bias) -> RELU -> MAXPOOL (8, stride 8, SAME)
-> CONV (W2, stride 1, SAME, no bias) -> RELU -> MAXPOOL (4, stride 4, SAME)
-> FLATTEN (NHWC order) -> DENSE (W3, b3; logits) -> softmax cross-entropy, mean over the batch.

Every size, stride and padding is read from a :class:`reference.spec.ModelSpec` (default
``COURSE_MODEL``); other input sizes come from ``spec.with_input(n_H, n_W)``.

Parameters are the canonical dict: ``W1`` (f1, f1, n_C0, n_C1) and ``W2`` (f2, f2, n_C1, n_C2) HWIO,
``W3`` (n_flat, n_classes) with rows in NHWC-flatten order of ``P2``, ``b3`` (n_classes,). All
arrays share one dtype (float32 or float64), which is the dtype of every result.

Max-pool backward sends each window's gradient to its first maximum (row-major), as TensorFlow
and PyTorch do; ReLU's gradient is 0 at 0 (``Z > 0``), as in both frameworks.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from reference import fast_layers, fused
from reference import layers as loop_layers
from reference.layers import ConvGeometry, PoolGeometry
from reference.padding import pad_spatial
from reference.spec import ACTIVATION_NAMES, COURSE_MODEL, GRADIENT_NAMES, ModelSpec, PoolSpec
from reference.validate import check_batch, check_params

__all__ = [
    "relu_forward",
    "relu_backward",
    "flatten_forward",
    "flatten_backward",
    "dense_forward",
    "dense_backward",
    "softmax",
    "softmax_cross_entropy",
    "softmax_cross_entropy_backward",
    "compute_cost",
    "model_forward",
    "model_backward",
    "forward_backward",
    "train_gradients",
    "conv1_pool1_geometry",
    "predict_logits",
    "IMPLEMENTATIONS",
]

IMPLEMENTATIONS = ("fast", "loop")

# model_backward's max-pool routing hook: route(pool, dP, dA) may move gradient within dA in place.
PoolRoute = Callable[[PoolSpec, np.ndarray, np.ndarray], None]


# --------------------------------------------------------------------------------------------
# Elementwise and dense layers
# --------------------------------------------------------------------------------------------


def relu_forward(Z: np.ndarray) -> np.ndarray:
    """``max(Z, 0)``, any shape, dtype of ``Z``."""
    return np.maximum(Z, np.zeros((), dtype=Z.dtype))


def relu_backward(dA: np.ndarray, Z: np.ndarray) -> np.ndarray:
    """``dA * (Z > 0)``: the gradient is 0 at ``Z == 0`` (TensorFlow's and PyTorch's rule)."""
    return np.where(Z > 0, dA, np.zeros((), dtype=dA.dtype))


def flatten_forward(P: np.ndarray) -> np.ndarray:
    """NHWC ``(m, n_H, n_W, n_C)`` -> ``(m, n_H * n_W * n_C)``: a plain reshape, so feature
    ``(h * n_W + w) * n_C + c`` is ``P[:, h, w, c]`` (Keras' Flatten of channels-last data)."""
    return P.reshape(P.shape[0], -1)


def flatten_backward(dF: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Inverse of :func:`flatten_forward`: ``(m, n_flat)`` -> ``shape`` (NHWC)."""
    return dF.reshape(shape)


def dense_forward(F: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``F @ W + b``: F (m, n_in), W (n_in, n_out), b (n_out,) -> (m, n_out)."""
    return F @ W + b


def dense_backward(dZ: np.ndarray, F: np.ndarray, W: np.ndarray):
    """Gradients of :func:`dense_forward`.

    Returns
    -------
    dF : (m, n_in), dW : (n_in, n_out), db : (n_out,)
    """
    return dZ @ W.T, F.T @ dZ, dZ.sum(axis=0)


def softmax(Z: np.ndarray) -> np.ndarray:
    """Row softmax of logits ``Z`` (m, n_classes), shifted by the row maximum (no overflow)."""
    shifted = Z - Z.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)


def softmax_cross_entropy(Z: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Per-example softmax cross-entropy, as ``tf.nn.softmax_cross_entropy_with_logits``.

    ``loss_i = sum_j Y_ij * (logsumexp(Z_i) - Z_ij)``, with the log-sum-exp computed on logits
    shifted by their row maximum, so large logits neither overflow nor lose the loss. ``Y`` may be
    soft (any non-negative rows; one-hot in the course).

    Parameters
    ----------
    Z : (m, n_classes) logits
    Y : (m, n_classes) labels

    Returns
    -------
    loss : (m,)
    """
    shifted = Z - Z.max(axis=1, keepdims=True)
    log_sum = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return (Y * (log_sum - shifted)).sum(axis=1)


def compute_cost(Z3: np.ndarray, Y: np.ndarray):
    """The course's cost: ``mean(softmax_cross_entropy(Z3, Y))``.

    Parameters
    ----------
    Z3 : (m, n_classes) logits
    Y : (m, n_classes) labels, one-hot or soft

    Returns
    -------
    cost : NumPy scalar in the dtype of ``Z3``.
    """
    Z3 = np.asarray(Z3)
    Y = np.asarray(Y)
    if Z3.ndim != 2 or Y.shape != Z3.shape:
        raise ValueError(f"Y: expected shape {Z3.shape} (the logits' shape (m, n_classes)), got {Y.shape}")
    return np.mean(softmax_cross_entropy(Z3, Y))


def softmax_cross_entropy_backward(Z: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Gradient of ``compute_cost(Z, Y)`` with respect to ``Z``.

    ``(softmax(Z) * sum_j Y_ij - Y) / m``; for labels whose rows sum to 1 (one-hot, or soft
    probabilities) this is TensorFlow's ``(softmax - Y) / m``.

    Returns
    -------
    dZ : (m, n_classes), dtype of ``Z``.
    """
    m = Z.shape[0]
    return (softmax(Z) * Y.sum(axis=1, keepdims=True) - Y) / m


# --------------------------------------------------------------------------------------------
# Whole model
# --------------------------------------------------------------------------------------------


def _check_impl(impl: str) -> None:
    if impl not in IMPLEMENTATIONS:
        raise ValueError(f"impl: expected one of {list(IMPLEMENTATIONS)}, got {impl!r}")


def model_forward(params, X, spec: ModelSpec = COURSE_MODEL, *, impl: str = "fast") -> dict:
    """Forward pass keeping every intermediate activation.

    Parameters
    ----------
    params : canonical dict (W1, W2, W3, b3), one dtype
    X : ndarray (m, n_H, n_W, n_C) NHWC, ``spec.input_shape`` per image, the params' dtype
    spec : ModelSpec
    impl : "fast" (vectorised layers) or "loop" (the course's loop layers; slow, for checks)

    Returns
    -------
    activations : dict keyed by ``ACTIVATION_NAMES``: Z1 A1 (m, n_H, n_W, n_C1), P1, Z2 A2, P2
        (NHWC), F (m, n_flat) and Z3 (m, n_classes) logits.
    """
    _check_impl(impl)
    dtype = check_params(params, spec)
    check_batch(X, None, dtype, spec)
    conv, pool = _forward_layers(impl)
    acts: dict[str, np.ndarray] = {}
    g1, gp1 = conv1_pool1_geometry(params, X, spec)
    if impl == "fast" and fused.can_fuse(g1, gp1):
        # conv1 by the training step's own products (reference.fused), so that Trainer.step's
        # cost is this forward's, bit for bit.
        acts["Z1"] = np.empty(g1.output_shape, dtype=g1.dtype)
        fused.conv_relu_pool_forward(X, params["W1"], g1, gp1, Z_out=acts["Z1"])
    else:
        acts["Z1"] = conv(X, params["W1"], spec.conv1)
    acts["A1"] = relu_forward(acts["Z1"])
    acts["P1"] = pool(acts["A1"], spec.pool1)
    acts.update(_forward_after_pool1(params, acts["P1"], spec, conv, pool))
    return acts


def _forward_layers(impl: str):
    """``conv(A, W, layer)`` (no bias) and ``pool(A, layer)`` (max) of the loop or fast layers."""
    conv_forward = loop_layers.conv_forward if impl == "loop" else fast_layers.conv_forward_fast
    pool_forward = loop_layers.pool_forward if impl == "loop" else fast_layers.pool_forward_fast

    def conv(A, W, layer):
        return conv_forward(A, W, None, layer.hparameters)[0]

    def pool(A, layer):
        return pool_forward(A, layer.hparameters, "max")[0]

    return conv, pool


def conv1_pool1_geometry(params, X, spec: ModelSpec = COURSE_MODEL) -> tuple[ConvGeometry, PoolGeometry]:
    """The geometries of conv1 on ``X`` and of pool1 on conv1's output (what
    :mod:`reference.fused` needs), without computing anything."""
    g1 = ConvGeometry(X, params["W1"], None, spec.conv1.hparameters)
    # PoolGeometry reads only the shape and dtype of its input: a zero-stride stand-in for Z1.
    gp1 = PoolGeometry(np.broadcast_to(np.zeros((), g1.dtype), g1.output_shape), spec.pool1.hparameters)
    return g1, gp1


def _forward_after_pool1(params, P1: np.ndarray, spec: ModelSpec, conv, pool) -> dict:
    """Z2 A2 P2 F Z3 from P1 (the part of the forward that every path shares)."""
    acts = {"Z2": conv(P1, params["W2"], spec.conv2)}
    acts["A2"] = relu_forward(acts["Z2"])
    acts["P2"] = pool(acts["A2"], spec.pool2)
    acts["F"] = flatten_forward(acts["P2"])
    acts["Z3"] = dense_forward(acts["F"], params["W3"], params["b3"])
    return acts


def model_backward(params, X, Y, activations: dict, spec: ModelSpec = COURSE_MODEL, *, impl: str = "fast",
                   need_dX: bool = True, route: PoolRoute | None = None) -> dict:
    """Gradients of ``compute_cost(Z3, Y)`` for every parameter and the input: the model's one
    backward pass (training, ``signs verify`` and the near-tie proof of ``signs.ties`` all run it).

    Parameters
    ----------
    params, X, spec, impl : as for :func:`model_forward`
    Y : (m, n_classes) labels, one-hot or soft, the params' dtype
    activations : the dict returned by :func:`model_forward` for the same ``params`` and ``X``
    need_dX : bool
        Compute ``dX``. Training does not need it: then (fast layers, no ``route``) ``dW1`` is
        gathered from the one cell per pool1 window that receives a gradient
        (:func:`_conv1_weight_grad_sparse`) instead of an im2col of the whole batch.
    route : callable ``route(pool, dP, dA) -> None``, optional
        Called after each max-pool backward, before its ReLU backward, with the pool's
        :class:`~reference.spec.PoolSpec`, the gradient ``dP`` of its output and ``dA`` of its
        input (both NHWC); it may move gradient within ``dA`` in place (``signs.ties`` sends
        near-tie windows to another cell). ``None``: every window's gradient stays at its first
        maximum.

    Returns
    -------
    grads : dict ``dW1`` ``dW2`` (HWIO), ``dW3`` (n_flat, n_classes), ``db3`` (n_classes,) and,
        when ``need_dX``, ``dX`` (m, n_H, n_W, n_C) NHWC.
    """
    _check_impl(impl)
    dtype = check_params(params, spec)
    check_batch(X, Y, dtype, spec)
    missing = [name for name in ACTIVATION_NAMES if name not in activations]
    if missing:
        raise ValueError(f"activations: expected the dict from model_forward with {list(ACTIVATION_NAMES)}, missing {missing}")
    a = activations
    if impl == "loop":
        conv_back, pool_back = loop_layers.conv_backward, loop_layers.pool_backward
    else:
        conv_back, pool_back = fast_layers.conv_backward_fast, fast_layers.pool_backward_fast

    pool_relu_back = _pool_relu_backward(pool_back, route)
    dP1, grads = _backward_to_pool1(params, Y, a, spec, conv_back, pool_relu_back)
    if impl == "fast" and not need_dX and route is None:
        grads["dW1"] = _conv1_weight_grad_sparse(dP1, X, params["W1"], a, spec)
    else:
        dZ1 = pool_relu_back(dP1, a["A1"], a["Z1"], spec.pool1)
        dX, grads["dW1"], _ = conv_back(dZ1, (X, params["W1"], None, spec.conv1.hparameters))
        if need_dX:
            grads["dX"] = dX
    return {name: grads[name] for name in GRADIENT_NAMES if name in grads}


def _pool_relu_backward(pool_back, route: PoolRoute | None = None):
    """MAXPOOL then RELU backward with ``pool_back`` (loop or fast layers), ``route`` called in
    between: ``back(dP, A, Z, pool)`` maps (m, n_H', n_W', n_C) -> dZ (m, n_H, n_W, n_C)."""

    def back(dP, A, Z, pool):
        dA = pool_back(dP, (A, pool.hparameters), "max")
        if route is not None:
            route(pool, dP, dA)
        return relu_backward(dA, Z)

    return back


def _backward_to_pool1(params, Y, a: dict, spec: ModelSpec, conv_back, pool_relu_back):
    """``dP1`` and the gradients of W2, W3, b3 from the activations after pool1 (Z2 ... Z3)."""
    grads: dict[str, np.ndarray] = {}
    dZ3 = softmax_cross_entropy_backward(a["Z3"], Y)
    dF, grads["dW3"], grads["db3"] = dense_backward(dZ3, a["F"], params["W3"])
    dP2 = flatten_backward(dF, a["P2"].shape)
    dZ2 = pool_relu_back(dP2, a["A2"], a["Z2"], spec.pool2)
    dP1, grads["dW2"], _ = conv_back(dZ2, (a["P1"], params["W2"], None, spec.conv2.hparameters))
    return dP1, grads


def _conv1_weight_grad_sparse(dP1: np.ndarray, X: np.ndarray, W1: np.ndarray, activations: dict,
                              spec: ModelSpec) -> np.ndarray:
    """``dW1`` (HWIO) from the cells of ``Z1`` that receive a gradient: one per pool1 window.

    ReLU's mask is applied to the pooled gradient (``dP1 * (P1 > 0)``): a window whose maximum
    is not positive sends nothing, and where it is positive, the first maximum of ``A1`` (the
    pool's input) is the first maximum of ``Z1``, where ``Z1 > 0``. So ``dZ1`` is zero except at those cells, and
    :func:`fast_layers.conv_weight_grad_sparse` gathers their input patches instead of an im2col
    of the whole batch.
    """
    g1 = ConvGeometry(X, W1, None, spec.conv1.hparameters)
    gp1 = PoolGeometry(activations["Z1"], spec.pool1.hparameters)
    # Windows of Z1, not A1: A1's non-positive cells are all 0, a tie in almost every window
    # whose ReLU is off, and resolving those ties costs more than pooling Z1 again.
    Z1_pad = pad_spatial(activations["Z1"], gp1.padding, -np.inf)
    M1 = fast_layers.max_pool_padded(Z1_pad, gp1)
    window, n, row, col, c = fast_layers.max_pool_first_positions(Z1_pad, M1, gp1)
    values = relu_backward(dP1, activations["P1"]).ravel()[window]
    live = values != 0  # windows whose ReLU is off send nothing
    (top, _), (left, _) = gp1.padding  # pool1 padding: A1_pad coordinates -> Z1 coordinates
    return fast_layers.conv_weight_grad_sparse(
        pad_spatial(X, g1.padding, 0), g1, n[live], row[live] - top, col[live] - left, c[live], values[live]
    )


def forward_backward(params, X, Y, spec: ModelSpec = COURSE_MODEL, *, impl: str = "fast") -> dict:
    """Activations, ``"cost"`` (0-d array) and gradients in one dict (see ``signs.backends``)."""
    check_batch(X, Y, check_params(params, spec), spec)
    acts = model_forward(params, X, spec, impl=impl)
    out = dict(acts)
    out["cost"] = np.asarray(compute_cost(acts["Z3"], Y))
    out.update(model_backward(params, X, Y, acts, spec, impl=impl))
    return out


def predict_logits(params, X, spec: ModelSpec = COURSE_MODEL) -> np.ndarray:
    """Logits ``Z3`` (m, n_classes) of the fast forward pass."""
    return model_forward(params, X, spec)["Z3"]


def train_gradients(params, X, Y, spec: ModelSpec = COURSE_MODEL):
    """The cost and the parameter gradients of one training step.

    When pool1's windows tile conv1's output (the course model), CONV1 -> RELU -> POOL1 runs
    fused block by block on the block workers (:mod:`reference.fused`: neither Z1 nor A1 is
    written, and ``dW1`` is gathered from one cell per pool1 window); otherwise
    :func:`model_forward` (fast layers) then :func:`model_backward` without ``dX``, which gathers
    ``dW1`` the same way from the whole Z1. The layers after pool1 are the same code either way.

    Parameters
    ----------
    params : canonical dict (W1, W2, W3, b3), one dtype
    X : ndarray (m, n_H, n_W, n_C) NHWC, the params' dtype
    Y : ndarray (m, n_classes), the params' dtype

    Returns
    -------
    cost : NumPy scalar (params' dtype), for these params (before any update)
    grads : dict dW1 dW2 dW3 db3
    """
    check_batch(X, Y, check_params(params, spec), spec)
    g1, gp1 = conv1_pool1_geometry(params, X, spec)
    if not fused.can_fuse(g1, gp1):
        acts = model_forward(params, X, spec)
        return compute_cost(acts["Z3"], Y), model_backward(params, X, Y, acts, spec, need_dX=False)
    conv, pool = _forward_layers("fast")
    P1, cache1 = fused.conv_relu_pool_forward(X, params["W1"], g1, gp1)
    acts = {"P1": P1, **_forward_after_pool1(params, P1, spec, conv, pool)}

    def pool_relu_back(dP, A, Z, layer):
        # Route through Z's windows, not A's: where the pooled value is positive their first
        # maxima are the same cell, and elsewhere the ReLU zeroes the gradient either way; A's
        # windows with the ReLU off are all-zero ties that cost a repair pass every step.
        return relu_backward(fast_layers.pool_backward_fast(dP, (Z, layer.hparameters), "max"), Z)

    dP1, grads = _backward_to_pool1(params, Y, acts, spec, fast_layers.conv_backward_fast, pool_relu_back)
    grads["dW1"] = fused.conv_relu_pool_weight_grad(dP1, cache1, g1, gp1)
    return compute_cost(acts["Z3"], Y), {name: grads[name] for name in GRADIENT_NAMES if name in grads}
