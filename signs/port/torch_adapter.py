"""Run a user's ``torch.nn.Module`` and record what it computes (:class:`CandidateRun`).

Every torch function the module calls, inside its own ``forward`` too (``F.relu``,
``F.max_pool2d``, ``x.flatten``, ``x @ w``), passes through a :class:`torch.overrides.TorchFunctionMode`
while the forward runs: it records the order in which the module first uses each parameter and a
copy of every floating-point result whose shape could be one of the course's activations (copied
at once, so an in-place ``relu_`` does not overwrite the conv output already recorded).

Layouts: conv kernels OIHW and ``Linear.weight`` (out, in), moved to canonical with the functions
of ``torch_model.ops`` (the project's one copy of each transpose); activations NCHW unless the
module permutes them itself. The input layout is found by trying NCHW, then NHWC.
"""

from __future__ import annotations

import copy
import warnings
from collections import Counter
from typing import Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

from reference.spec import COURSE_MODEL, COURSE_TRAINING, ModelSpec, TrainSpec, activation_shapes
from signs.port.capture import CandidateParam, CandidateRun, Captured, StepsRun
from signs.port.load import call_user
from signs.port.mapping import Layouts, kind_from_words
from torch_model.backend import resolve_device
from torch_model.ops import (dense_kernel_from_torch, dense_kernel_to_torch, hwio_to_oihw,
                             nchw_to_nhwc, nhwc_to_nchw, no_tf32, oihw_to_hwio)

__all__ = ["TORCH_LAYOUTS", "TorchCandidate", "to_nhwc", "torch_settings"]

_DTYPES = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}


def _on_numpy(move: Callable[[Tensor], Tensor]) -> Callable[[np.ndarray], np.ndarray]:
    """A ``torch_model.ops`` layout move applied to a NumPy array (a contiguous copy)."""
    return lambda a: move(torch.from_numpy(np.ascontiguousarray(a))).contiguous().numpy().copy()


TORCH_LAYOUTS = Layouts(
    "OIHW", _on_numpy(oihw_to_hwio), _on_numpy(hwio_to_oihw),
    "(out, in)", _on_numpy(dense_kernel_from_torch), _on_numpy(dense_kernel_to_torch),
)
to_nhwc = _on_numpy(nchw_to_nhwc)  # NCHW (m, C, H, W) -> NHWC (m, H, W, C)
_to_nchw = _on_numpy(nhwc_to_nchw)


def torch_settings(device: torch.device) -> dict:
    """The framework facts that decide float32 numbers: the device and the TF32 switches."""
    return {
        "framework": "torch",
        "device": str(device),
        "cuda": device.type == "cuda",
        "torch.backends.cuda.matmul.allow_tf32": bool(torch.backends.cuda.matmul.allow_tf32),
        "torch.backends.cudnn.allow_tf32": bool(torch.backends.cudnn.allow_tf32),
        "torch.get_float32_matmul_precision": torch.get_float32_matmul_precision(),
    }


class _Recorder(TorchFunctionMode):
    """Records parameter first use and the results of every torch call during a forward pass."""

    def __init__(self, parameter_names: Mapping[int, str], shapes: set[tuple[int, ...]],
                 module_stack: list[str]) -> None:
        super().__init__()
        self.parameter_names = parameter_names
        self.shapes = shapes
        self.module_stack = module_stack
        self.first_use: dict[str, int] = {}
        self.captured: list[Captured] = []
        self.calls: Counter = Counter()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        for value in (*args, *kwargs.values()):
            name = self.parameter_names.get(id(value))
            if name is not None and name not in self.first_use:
                self.first_use[name] = len(self.first_use)
        out = func(*args, **kwargs)
        if isinstance(out, Tensor) and out.is_floating_point() and tuple(out.shape) in self.shapes:
            op = getattr(func, "__name__", type(func).__name__)
            self.calls[op] += 1
            where = f" in {self.module_stack[-1]}" if self.module_stack else ""
            self.captured.append(Captured(
                f"{op} #{self.calls[op]}{where}", out.detach().cpu().numpy().copy(),
                kind=kind_from_words(op)))
        return out


def _call(module: nn.Module, x: Tensor):
    """``module(x)``; what the user's forward raises becomes a one-line ValueError."""
    with warnings.catch_warnings():
        # torch warns that padding="same" with an even kernel copies the input: true, and nothing
        # the user must act on here.
        warnings.filterwarnings("ignore", message="Using padding='same'")
        return call_user(module, (x,), "candidate")


