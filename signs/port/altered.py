"""The course ConvNet in NumPy under *altered* semantics: the reference a porting trap would give.

:class:`Semantics` names every choice a port can get wrong (padding side and mode of each layer,
flatten order, a conv bias, the output and loss, the optimizer's form and hyperparameters); its
default is the course's exact semantics, for which :func:`forward_backward` reproduces
``reference.model.forward_backward`` (tests check it). Everything is composed from the layer-level
functions of ``reference/`` (explicit paddings, fast conv/pool, TF1 Adam): no layer math is
re-derived here. Pure NumPy.

Layouts are the canonical ones (``reference.spec``): activations NHWC, kernels HWIO, ``W3`` (in,
out) with rows in the flatten order the semantics use, biases (n_C,).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
import math

import numpy as np

from reference import fast_layers
from reference.adam import Adam
from reference.layers import ConvGeometry, PoolGeometry
from reference.model import (
    dense_backward,
    dense_forward,
    relu_backward,
    relu_forward,
    softmax,
    softmax_cross_entropy,
    softmax_cross_entropy_backward,
)
from reference.padding import pad_spatial, same_padding_1d
from reference.spec import COURSE_MODEL, COURSE_TRAINING, ModelSpec

__all__ = ["Semantics", "CONV_PADDINGS", "POOL_PADDINGS", "TorchAdam", "forward_backward", "run_steps",
           "make_optimizer", "conv_amounts", "pool_amounts"]

# "tf": TF/Keras SAME, the odd extra row/column after; "before": the extra one before;
# "symmetric-floor" / "symmetric-ceil": total // 2 (resp. ceil) on both sides (torch padding=p);
# "valid": none.
CONV_PADDINGS = ("tf", "before", "symmetric-floor", "symmetric-ceil", "valid")
# "tf": TF SAME (ceil output size, split like the conv, -inf fill); "zeros": same amounts, zero fill;
# "after": torch ceil_mode=True (every padding cell after); "valid": none (floor output size).
POOL_PADDINGS = ("tf", "zeros", "after", "valid")


@dataclass(frozen=True)
class Semantics:
    """What a port computes. The default is the course (TF1) exactly."""

    conv1_padding: str = "tf"
    conv2_padding: str = "tf"
    pool1_padding: str = "tf"
    pool2_padding: str = "tf"
    flatten: str = "NHWC"  # or "NCHW": the dense layer reads P2.transpose(0, 3, 1, 2) flattened
    conv_bias: bool = False  # conv layers add a bias b1 / b2 (n_C,)
    output: str = "logits"  # or "probabilities": the model ends in a softmax the loss applies again
    reduction: str = "mean"  # or "sum" over the batch
    adam: str = "tf1"  # or "torch": epsilon added after the bias correction
    learning_rate: float = COURSE_TRAINING.learning_rate
    beta1: float = COURSE_TRAINING.beta1
    beta2: float = COURSE_TRAINING.beta2
    epsilon: float = COURSE_TRAINING.epsilon

    def __post_init__(self):
        choices = {"conv1_padding": CONV_PADDINGS, "conv2_padding": CONV_PADDINGS,
                   "pool1_padding": POOL_PADDINGS, "pool2_padding": POOL_PADDINGS,
                   "flatten": ("NHWC", "NCHW"), "output": ("logits", "probabilities"),
                   "reduction": ("mean", "sum"), "adam": ("tf1", "torch")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name}: expected one of {list(allowed)}, got {getattr(self, name)!r}")

    def changes(self) -> dict:
        """The fields that differ from the course's semantics."""
        course = Semantics()
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) != getattr(course, f.name)}


