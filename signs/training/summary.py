"""What a run folder reports: metrics.json (every epoch, the recipe, the data, versions) and cost.png."""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reference.fileio import atomic_path
from signs.checkpoint import Checkpoint
from signs.training.metrics import course_cost_divisor

if TYPE_CHECKING:  # annotations only: the driver imports this module
    from signs.training.driver import RunConfig

__all__ = ["METRICS_NAME", "COST_PLOT_NAME", "framework_versions", "data_identity", "write_summary"]

METRICS_NAME = "metrics.json"
COST_PLOT_NAME = "cost.png"


def framework_versions(backend_name: str) -> dict[str, str]:
    """Versions of NumPy and of the framework the backend used."""
    packages = {"numpy": ("numpy",), "tf": ("numpy", "tensorflow", "keras"), "torch": ("numpy", "torch")}
    versions = {}
    for package in packages.get(backend_name, ("numpy",)):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def data_identity(data) -> dict[str, Any]:
    """Which data a run trained on (part of the run identity checked by ``--resume``)."""
    return {
        "train": str(Path(data.sources["train"]).resolve()),
        "test": str(Path(data.sources["test"]).resolve()) if "test" in data.sources else None,
        "train_examples": int(data.X_train.shape[0]),
        "test_examples": int(data.X_test.shape[0]) if data.X_test is not None else 0,
    }


def write_summary(out_dir: Path, config: RunConfig, data, state: Checkpoint, *, status: str,
                   final: dict[str, Any] | None = None) -> dict[str, Path]:
    """Write metrics.json and cost.png for the epochs in ``state``; return their paths."""
    from signs.plots import save_cost_plot

    recipe = config.recipe
    history = state.history
    m = data.X_train.shape[0]
    metrics = {
        "status": status,
        "completed_epochs": state.epoch,
        "backend": config.backend,
        "dtype": config.dtype,
        "device": config.device,
        "versions": framework_versions(config.backend),
        "recipe": recipe.to_json(),
        "init": recipe.init,
        "seed": recipe.seed,
        "data": {
            **data_identity(data),
            "describe": data.describe().splitlines() if hasattr(data, "describe") else [],
        },
        "hyperparameters": {
            "learning_rate": recipe.train.learning_rate,
            "mini_batch_size": recipe.train.mini_batch_size,
            "num_epochs": recipe.train.num_epochs,
            "beta1": recipe.train.beta1,
            "beta2": recipe.train.beta2,
            "epsilon": recipe.train.epsilon,
            "first_seed": recipe.train.first_seed,
            "schedule": recipe.schedule,
        },
        "batches_per_epoch": -(-m // recipe.train.mini_batch_size),
        "course_cost_divisor": course_cost_divisor(m, recipe.train.mini_batch_size),
        "course_cost_note": "course_cost = sum of batch costs / int(m / mini_batch_size), as the course "
        "prints it; mean_loss = sum(batch_cost * batch_size) / m",
        "wall_time_s": state.elapsed_s,
        "epochs": history,
        "final": final or {},
    }
    metrics_path = out_dir / METRICS_NAME
    with atomic_path(metrics_path, force=True) as tmp:
        tmp.write_text(json.dumps(metrics, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    plot_path = save_cost_plot(
        out_dir / COST_PLOT_NAME,
        [r["course_cost"] for r in history],
        recipe.train.learning_rate,
        mean_losses=[r["mean_loss"] for r in history],
        force=True,
    )
    return {"metrics": metrics_path, "cost_plot": plot_path}
