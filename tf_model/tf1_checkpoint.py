"""TF1 checkpoints of the course model: read any, write ones the course's graph restores.

A TF1 (``tf.train.Saver``, V2 format) checkpoint ``model.ckpt`` is the pair ``model.ckpt.index`` +
``model.ckpt.data-00000-of-00001``, plus an optional ``checkpoint`` state file in the folder naming
the latest one. The course's variables and their canonical names (no layout change at all: TF1
kernels are HWIO and ``contrib.layers.flatten`` was NHWC order)::

    W1                        (4, 4, 3, 8)  -> W1
    W2                        (2, 2, 8, 16) -> W2
    fully_connected/weights   (64, 6)       -> W3
    fully_connected/biases    (6,)          -> b3

``AdamOptimizer`` adds, for every variable ``v``, the slots ``v/Adam`` (first moment m) and
``v/Adam_1`` (second moment v), and two scalars ``beta1_power`` and ``beta2_power``. TF1 creates
``beta1_power = beta1`` and multiplies it by beta1 (in the variable's dtype) *after* every update,
so after t completed steps it holds beta1 ** (t + 1): the canonical step count ("t", as Keras'
``iterations``) is ``round(log(beta1_power) / log(beta1)) - 1``. In float32 ``beta1_power``
underflows to zero after about 830 steps (TensorFlow flushes subnormals); ``beta2_power`` then
gives t.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import tensorflow as tf
from google.protobuf import text_format

from reference.fileio import apply_default_mode, check_writable, os_reason
from reference.messages import one_line
from reference.spec import COURSE_MODEL, COURSE_TRAINING, PARAM_NAMES, ModelSpec, TrainSpec, param_shapes
from reference.validate import check_finite, check_optimizer_state, check_params
from tf_model.tf1_course import TF1_VARIABLE_NAMES

__all__ = [
    "TF1_VARIABLE_NAMES",
    "SLOT_SUFFIXES",
    "resolve_prefix",
    "tf1_beta_power",
    "steps_from_beta_powers",
    "load_tf1_checkpoint",
    "save_tf1_checkpoint",
]

v1 = tf.compat.v1

SLOT_SUFFIXES = {"m": "/Adam", "v": "/Adam_1"}  # TF1 AdamOptimizer slot names: f"{var}{suffix}"
_DATA_FILE = re.compile(r"^(?P<prefix>.+)\.data-\d{5}-of-\d{5}$")


def _strip_suffix(path: str) -> str:
    """``model.ckpt.index`` or ``model.ckpt.data-00000-of-00001`` -> ``model.ckpt``."""
    if path.endswith(".index"):
        return path[: -len(".index")]
    match = _DATA_FILE.match(path)
    return match.group("prefix") if match else path


def resolve_prefix(path: str | os.PathLike) -> str:
    """The checkpoint prefix named by ``path``: a prefix, its ``.index`` or data file, or a folder
    (its ``checkpoint`` state file's latest checkpoint). FileNotFoundError if the files are absent."""
    path = os.fspath(path)
    if os.path.isdir(path):
        latest = tf.train.latest_checkpoint(path)
        if latest is None:
            raise FileNotFoundError(f"{path}: folder holds no TF1 checkpoint (no readable 'checkpoint' state file)")
        path = latest
    prefix = _strip_suffix(path)
    if not os.path.isfile(prefix + ".index"):
        raise FileNotFoundError(f"{prefix}.index: TF1 checkpoint index not found")
    if not _data_files(prefix):
        raise FileNotFoundError(f"{prefix}.data-00000-of-00001: TF1 checkpoint data file not found")
    return prefix


def _data_files(prefix: str) -> list[Path]:
    folder, name = os.path.split(prefix)
    folder = Path(folder or ".")
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if _DATA_FILE.match(p.name) and _strip_suffix(p.name) == name)


def tf1_beta_power(beta: float, t: int, dtype) -> np.ndarray:
    """What TF1's ``beta*_power`` holds after ``t`` completed steps: beta ** (t + 1), accumulated
    as TF1 does: start at beta, one multiply by beta per step, in ``dtype``, and with subnormal
    results flushed to zero (TensorFlow's CPU kernels run with flush-to-zero, so a float32
    ``beta1_power`` becomes exactly 0 after about 830 steps instead of creeping through the
    subnormals). A 0-d array."""
    dtype = np.dtype(dtype)
    tiny = np.finfo(dtype).tiny
    beta_t = np.asarray(beta, dtype=dtype)
    power = beta_t.copy()
    for _ in range(int(t)):
        power = np.asarray(power * beta_t, dtype=dtype)
        if power < tiny:
            power = np.zeros((), dtype=dtype)
    return power


