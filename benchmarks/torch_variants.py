"""Where PyTorch's training step loses time: a profile, and prototype variants of the step.

Nothing here changes ``torch_model``: the variants re-implement the course model's training step
functionally (the same TF1 Adam, ``torch_model.optim.TF1Adam``, the same cost) with one choice
changed at a time, so the gain of each proposed fix can be measured beside the shipped Trainer.

Variants
--------
conv padding (conv1 is a 4x4 kernel: TF SAME pads 1 before and 2 after, asymmetric)
    "ops"    ``torch_model.ops.conv2d`` as shipped (whatever it does today).
    "crop"   pad 2 on both sides inside the conv, compute a 65x65 output and slice 64x64 out of it:
             no padded input copy, but the output is a strided view and autograd's slice backward
             allocates and fills a zero 65x65 gradient.
    "same"   ``F.conv2d(x, w, padding="same")``: PyTorch pads 1 inside the conv and copies the
             input once with the extra row/column at the end, exactly TF's SAME at stride 1.
    "pad"    ``F.pad`` the input by (1, 2) then a VALID conv: one fully padded copy of the input.
memory format
    "channels_last"  the NHWC batch viewed as NCHW (what ``torch_model.model`` feeds the conv)
    "contiguous"     ``.contiguous()`` NCHW copy of the batch
threads
    ``torch.set_num_threads`` for the step only (the Trainer uses the benchmark's setting).
relu/pool order
    "relu_pool"   CONV -> RELU -> MAXPOOL as written
    "pool_relu"   CONV -> MAXPOOL -> RELU: equal results (max and ReLU commute), ReLU on 64x fewer
                  values; the NumPy backend does this.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from reference.padding import resolve_padding
from reference.spec import COURSE_MODEL, COURSE_TRAINING, PARAM_NAMES, ModelSpec, TrainSpec

__all__ = ["VariantConfig", "VARIANTS", "TorchVariantTrainer", "profile_trainer", "max_param_difference"]


@dataclass(frozen=True)
class VariantConfig:
    """One prototype of the training step (see the module docstring for the choices)."""

    key: str
    label: str
    conv_padding: str = "ops"
    memory_format: str = "channels_last"
    order: str = "relu_pool"
    threads: int | None = None  # torch.set_num_threads for this step only (None: leave as set)


VARIANTS = (
    VariantConfig("ops_cl", "re-implemented: torch_model.ops.conv2d, channels_last (the shipped choices)"),
    VariantConfig("crop_cl", "over-pad + crop (no input copy), channels_last", conv_padding="crop"),
    VariantConfig("same_cl", "F.conv2d(padding='same'), channels_last", conv_padding="same"),
    VariantConfig("pad_cl", "full F.pad + VALID conv, channels_last", conv_padding="pad"),
    VariantConfig("ops_nchw", "torch_model.ops.conv2d, contiguous NCHW input", memory_format="contiguous"),
    VariantConfig("ops_cl_poolrelu", "torch_model.ops.conv2d, channels_last, pool before ReLU", order="pool_relu"),
    VariantConfig("ops_nchw_poolrelu", "torch_model.ops.conv2d, NCHW, pool before ReLU",
                  memory_format="contiguous", order="pool_relu"),
    VariantConfig("ops_cl_poolrelu_1t", "torch_model.ops.conv2d, channels_last, pool before ReLU, 1 thread",
                  order="pool_relu", threads=1),
)


class TorchVariantTrainer:
    """The course model's training step (forward, cost, backward, TF1 Adam) in functional PyTorch.

    Parameters
    ----------
    params : canonical float32 dict (W1, W2 HWIO; W3 (n_flat, n_classes); b3)
    config : the variant
    """

    def __init__(self, params: dict, config: VariantConfig, spec: ModelSpec = COURSE_MODEL,
                 train: TrainSpec = COURSE_TRAINING):
        import torch

        from torch_model import ops
        from torch_model.optim import TF1Adam

        self.torch, self.ops, self.config, self.spec = torch, ops, config, spec
        to_torch = {
            "W1": lambda a: ops.hwio_to_oihw(torch.tensor(a)).contiguous(),
            "W2": lambda a: ops.hwio_to_oihw(torch.tensor(a)).contiguous(),
            "W3": lambda a: ops.dense_kernel_to_torch(torch.tensor(a)).contiguous(),
            "b3": lambda a: torch.tensor(a),
        }
        self.weights = {n: torch.nn.Parameter(to_torch[n](params[n])) for n in PARAM_NAMES}
        self.optimizer = TF1Adam(list(self.weights.values()), lr=train.learning_rate,
                                 betas=(train.beta1, train.beta2), eps=train.epsilon)

    def _conv(self, x, w, conv):
        F = self.torch.nn.functional
        mode = self.config.conv_padding
        if mode == "ops" or conv.stride != 1:
            return self.ops.conv2d(x, w, conv.stride, conv.padding)
        if mode == "same":
            with warnings.catch_warnings():  # "may require a zero-padded copy": that is the point
                warnings.filterwarnings("ignore", message="Using padding='same'", category=UserWarning)
                return F.conv2d(x, w, padding="same")  # stride 1: the odd pad goes after, as in TF
        (top, bottom), (left, right) = resolve_padding(
            conv.padding, (x.shape[2], x.shape[3]), (conv.kernel, conv.kernel), (conv.stride, conv.stride))
        if mode == "pad":
            return F.conv2d(F.pad(x, (left, right, top, bottom)), w)
        # "crop": output i of a conv padded by p on both sides reads rows i - p ..; the wanted
        # output j reads rows j - top .., so j = i - (p - top).
        pad_h, pad_w = max(top, bottom), max(left, right)
        z = F.conv2d(x, w, padding=(pad_h, pad_w))
        n_h, n_w = x.shape[2] + top + bottom - conv.kernel + 1, x.shape[3] + left + right - conv.kernel + 1
        return z[:, :, pad_h - top: pad_h - top + n_h, pad_w - left: pad_w - left + n_w]

    def _block(self, x, w, conv, pool):
        F = self.torch.nn.functional
        z = self._conv(x, w, conv)
        if self.config.order == "pool_relu":
            return F.relu(self.ops.max_pool2d(z, pool.window, pool.stride, pool.padding))
        return self.ops.max_pool2d(F.relu(z), pool.window, pool.stride, pool.padding)

    def logits(self, X):
        """Logits (m, n_classes) of NHWC ``X`` (m, n_H, n_W, n_C) (a NumPy array)."""
        torch, ops, s, w = self.torch, self.ops, self.spec, self.weights
        x = ops.nhwc_to_nchw(torch.from_numpy(X))
        if self.config.memory_format == "contiguous":
            x = x.contiguous()
        p1 = self._block(x, w["W1"], s.conv1, s.pool1)
        p2 = self._block(p1, w["W2"], s.conv2, s.pool2)
        flat = ops.nchw_to_nhwc(p2).flatten(1)  # NHWC-flatten order, as the canonical W3 rows
        return torch.nn.functional.linear(flat, w["W3"], w["b3"])

    def step(self, X: np.ndarray, Y: np.ndarray) -> float:
        """One Adam update on NHWC ``X`` (m, 64, 64, 3), ``Y`` (m, 6); the cost before it."""
        if self.config.threads is None:
            return self._step(X, Y)
        saved = self.torch.get_num_threads()
        self.torch.set_num_threads(self.config.threads)
        try:
            return self._step(X, Y)
        finally:
            self.torch.set_num_threads(saved)

    def _step(self, X: np.ndarray, Y: np.ndarray) -> float:
        torch = self.torch
        self.optimizer.zero_grad(set_to_none=True)
        logits = self.logits(X)
        cost = -(torch.from_numpy(Y) * torch.nn.functional.log_softmax(logits, dim=1)).sum(dim=1).mean()
        cost.backward()
        self.optimizer.step()
        return cost.item()

    def get_params(self) -> dict[str, np.ndarray]:
        ops = self.ops
        back = {"W1": ops.oihw_to_hwio, "W2": ops.oihw_to_hwio, "W3": ops.dense_kernel_from_torch, "b3": lambda t: t}
        return {n: back[n](self.weights[n].detach()).contiguous().numpy().copy() for n in PARAM_NAMES}


def max_param_difference(a: dict, b: dict) -> float:
    """Largest absolute difference between two canonical parameter dicts."""
    return max(float(np.max(np.abs(a[n].astype(np.float64) - b[n].astype(np.float64)))) for n in PARAM_NAMES)


def profile_trainer(trainer, X: np.ndarray, Y: np.ndarray, steps: int, top: int = 12) -> dict:
    """``torch.profiler`` over ``steps`` training steps (after one warm-up step).

    Returns
    -------
    {"steps": int, "total_ms_per_step": float, "ops": [{"name", "self_ms_per_step", "calls_per_step",
    "share"}]} with the ``top`` operators by self CPU time.
    """
    from torch.profiler import ProfilerActivity, profile

    trainer.step(X, Y)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            trainer.step(X, Y)
    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in events)  # microseconds
    events.sort(key=lambda e: e.self_cpu_time_total, reverse=True)
    return {
        "steps": steps,
        "total_ms_per_step": total / 1e3 / steps,
        "ops": [
            {
                "name": e.key,
                "self_ms_per_step": e.self_cpu_time_total / 1e3 / steps,
                "calls_per_step": e.count / steps,
                "share": e.self_cpu_time_total / total if total else 0.0,
            }
            for e in events[:top]
        ],
    }
