"""The PyTorch backend (interface: ``signs.backends``): forward/backward, prediction and a Trainer.

Inputs and outputs are canonical NumPy arrays (activations NHWC, conv kernels HWIO, W3 with rows in
NHWC-flatten order); layouts move only in ``torch_model.convert`` / ``torch_model.ops``. Every
computation runs with TF32 off (:func:`torch_model.ops.no_tf32`), so CUDA results are IEEE float32.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from reference.spec import COURSE_MODEL, COURSE_TRAINING, PARAM_NAMES, ModelSpec, TrainSpec, param_shapes
from reference.validate import check_batch, check_learning_rate, check_optimizer_state, check_params
from torch_model.convert import (
    FROM_TORCH,
    NAME_MAP,
    TO_TORCH,
    load_params_into_module,
    params_from_module,
    state_dict_to_params,
)
from torch_model.model import SignsConvNet
from torch_model.ops import no_tf32
from torch_model.optim import TF1Adam

__all__ = [
    "NAME",
    "OPTIMIZERS",
    "forward_backward",
    "predict_logits",
    "softmax_cross_entropy",
    "resolve_device",
    "build_module",
    "Trainer",
]

NAME = "torch"
OPTIMIZERS = ("tf1", "torch")  # TF1Adam (the course's rule) or torch.optim.Adam (eps differs)
_TORCH_DTYPES = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}


def resolve_device(device: str | torch.device) -> torch.device:
    """``device`` as a torch.device; ValueError if it is not "cpu"/"cuda[:N]" or not available."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device: expected 'cpu', 'cuda' or 'cuda:N', got {device!r}") from exc
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device: expected 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device: expected an available device, got {device!r} (no CUDA device found)")
    return dev


