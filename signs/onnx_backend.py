"""Backend ``onnx``: the exported ONNX file run in onnxruntime (an inference runtime: forward only).

The ``signs.backends`` interface, forward half: ``forward_backward`` exports the weights with
:func:`signs.onnx_export.build_onnx_model` (``activations=True``: every activation is an output)
and returns Z1 A1 P1 Z2 A2 P2 F Z3 from an onnxruntime session; it computes no cost and no
gradients (:data:`NOT_APPLICABLE`, shown as "n/a (inference runtime)" by ``signs verify``).
``predict_logits`` runs the plain exported model (output ``logits``), the file ``signs export``
writes. Sessions are cached per weights (SHA-256), dtype, spec and device.

Providers: ``CPUExecutionProvider`` for device "cpu", ``CUDAExecutionProvider`` for "cuda" (a
ValueError when this onnxruntime build has none). float64: onnxruntime's CPU provider has no
float64 ``Conv`` kernel (:data:`UNSUPPORTED_DTYPES`), so ``signs verify`` checks onnx in float32.
Importing this module raises ImportError when onnx, onnxruntime, onnxscript or torch is missing.
"""

from __future__ import annotations

import numpy as np
import onnxruntime  # noqa: F401  (import errors here make the backend unavailable, with the reason)
import onnxscript  # noqa: F401  (needed by the dynamo exporter)
import torch  # noqa: F401  (the exporter runs the PyTorch model)

from reference.spec import ACTIVATION_NAMES, COURSE_MODEL, GRADIENT_NAMES, ModelSpec
from reference.validate import check_params
from signs.tolerances import RUNTIME_PARITY
from reference.weights_io import params_sha256
from signs.onnx_export import INPUT_NAME, OUTPUT_NAME, build_onnx_model, output_names

__all__ = ["NAME", "NOTE", "NOT_APPLICABLE", "UNSUPPORTED_DTYPES", "providers", "session",
           "forward_backward", "predict_logits", "check_against_torch"]

NAME = "onnx"
NOTE = ("the weights exported by torch.onnx.export (dynamo, opset 18) and run in onnxruntime; "
        "forward only")
# What onnx computes is declared once, in signs.tolerances.RUNTIME_PARITY["onnx"].
NOT_APPLICABLE: dict[str, str] = {
    name: "n/a (inference runtime)" for name in ("cost",) + GRADIENT_NAMES
    if name not in RUNTIME_PARITY[NAME]["names"]
}
UNSUPPORTED_DTYPES: dict[str, str] = {
    name: "onnxruntime's CPU provider has no float64 Conv kernel"
    for name in ("float64",) if name not in RUNTIME_PARITY[NAME]["dtypes"]
}
_SESSIONS: dict[tuple, object] = {}
_MAX_SESSIONS = 8


def providers(device: str) -> list[str]:
    """onnxruntime execution providers for ``device`` ("cpu" or "cuda")."""
    import onnxruntime as ort

    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device == "cuda":
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise ValueError(f"device: 'cuda' requested but this onnxruntime has no CUDAExecutionProvider "
                             f"(available: {ort.get_available_providers()}; pip install onnxruntime-gpu)")
        return ["CUDAExecutionProvider"]
    raise ValueError(f"device: expected 'cpu' or 'cuda', got {device!r}")


def session(params, *, spec: ModelSpec = COURSE_MODEL, device: str = "cpu", activations: bool = False,
            threads: int | None = None):
    """A cached onnxruntime InferenceSession of the exported model holding ``params``."""
    import onnxruntime as ort

    dtype = check_params(params, spec)
    if dtype.name in UNSUPPORTED_DTYPES and device == "cpu":
        raise ValueError(f"params: {dtype.name} is not supported by onnx on the CPU: "
                         f"{UNSUPPORTED_DTYPES[dtype.name]}")
    key = (params_sha256(params), spec, device, activations, threads)
    if key not in _SESSIONS:
        model = build_onnx_model(params, spec, activations=activations)
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        if len(_SESSIONS) >= _MAX_SESSIONS:
            _SESSIONS.pop(next(iter(_SESSIONS)))
        _SESSIONS[key] = ort.InferenceSession(model.SerializeToString(), options, providers=providers(device))
    return _SESSIONS[key]


def _check_X(X, spec: ModelSpec, dtype: np.dtype) -> None:
    if not isinstance(X, np.ndarray) or X.ndim != 4 or X.shape[1:] != spec.input_shape:
        got = getattr(X, "shape", type(X).__name__)
        raise ValueError(f"X: expected a NumPy array of shape (m, {', '.join(map(str, spec.input_shape))}) "
                         f"NHWC, got {got}")
    if X.dtype != dtype:
        raise ValueError(f"X: expected dtype {dtype} (the params' dtype), got {X.dtype}")


def forward_backward(params, X, Y=None, *, spec: ModelSpec = COURSE_MODEL,
                     device: str = "cpu") -> dict[str, np.ndarray]:
    """The forward quantities Z1 A1 P1 Z2 A2 P2 F (NHWC) and Z3 (m, 6) from onnxruntime.

    ``Y`` is accepted for the interface and unused: no cost, no gradients (:data:`NOT_APPLICABLE`).
    """
    dtype = check_params(params, spec)
    _check_X(X, spec, dtype)
    outputs = session(params, spec=spec, device=device, activations=True).run(None, {INPUT_NAME: X})
    named = dict(zip(output_names(True), outputs))
    return {name: named[OUTPUT_NAME if name == "Z3" else name] for name in ACTIVATION_NAMES}


def predict_logits(params, X, *, spec: ModelSpec = COURSE_MODEL, device: str = "cpu",
                   threads: int | None = None) -> np.ndarray:
    """Logits (m, 6) of X (m, 64, 64, 3) NHWC from the plain exported model in onnxruntime."""
    dtype = check_params(params, spec)
    _check_X(X, spec, dtype)
    run = session(params, spec=spec, device=device, threads=threads)
    return run.run([OUTPUT_NAME], {INPUT_NAME: X})[0]


def check_against_torch(path, params, *, n: int = 8, seed: int = 0, spec: ModelSpec = COURSE_MODEL) -> float:
    """Run the ONNX file ``path`` in onnxruntime on ``n`` seeded U[0, 1) images; compare its logits
    with the PyTorch model's. Returns the relative error; ValueError above the Z3 tolerance."""
    import onnxruntime as ort

    from signs.tolerances import onnx_tolerance, relative_error
    from torch_model.backend import predict_logits as torch_logits

    dtype = check_params(params, spec)
    X = np.random.RandomState(seed).rand(n, *spec.input_shape).astype(dtype)
    file_session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ours = file_session.run([OUTPUT_NAME], {INPUT_NAME: X})[0]
    worst = relative_error(ours, torch_logits(params, X, spec=spec))
    tolerance = onnx_tolerance("Z3", dtype)
    if worst > tolerance:
        raise ValueError(f"{path}: onnxruntime logits differ from PyTorch's by {worst:.2e} "
                         f"(relative), above the tolerance {tolerance:g}")
    return worst
