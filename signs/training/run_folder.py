"""The run folder of ``signs train``: its files, the checks made before any work, and the files
written as a run goes (each atomically, so a stopped run leaves its last completed epoch).

A run folder holds ``checkpoint.npz`` and ``weights.safetensors`` (rewritten after every epoch),
``metrics.json`` and ``cost.png`` (written at the end, or when the run stops).
"""

from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reference.fileio import check_writable
from signs.checkpoint import CHECKPOINT_NAME, Checkpoint, check_compatible, load_checkpoint, save_checkpoint
from signs.training.summary import COST_PLOT_NAME, METRICS_NAME, data_identity

if TYPE_CHECKING:  # the driver imports this module; the config is only annotated here
    from signs.training.driver import RunConfig

__all__ = [
    "WEIGHTS_NAME",
    "RUN_FILES",
    "default_out_dir",
    "config_identity",
    "run_identity",
    "load_resumable",
    "check_run_folder",
    "prepare_out_dir",
    "save_epoch_weights",
    "start_files",
]

WEIGHTS_NAME = "weights.safetensors"
# Files of a run folder: a fresh run refuses to write over them without force.
RUN_FILES = (CHECKPOINT_NAME, WEIGHTS_NAME, METRICS_NAME, COST_PLOT_NAME)


def default_out_dir(backend: str, recipe: str, root: str | os.PathLike = "runs") -> Path:
    """A new folder name ``runs/YYYYmmdd-HHMMSS-<backend>-<recipe>`` (suffixed if taken)."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(root) / f"{stamp}-{backend}-{recipe}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def config_identity(config: RunConfig) -> dict[str, Any]:
    return {
        "backend": config.backend,
        "dtype": config.dtype,
        "device": config.device,
        "recipe": config.recipe.to_json(),
    }


def run_identity(config: RunConfig, data) -> dict[str, Any]:
    return {**config_identity(config), "data": data_identity(data)}


def load_resumable(checkpoint_path: Path, config: RunConfig, identity: dict[str, Any] | None) -> Checkpoint:
    """The checkpoint to resume, refused (ValueError) when it belongs to another run or is complete.

    ``identity`` is the new run's (:func:`run_identity`); ``None`` before the data is loaded,
    when everything but the data is compared.
    """
    state = load_checkpoint(checkpoint_path)
    recipe = config.recipe
    if identity is None:
        identity = {**config_identity(config), "data": state.config.get("data")}
    ignore = ("device",) + (("recipe.num_epochs",) if recipe.schedule == "constant" else ())
    check_compatible(state.config, identity, ignore=ignore)
    if state.epoch >= recipe.train.num_epochs:
        raise ValueError(
            f"--resume: the run in {checkpoint_path.parent} has completed {state.epoch} epochs and "
            f"--epochs asks for {recipe.train.num_epochs}: nothing to train; pass --epochs greater than "
            f"{state.epoch} to continue it"
        )
    return state


def check_run_folder(config: RunConfig, out_dir: str | os.PathLike, *, resume: bool, force: bool) -> None:
    """Everything about the run folder that can be checked before the data is loaded: a run
    already there (without ``resume``/``force``), files that cannot be written, and with
    ``resume`` its checkpoint (readable, the same run, epochs left to train). Writes nothing."""
    out_dir = Path(out_dir)
    prepare_out_dir(out_dir, resume, force)
    if resume:
        load_resumable(out_dir / CHECKPOINT_NAME, config, None)


def prepare_out_dir(out_dir: Path, resume: bool, force: bool) -> None:
    """Check ``out_dir`` before any work; nothing is deleted here.

    With ``force`` the previous run's files stay until the new run replaces them (each one
    atomically, once the new run has its first state: see :func:`start_files`).
    """
    if resume:
        if not (out_dir / CHECKPOINT_NAME).is_file():
            raise FileNotFoundError(f"--resume: no {CHECKPOINT_NAME} in {out_dir}; nothing to resume")
        return
    existing = [name for name in RUN_FILES if (out_dir / name).exists()]
    if existing and not force:
        raise FileExistsError(
            f"--out {out_dir}: already holds a run ({', '.join(existing)}); pass --resume to continue "
            "it or --force to start over"
        )
    for name in RUN_FILES:
        check_writable(out_dir / name, force=True)  # a folder in the way, no permission: refuse now


def save_epoch_weights(out_dir: Path, config: RunConfig, state: Checkpoint, final: dict | None = None) -> Path:
    """Write ``state``'s weights to ``out_dir/weights.safetensors`` (atomically), so that a run
    stopped at any point leaves the weights of its last completed epoch there."""
    from reference.weights_io import save_safetensors

    recipe = config.recipe
    metadata = {"backend": config.backend, "recipe": recipe.name, "init": recipe.init, "epochs": str(state.epoch)}
    if final is None:
        metadata["status"] = f"in progress or stopped: {state.epoch} of {recipe.train.num_epochs} epochs"
    else:
        metadata["status"] = "complete"
        metadata["train_accuracy"] = f"{final['train_accuracy']:.6f}"
        test = final["test_accuracy"]
        metadata["test_accuracy"] = "n/a" if test is None else f"{test:.6f}"
    return save_safetensors(state.params, out_dir / WEIGHTS_NAME, force=True, metadata=metadata)


def start_files(out_dir: Path, checkpoint_path: Path, config: RunConfig, state: Checkpoint) -> None:
    """A fresh run's first files (epoch 0: the initial weights). Each replaces the previous run's
    file atomically; the previous run's results that describe its epochs go only now."""
    out_dir.mkdir(parents=True, exist_ok=True)
    save_checkpoint(checkpoint_path, state)  # epoch 0: a NaN in the first epoch still leaves one
    save_epoch_weights(out_dir, config, state)
    for name in (METRICS_NAME, COST_PLOT_NAME):  # would describe the previous run's epochs
        if (out_dir / name).exists():
            (out_dir / name).unlink()
