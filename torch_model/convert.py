"""Canonical parameters <-> PyTorch state dicts (Hugging Face style: a name map plus one layout
function per tensor).

Canonical (``reference.spec``)           PyTorch state dict (``SignsConvNet``)
  W1 HWIO (f, f, n_C0, n_C1)       <->     features.conv1.weight   OIHW (n_C1, n_C0, f, f)
  W2 HWIO (f, f, n_C1, n_C2)       <->     features.conv2.weight   OIHW (n_C2, n_C1, f, f)
  W3 (n_flat, n_classes)           <->     classifier.dense.weight (n_classes, n_flat) = W3.T
  b3 (n_classes,)                  <->     classifier.dense.bias   (n_classes,)

Every conversion moves data only (permute + contiguous copy), so round trips are bitwise exact.
Nothing is ever reshaped, squeezed or cast to make it fit: a missing or unexpected key, a wrong
shape or a wrong dtype raises :class:`StateDictMismatch` (a ``ValueError``) whose one-line message
names the tensor, what was expected and what was got, and whose ``report`` lists them all.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import torch
from torch import Tensor, nn

from reference.fileio import atomic_path
from reference.validate import check_finite
from reference.weights_io import existing_file
from reference.spec import COURSE_MODEL, PARAM_NAMES, ModelSpec, param_shapes
from torch_model.ops import dense_kernel_from_torch, dense_kernel_to_torch, hwio_to_oihw, oihw_to_hwio

__all__ = [
    "NAME_MAP",
    "TO_TORCH",
    "FROM_TORCH",
    "LoadReport",
    "StateDictMismatch",
    "check_params",
    "check_state_dict",
    "params_to_state_dict",
    "state_dict_to_params",
    "load_params_into_module",
    "params_from_module",
    "save_state_dict",
    "load_state_dict_file",
]

_M = COURSE_MODEL
# Canonical name -> state-dict key of SignsConvNet (its Sequential children take the spec's names).
NAME_MAP: dict[str, str] = {
    "W1": f"features.{_M.conv1.name}.weight",
    "W2": f"features.{_M.conv2.name}.weight",
    "W3": f"classifier.{_M.dense_name}.weight",
    "b3": f"classifier.{_M.dense_name}.bias",
}
# One layout move per tensor, canonical -> torch and back (the permutes live in torch_model.ops).


def _same_layout(t: Tensor) -> Tensor:
    """The dense bias (n_classes,) has one layout in both frameworks."""
    return t


TO_TORCH: dict[str, Callable[[Tensor], Tensor]] = {
    "W1": hwio_to_oihw, "W2": hwio_to_oihw, "W3": dense_kernel_to_torch, "b3": _same_layout,
}
FROM_TORCH: dict[str, Callable[[Tensor], Tensor]] = {
    "W1": oihw_to_hwio, "W2": oihw_to_hwio, "W3": dense_kernel_from_torch, "b3": _same_layout,
}
_DTYPES = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}


def _numpy_dtype_name(a: np.ndarray) -> str:
    """'float32'/'float64' for native arrays; byte-swapped ones show as e.g. '>f4' (rejected)."""
    return a.dtype.name if a.dtype.isnative else a.dtype.str


def _torch_dtype_name(t: Tensor) -> str:
    return str(t.dtype).removeprefix("torch.")


def _canonical_tensor(name: str, a: np.ndarray) -> Tensor:
    """Canonical NumPy array -> CPU tensor in torch layout (a fresh contiguous copy, bitwise)."""
    return TO_TORCH[name](torch.tensor(a)).contiguous()


@dataclass
class LoadReport:
    """What did not match, Hugging Face style (empty lists: everything matched)."""

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)  # "key: expected ..., got ..."

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def summary(self) -> str:
        parts = [f"missing key {k!r}" for k in self.missing]
        parts += [f"unexpected key {k!r}" for k in self.unexpected]
        parts += self.mismatched
        return "; ".join(parts)


class StateDictMismatch(ValueError):
    """Keys, shapes or dtypes do not match; ``report`` holds the full :class:`LoadReport`."""

    def __init__(self, where: str, report: LoadReport) -> None:
        super().__init__(f"{where}: {report.summary()}")
        self.report = report


def _expected_torch_shapes(spec: ModelSpec) -> dict[str, tuple[int, ...]]:
    """State-dict key -> torch shape, derived from the canonical shapes by the layout moves."""
    shapes = param_shapes(spec)
    return {NAME_MAP[n]: tuple(TO_TORCH[n](torch.empty(shapes[n], device="meta")).shape) for n in PARAM_NAMES}


def _compare(tensors: Mapping[str, object], expected: Mapping[str, tuple[int, ...]],
             dtype_of: Callable[[object], object], kind: type, what: str) -> LoadReport:
    """Report keys, types, shapes and the one shared float dtype of ``tensors`` against ``expected``."""
    report = LoadReport(
        missing=[k for k in expected if k not in tensors],
        unexpected=[k for k in tensors if k not in expected],
    )
    dtypes = set()
    for key in expected:
        if key not in tensors:
            continue
        value = tensors[key]
        if not isinstance(value, kind):
            report.mismatched.append(f"{key}: expected a {what}, got {type(value).__name__}")
            continue
        if tuple(value.shape) != expected[key]:
            report.mismatched.append(f"{key}: expected shape {expected[key]}, got {tuple(value.shape)}")
        dtypes.add(dtype_of(value))
        if dtype_of(value) not in ("float32", "float64"):
            report.mismatched.append(f"{key}: expected dtype float32 or float64, got {dtype_of(value)}")
    if len(dtypes) > 1:
        report.mismatched.append(f"dtypes: expected one dtype for all tensors, got {sorted(dtypes)}")
    return report


def check_params(params: Mapping[str, np.ndarray], spec: ModelSpec = COURSE_MODEL) -> np.dtype:
    """Validate canonical ``params``; return their shared dtype (float32 or float64)."""
    if not isinstance(params, Mapping):
        raise ValueError(f"params: expected a dict of NumPy arrays, got {type(params).__name__}")
    report = _compare(params, param_shapes(spec), _numpy_dtype_name, np.ndarray, "NumPy array")
    if not report.ok:
        raise StateDictMismatch("params", report)
    return params["W1"].dtype


def check_state_dict(state_dict: Mapping[str, Tensor], spec: ModelSpec = COURSE_MODEL) -> LoadReport:
    """Compare a state dict with what ``SignsConvNet(spec)`` expects; never raises on a mismatch."""
    return _compare(state_dict, _expected_torch_shapes(spec),
                    _torch_dtype_name, Tensor, "torch.Tensor")


def params_to_state_dict(params: Mapping[str, np.ndarray],
                         spec: ModelSpec = COURSE_MODEL) -> dict[str, Tensor]:
    """Canonical NumPy params -> CPU state dict (contiguous copies, bitwise exact)."""
    check_params(params, spec)
    return {NAME_MAP[n]: _canonical_tensor(n, params[n]) for n in PARAM_NAMES}


def state_dict_to_params(state_dict: Mapping[str, Tensor],
                         spec: ModelSpec = COURSE_MODEL, where: str = "state_dict") -> dict[str, np.ndarray]:
    """State dict (any device) -> canonical NumPy params (C-contiguous copies, bitwise exact)."""
    if not isinstance(state_dict, Mapping):
        raise ValueError(f"{where}: expected a dict of tensors, got {type(state_dict).__name__}")
    report = check_state_dict(state_dict, spec)
    if not report.ok:
        raise StateDictMismatch(where, report)
    return {n: np.ascontiguousarray(FROM_TORCH[n](state_dict[NAME_MAP[n]].detach().cpu()).numpy()).copy()
            for n in PARAM_NAMES}


def load_params_into_module(module: nn.Module, params: Mapping[str, np.ndarray]) -> None:
    """Copy canonical ``params`` into ``module`` (a SignsConvNet) in place; dtypes must match."""
    spec = getattr(module, "spec", COURSE_MODEL)
    dtype = check_params(params, spec)
    own = dict(module.named_parameters())
    report = _compare(own, _expected_torch_shapes(spec), _torch_dtype_name, Tensor, "torch.Tensor")
    if not report.ok:
        raise StateDictMismatch("module", report)
    want = own[NAME_MAP["W1"]].dtype
    if _DTYPES[np.dtype(dtype)] != want:
        raise ValueError(f"params: expected dtype {_torch_dtype_name(own[NAME_MAP['W1']])} (the module's), got {dtype}")
    with torch.no_grad():
        for name in PARAM_NAMES:
            own[NAME_MAP[name]].copy_(_canonical_tensor(name, params[name]))


def params_from_module(module: nn.Module) -> dict[str, np.ndarray]:
    """Canonical NumPy params (copies) of a SignsConvNet."""
    return state_dict_to_params(module.state_dict(), getattr(module, "spec", COURSE_MODEL), where="module")


def save_state_dict(params: Mapping[str, np.ndarray], path: str | os.PathLike, force: bool = False,
                    spec: ModelSpec = COURSE_MODEL) -> Path:
    """Write canonical ``params`` as a PyTorch state-dict file (``torch.save``), atomically.

    Reproducible: ``torch.save`` names the zip's root folder after a file *name* (here the random
    temporary one) but ``archive`` for an open handle, so it is given a handle.
    """
    state_dict = params_to_state_dict(params, spec)
    with atomic_path(path, force=force) as tmp:
        with open(tmp, "wb") as handle:
            try:
                torch.save(state_dict, handle)
            except RuntimeError as exc:  # torch reports a failed write (a full disk) as RuntimeError
                raise OSError(f"torch.save failed: {' '.join(str(exc).split())}") from exc
    return Path(path)


def _load_error_reason(exc: BaseException) -> str:
    """The informative part of a ``torch.load`` error, whole (never cut mid-sentence).

    ``weights_only`` refusals open with generic advice (including "re-run with weights_only=False",
    which would execute the file's code) and put the actual reason after "WeightsUnpickler error:";
    other errors say it on their first line.
    """
    text = str(exc)
    marker = "WeightsUnpickler error:"
    if marker in text:
        reason = text.split(marker, 1)[1].split("Check the documentation", 1)[0]
        return f"weights_only refused it: {' '.join(reason.split())}"
    first_line = next((line for line in text.splitlines() if line.strip()), "")
    return f"{type(exc).__name__}: {' '.join(first_line.split())}".rstrip(": ")


def load_state_dict_file(
    path: str | os.PathLike, spec: ModelSpec = COURSE_MODEL, *, allow_nonfinite: bool = False
) -> dict[str, np.ndarray]:
    """Read a state-dict file written by :func:`save_state_dict` (or by a SignsConvNet) as params.

    Loaded with ``weights_only=True`` (no pickled code runs). NaN or inf is refused
    (``reference.weights_io.check_finite``) unless ``allow_nonfinite``.
    """
    path = existing_file(path, "PyTorch state-dict file")
    try:
        with warnings.catch_warnings():  # a damaged file can also warn ("pickle protocol 34"): the error says it
            warnings.simplefilter("ignore")
            state_dict = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as exc:  # torch.load raises RuntimeError, EOFError, KeyError, UnpicklingError...
        raise ValueError(
            f"{path}: expected a PyTorch state-dict file, got an unreadable one ({_load_error_reason(exc)})"
        ) from exc
    params = state_dict_to_params(state_dict, spec, where=str(path))
    if not allow_nonfinite:
        check_finite(params, source=str(path))
    return params
