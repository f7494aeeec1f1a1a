"""Export the course model with given weights as an ONNX file (``signs export``).

Exporter: ``torch.onnx.export(..., dynamo=True)`` from the project's own PyTorch model
(``torch_model``), the exporter PyTorch maintains (the TorchScript exporter, ``dynamo=False``, is
deprecated since torch 2.9; tf2onnx has no release for TensorFlow 2.21 / Keras 3 and does not read
Keras 3 models). It needs ``onnxscript`` (the ``onnx`` extra installs it). With torch 2.13 it
emits opset 18 natively; asking it for opset 17 runs a version converter that fails on ``Pad``
here, so the file is opset 18 (:data:`OPSET`).

The file: input ``input``, NHWC (batch, 64, 64, 3) with a dynamic batch, float32 (or float64),
pixels / 255 as every model in the project takes them; output ``logits`` (batch, 6). With
``activations=True`` (what ``signs verify`` runs) the outputs are every activation Z1 A1 P1 Z2 A2
P2 F (NHWC) and ``logits`` (= Z3). Metadata (``metadata_props``): the canonical weights' SHA-256
(:func:`reference.weights_io.params_sha256`), the weight file's SHA-256 when there is one, the model spec as JSON, the
exporter and its version. The file is validated with ``onnx.checker.check_model(full_check=True)``
and written atomically.

onnxruntime's CPU provider has no float64 ``Conv`` kernel (onnxruntime 1.32), so a float64 file
is valid ONNX but runs only where a provider implements double convolutions.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import warnings
from pathlib import Path

import numpy as np

from reference.spec import ACTIVATION_NAMES, COURSE_MODEL, ModelSpec
from reference.validate import check_params
from reference.weights_io import params_sha256

__all__ = [
    "OPSET",
    "INPUT_NAME",
    "OUTPUT_NAME",
    "EXPORTER",
    "file_sha256",
    "export_metadata",
    "build_onnx_model",
    "export_onnx",
]

OPSET = 18
INPUT_NAME = "input"
OUTPUT_NAME = "logits"
EXPORTER = "torch.onnx.export(dynamo=True)"


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes (a TF1 checkpoint prefix has no single file: use its .index)."""
    path = Path(path)
    if not path.is_file() and Path(f"{path}.index").is_file():
        path = Path(f"{path}.index")
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def export_metadata(params: dict[str, np.ndarray], spec: ModelSpec = COURSE_MODEL,
                    weights_file: str | os.PathLike | None = None) -> dict[str, str]:
    """The ``metadata_props`` of an exported file (all values strings)."""
    import torch

    metadata = {
        "signs.weights_sha256": params_sha256(params),
        "signs.model_spec": json.dumps(dataclasses.asdict(spec), sort_keys=True),
        "signs.input": f"{INPUT_NAME}: NHWC (batch, {', '.join(map(str, spec.input_shape))}), pixels / 255",
        "signs.output": f"{OUTPUT_NAME}: (batch, {spec.n_classes}), pre-softmax",
        "signs.exporter": f"{EXPORTER}, torch {torch.__version__}",
    }
    if weights_file is not None:
        metadata["signs.weights_file"] = Path(weights_file).name
        metadata["signs.weights_file_sha256"] = file_sha256(weights_file)
    return metadata


def _activation_module(net):
    """A torch module around SignsConvNet ``net`` returning (Z1 A1 P1 Z2 A2 P2 F, Z3) (NHWC)."""
    import torch

    class Activations(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            outputs = self.inner.forward_with_activations(x)
            return tuple(outputs[name] for name in ACTIVATION_NAMES)

    return Activations(net)


def output_names(activations: bool) -> list[str]:
    """``["logits"]``, or the activation names with ``logits`` in place of Z3."""
    if not activations:
        return [OUTPUT_NAME]
    return [OUTPUT_NAME if name == "Z3" else name for name in ACTIVATION_NAMES]


def build_onnx_model(params: dict[str, np.ndarray], spec: ModelSpec = COURSE_MODEL, *,
                     activations: bool = False, metadata: dict[str, str] | None = None):
    """The ``onnx.ModelProto`` of the course model holding ``params`` (dtype from params), checked."""
    import onnx
    import torch

    from torch_model.backend import build_module

    check_params(params, spec)
    net = build_module(params, spec).eval()
    module = _activation_module(net) if activations else net
    example = torch.zeros((2, *spec.input_shape), dtype=net.dtype)
    with warnings.catch_warnings(), _quiet_exporter_logs():
        warnings.simplefilter("ignore")  # the exporter's deprecation and pytree notices
        program = torch.onnx.export(
            module, (example,), None, input_names=[INPUT_NAME], output_names=output_names(activations),
            opset_version=OPSET, dynamo=True, verbose=False, optimize=True,
            dynamic_shapes={"x": {0: torch.export.Dim("batch")}},
        )
    model = program.model_proto
    onnx.helper.set_model_props(model, metadata or export_metadata(params, spec))
    onnx.checker.check_model(model, full_check=True)
    return model


@contextlib.contextmanager
def _quiet_exporter_logs():
    """Lower the exporter's loggers to ERROR meanwhile (it logs a line per missing torchvision op)."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "onnxscript")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def export_onnx(params: dict[str, np.ndarray], out: str | os.PathLike, *, spec: ModelSpec = COURSE_MODEL,
                weights_file: str | os.PathLike | None = None, force: bool = False,
                activations: bool = False) -> Path:
    """Write the course model with ``params`` to ``out`` (atomic; FileExistsError unless ``force``).

    ``params``' dtype (float32 or float64) is the file's. Returns the path written.
    """
    from reference.fileio import atomic_path, check_writable

    out = check_writable(out, force)  # refuse before spending seconds on the export
    if not out.name.endswith(".onnx"):
        raise ValueError(f"OUT: expected a file name ending in .onnx, got {out.name!r}")
    model = build_onnx_model(params, spec, activations=activations,
                             metadata=export_metadata(params, spec, weights_file))
    with atomic_path(out, force=force) as tmp:
        tmp.write_bytes(model.SerializeToString())
    return out