def softmax_cross_entropy(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean over the batch of -sum_k labels_k * log_softmax(logits)_k (soft labels allowed).

    ``logits`` and ``labels`` are (m, n_classes); as TF's ``softmax_cross_entropy_with_logits``
    followed by ``reduce_mean``.
    """
    return -(labels * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def build_module(params: Mapping[str, np.ndarray], spec: ModelSpec = COURSE_MODEL,
                 device: str | torch.device = "cpu") -> SignsConvNet:
    """A SignsConvNet on ``device`` holding ``params`` (dtype from params; global RNG untouched)."""
    dtype = check_params(params, spec)
    # skip_init builds on the meta device, so no random initialisation consumes torch's global RNG.
    module = torch.nn.utils.skip_init(SignsConvNet, spec, _TORCH_DTYPES[dtype], device=resolve_device(device))
    load_params_into_module(module, params)
    return module


def _as_tensor(a: np.ndarray | Tensor, device: torch.device) -> Tensor:
    """Host array -> tensor on ``device`` (zero-copy on CPU for writable C-contiguous arrays)."""
    if isinstance(a, Tensor):
        return a.to(device)
    a = np.ascontiguousarray(a)
    cpu = torch.from_numpy(a) if a.flags.writeable else torch.tensor(a)
    return cpu.to(device)


def _to_numpy(t: Tensor) -> np.ndarray:
    """Tensor -> C-contiguous NumPy copy on the host."""
    return np.array(t.detach().cpu().numpy(), order="C", copy=True)


def forward_backward(params: Mapping[str, np.ndarray], X: np.ndarray, Y: np.ndarray, *,
                     spec: ModelSpec = COURSE_MODEL, device: str | torch.device = "cpu") -> dict[str, np.ndarray]:
    """One forward and backward pass; see ``signs.backends`` for the returned keys and layouts.

    Parameters
    ----------
    params : canonical dict: W1 HWIO, W2 HWIO, W3 (n_flat, n_classes), b3 (n_classes,)
    X : (m, n_H, n_W, n_C) NHWC;  Y : (m, n_classes), one-hot or soft; same dtype as params.

    Returns
    -------
    dict with Z1 A1 P1 Z2 A2 P2 (NHWC), F (m, n_flat), Z3 (m, n_classes), "cost" (0-d), and the
    gradients of the cost dW1 dW2 (HWIO), dW3 (n_flat, n_classes), db3 (n_classes,), dX (NHWC).
    """
    check_batch(X, Y, check_params(params, spec), spec)
    module = build_module(params, spec, device)
    dev = resolve_device(device)
    with no_tf32():
        x = _as_tensor(X, dev).detach().requires_grad_(True)  # NHWC leaf, so dX arrives NHWC
        activations = module.forward_with_activations(x)
        cost = softmax_cross_entropy(activations["Z3"], _as_tensor(Y, dev))
        cost.backward()
    out = {name: _to_numpy(t) for name, t in activations.items()}
    out["cost"] = _to_numpy(cost)
    grads = state_dict_to_params({key: p.grad for key, p in module.named_parameters()}, spec, where="gradients")
    out.update({f"d{name}": grads[name] for name in PARAM_NAMES})
    out["dX"] = _to_numpy(x.grad)
    return out


def predict_logits(params: Mapping[str, np.ndarray], X: np.ndarray, *, spec: ModelSpec = COURSE_MODEL,
                   device: str | torch.device = "cpu") -> np.ndarray:
    """Logits (m, n_classes) for NHWC ``X`` (m, n_H, n_W, n_C), in the dtype of ``params``."""
    check_batch(X, None, check_params(params, spec), spec)
    module = build_module(params, spec, device)
    dev = resolve_device(device)
    with no_tf32(), torch.no_grad():
        return _to_numpy(module(_as_tensor(X, dev)))


def _make_optimizer(name: str, parameters: list[Tensor], train: TrainSpec) -> torch.optim.Optimizer:
    betas = (train.beta1, train.beta2)
    if name == "tf1":
        return TF1Adam(parameters, lr=train.learning_rate, betas=betas, eps=train.epsilon)
    if name == "torch":
        return torch.optim.Adam(parameters, lr=train.learning_rate, betas=betas, eps=train.epsilon)
    raise ValueError(f"optimizer: expected one of {OPTIMIZERS}, got {name!r}")


class Trainer:
    """Adam training of a private SignsConvNet built once from canonical ``params``.

    ``optimizer="tf1"`` (default) is TF1's update rule (:class:`torch_model.optim.TF1Adam`);
    ``"torch"`` is ``torch.optim.Adam`` with the same hyperparameters (its eps differs, see
    ``torch_model.optim``). A step moves only the batch to the device and one float back.
    """

    def __init__(self, params: Mapping[str, np.ndarray], *, train: TrainSpec = COURSE_TRAINING,
                 spec: ModelSpec = COURSE_MODEL, device: str | torch.device = "cpu",
                 optimizer: str = "tf1") -> None:
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer: expected one of {OPTIMIZERS}, got {optimizer!r}")
        self.spec, self.train, self.device = spec, train, resolve_device(device)
        self.dtype = check_params(params, spec)
        check_learning_rate(train.learning_rate, "train.learning_rate")
        self.module = build_module(params, spec, self.device)
        named = dict(self.module.named_parameters())
        self._params = {name: named[NAME_MAP[name]] for name in PARAM_NAMES}  # canonical name -> tensor
        self._shapes = param_shapes(spec)
        self.optimizer = _make_optimizer(optimizer, list(self._params.values()), train)

    def step(self, X: np.ndarray | Tensor, Y: np.ndarray | Tensor) -> float:
        """One Adam update on batch (X NHWC (m, n_H, n_W, n_C), Y (m, n_classes)); the cost before it."""
        check_batch(X, Y, self.dtype, self.spec, array_types=(np.ndarray, Tensor))
        x, y = _as_tensor(X, self.device), _as_tensor(Y, self.device)
        with no_tf32():
            self.optimizer.zero_grad(set_to_none=True)
            cost = softmax_cross_entropy(self.module(x), y)
            cost.backward()
            self.optimizer.step()
        return cost.item()

    def set_learning_rate(self, lr: float) -> None:
        """Use ``lr`` (> 0) from the next step on (e.g. a per-epoch schedule); Adam state is kept."""
        lr = check_learning_rate(lr, "lr")
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def get_params(self) -> dict[str, np.ndarray]:
        """Canonical NumPy copies of the current parameters."""
        return params_from_module(self.module)

    def get_optimizer_state(self) -> dict:
        """``{"t": int, "m": {name: array}, "v": {name: array}}`` in canonical layouts (copies)."""
        steps, m, v = set(), {}, {}
        for name, p in self._params.items():
            state = self.optimizer.state.get(p, {})
            if not state:  # before the first step: Adam's zero moments
                steps.add(0)
                m[name] = np.zeros(self._shapes[name], dtype=self.dtype)
                v[name] = np.zeros(self._shapes[name], dtype=self.dtype)
                continue
            steps.add(int(state["step"]))
            m[name] = _to_numpy(FROM_TORCH[name](state["exp_avg"]))
            v[name] = _to_numpy(FROM_TORCH[name](state["exp_avg_sq"]))
        if len(steps) != 1:
            raise ValueError(f"optimizer state: expected one step count for all parameters, got {sorted(steps)}")
        return {"t": steps.pop(), "m": m, "v": v}

    def set_optimizer_state(self, state: Mapping) -> None:
        """Restore a state from :meth:`get_optimizer_state` (or another backend's) exactly."""
        t = check_optimizer_state(state, self.dtype, self.spec)
        torch_adam = isinstance(self.optimizer, torch.optim.Adam)
        for name, p in self._params.items():
            moments = {key: TO_TORCH[name](torch.tensor(state[key][name])).to(p.device).contiguous()
                       for key in ("m", "v")}
            # torch.optim.Adam keeps ``step`` as a 0-d float tensor on the host; TF1Adam an int.
            step = torch.tensor(float(t), dtype=_adam_step_dtype()) if torch_adam else int(t)
            self.optimizer.state[p] = {"step": step, "exp_avg": moments["m"], "exp_avg_sq": moments["v"]}


def _adam_step_dtype() -> torch.dtype:
    """The dtype torch.optim.Adam uses for its ``step`` tensor (float32 unless the default is float64)."""
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32
