"""Canonical weight files: safetensors (the project's format) and ``.npz``; NumPy only.

Canonical tensors (see reference/spec.py):
  W1 (4, 4, 3, 8)  HWIO conv1 kernel
  W2 (2, 2, 8, 16) HWIO conv2 kernel
  W3 (64, 6)       dense kernel, rows in NHWC-flatten order of P2
  b3 (6,)          dense bias
Metadata (string to string): format_version, layout, dtype, source, plus anything the writer adds.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from reference.fileio import atomic_path
from reference.spec import COURSE_MODEL, PARAM_NAMES
from reference.validate import check_params

__all__ = [
    "FORMAT_VERSION",
    "LAYOUT",
    "save_safetensors",
    "load_safetensors",
    "save_npz",
    "load_npz",
]

FORMAT_VERSION = "1"
LAYOUT = "activations NHWC; conv kernels HWIO (f, f, n_C_prev, n_C); W3 (n_in, n_out) rows in NHWC-flatten order"
_METADATA_KEY = "__metadata__"  # the .npz member holding the metadata as a JSON string


def _metadata(params, metadata: dict | None, dtype: np.dtype) -> dict[str, str]:
    meta = {"format_version": FORMAT_VERSION, "layout": LAYOUT, "dtype": str(dtype), "source": "signs-parity"}
    for key, value in (metadata or {}).items():
        meta[str(key)] = value if isinstance(value, str) else json.dumps(value)
    return meta


def save_safetensors(params, path, metadata: dict | None = None, *, force: bool = False, spec=COURSE_MODEL) -> Path:
    """Write canonical ``params`` to a safetensors file, atomically. Returns the path."""
    from safetensors.numpy import save_file

    dtype = check_params(params, spec)
    tensors = {name: np.ascontiguousarray(params[name]) for name in PARAM_NAMES}
    with atomic_path(path, force=force) as tmp:
        save_file(tensors, str(tmp), metadata=_metadata(params, metadata, dtype))
    return Path(path)


def load_safetensors(path, *, spec=COURSE_MODEL) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Read a canonical safetensors file: (params, metadata). One-line errors name the file."""
    from safetensors import SafetensorError, safe_open

    path = _existing(path)
    try:
        with safe_open(str(path), framework="numpy") as f:
            metadata = dict(f.metadata() or {})
            params = {name: f.get_tensor(name) for name in f.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable safetensors file ({exc})") from exc
    check_params(params, spec, source=str(path))
    return params, metadata


def save_npz(params, path, metadata: dict | None = None, *, force: bool = False, spec=COURSE_MODEL) -> Path:
    """Write canonical ``params`` to an uncompressed ``.npz`` (no pickled objects), atomically."""
    dtype = check_params(params, spec)
    meta = np.array(json.dumps(_metadata(params, metadata, dtype)))  # 0-d unicode array: no pickle
    with atomic_path(path, force=force) as tmp:
        with open(tmp, "wb") as handle:  # a file object, so NumPy does not append ".npz" to tmp
            np.savez(handle, **{name: params[name] for name in PARAM_NAMES}, **{_METADATA_KEY: meta})
    return Path(path)


def load_npz(path, *, spec=COURSE_MODEL) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Read a canonical ``.npz``: (params, metadata), with ``allow_pickle=False``."""
    import zipfile

    path = _existing(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path}: not a readable .npz file ({exc})") from exc
    meta_array = arrays.pop(_METADATA_KEY, None)
    metadata = json.loads(str(meta_array)) if meta_array is not None else {}
    check_params(arrays, spec, source=str(path))
    return arrays, metadata


def _existing(path) -> Path:
    path = Path(os.fspath(path))
    if not path.is_file():
        raise FileNotFoundError(f"{path}: weight file not found")
    return path