def _push(stack: list[str], label: str):
    """A forward pre-hook that records entering a submodule (returns None: input unchanged)."""
    def hook(*_):
        stack.append(label)
    return hook


def _pop(stack: list[str]):
    """A forward hook that records leaving a submodule (returns None: output unchanged)."""
    def hook(*_):
        stack.pop()
    return hook


def _candidate_shapes(spec: ModelSpec, m: int) -> set[tuple[int, ...]]:
    """Every activation shape of the course net, NHWC and NCHW (what is worth copying)."""
    shapes = set()
    for shape in activation_shapes(spec, m).values():
        shapes.add(shape)
        if len(shape) == 4:
            shapes.add((shape[0], shape[3], shape[1], shape[2]))
    return shapes


class TorchCandidate:
    """A ``torch.nn.Module`` port of the course net, run on canonical NumPy inputs.

    Parameters
    ----------
    module : the user's module (not modified: each dtype runs on a deep copy)
    loss : ``loss(output, labels)`` -> scalar tensor, labels one-hot (m, 6) in the module's dtype;
        None: ``F.cross_entropy(output, labels.argmax(1))``, mean over the batch
    optimizer : ``optimizer(module)`` -> a torch optimizer; None: ``torch.optim.Adam`` with the
        course's lr, betas and epsilon
    """

    framework = "torch"
    layouts = TORCH_LAYOUTS

    def __init__(self, module: nn.Module, *, loss: Callable | None = None,
                 optimizer: Callable | None = None, device: str = "cpu",
                 spec: ModelSpec = COURSE_MODEL) -> None:
        self.original = module
        self.loss_fn = loss
        self.optimizer_fn = optimizer
        self.device = resolve_device(device)
        self.spec = spec
        self.input_layout: str | None = None
        self._copies: dict[np.dtype, nn.Module] = {}

    def to_nhwc(self, a: np.ndarray) -> np.ndarray:
        return to_nhwc(a)

    def tf32_off(self):
        """A context in which torch computes float32 convs and matmuls in IEEE float32."""
        return no_tf32()

    def _module(self, dtype) -> nn.Module:
        """A deep copy of the user's module in ``dtype`` on the device (one per dtype)."""
        dtype = np.dtype(dtype)
        if dtype not in self._copies:
            self._copies[dtype] = copy.deepcopy(self.original).to(device=self.device,
                                                                  dtype=_DTYPES[dtype])
        return self._copies[dtype]

    def own_weights(self) -> dict[str, np.ndarray]:
        """The parameters the user's module holds now, float64 copies, its names and layouts."""
        return {n: p.detach().cpu().double().numpy().copy()
                for n, p in self.original.named_parameters()}

    # -------------------------------------------------------------------------------- running
    def _input(self, X: np.ndarray, layout: str, dtype, requires_grad: bool = False) -> Tensor:
        fed = _to_nchw(X) if layout == "NCHW" else np.ascontiguousarray(X)
        x = torch.tensor(fed, dtype=_DTYPES[np.dtype(dtype)], device=self.device)
        return x.requires_grad_(requires_grad)

    def _forward(self, module: nn.Module, x: Tensor, m: int) -> tuple[Tensor, _Recorder]:
        """``module(x)`` with every call recorded; the module path of each call in its label."""
        names = {id(p): n for n, p in module.named_parameters()}
        stack: list[str] = []
        recorder = _Recorder(names, _candidate_shapes(self.spec, m), stack)
        handles = []
        for path, sub in module.named_modules():
            if path:
                label = f"{path} ({type(sub).__name__})"
                handles.append(sub.register_forward_pre_hook(_push(stack, label)))
                handles.append(sub.register_forward_hook(_pop(stack)))
        try:
            with recorder:
                out = _call(module, x)
        finally:
            for handle in handles:
                handle.remove()
        return out, recorder

    def _check_output(self, out: object, m: int) -> Tensor:
        if not isinstance(out, Tensor) or tuple(out.shape) != (m, self.spec.n_classes):
            got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
            raise ValueError(f"candidate: expected the module to return a tensor of shape "
                             f"({m}, {self.spec.n_classes}) (logits, or probabilities), got {got}")
        return out

    def detect_layout(self, X: np.ndarray, dtype) -> str:
        """"NCHW" or "NHWC": the first input layout the module accepts with a (m, 6) output."""
        if self.input_layout is not None:
            return self.input_layout
        module, errors = self._module(dtype), []
        for layout in ("NCHW", "NHWC"):
            try:
                with torch.no_grad():
                    self._check_output(_call(module, self._input(X, layout, dtype)), X.shape[0])
            except (RuntimeError, ValueError, TypeError, IndexError) as exc:
                errors.append(f"{layout}: {(str(exc).splitlines() or [''])[0][:160]}")
                continue
            self.input_layout = layout
            return layout
        raise ValueError("candidate: the module accepts neither an NCHW nor an NHWC batch of shape "
                         f"{X.shape[1:]} images: " + "; ".join(errors))

    def parameters(self, X: np.ndarray, dtype) -> list[CandidateParam]:
        """The module's parameters with the order of their first use in a forward pass."""
        module = self._module(dtype)
        layout = self.detect_layout(X, dtype)
        with torch.no_grad():
            _, recorder = self._forward(module, self._input(X, layout, dtype), X.shape[0])
        return [CandidateParam(n, p.detach().cpu().numpy().copy(), recorder.first_use.get(n, -1))
                for n, p in module.named_parameters()]

    def _load(self, module: nn.Module, params: Mapping[str, np.ndarray]) -> None:
        own = dict(module.named_parameters())
        with torch.no_grad():
            for name, value in params.items():
                own[name].copy_(torch.from_numpy(np.ascontiguousarray(value)))

    def _loss(self, out: Tensor, Y: Tensor) -> Tensor:
        if self.loss_fn is None:
            return F.cross_entropy(out, Y.argmax(dim=1))
        loss = call_user(self.loss_fn, (out, Y), "--loss")
        if not isinstance(loss, Tensor) or loss.dim() != 0:
            raise ValueError(f"--loss: expected a scalar tensor, got "
                             f"{getattr(loss, 'shape', type(loss).__name__)}")
        return loss

    def run(self, params: Mapping[str, np.ndarray], X: np.ndarray, Y: np.ndarray,
            dtype) -> CandidateRun:
        """One forward and backward pass with ``params`` (candidate names and layouts).

        X : (m, H, W, 3) NHWC, Y : (m, 6) one-hot; cast to ``dtype``.
        """
        module = self._module(dtype)
        self._load(module, params)
        layout = self.detect_layout(X, dtype)
        x = self._input(X, layout, dtype, requires_grad=True)
        y = torch.tensor(Y, dtype=_DTYPES[np.dtype(dtype)], device=self.device)
        module.zero_grad(set_to_none=True)
        out, recorder = self._forward(module, x, X.shape[0])
        out = self._check_output(out, X.shape[0])
        loss = self._loss(out, y)
        loss.backward()
        named = dict(module.named_parameters())
        grads = {n: (np.zeros(tuple(p.shape), dtype=dtype) if p.grad is None
                     else p.grad.detach().cpu().numpy().copy()) for n, p in named.items()}
        return CandidateRun(
            framework="torch", input_layout=layout,
            params=[CandidateParam(n, p.detach().cpu().numpy().copy(), recorder.first_use.get(n, -1))
                    for n, p in named.items()],
            captured=recorder.captured, output=out.detach().cpu().numpy().copy(),
            loss=float(loss.detach().cpu()), param_grads=grads,
            input_grad=None if x.grad is None else x.grad.detach().cpu().numpy().copy(),
            settings=torch_settings(self.device),
        )

    def _optimizer(self, module: nn.Module, train: TrainSpec):
        if self.optimizer_fn is None:
            return torch.optim.Adam(module.parameters(), lr=train.learning_rate,
                                    betas=(train.beta1, train.beta2), eps=train.epsilon)
        optimizer = call_user(self.optimizer_fn, (module,), "--optimizer")
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise ValueError(f"--optimizer: expected a torch.optim.Optimizer, got "
                             f"{type(optimizer).__name__}")
        return optimizer

    def steps(self, params: Mapping[str, np.ndarray], batches: Sequence[tuple[np.ndarray, np.ndarray]],
              dtype, train: TrainSpec = COURSE_TRAINING) -> StepsRun:
        """K optimizer steps from ``params`` on ``batches`` (NHWC X, one-hot Y), a fresh copy."""
        module = copy.deepcopy(self._module(dtype))
        self._load(module, params)
        optimizer = self._optimizer(module, train)
        layout = self.detect_layout(batches[0][0], dtype)
        after, losses = [], []
        for X, Y in batches:
            optimizer.zero_grad(set_to_none=True)
            out = self._check_output(_call(module, self._input(X, layout, dtype)), X.shape[0])
            loss = self._loss(out, torch.tensor(Y, dtype=_DTYPES[np.dtype(dtype)], device=self.device))
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach().cpu()))
            after.append({n: p.detach().cpu().numpy().copy() for n, p in module.named_parameters()})
        return StepsRun(after, losses)
