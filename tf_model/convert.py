"""Canonical params <-> a live Keras model and Keras ``.weights.h5`` files (Hugging Face style name map).

No tensor needs a transpose: Keras' layouts *are* the canonical ones.

=====  ==========================  ==========================  =========
name   canonical layout            Keras variable              transpose
=====  ==========================  ==========================  =========
W1     (4, 4, 3, 8) HWIO           conv1.kernel HWIO           none
W2     (2, 2, 8, 16) HWIO          conv2.kernel HWIO           none
W3     (n_flat, 6) NHWC-flat rows  dense.kernel (in, out)      none (Flatten is NHWC order)
b3     (6,)                        dense.bias                  none
=====  ==========================  ==========================  =========

Every copy is exact (``assign`` of a same-dtype array; HDF5 stores the raw IEEE values), so round
trips are bitwise. Nothing is ever cast: a dtype mismatch is an error.
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import keras
import numpy as np

from reference.fileio import H5_READ_ERRORS, atomic_path
from reference.messages import one_line
from reference.spec import COURSE_MODEL, PARAM_NAMES, ModelSpec, param_shapes
from reference.validate import check_finite, check_params
from reference.weights_io import existing_file
from tf_model.model import cached_model

__all__ = [
    "KERAS_SUFFIX",
    "NAME_MAP",
    "name_map",
    "keras_variable",
    "set_keras_weights",
    "get_keras_weights",
    "save_keras_weights",
    "load_keras_weights",
]

KERAS_SUFFIX = ".weights.h5"


def name_map(spec: ModelSpec = COURSE_MODEL) -> dict[str, tuple[str, str]]:
    """Canonical name -> (Keras layer name, variable attribute)."""
    return {
        "W1": (spec.conv1.name, "kernel"),
        "W2": (spec.conv2.name, "kernel"),
        "W3": (spec.dense_name, "kernel"),
        "b3": (spec.dense_name, "bias"),
    }


NAME_MAP: dict[str, tuple[str, str]] = name_map(COURSE_MODEL)


def keras_variable(model: keras.Model, name: str, spec: ModelSpec = COURSE_MODEL) -> keras.Variable:
    """The Keras variable holding canonical tensor ``name`` ("W1", "W2", "W3" or "b3")."""
    if name not in PARAM_NAMES:
        raise ValueError(f"name: expected one of {list(PARAM_NAMES)}, got {name!r}")
    layer_name, attribute = name_map(spec)[name]
    try:
        layer = model.get_layer(layer_name)
    except ValueError as exc:
        raise ValueError(f"model: expected a layer named {layer_name!r} (holding {name}), found none") from exc
    return getattr(layer, attribute)


def set_keras_weights(model: keras.Model, params: dict[str, np.ndarray], spec: ModelSpec = COURSE_MODEL) -> None:
    """Copy canonical ``params`` into ``model`` exactly (no transpose, no cast, no reshape).

    Raises ValueError naming the tensor when a shape or dtype differs from the model's variable.
    """
    check_params(params, None)
    for name in PARAM_NAMES:
        variable = keras_variable(model, name, spec)
        value = params[name]
        expected_shape = tuple(variable.shape)
        if value.shape != expected_shape:
            raise ValueError(f"params: tensor {name}: expected shape {expected_shape} ({variable.path}), got {value.shape}")
        if value.dtype != np.dtype(variable.dtype):
            raise ValueError(f"params: tensor {name}: expected dtype {variable.dtype} ({variable.path}), got {value.dtype}")
    for name in PARAM_NAMES:
        keras_variable(model, name, spec).assign(params[name])


def get_keras_weights(model: keras.Model, spec: ModelSpec = COURSE_MODEL) -> dict[str, np.ndarray]:
    """The canonical params of ``model``: W1, W2 HWIO; W3 (n_flat, 6) NHWC-flatten rows; b3 (6,). Copies."""
    return {name: np.array(keras_variable(model, name, spec).numpy(), copy=True) for name in PARAM_NAMES}


def _check_suffix(path: Path) -> None:
    if not path.name.endswith(KERAS_SUFFIX):
        raise ValueError(f"{path}: expected a file name ending in {KERAS_SUFFIX!r} (Keras 3 save_weights), got {path.name!r}")


def save_keras_weights(
    params: dict[str, np.ndarray], path: str | os.PathLike, force: bool = False, spec: ModelSpec = COURSE_MODEL
) -> Path:
    """Write ``params`` as a Keras 3 ``.weights.h5`` file that ``build_model(spec).load_weights`` reads.

    Written atomically (a temporary file beside ``path``, then renamed); refuses to overwrite an
    existing file unless ``force``. Returns the path written.
    """
    path = Path(path)
    _check_suffix(path)
    dtype = check_params(params, spec)
    model, _ = cached_model(spec, dtype.name)
    set_keras_weights(model, params, spec)
    # atomic_path keeps the ".weights.h5" suffix on its temporary name, which Keras requires;
    # the temporary file already exists (empty), hence overwrite=True.
    with atomic_path(path, force=force) as tmp:
        model.save_weights(str(tmp), overwrite=True)
    return path


def _float_datasets(path: Path) -> list[tuple[tuple[int, ...], np.dtype]]:
    """(shape, dtype) of every floating-point dataset in an HDF5 file (any layout)."""
    found: list[tuple[tuple[int, ...], np.dtype]] = []

    def visit(_name, obj):
        if isinstance(obj, h5py.Dataset) and np.issubdtype(obj.dtype, np.floating):
            found.append((tuple(obj.shape), np.dtype(obj.dtype)))

    try:
        with h5py.File(path, "r") as h5:
            h5.visititems(visit)
    except H5_READ_ERRORS as exc:
        raise ValueError(f"{path}: not a readable HDF5 weight file ({one_line(exc)})") from exc
    return found


def load_keras_weights(
    path: str | os.PathLike, spec: ModelSpec = COURSE_MODEL, *, allow_nonfinite: bool = False
) -> dict[str, np.ndarray]:
    """Read a Keras ``.weights.h5`` file of the course model into canonical params (exact copy).

    The file's dtype is read first (float32 or float64); then the public API loads it:
    ``model.load_weights`` on a model of that dtype built from ``spec``. The file must hold exactly
    the four tensors of ``param_shapes(spec)``, so that a partial load can never go unnoticed.
    NaN or inf is refused (``reference.weights_io.check_finite``) unless ``allow_nonfinite``.

    Returns
    -------
    dict: W1 (4, 4, 3, 8) HWIO, W2 (2, 2, 8, 16) HWIO, W3 (n_flat, 6) NHWC-flatten rows, b3 (6,).
    """
    path = existing_file(path, "Keras weight file")
    _check_suffix(path)
    datasets = _float_datasets(path)
    dtypes = sorted({dt.name for _, dt in datasets})
    if len(dtypes) != 1 or dtypes[0] not in ("float32", "float64"):
        raise ValueError(f"{path}: expected float32 or float64 tensors of one dtype, got dtypes {dtypes}")
    expected = sorted(param_shapes(spec).values())
    got = sorted(shape for shape, _ in datasets)
    if got != expected:
        raise ValueError(f"{path}: expected tensors of shapes {expected} (input {spec.input_shape}), got {got}")
    model, _ = cached_model(spec, dtypes[0])
    try:
        model.load_weights(str(path))
    except (ValueError, *H5_READ_ERRORS) as exc:
        raise ValueError(f"{path}: not a weight file of the course model ({one_line(exc)})") from exc
    params = get_keras_weights(model, spec)
    if not allow_nonfinite:
        check_finite(params, source=str(path))
    return params
