"""What a candidate port computed, as plain NumPy data; nothing here imports a framework.

Two stages, two records:

1. :class:`CandidateRun` / :class:`StepsRun`: what an adapter (torch, Keras, legacy TF1) captured
   while running the candidate, in the candidate's *own* names and layouts (an OIHW conv weight, an
   NCHW activation, a ``Linear`` weight of shape (out, in)).
2. :class:`Observation`: the same run after parameter mapping and activation matching, in the
   reference's canonical names and layouts (NHWC activations, HWIO kernels, ``W3`` (in, out) with
   rows in NHWC-flatten order). The comparison engine and the trap diagnosis read only this.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["CandidateParam", "Captured", "CandidateRun", "StepsRun", "Observation"]


@dataclass(frozen=True)
class CandidateParam:
    """One trainable parameter of the candidate, as the candidate holds it.

    ``use_order``: the order in which the forward pass first used it (0-based; -1 when unknown).
    """

    name: str  # the candidate's own name: "features.0.weight", "W1", "dense/kernel"
    array: np.ndarray  # its value, in the candidate's layout
    use_order: int = -1


@dataclass(frozen=True)
class Captured:
    """One intermediate tensor the candidate computed, in the order it was computed.

    ``layout``: what the adapter knows of it: "NHWC", "NCHW", "flat" (m, n) or "unknown".
    ``kind``: the operation that computed it, when the adapter knows: "conv", "relu", "pool",
    "flatten", "dense"; "unknown" lets the matcher read it from the label's words.
    """

    label: str  # where it came from: "conv1 (Conv2d)", "F.relu #2", "Relu_1:0"
    array: np.ndarray
    layout: str = "unknown"
    kind: str = "unknown"


@dataclass
class CandidateRun:
    """One forward and backward pass of the candidate on one batch.

    output : (m, 6) what the model returned (logits, or probabilities for a softmax-output port).
    loss : the candidate's scalar loss on ``output``.
    param_grads : candidate parameter name -> gradient of ``loss``, candidate layout.
    input_grad : gradient of ``loss`` for the input, in ``input_layout``; None when unavailable.
    """

    framework: str  # "torch", "keras", "tf1"
    input_layout: str  # "NHWC" or "NCHW": how the candidate was fed
    params: list[CandidateParam]
    captured: list[Captured]
    output: np.ndarray
    loss: float
    param_grads: dict[str, np.ndarray]
    input_grad: np.ndarray | None
    settings: dict[str, Any] = field(default_factory=dict)  # device, tf32, ... as the framework reports


@dataclass
class StepsRun:
    """K optimizer steps of the candidate: its parameters after each step, candidate names/layouts."""

    params_after: list[dict[str, np.ndarray]]
    losses: list[float]


@dataclass
class Observation:
    """A candidate run in canonical names and layouts: what the diagnosis and the engine compare.

    X : (m, H, W, 3) NHWC, the batch fed (float64 copy). Y : (m, 6) one-hot.
    params : W1 (4,4,3,8) W2 (2,2,8,16) HWIO, W3 (F, 6) NHWC-flatten rows, b3 (6,): the weights the
        candidate ran with.
    extra : parameters the course net lacks, canonical names ("b1", "b2" conv biases, ...) -> their
        values as the candidate held them (they are zeroed for the comparison unless own weights
        are kept); empty for a faithful port.
    activations : "Z1" "A1" "P1" "Z2" "A2" "P2" "F" "Z3" -> canonical layout; only those found.
    output : (m, 6) what the model returned; cost : the candidate's loss.
    grads : "dW1" "dW2" "dW3" "db3" "dX" -> canonical layout; only those available.
    batches : the (X, Y) mini-batches of the optimizer steps (empty without ``--steps``).
    steps : canonical W1 W2 W3 b3 (and extra) after each step; step_costs : loss at each step.
    own_params / expected_params : with ``--own-weights``, the candidate's own weights moved to
        canonical layout, and the weights they should equal (``--weights``).
    settings : framework facts that decide numbers (device, TF32 flags).
    """

    dtype: np.dtype
    X: np.ndarray
    Y: np.ndarray
    params: dict[str, np.ndarray]
    activations: dict[str, np.ndarray]
    output: np.ndarray
    cost: float
    grads: dict[str, np.ndarray]
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    batches: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    steps: list[dict[str, np.ndarray]] = field(default_factory=list)
    step_costs: list[float] = field(default_factory=list)
    own_params: dict[str, np.ndarray] | None = None
    expected_params: dict[str, np.ndarray] | None = None
    settings: dict[str, Any] = field(default_factory=dict)