def _exponent(power, beta: float, label: str, source: str) -> float | None:
    """log(power) / log(beta) with beta rounded to power's dtype (as TF1 held it), or None when
    power has underflowed to 0 (or is subnormal)."""
    value = np.asarray(power)
    dtype = value.dtype if value.dtype in (np.float32, np.float64) else np.dtype(np.float64)
    beta_t = float(np.asarray(beta, dtype=dtype))
    value = float(value)
    if value == 0.0 or value < np.finfo(dtype).tiny:
        return None
    if not (0.0 < value <= beta_t):
        raise ValueError(f"{source}: {label}: expected {beta} ** k for an integer k >= 1, got {value!r}")
    return math.log(value) / math.log(beta_t)


def steps_from_beta_powers(
    beta1_power, beta2_power, train: TrainSpec = COURSE_TRAINING, *, source: str = "checkpoint"
) -> int:
    """Completed Adam steps t from TF1's ``beta1_power`` = beta1 ** (t + 1) (or ``beta2_power``).

    beta1_power decides while it is a normal number (its log is better conditioned); once it has
    underflowed to zero, beta2_power does. The rounded estimate is then confirmed exactly against
    :func:`tf1_beta_power` when the value is TF1's accumulated product (any checkpoint TF1 or this
    module wrote); otherwise it must be within 0.05 of an integer.
    """
    candidates = (("beta1_power", beta1_power, train.beta1), ("beta2_power", beta2_power, train.beta2))
    exponents = {label: _exponent(power, beta, label, source) for label, power, beta in candidates}
    for label, power, beta in candidates:
        exponent = exponents[label]
        if exponent is None:
            continue
        dtype = np.asarray(power).dtype if np.asarray(power).dtype in (np.float32, np.float64) else np.float64
        estimate = int(round(exponent)) - 1
        exact = [
            k for k in range(max(estimate - 2, 0), estimate + 3)
            if tf1_beta_power(beta, k, dtype) == np.asarray(power, dtype=dtype)
        ]
        if exact:
            t = exact[0]
        elif abs(exponent - round(exponent)) <= 0.05 and estimate >= 0:
            t = estimate
        else:
            raise ValueError(f"{source}: {label}: expected {beta} ** k for an integer k >= 1, got {float(power)!r} (k = {exponent:.4f})")
        other = exponents["beta2_power"] if label == "beta1_power" else None
        if other is not None and abs(other - (t + 1)) > 0.5:
            raise ValueError(f"{source}: beta1_power and beta2_power disagree on the step count: {t + 1} and {other:.2f} powers")
        return t
    raise ValueError(f"{source}: beta1_power, beta2_power: expected powers of beta in (0, 1), got {float(beta1_power)!r}, {float(beta2_power)!r}")


def _reader(prefix: str):
    try:
        return tf.train.load_checkpoint(prefix)
    except (tf.errors.OpError, ValueError, RuntimeError, IndexError) as exc:  # truncated data: IndexError
        raise ValueError(f"{prefix}: unreadable TF1 checkpoint ({one_line(exc)})") from exc


def _read_tensor(reader, prefix: str, key: str, shapes: dict, dtypes: dict, expected_shape, dtype=None) -> np.ndarray:
    """One checkpoint tensor, checked for presence, shape and (optionally) dtype."""
    if key not in shapes:
        raise ValueError(f"{prefix}: variable {key!r}: missing from the checkpoint (found {sorted(shapes)})")
    if expected_shape is not None and tuple(shapes[key]) != tuple(expected_shape):
        raise ValueError(f"{prefix}: variable {key!r}: expected shape {tuple(expected_shape)}, got {tuple(shapes[key])}")
    got_dtype = tf.as_dtype(dtypes[key]).name
    if got_dtype not in ("float32", "float64"):
        raise ValueError(f"{prefix}: variable {key!r}: expected dtype float32 or float64, got {got_dtype}")
    if dtype is not None and got_dtype != np.dtype(dtype).name:
        raise ValueError(f"{prefix}: variable {key!r}: expected dtype {np.dtype(dtype).name} (as W1), got {got_dtype}")
    try:
        value = reader.get_tensor(key)
    except (tf.errors.OpError, ValueError, RuntimeError, IndexError) as exc:  # truncated data: IndexError
        raise ValueError(f"{prefix}: variable {key!r}: unreadable ({one_line(exc)})") from exc
    return np.array(value, copy=True)


