"""Training checkpoints: weights, Adam state, progress and recipe in one ``.npz`` file, no pickle.

A checkpoint is written atomically (``reference.fileio.atomic_path``) after every completed epoch,
so an interrupted or crashed run always leaves the last good one on disk. The file is a NumPy
``.npz`` archive read back with ``np.load(allow_pickle=False)``:

``params/W1`` ... ``params/b3``
    Canonical weights (W1, W2 HWIO; W3 (n_flat, 6) in NHWC-flatten row order; b3 (6,)).
``adam/m/<name>``, ``adam/v/<name>``
    Adam's first and second moments, same names, shapes and layouts as the weights.
``meta``
    A 0-d unicode array holding one JSON document: format version, ``epoch`` (number of completed
    epochs), Adam's step count ``t``, ``history`` (one record per completed epoch), ``elapsed_s``
    and ``config`` (the run's identity: backend, dtype, device and recipe, used to refuse an
    incompatible ``--resume``). JSON floats are written with ``repr`` and so round-trip exactly.

There is no random-number-generator state to save: every random choice of a training run (the
mini-batch shuffle and the augmentation) is seeded from the epoch number alone.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from reference.fileio import atomic_path
from reference.spec import PARAM_NAMES
from reference.validate import check_optimizer_state, check_params

__all__ = [
    "CHECKPOINT_NAME",
    "CHECKPOINT_FORMAT",
    "Checkpoint",
    "save_checkpoint",
    "load_checkpoint",
    "check_compatible",
]

CHECKPOINT_NAME = "checkpoint.npz"
CHECKPOINT_FORMAT = "signs-checkpoint-1"


@dataclass
class Checkpoint:
    """Everything needed to continue a training run exactly where it stopped.

    Attributes
    ----------
    params : dict[str, np.ndarray]
        Canonical weights after ``epoch`` completed epochs (all one dtype).
    optimizer : dict
        ``{"t": int, "m": {name: array}, "v": {name: array}}`` as ``Trainer.get_optimizer_state``
        returns it (canonical layouts, the weights' dtype).
    epoch : int
        Number of completed epochs (0 = the initial weights, before any update).
    history : list[dict]
        One JSON-able record per completed epoch, oldest first.
    elapsed_s : float
        Training wall time spent so far, over all sessions.
    config : dict
        The run's identity (backend, dtype, device, recipe), JSON-able.
    """

    params: dict[str, np.ndarray]
    optimizer: dict[str, Any]
    epoch: int
    history: list[dict[str, Any]] = field(default_factory=list)
    elapsed_s: float = 0.0
    config: dict[str, Any] = field(default_factory=dict)


def _arrays(checkpoint: Checkpoint) -> dict[str, np.ndarray]:
    """The checkpoint's arrays keyed as in the file (``params/W1``, ``adam/m/W1``, ...)."""
    dtype = check_params(checkpoint.params, None)
    check_optimizer_state(checkpoint.optimizer, dtype, None, source="optimizer")
    arrays: dict[str, np.ndarray] = {}
    for name in PARAM_NAMES:
        arrays[f"params/{name}"] = checkpoint.params[name]
        for moment in ("m", "v"):
            arrays[f"adam/{moment}/{name}"] = checkpoint.optimizer[moment][name]
    return arrays


def save_checkpoint(path: str | os.PathLike, checkpoint: Checkpoint) -> Path:
    """Write ``checkpoint`` to ``path`` atomically (replacing any previous checkpoint).

    Returns the path written.
    """
    meta = {
        "format": CHECKPOINT_FORMAT,
        "epoch": int(checkpoint.epoch),
        "t": int(checkpoint.optimizer["t"]),
        "history": checkpoint.history,
        "elapsed_s": float(checkpoint.elapsed_s),
        "config": checkpoint.config,
    }
    arrays = _arrays(checkpoint)
    # A unicode array, not an object array: it loads with allow_pickle=False.
    arrays["meta"] = np.array(json.dumps(meta, allow_nan=False))
    path = Path(path)
    with atomic_path(path, force=True) as tmp:
        with open(tmp, "wb") as handle:  # a handle, so savez cannot append its own ".npz"
            np.savez(handle, **arrays)
    return path


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint` (never unpickles anything)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint: no file at {path}")
    with np.load(path, allow_pickle=False) as archive:
        names = set(archive.files)
        if "meta" not in names:
            raise ValueError(f"checkpoint {path}: expected a 'meta' entry, got entries {sorted(names)}")
        meta = json.loads(str(archive["meta"]))
        if meta.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(
                f"checkpoint {path}: expected format {CHECKPOINT_FORMAT!r}, got {meta.get('format')!r}"
            )
        expected = {f"params/{n}" for n in PARAM_NAMES}
        expected |= {f"adam/{k}/{n}" for k in ("m", "v") for n in PARAM_NAMES}
        missing = expected - names
        if missing:
            raise ValueError(f"checkpoint {path}: missing entries {sorted(missing)}")
        params = {n: archive[f"params/{n}"] for n in PARAM_NAMES}
        optimizer = {
            "t": int(meta["t"]),
            "m": {n: archive[f"adam/m/{n}"] for n in PARAM_NAMES},
            "v": {n: archive[f"adam/v/{n}"] for n in PARAM_NAMES},
        }
    return Checkpoint(
        params=params,
        optimizer=optimizer,
        epoch=int(meta["epoch"]),
        history=list(meta["history"]),
        elapsed_s=float(meta["elapsed_s"]),
        config=dict(meta["config"]),
    )


def _flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"recipe": {"lr": 1}} -> {"recipe.lr": 1}, so a mismatch can name the exact field."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, prefix=f"{name}."))
        else:
            flat[name] = value
    return flat


def check_compatible(saved: Mapping[str, Any], requested: Mapping[str, Any], ignore: tuple[str, ...] = ()) -> None:
    """Raise ValueError naming the first field where the checkpoint's run and the requested run differ.

    Parameters
    ----------
    saved, requested : mapping
        Run configurations (nested dicts of JSON values), the checkpoint's and the new one.
    ignore : tuple of str
        Flattened field names (e.g. ``"device"``) allowed to differ.
    """
    saved_flat, requested_flat = _flatten(saved), _flatten(requested)
    for name in sorted(set(saved_flat) | set(requested_flat)):
        if name in ignore:
            continue
        old, new = saved_flat.get(name, "<absent>"), requested_flat.get(name, "<absent>")
        # JSON turns tuples into lists: compare through JSON so (1, 2) == [1, 2].
        if json.loads(json.dumps(old)) != json.loads(json.dumps(new)):
            raise ValueError(
                f"--resume: {name} differs: the checkpoint has {old!r}, this run asks for {new!r}; "
                "resume with the checkpoint's settings or start a new --out"
            )
