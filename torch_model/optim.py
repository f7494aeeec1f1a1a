"""Adam with TensorFlow 1's ``ApplyAdam`` arithmetic, as a ``torch.optim.Optimizer``.

TF1 (``tf.train.AdamOptimizer`` -> ``training_ops.ApplyAdam``) updates, at step t = 1, 2, ...::

    lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t)
    m   += (g - m) * (1 - beta1)
    v   += (g * g - v) * (1 - beta2)
    w   -= (m * lr_t) / (sqrt(v) + eps)

``torch.optim.Adam`` computes ``w -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)``:
it adds ``eps`` to the bias-corrected ``sqrt(v_hat)``. TF1 with ``eps`` is torch with a
step-dependent ``eps / sqrt(1 - beta2^t)`` (the Adam paper's "eps hat"), so the two differ a
little at every step (most at the first steps and where ``sqrt(v)`` is small; with eps = 0 they
agree). Both are offered (``Trainer(optimizer="tf1" | "torch")``); the course used TF1's rule.

Scalar choice: ``lr_t``, ``1 - beta1``, ``1 - beta2`` and ``eps`` are computed in Python float64
(``beta^t`` by ``**``) and rounded to the parameter dtype where they meet the tensors. TF1 itself
keeps ``beta1_power``/``beta2_power`` as float32 variables (multiplied by beta each step) and casts
the hyperparameters to float32; for float32 parameters that changes ``lr_t`` and ``1 - beta1`` by
about one float32 ulp (~1e-7 relative), far below ``signs.tolerances.FLOAT32_ADAM_STEPS``; for
float64 the float64 formula is the project's contract shared by every backend.

State per parameter uses torch's names so ``state_dict()`` round-trips: ``step`` (int),
``exp_avg`` (m) and ``exp_avg_sq`` (v), both shaped and laid out like the parameter.
"""

from __future__ import annotations

import math
from typing import Callable, Iterable

import torch
from torch import Tensor

from reference.spec import COURSE_TRAINING
from reference.validate import check_learning_rate

__all__ = ["TF1Adam", "tf1_adam_lr_t"]


def tf1_adam_lr_t(lr: float, beta1: float, beta2: float, step: int) -> float:
    """TF1's bias-corrected step size ``lr * sqrt(1 - beta2^t) / (1 - beta1^t)`` in float64."""
    return lr * math.sqrt(1.0 - beta2**step) / (1.0 - beta1**step)


class TF1Adam(torch.optim.Optimizer):
    """Adam with TF1's ``ApplyAdam`` update (see the module docstring for the exact arithmetic).

    Parameters
    ----------
    params : iterable of Tensors or param-group dicts
    lr, betas, eps : default to the course's (``reference.spec.COURSE_TRAINING``)
    betas : (beta1, beta2), each in [0, 1)
    eps : float, added to ``sqrt(v)`` (not bias corrected), as TF1 does
    """

    def __init__(self, params: Iterable, lr: float = COURSE_TRAINING.learning_rate,
                 betas: tuple[float, float] = (COURSE_TRAINING.beta1, COURSE_TRAINING.beta2),
                 eps: float = COURSE_TRAINING.epsilon) -> None:
        lr = check_learning_rate(lr, "lr")
        if not all(0.0 <= b < 1.0 for b in betas) or len(betas) != 2:
            raise ValueError(f"betas: expected two floats in [0, 1), got {betas!r}")
        if not eps >= 0.0:
            raise ValueError(f"eps: expected a non-negative float, got {eps!r}")
        super().__init__(params, {"lr": float(lr), "betas": tuple(map(float, betas)), "eps": float(eps)})

    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor | None:
        """One TF1 Adam update of every parameter that has a gradient."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for w in group["params"]:
                if w.grad is None:
                    continue
                if w.grad.is_sparse:
                    raise ValueError("TF1Adam: expected dense gradients, got a sparse one")
                self._update(w, w.grad, self.state[w], group["lr"], beta1, beta2, group["eps"])
        return loss

    @staticmethod
    def _update(w: Tensor, g: Tensor, state: dict, lr: float, beta1: float, beta2: float,
                eps: float) -> None:
        """The ApplyAdam kernel on one parameter, operation by operation (no fused FMA)."""
        if not state:
            state["step"] = 0
            state["exp_avg"] = torch.zeros_like(w, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(w, memory_format=torch.preserve_format)
        state["step"] = int(state["step"]) + 1
        lr_t = tf1_adam_lr_t(lr, beta1, beta2, state["step"])
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m.add_((g - m).mul_(1.0 - beta1))  # m += (g - m) * (1 - beta1)
        v.add_((g * g).sub_(v).mul_(1.0 - beta2))  # v += (g*g - v) * (1 - beta2)
        w.sub_((m * lr_t).div_(v.sqrt().add_(eps)))  # w -= (m * lr_t) / (sqrt(v) + eps)