def load_tf1_checkpoint(
    path: str | os.PathLike,
    include_optimizer: bool = False,
    *,
    spec: ModelSpec = COURSE_MODEL,
    train: TrainSpec = COURSE_TRAINING,
    allow_nonfinite: bool = False,
):
    """Read the course's weights (and optionally its Adam state) from a TF1 checkpoint.

    Parameters
    ----------
    path : the prefix (``model.ckpt``), its ``.index`` or data file, or a folder with a
        ``checkpoint`` state file.
    include_optimizer : also read the Adam slots and beta powers.
    allow_nonfinite : accept NaN or inf in the weights (refused by default,
        ``reference.weights_io.check_finite``).

    Returns
    -------
    params : dict W1 (4, 4, 3, 8) HWIO, W2 (2, 2, 8, 16) HWIO, W3 (64, 6) NHWC-flatten rows, b3 (6,).
    With ``include_optimizer``: ``(params, state)``, state ``{"t": int, "m": {...}, "v": {...}}``
    (t = completed steps; m from ``<var>/Adam``, v from ``<var>/Adam_1``; canonical layouts).
    """
    prefix = resolve_prefix(path)
    reader = _reader(prefix)
    shapes = reader.get_variable_to_shape_map()
    dtypes = reader.get_variable_to_dtype_map()
    expected = param_shapes(spec)
    params: dict[str, np.ndarray] = {}
    dtype = None
    for name in PARAM_NAMES:
        params[name] = _read_tensor(reader, prefix, TF1_VARIABLE_NAMES[name], shapes, dtypes, expected[name], dtype)
        dtype = params[name].dtype
    if not allow_nonfinite:
        check_finite(params, source=prefix)
    if not include_optimizer:
        return params
    state = {"m": {}, "v": {}}
    for kind, suffix in SLOT_SUFFIXES.items():
        for name in PARAM_NAMES:
            key = TF1_VARIABLE_NAMES[name] + suffix
            state[kind][name] = _read_tensor(reader, prefix, key, shapes, dtypes, expected[name], dtype)
    powers = {key: _read_tensor(reader, prefix, key, shapes, dtypes, (), dtype) for key in ("beta1_power", "beta2_power")}
    state["t"] = steps_from_beta_powers(powers["beta1_power"], powers["beta2_power"], train, source=prefix)
    return params, state


def _checkpoint_tensors(params, optimizer_state, spec: ModelSpec, train: TrainSpec) -> dict[str, np.ndarray]:
    """Checkpoint key -> value, with the course's names (and TF1 Adam's slot names)."""
    dtype = check_params(params, spec)
    tensors = {TF1_VARIABLE_NAMES[name]: params[name] for name in PARAM_NAMES}
    if optimizer_state is not None:
        t = check_optimizer_state(optimizer_state, dtype, spec, source="optimizer_state")
        for kind, suffix in SLOT_SUFFIXES.items():
            for name in PARAM_NAMES:
                tensors[TF1_VARIABLE_NAMES[name] + suffix] = optimizer_state[kind][name]
        tensors["beta1_power"] = tf1_beta_power(train.beta1, t, dtype)
        tensors["beta2_power"] = tf1_beta_power(train.beta2, t, dtype)
    return tensors


def _write_with_saver(tensors: dict[str, np.ndarray], tmp_prefix: str) -> None:
    """Write ``tensors`` under exactly their keys with a compat.v1 Graph + Saver (V2 format)."""
    graph = tf.Graph()
    with graph.as_default():
        # The Saver's dict keys are the checkpoint names; the graph names do not matter.
        variables = {
            key: v1.Variable(value, name=f"var{i}", dtype=tf.as_dtype(value.dtype.name))
            for i, (key, value) in enumerate(sorted(tensors.items()))
        }
        saver = v1.train.Saver(var_list=variables, write_version=v1.train.SaverDef.V2)
        init = v1.global_variables_initializer()
        # Saver.save must run with its graph as the default one (TF 2 is eager outside it).
        with v1.Session(graph=graph) as session:
            session.run(init)
            saver.save(session, tmp_prefix, write_meta_graph=False, write_state=False)


# The checkpoint-state message class (``CheckpointState``), reached through the public API.
_CHECKPOINT_STATE = type(v1.train.generate_checkpoint_state_proto("/", "model.ckpt"))


def _read_state_file(path: Path):
    """The CheckpointState in ``path``, or None when ``path`` is not a TF checkpoint state file."""
    proto = _CHECKPOINT_STATE()
    try:
        text_format.Parse(path.read_bytes().decode("utf-8"), proto)
    except (text_format.ParseError, UnicodeDecodeError, OSError):
        return None
    return proto if proto.model_checkpoint_path else None


