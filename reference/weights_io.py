"""Canonical weight files: safetensors (the project's format) and ``.npz``; NumPy only.

Canonical tensors (see reference/spec.py):
  W1 (4, 4, 3, 8)  HWIO conv1 kernel
  W2 (2, 2, 8, 16) HWIO conv2 kernel
  W3 (64, 6)       dense kernel, rows in NHWC-flatten order of P2
  b3 (6,)          dense bias
Metadata (string to string): format_version, layout, dtype, source, plus anything the writer adds.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from reference.fileio import NPZ_READ_ERRORS, atomic_path, read_npz, write_npz
from reference.messages import one_line
from reference.spec import COURSE_MODEL, PARAM_NAMES
from reference.validate import check_finite, check_params

__all__ = [
    "FORMAT_VERSION",
    "LAYOUT",
    "existing_file",
    "params_sha256",
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


_SAFETENSORS_DTYPES = {np.dtype(np.float32): "F32", np.dtype(np.float64): "F64"}


def _safetensors_bytes(tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> bytes:
    """A safetensors file's bytes, always the same for the same tensors and metadata.

    The layout (https://huggingface.co/docs/safetensors): an 8-byte little-endian header length,
    a JSON header (``__metadata__`` and, per tensor, dtype, shape and data offsets) padded with
    spaces to a multiple of 8, then the tensors' little-endian C-order bytes back to back. Written
    here rather than by ``safetensors.numpy.save_file``, whose header order varies between runs.
    """
    header: dict[str, object] = {"__metadata__": dict(sorted(metadata.items()))}
    chunks, offset = [], 0
    for name, value in tensors.items():
        data = np.ascontiguousarray(value, dtype=value.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": _SAFETENSORS_DTYPES[value.dtype], "shape": list(value.shape),
                        "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + b"".join(chunks)


def save_safetensors(params, path, metadata: dict | None = None, *, force: bool = False, spec=COURSE_MODEL) -> Path:
    """Write canonical ``params`` to a safetensors file, atomically and reproducibly. Returns the path."""
    dtype = check_params(params, spec)
    tensors = {name: params[name] for name in PARAM_NAMES}
    data = _safetensors_bytes(tensors, _metadata(params, metadata, dtype))
    with atomic_path(path, force=force) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def load_safetensors(
    path, *, spec=COURSE_MODEL, allow_nonfinite: bool = False
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Read a canonical safetensors file: (params, metadata). One-line errors name the file.

    NaN or inf in a tensor is refused (:func:`check_finite`) unless ``allow_nonfinite``.
    """
    from safetensors import SafetensorError, safe_open

    path = existing_file(path)
    try:
        with safe_open(str(path), framework="numpy") as f:
            metadata = dict(f.metadata() or {})
            params = {name: f.get_tensor(name) for name in f.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable safetensors file ({exc})") from exc
    check_params(params, spec, source=str(path))
    if not allow_nonfinite:
        check_finite(params, source=str(path))
    return params, metadata


def save_npz(params, path, metadata: dict | None = None, *, force: bool = False, spec=COURSE_MODEL) -> Path:
    """Write canonical ``params`` to an uncompressed ``.npz`` (no pickled objects), atomically and
    reproducibly (same params and metadata, same bytes)."""
    dtype = check_params(params, spec)
    meta = np.array(json.dumps(_metadata(params, metadata, dtype)))  # 0-d unicode array: no pickle
    with atomic_path(path, force=force) as tmp:
        with open(tmp, "wb") as handle:  # a file object, so NumPy does not append ".npz" to tmp
            write_npz(handle, {**{name: params[name] for name in PARAM_NAMES}, _METADATA_KEY: meta})
    return Path(path)


def load_npz(
    path, *, spec=COURSE_MODEL, allow_nonfinite: bool = False
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Read a canonical ``.npz``: (params, metadata), with ``allow_pickle=False``.

    NaN or inf in a tensor is refused (:func:`check_finite`) unless ``allow_nonfinite``.
    """
    path = existing_file(path)
    try:
        arrays = read_npz(path)
    except NPZ_READ_ERRORS as exc:
        raise ValueError(f"{path}: not a readable .npz file ({one_line(exc)})") from exc
    metadata = _npz_metadata(arrays.pop(_METADATA_KEY, None), path)
    check_params(arrays, spec, source=str(path))
    if not allow_nonfinite:
        check_finite(arrays, source=str(path))
    return arrays, metadata


def _npz_metadata(meta_array, path: Path) -> dict[str, str]:
    """The metadata dict stored as a 0-d unicode array (absent: empty)."""
    if meta_array is None:
        return {}
    try:
        metadata = json.loads(str(meta_array)) if meta_array.dtype.kind == "U" and meta_array.ndim == 0 else None
    except ValueError:
        metadata = None
    if not isinstance(metadata, dict):
        raise ValueError(f"{path}: {_METADATA_KEY!r}: expected a JSON object as a 0-d string array")
    return metadata


def existing_file(path, what: str = "weight file") -> Path:
    """``path`` as a Path if it is a regular file; FileNotFoundError if nothing is there,
    ValueError if something else (a folder, a device) is."""
    path = Path(os.fspath(path))
    if not path.exists():
        raise FileNotFoundError(f"{path}: {what} not found")
    if not path.is_file():
        kind = "a directory" if path.is_dir() else "not a regular file"
        raise ValueError(f"{path}: expected a {what}, got {kind} (not a file)")
    return path


def params_sha256(params: dict[str, np.ndarray]) -> str:
    """SHA-256 of canonical weights: per name in ``PARAM_NAMES`` order, the name, dtype, shape and
    the C-order little-endian bytes (so a transposed or re-typed copy hashes differently, and the
    same weights hash alike whatever file format they came from). The one weights identity of the
    project: metrics.json's ``initial_weights_sha256`` and an exported ONNX file's metadata."""
    digest = hashlib.sha256()
    for name in PARAM_NAMES:
        if name not in params:
            raise ValueError(f"params: expected the weights {PARAM_NAMES}, got {sorted(params)}")
        array = np.ascontiguousarray(params[name])
        array = array.astype(array.dtype.newbyteorder("<"), copy=False)
        digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()
