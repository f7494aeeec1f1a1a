"""The training driver: the course's loop with any backend's ``Trainer``, checkpoints and resume.

The course's training loop (deeplearning.ai CNN course 4, week 1, ``model()``)::

    seed = 3
    for epoch in range(num_epochs):
        minibatch_cost = 0.
        num_minibatches = int(m / minibatch_size)
        seed = seed + 1
        for minibatch_X, minibatch_Y in random_mini_batches(X_train, Y_train, minibatch_size, seed):
            _, temp_cost = sess.run([optimizer, cost], feed_dict=...)
            minibatch_cost += temp_cost / num_minibatches
        if epoch % 5 == 0: print("Cost after epoch %i: %f" % (epoch, minibatch_cost))
        costs.append(minibatch_cost)

:func:`train` runs exactly that with any backend's ``Trainer`` (Adam with TF1's update rule),
the one ``reference.data.batches.random_mini_batches`` and the same seed schedule (epoch ``e``,
counted from 0 as the course prints it, uses seed ``first_seed + 1 + e``).

Two epoch losses are recorded:

``course_cost``
    The course's number: the sum of the batch costs divided by ``int(m / mini_batch_size)``. With
    m = 1080 and batches of 64 there are 17 batches (16 full, one of 56) but the course divides by
    16, so this overstates the mean batch cost by about 1/16. It is kept because it is what the
    course prints and plots.
``mean_loss``
    The true mean loss over the epoch's examples, ``sum(batch_cost * batch_size) / m``, each batch
    cost taken before that batch's update (as ``sess.run([optimizer, cost])`` returns it).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from reference.messages import use_progress
from reference.spec import COURSE_MODEL, COURSE_TRAINING, PARAM_NAMES
from signs.checkpoint import CHECKPOINT_NAME, Checkpoint, save_checkpoint
from signs.training.metrics import accuracy, course_cost_divisor
from signs.training.recipes import Recipe, augment_batch, course_recipe, initial_params_and_perturbation, learning_rate_at
from signs.training.run_folder import (
    load_resumable,
    prepare_out_dir,
    run_identity,
    save_epoch_weights,
    start_files,
)
from signs.training.summary import write_summary

__all__ = [
    "NonFiniteLoss",
    "TrainingInterrupted",
    "RunConfig",
    "TrainResult",
    "train",
]

class NonFiniteLoss(ArithmeticError):
    """A batch cost or the weights became NaN or infinite; the last good checkpoint is kept."""

    def __init__(self, message: str, *, epoch: int, batch: int | None, checkpoint: Path, completed: int):
        super().__init__(message)
        self.epoch, self.batch, self.checkpoint, self.completed = epoch, batch, checkpoint, completed


class TrainingInterrupted(Exception):
    """Ctrl-C during training; the checkpoint of the last completed epoch has been written."""

    def __init__(self, message: str, *, checkpoint: Path, completed: int):
        super().__init__(message)
        self.checkpoint, self.completed = checkpoint, completed


@dataclass(frozen=True)
class RunConfig:
    """A training run: which implementation, at what precision, on what device, with what recipe.

    ``eval_every``: compute train and test accuracy every this many epochs (0 = only at the end).
    ``threads``: size of every thread pool of the run (BLAS, and the backend framework's intra- and
    inter-op pools), ``None`` for the frameworks' defaults. ``deterministic``: the frameworks'
    determinism switches and fixed thread counts (``signs.run_environment.apply_thread_settings``).
    Both are process-wide: they stay in force after :func:`train` returns.
    """

    backend: str
    recipe: Recipe = field(default_factory=course_recipe)
    dtype: str = "float32"
    device: str = "cpu"
    eval_every: int = 1
    threads: int | None = None
    deterministic: bool = False

    def __post_init__(self) -> None:
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype: expected float32 or float64, got {self.dtype!r}")
        if self.device not in ("cpu", "cuda"):
            raise ValueError(f"device: expected cpu or cuda, got {self.device!r}")
        if self.backend == "numpy" and self.device != "cpu":
            raise ValueError(f"device: the numpy backend runs on cpu only, got {self.device!r}")
        if int(self.eval_every) != self.eval_every or self.eval_every < 0:
            raise ValueError(f"eval_every: expected a non-negative integer, got {self.eval_every!r}")
        if self.threads is not None and (isinstance(self.threads, bool) or int(self.threads) != self.threads
                                         or self.threads < 1):
            raise ValueError(f"threads: expected None or a positive integer, got {self.threads!r}")


@dataclass
class TrainResult:
    """What :func:`train` produced."""

    params: dict[str, np.ndarray]
    history: list[dict[str, Any]]
    train_accuracy: float
    test_accuracy: float | None
    out_dir: Path
    files: dict[str, Path]
    resumed_from: int = 0


def _check_params_finite(params: dict[str, np.ndarray]) -> str | None:
    """The name of the first weight tensor holding a NaN or inf, else None."""
    for name in PARAM_NAMES:
        if not np.all(np.isfinite(params[name])):
            return name
    return None


def train(
    config: RunConfig,
    data,
    out_dir: str | os.PathLike,
    *,
    resume: bool = False,
    force: bool = False,
    progress: bool | None = None,
    echo: Callable[[str], None] = print,
    make_trainer: Callable | None = None,
) -> TrainResult:
    """Train with ``config`` on ``data``, writing checkpoints and results to ``out_dir``.

    Parameters
    ----------
    config : RunConfig
    data : reference.data.dataset.SignsData
        X_train (m, 64, 64, 3) NHWC in [0, 1] and Y_train (m, 6) one-hot, in ``config.dtype``;
        X_test / Y_test likewise (may be ``None``: test accuracy is then skipped).
    out_dir : folder receiving weights.safetensors, metrics.json, cost.png, checkpoint.npz.
    resume : continue from ``out_dir/checkpoint.npz``; the run identity (backend, dtype, recipe,
        data) must match (``num_epochs`` may grow with a constant schedule; another device is
        allowed but the result is then not bitwise the same).
    force : start a fresh run in a folder that already holds one.
    progress : tqdm bar per epoch; ``None`` = only when stderr is a terminal.
    echo : where the course's lines go (``print``).
    make_trainer : builds the Trainer (default ``backend.Trainer``), same signature; data-parallel
        runs pass ``signs.distributed.torch_ddp.DDPTrainer`` (see signs/distributed/).

    Raises
    ------
    NonFiniteLoss
        A batch cost (or the weights after an epoch) was NaN/inf. The checkpoint of the last
        completed epoch is kept; metrics.json and cost.png describe the run up to there.
    TrainingInterrupted
        KeyboardInterrupt: the checkpoint of the last completed epoch is saved first.
    """
    from signs.backends import get_backend
    from signs.run_environment import apply_thread_settings, describe_run_environment

    out_dir = Path(out_dir)
    recipe = config.recipe
    dtype = np.dtype(config.dtype)
    if data.X_train is None or data.Y_train is None:
        raise ValueError("data: expected a train split (X_train, Y_train), got none")
    for name, array in (("X_train", data.X_train), ("Y_train", data.Y_train), ("X_test", data.X_test), ("Y_test", data.Y_test)):
        if array is not None and array.dtype != dtype:
            raise ValueError(f"data.{name}: expected dtype {dtype} (the run's --dtype), got {array.dtype}")
    # Before the backend builds anything: TensorFlow sizes its thread pools when its runtime starts.
    settings = apply_thread_settings(config.backend, config.threads, deterministic=config.deterministic,
                                     device=config.device)
    backend = get_backend(config.backend)
    make_trainer = make_trainer or backend.Trainer
    prepare_out_dir(out_dir, resume, force)
    checkpoint_path = out_dir / CHECKPOINT_NAME
    identity = run_identity(config, data)
    start_params, perturbation = initial_params_and_perturbation(recipe, dtype)  # also on resume: recorded

    if resume:
        state = load_resumable(checkpoint_path, config, identity)
        if state.config.get("device") != config.device:
            echo(f"note: the checkpoint was trained on {state.config.get('device')}, continuing on "
                 f"{config.device}: results will not be bitwise those of one uninterrupted run")
        state.config = identity
        trainer = make_trainer(state.params, train=recipe.train, spec=COURSE_MODEL, device=config.device)
        trainer.set_optimizer_state(state.optimizer)
        echo(f"resuming {out_dir} after {state.epoch} completed epochs (of {recipe.train.num_epochs})")
    else:
        if perturbation is not None:
            echo(f"initial weights perturbed by one ulp (seed {perturbation['seed']}): {perturbation['name']}"
                 f"{perturbation['index']} {perturbation['before']!r} -> {perturbation['after']!r}")
        trainer = make_trainer(start_params, train=recipe.train, spec=COURSE_MODEL, device=config.device)
        state = Checkpoint(
            params=trainer.get_params(), optimizer=trainer.get_optimizer_state(), epoch=0,
            history=[], elapsed_s=0.0, config=identity,
        )
        start_files(out_dir, checkpoint_path, config, state)
    resumed_from = state.epoch
    # After the Trainer is built, so the record shows the framework state the run used.
    record = {
        "run_settings": settings,
        "perturbation": perturbation,
        "environment": describe_run_environment(config.backend, config.device, start_params),
    }

    latest = _Latest(state)
    try:
        state = _train_epochs(trainer, backend, config, data, latest, checkpoint_path, progress, echo)
    except KeyboardInterrupt:
        # Ctrl-C may have landed inside save_checkpoint, whose atomic write then left the previous
        # epoch's file: write the last completed epoch again.
        save_checkpoint(checkpoint_path, latest.checkpoint)
        save_epoch_weights(out_dir, config, latest.checkpoint)
        write_summary(out_dir, config, data, latest.checkpoint, status="interrupted", record=record)
        raise TrainingInterrupted(
            f"interrupted after {latest.checkpoint.epoch} completed epochs; checkpoint saved to "
            f"{checkpoint_path}; continue with the same options plus --resume --out {out_dir}",
            checkpoint=checkpoint_path, completed=latest.checkpoint.epoch,
        ) from None
    except NonFiniteLoss:
        write_summary(out_dir, config, data, latest.checkpoint, status="non-finite loss", record=record)
        raise

    params = state.params
    last = state.history[-1] if state.history else {}
    train_acc = last.get("train_accuracy")  # measured on these weights after the last epoch
    if train_acc is None:
        train_acc = accuracy(backend, params, data.X_train, data.Y_train, device=config.device)
    test_acc = last.get("test_accuracy")
    if test_acc is None and data.X_test is not None:
        test_acc = accuracy(backend, params, data.X_test, data.Y_test, device=config.device)
    echo(f"Train Accuracy: {train_acc:.6f}")
    if test_acc is not None:
        echo(f"Test Accuracy: {test_acc:.6f}")
    files = write_summary(
        out_dir, config, data, state, status="complete",
        final={"train_accuracy": train_acc, "test_accuracy": test_acc}, record=record,
    )
    files["weights"] = save_epoch_weights(
        out_dir, config, state, final={"train_accuracy": train_acc, "test_accuracy": test_acc}
    )
    files["checkpoint"] = checkpoint_path
    return TrainResult(
        params=params, history=state.history, train_accuracy=train_acc, test_accuracy=test_acc,
        out_dir=out_dir, files=files, resumed_from=resumed_from,
    )


def _epoch_costs(trainer, batches):
    """Yield ``((X, Y), cost)`` for each batch after one Adam update on it, in order (a non-finite
    cost is seen at its batch)."""
    for X_batch, Y_batch in batches:
        yield (X_batch, Y_batch), float(trainer.step(X_batch, Y_batch))


@dataclass
class _Latest:
    """The last completed epoch's state, kept up to date for train()'s exception handlers."""

    checkpoint: Checkpoint


def _train_epochs(trainer, backend, config: RunConfig, data, latest: _Latest, checkpoint_path: Path,
                  progress: bool | None, echo) -> Checkpoint:
    """Run the epochs ``latest.checkpoint.epoch .. num_epochs - 1``; return the final state."""
    from tqdm import tqdm

    from reference.data.batches import epoch_mini_batches

    recipe = config.recipe
    state = latest.checkpoint
    m = data.X_train.shape[0]
    divisor = course_cost_divisor(m, recipe.train.mini_batch_size)
    n_batches = -(-m // recipe.train.mini_batch_size)
    show = use_progress(progress)
    current_lr = float(recipe.train.learning_rate)  # what the Trainer was built with
    for epoch in range(state.epoch, recipe.train.num_epochs):
        # ---- batches: this epoch's learning rate and the course's shuffle (seed first_seed + 1 + e)
        lr = learning_rate_at(recipe, epoch)
        if lr != current_lr:
            trainer.set_learning_rate(lr)
            current_lr = lr
        batches = epoch_mini_batches(
            data.X_train, data.Y_train, epoch, mini_batch_size=recipe.train.mini_batch_size, first_seed=recipe.train.first_seed
        )
        course_cost, loss_sum, seen = 0.0, 0.0, 0
        bar = tqdm(total=n_batches, desc=f"epoch {epoch + 1}/{recipe.train.num_epochs}", unit="batch",
                   leave=False, disable=not show)
        start = time.perf_counter()
        if recipe.augmentation is not None:  # seeded per batch
            batches = [
                (augment_batch(X_batch, recipe.augmentation, np.random.default_rng([int(recipe.seed), epoch, batch])),
                 Y_batch)
                for batch, (X_batch, Y_batch) in enumerate(batches)
            ]
        for batch, ((X_batch, _), cost) in enumerate(_epoch_costs(trainer, batches)):
            # ---- step: one Adam update per batch; the cost is taken before it
            if not math.isfinite(cost):
                bar.close()
                raise NonFiniteLoss(
                    f"non-finite loss {cost} at epoch {epoch} (counted from 0, as the course prints), "
                    f"batch {batch} of {n_batches} (learning rate {lr:g}); stopped. The last good "
                    f"checkpoint ({state.epoch} completed epochs) is kept in {checkpoint_path}",
                    epoch=epoch, batch=batch, checkpoint=checkpoint_path, completed=state.epoch,
                )
            course_cost += cost / divisor
            loss_sum += cost * X_batch.shape[0]
            seen += X_batch.shape[0]
            elapsed = time.perf_counter() - start
            bar.update(1)
            bar.set_postfix(cost=f"{cost:.4f}", img_s=f"{seen / max(elapsed, 1e-9):.0f}")
        bar.close()
        # ---- checkpoint: refuse non-finite weights, measure accuracy, save the completed epoch
        wall = time.perf_counter() - start
        params = trainer.get_params()
        bad = _check_params_finite(params)
        if bad is not None:
            raise NonFiniteLoss(
                f"non-finite weights ({bad}) after epoch {epoch} (counted from 0), batch {n_batches - 1}; "
                f"stopped. The last good checkpoint ({state.epoch} completed epochs) is kept in {checkpoint_path}",
                epoch=epoch, batch=n_batches - 1, checkpoint=checkpoint_path, completed=state.epoch,
            )
        record = {
            "epoch": epoch,
            "seed": recipe.train.first_seed + 1 + epoch,
            "learning_rate": lr,
            "course_cost": course_cost,
            "mean_loss": loss_sum / m,
            "train_accuracy": None,
            "test_accuracy": None,
            "wall_s": wall,
            "images_per_s": m / max(wall, 1e-9),
        }
        last_epoch = epoch + 1 == recipe.train.num_epochs
        if config.eval_every and ((epoch + 1) % config.eval_every == 0 or last_epoch):
            record["train_accuracy"] = accuracy(backend, params, data.X_train, data.Y_train, device=config.device)
            if data.X_test is not None:
                record["test_accuracy"] = accuracy(backend, params, data.X_test, data.Y_test, device=config.device)
        state = Checkpoint(
            params=params, optimizer=trainer.get_optimizer_state(), epoch=epoch + 1,
            history=state.history + [record], elapsed_s=state.elapsed_s + wall, config=state.config,
        )
        latest.checkpoint = state
        save_checkpoint(checkpoint_path, state)
        save_epoch_weights(checkpoint_path.parent, config, state)
        # ---- log: the course's line every print_every epochs
        if epoch % COURSE_TRAINING.print_every == 0:
            echo("Cost after epoch %i: %f" % (epoch, course_cost))
    return state