def _state_file_text(folder: Path, name: str, force: bool) -> str:
    """What ``folder/checkpoint`` must hold to name ``name`` as the latest checkpoint, keeping the
    older entries of the state file already there.

    A ``checkpoint`` that is not a TF checkpoint state file is someone else's file: refused
    (FileExistsError) unless ``force``; a folder of that name is refused (ValueError). Paths inside
    the folder are written relative (``model.ckpt``), so the folder can move; TF leaves relative
    paths untouched only when ``save_dir`` is absolute, hence ``resolve()``.
    """
    state_path = check_writable(folder / "checkpoint", force=True)
    paths: list[str] = []
    if state_path.exists():
        old = _read_state_file(state_path)
        if old is None and not force:
            raise FileExistsError(
                f"{state_path}: exists and is not a TF checkpoint state file; pass --force (force=True) "
                "to replace it, or write the checkpoint into another folder"
            )
        if old is not None:
            paths = list(old.all_model_checkpoint_paths) or [old.model_checkpoint_path]
    paths = [p for p in paths if p != name] + [name]
    proto = v1.train.generate_checkpoint_state_proto(str(folder.resolve()), name, all_model_checkpoint_paths=paths)
    return text_format.MessageToString(proto)


def _check_targets(prefix: str, force: bool) -> None:
    """Refuse before writing anything: an existing checkpoint without ``force``, or a folder (or
    an unwritable place) where one of its files must go."""
    existing = [Path(prefix + ".index")] + _data_files(prefix)
    for path in existing + [Path(prefix + ".data-00000-of-00001")]:
        check_writable(path, force=True)  # a directory or an unwritable folder: ValueError
    if any(p.exists() for p in existing) and not force:
        raise FileExistsError(f"{prefix}: TF1 checkpoint already exists; pass --force (force=True) to overwrite it")


def save_tf1_checkpoint(
    params: dict[str, np.ndarray],
    prefix: str | os.PathLike,
    optimizer_state: dict | None = None,
    force: bool = False,
    *,
    spec: ModelSpec = COURSE_MODEL,
    train: TrainSpec = COURSE_TRAINING,
) -> str:
    """Write a TF1 checkpoint of the course's variables that its graph's Saver restores.

    The tensors are ``W1``, ``W2``, ``fully_connected/weights``, ``fully_connected/biases``; with
    ``optimizer_state`` ({"t", "m", "v"}, canonical) also ``<var>/Adam``, ``<var>/Adam_1`` and the
    ``beta1_power``/``beta2_power`` TF1 would hold after t steps. Every file it will write (the
    ``.index``, the data file and the folder's ``checkpoint`` state file) is checked first: an
    existing checkpoint needs ``force``, and so does a ``checkpoint`` file that is not a TF state
    file. All of them are written into a temporary folder beside ``prefix`` and moved into place
    only when all succeeded: data first, ``.index`` next (a checkpoint exists only once its index
    does), the state file naming it last. Returns the prefix.
    """
    prefix = _strip_suffix(os.fspath(prefix))
    folder, name = os.path.split(prefix)
    folder_path = Path(folder or ".")
    if not name or os.path.isdir(prefix):
        raise ValueError(f"prefix: expected a checkpoint prefix such as 'runs/model.ckpt', got {prefix!r}")
    _check_targets(prefix, force)
    state_text = _state_file_text(folder_path, name, force)
    tensors = _checkpoint_tensors(params, optimizer_state, spec, train)
    try:
        folder_path.mkdir(parents=True, exist_ok=True)
        tmp_dir = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".partial", dir=folder_path))
    except OSError as exc:
        raise ValueError(f"{prefix}: cannot be written ({os_reason(exc)})") from exc
    try:
        _write_with_saver(tensors, str(tmp_dir / name))
        (tmp_dir / "checkpoint").write_text(state_text)
        for written in tmp_dir.iterdir():
            apply_default_mode(written)
        _move_into_place(tmp_dir, prefix)
    except OSError as exc:
        raise ValueError(f"{prefix}: could not be written ({os_reason(exc)})") from exc
    except tf.errors.OpError as exc:
        raise ValueError(f"{prefix}: could not be written ({one_line(exc)})") from exc
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return prefix


def _move_into_place(tmp_dir: Path, prefix: str) -> None:
    """Move a fully written checkpoint from ``tmp_dir`` to ``prefix``: data first, the ``.index``
    next (a checkpoint exists only once its index does), the folder's state file last."""
    folder_path = Path(prefix).parent
    new_data = [p for p in tmp_dir.iterdir() if _DATA_FILE.match(p.name)]
    index = Path(prefix + ".index")
    if index.exists():
        index.unlink()  # from here until the new index lands, no checkpoint named `prefix` exists
    for old in _data_files(prefix):
        if old.name not in {p.name for p in new_data}:
            old.unlink()
    for data in new_data:
        os.replace(data, folder_path / data.name)
    os.replace(tmp_dir / (Path(prefix).name + ".index"), index)
    os.replace(tmp_dir / "checkpoint", folder_path / "checkpoint")