def conv_amounts(kind: str, n: int, f: int, s: int) -> tuple[int, int]:
    """(before, after) padding of one axis of a conv layer of input length ``n`` under ``kind``."""
    before, after = same_padding_1d(n, f, s)  # TF: the extra cell after
    total = before + after
    return {
        "tf": (before, after),
        "before": (after, before),
        "symmetric-floor": (total // 2, total // 2),
        "symmetric-ceil": (-(-total // 2), -(-total // 2)),
        "valid": (0, 0),
    }[kind]


def pool_amounts(kind: str, n: int, f: int, s: int) -> tuple[int, int]:
    """(before, after) padding of one axis of a max-pool of input length ``n`` under ``kind``."""
    if kind in ("tf", "zeros"):
        return same_padding_1d(n, f, s)
    if kind == "after":  # torch ceil_mode=True: n_out = ceil((n - f) / s) + 1, all padding after
        # (torch also drops a last window that would start in the padding; impossible when f <= s)
        n_out = -(-(n - f) // s) + 1
        return (0, max(0, (n_out - 1) * s + f - n))
    return (0, 0)


def _amounts(rule, kind: str, A: np.ndarray, f: int, s: int):
    """((top, bottom), (left, right)) for NHWC input ``A``."""
    return (rule(kind, A.shape[1], f, s), rule(kind, A.shape[2], f, s))


def _conv(A, W, b, layer, kind, keep, key):
    amounts = _amounts(conv_amounts, kind, A, layer.kernel, layer.stride)
    g = ConvGeometry(A, W, None, {"stride": layer.stride, "pad": amounts})
    A_pad = pad_spatial(A, g.padding, 0)
    Z = fast_layers.conv_forward_padded(A_pad, W, g)
    if b is not None:
        Z += b
    keep[key] = (A_pad, g)
    return Z


def _pool(A, layer, kind, keep, key):
    amounts = _amounts(pool_amounts, kind, A, layer.window, layer.stride)
    g = PoolGeometry(A, {"stride": layer.stride, "f": layer.window, "pad": amounts})
    A_pad = pad_spatial(A, g.padding, 0 if kind == "zeros" else -np.inf)
    P = fast_layers.max_pool_padded(A_pad, g)
    keep[key] = (A_pad, P, g)
    return P


def _pool_backward(kept, G):
    A_pad, P, g = kept
    return fast_layers.max_pool_backward_padded(A_pad, P, G, g)


def _flatten(P, order):
    # NHWC (m, H, W, C) -> (m, H*W*C); "NCHW" reads it channel-major, (m, C, H, W) flattened.
    return P.reshape(P.shape[0], -1) if order == "NHWC" else P.transpose(0, 3, 1, 2).reshape(P.shape[0], -1)


def _unflatten(dF, shape, order):
    m, H, W, C = shape
    return dF.reshape(shape) if order == "NHWC" else dF.reshape(m, C, H, W).transpose(0, 2, 3, 1)


def forward_backward(params, X, Y, semantics: Semantics = Semantics(), spec: ModelSpec = COURSE_MODEL,
                     *, biases=None, need_dX: bool = True, backward: bool = True) -> dict:
    """Activations, output, cost and gradients of the net under ``semantics``.

    Parameters
    ----------
    params : canonical W1 W2 (HWIO), W3 (n_flat, 6), b3 (6,); one float dtype, also of the results
    X : (m, H, W, 3) NHWC; Y : (m, 6) labels
    biases : {"b1": (n_C1,), "b2": (n_C2,)} conv biases, used when ``semantics.conv_bias``
        (zeros when None)
    need_dX : also return ``dX``
    backward : False: stop after the cost (no gradients), to reject an alteration cheaply

    Returns
    -------
    {"Z1" "A1" "P1" "Z2" "A2" "P2" "F" "Z3": activations; "output": what the model returns (Z3,
    or softmax(Z3)); "cost": 0-d array; "dW1" "dW2" "dW3" "db3" ["dX"] ["db1" "db2"] (with
    ``backward``)}
    """
    sem = semantics
    W1, W2, W3, b3 = (params[k] for k in ("W1", "W2", "W3", "b3"))
    bias = {k: None for k in ("b1", "b2")}
    if sem.conv_bias:
        bias = {k: (np.zeros(W.shape[3], W.dtype) if not biases or k not in biases else np.asarray(biases[k], W.dtype))
                for k, W in (("b1", W1), ("b2", W2))}
    keep: dict = {}
    r: dict = {}
    r["Z1"] = _conv(X, W1, bias["b1"], spec.conv1, sem.conv1_padding, keep, "conv1")
    r["A1"] = relu_forward(r["Z1"])
    r["P1"] = _pool(r["A1"], spec.pool1, sem.pool1_padding, keep, "pool1")
    r["Z2"] = _conv(r["P1"], W2, bias["b2"], spec.conv2, sem.conv2_padding, keep, "conv2")
    r["A2"] = relu_forward(r["Z2"])
    r["P2"] = _pool(r["A2"], spec.pool2, sem.pool2_padding, keep, "pool2")
    r["F"] = _flatten(r["P2"], sem.flatten)
    if r["F"].shape[1] != W3.shape[0]:
        raise ValueError(f"params['W3']: expected {r['F'].shape[1]} rows (the flattened P2 {r['P2'].shape[1:]} "
                         f"under {sem.changes()}), got {W3.shape[0]}")
    r["Z3"] = dense_forward(r["F"], W3, b3)
    logits = r["Z3"]
    if sem.output == "probabilities":
        r["output"] = softmax(r["Z3"])
        logits = r["output"]  # the loss applies its softmax a second time
    else:
        r["output"] = r["Z3"]
    per_example = softmax_cross_entropy(logits, Y)
    r["cost"] = np.asarray(np.mean(per_example) if sem.reduction == "mean" else np.sum(per_example))
    if not backward:
        return r
    d_logits = softmax_cross_entropy_backward(logits, Y)  # of the mean
    if sem.reduction == "sum":
        d_logits = d_logits * d_logits.dtype.type(Y.shape[0])
    dZ3 = d_logits
    if sem.output == "probabilities":  # back through softmax: P * (dP - sum(dP * P))
        P = r["output"]
        dZ3 = P * (d_logits - (d_logits * P).sum(axis=1, keepdims=True))
    dF, r["dW3"], r["db3"] = dense_backward(dZ3, r["F"], W3)
    dP2 = _unflatten(dF, r["P2"].shape, sem.flatten)
    dZ2 = relu_backward(_pool_backward(keep["pool2"], dP2), r["Z2"])
    dP1, r["dW2"] = fast_layers.conv_backward_padded(dZ2, keep["conv2"][0], W2, keep["conv2"][1])
    dZ1 = relu_backward(_pool_backward(keep["pool1"], dP1), r["Z1"])
    dX, r["dW1"] = fast_layers.conv_backward_padded(dZ1, keep["conv1"][0], W1, keep["conv1"][1], need_dA=need_dX)
    if need_dX:
        r["dX"] = dX
    if sem.conv_bias:
        r["db1"], r["db2"] = dZ1.sum(axis=(0, 1, 2)), dZ2.sum(axis=(0, 1, 2))
    return r


class TorchAdam:
    """``torch.optim.Adam``'s update (default options) over a dict of arrays, same API as
    :class:`reference.adam.Adam`::

        m = lerp(m, g, 1 - beta1);  v = beta2 v + (1 - beta2) g^2
        w -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    i.e. epsilon is added *after* the bias correction (TF1 adds it before: an effective epsilon
    ``eps * sqrt(1 - beta2^t)`` smaller on early steps).
    """

    def __init__(self, learning_rate, beta1, beta2, epsilon):
        self.learning_rate, self.beta1, self.beta2, self.epsilon = learning_rate, beta1, beta2, epsilon
        self.t = 0
        self.m: dict = {}
        self.v: dict = {}

    def step(self, params: dict, grads: dict) -> None:
        self.t += 1
        step_size = self.learning_rate / (1 - self.beta1 ** self.t)
        correction2_sqrt = math.sqrt(1 - self.beta2 ** self.t)
        for name, w in params.items():
            g = np.asarray(grads.get("d" + name, grads.get(name)), dtype=w.dtype)
            m = self.m.setdefault(name, np.zeros_like(w))
            v = self.v.setdefault(name, np.zeros_like(w))
            m += (g - m) * (1 - self.beta1)
            v *= self.beta2
            v += (1 - self.beta2) * g * g
            w -= step_size * m / (np.sqrt(v) / correction2_sqrt + self.epsilon)


def make_optimizer(semantics: Semantics):
    """The Adam of ``semantics``: TF1's kernel (``reference.adam.Adam``) or torch's form."""
    cls = Adam if semantics.adam == "tf1" else TorchAdam
    return cls(semantics.learning_rate, semantics.beta1, semantics.beta2, semantics.epsilon)


def run_steps(params, batches, semantics: Semantics = Semantics(), spec: ModelSpec = COURSE_MODEL,
              *, biases=None) -> list[dict]:
    """Adam steps of the altered net from ``params`` (and ``biases`` b1 b2 when the semantics
    have a conv bias), one per ``(X, Y)`` in ``batches``.

    Returns the parameters after each step (copies): W1 W2 W3 b3 (and b1 b2).
    """
    current = {k: np.array(v, copy=True) for k, v in params.items()}
    if semantics.conv_bias:
        for key, W in (("b1", current["W1"]), ("b2", current["W2"])):
            value = None if not biases else biases.get(key)
            current[key] = np.zeros(W.shape[3], W.dtype) if value is None else np.array(value, W.dtype)
    optimizer = make_optimizer(semantics)
    after = []
    for X, Y in batches:
        biases_now = {k: current[k] for k in ("b1", "b2") if k in current}
        grads = forward_backward(current, X, Y, semantics, spec, biases=biases_now, need_dX=False)
        optimizer.step(current, grads)
        after.append({k: v.copy() for k, v in current.items()})
    return after


def simulate_observation(params, X, Y, semantics: Semantics = Semantics(), spec: ModelSpec | None = None, *,
                         dtype=np.float64, batches=(), biases=None, own_params=None, expected_params=None,
                         settings=None):
    """The :class:`signs.port.capture.Observation` a port with ``semantics`` would produce: the
    altered reference computed in float64, then cast to ``dtype``. For tests of the diagnosis.

    ``biases`` (b1, b2) go to ``extra`` (and into the computation when the semantics have a conv
    bias); ``batches`` are the (X, Y) of the optimizer steps.
    """
    from signs.port.capture import Observation  # a record, no framework

    spec = spec or COURSE_MODEL.with_input(X.shape[1], X.shape[2])
    wide = {k: np.asarray(v, np.float64) for k, v in params.items()}
    run = forward_backward(wide, np.asarray(X, np.float64), np.asarray(Y, np.float64), semantics, spec, biases=biases)
    steps = run_steps(wide, [(np.asarray(x, np.float64), np.asarray(y, np.float64)) for x, y in batches],
                      semantics, spec, biases=biases) if batches else []

    def cast(tree):
        return {k: np.asarray(v).astype(dtype) for k, v in tree.items()}

    return Observation(
        dtype=np.dtype(dtype), X=np.asarray(X, np.float64), Y=np.asarray(Y, np.float64), params=cast(params),
        activations=cast({k: run[k] for k in ("Z1", "A1", "P1", "Z2", "A2", "P2", "F", "Z3")}),
        output=run["output"].astype(dtype), cost=float(run["cost"]),
        grads=cast({k: run[k] for k in ("dW1", "dW2", "dW3", "db3", "dX")}),
        extra=cast(biases or {}), batches=list(batches), steps=[cast(s) for s in steps],
        own_params=None if own_params is None else cast(own_params),
        expected_params=None if expected_params is None else cast(expected_params),
        settings=dict(settings or {}))
