"""The training driver shared by every backend: the course's recipe, checkpoints, resume, metrics.

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
the one ``reference.data.batches.random_mini_batches`` and the same seed schedule (epoch ``e``, counted
from 0 as the course prints it, uses seed ``first_seed + 1 + e``).

Two epoch losses are recorded:

``course_cost``
    The course's number: the sum of the batch costs divided by ``int(m / mini_batch_size)``. With
    m = 1080 and batches of 64 there are 17 batches (16 full, one of 56) but the course divides by
    16, so this overstates the mean batch cost by about 1/16. It is kept because it is what the
    course prints and plots.
``mean_loss``
    The true mean loss over the epoch's examples, ``sum(batch_cost * batch_size) / m``, each batch
    cost taken before that batch's update (as ``sess.run([optimizer, cost])`` returns it).

Recipes (``Recipe``):

``course``
    The course's recipe: course-exact initial weights, constant learning rate 0.009, no
    augmentation, 100 epochs.
``improved``
    The same layers, initial weights and optimizer, with three changes measured to generalise
    better on SIGNS: a lower base learning rate, 0.004, decayed to 0 by a cosine schedule over
    150 epochs (set per epoch through ``Trainer.set_learning_rate``), and seeded NumPy data
    augmentation of every training batch (a random shift of up to 2 pixels with edge padding and
    a brightness factor in [0.9, 1.1]).

    Why: with the course's 0.009 the course's initial weights sit on a knife edge: every conv1
    filter sees non-negative pixels and has no bias, so once Adam's first steps push all of a
    filter's weights negative its ReLU is dead for every input; with all filters dead the logits
    are the bias alone and the cost sits near ln 6 = 1.79. On the JPEG copy of SIGNS (float32,
    1080/120 images, measured once each) torch's course run died in epoch 1 (test accuracy 0.17)
    and NumPy's recovered only partly (cost 0.757 at epoch 95, test 0.675), against the course's
    published 0.78. The improved recipe, run once with torch: train 0.929, test 0.892 (0.004 and
    cosine without augmentation: test 0.825). With NumPy and a constant 0.004 it peaked at 0.90
    and ended at 0.81: the cosine decay is what makes the last epochs stable. Random horizontal
    flips (``Augmentation(flip=True)``) made this 8/16-filter network underfit (train and test
    accuracy near 0.6 after 70 epochs) and are off.

Randomness: batches follow the course's seed schedule in every recipe. ``seed`` seeds Glorot
initial weights (``init="glorot"``) and the augmentation stream; each batch's augmentation draws
from ``np.random.default_rng([seed, epoch, batch])``, so a resumed run repeats exactly what an
uninterrupted run does, with no RNG state to save.
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from reference.fileio import atomic_path
from reference.spec import COURSE_MODEL, COURSE_TRAINING, PARAM_NAMES, TrainSpec
from signs.checkpoint import CHECKPOINT_NAME, Checkpoint, check_compatible, load_checkpoint, save_checkpoint

__all__ = [
    "RECIPES",
    "INITS",
    "SCHEDULES",
    "Augmentation",
    "Recipe",
    "RunConfig",
    "TrainResult",
    "NonFiniteLoss",
    "TrainingInterrupted",
    "WEIGHTS_NAME",
    "METRICS_NAME",
    "COST_PLOT_NAME",
    "course_recipe",
    "improved_recipe",
    "make_recipe",
    "course_cost_divisor",
    "learning_rate_at",
    "augment_batch",
    "initial_params",
    "subset",
    "predict_classes",
    "accuracy",
    "confusion_matrix",
    "default_out_dir",
    "train",
]

RECIPES = ("course", "improved")
INITS = ("course", "glorot")
SCHEDULES = ("constant", "cosine")

WEIGHTS_NAME = "weights.safetensors"
METRICS_NAME = "metrics.json"
COST_PLOT_NAME = "cost.png"
# Files of a run folder: a fresh run refuses to write over them without force.
RUN_FILES = (CHECKPOINT_NAME, WEIGHTS_NAME, METRICS_NAME, COST_PLOT_NAME)

_PREDICT_CHUNK = 256  # examples per predict_logits call: bounds the backends' activation memory


# --------------------------------------------------------------------------------------------
# Recipes
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Augmentation:
    """Seeded batch augmentation, NumPy only, applied before the batch reaches the backend.

    Attributes
    ----------
    flip : bool
        Mirror each image left-right with probability 1/2 (a mirrored hand shows the same count,
        but the course's small network underfits mirrored data: off by default).
    max_shift : int
        Shift each image by a random (dy, dx) in [-max_shift, max_shift]^2 pixels; the pixels
        uncovered are copies of the nearest edge pixel.
    brightness : float
        Multiply each image by a random factor in [1 - brightness, 1 + brightness], clipped to [0, 1].
    """

    flip: bool = False
    max_shift: int = 2
    brightness: float = 0.1

    def __post_init__(self) -> None:
        if int(self.max_shift) != self.max_shift or self.max_shift < 0:
            raise ValueError(f"max_shift: expected a non-negative integer, got {self.max_shift!r}")
        if not 0.0 <= self.brightness < 1.0:
            raise ValueError(f"brightness: expected a value in [0, 1), got {self.brightness!r}")


@dataclass(frozen=True)
class Recipe:
    """Everything that decides a training trajectory besides backend, dtype and device.

    Attributes
    ----------
    name : "course" or "improved" (a label; the fields below are what count).
    learning_rate : Adam's base learning rate.
    mini_batch_size : examples per batch (the last batch of an epoch holds the remainder).
    num_epochs : epochs to train.
    init : "course" (the notebook's exact TF1 weights) or "glorot" (seeded Glorot-uniform).
    seed : seeds Glorot weights and the augmentation; ``None`` when neither is used.
    schedule : "constant" (the course) or "cosine" (decay to 0 over ``num_epochs``, per epoch).
    augmentation : ``Augmentation`` or ``None`` (the course).
    first_seed, beta1, beta2, epsilon : the course's batch seed schedule and Adam constants.
    """

    name: str = "course"
    learning_rate: float = COURSE_TRAINING.learning_rate
    mini_batch_size: int = COURSE_TRAINING.mini_batch_size
    num_epochs: int = COURSE_TRAINING.num_epochs
    init: str = "course"
    seed: int | None = None
    schedule: str = "constant"
    augmentation: Augmentation | None = None
    first_seed: int = COURSE_TRAINING.first_seed
    beta1: float = COURSE_TRAINING.beta1
    beta2: float = COURSE_TRAINING.beta2
    epsilon: float = COURSE_TRAINING.epsilon

    def __post_init__(self) -> None:
        if self.name not in RECIPES:
            raise ValueError(f"recipe: expected one of {RECIPES}, got {self.name!r}")
        if self.init not in INITS:
            raise ValueError(f"init: expected one of {INITS}, got {self.init!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule: expected one of {SCHEDULES}, got {self.schedule!r}")
        if not (isinstance(self.learning_rate, (int, float)) and self.learning_rate > 0):
            raise ValueError(f"learning_rate: expected a positive number, got {self.learning_rate!r}")
        if int(self.mini_batch_size) != self.mini_batch_size or self.mini_batch_size < 1:
            raise ValueError(f"mini_batch_size: expected a positive integer, got {self.mini_batch_size!r}")
        if int(self.num_epochs) != self.num_epochs or self.num_epochs < 0:
            raise ValueError(f"num_epochs: expected a non-negative integer, got {self.num_epochs!r}")
        needs_seed = self.init == "glorot" or self.augmentation is not None
        if needs_seed and (self.seed is None or int(self.seed) != self.seed or self.seed < 0):
            raise ValueError(f"seed: expected a non-negative integer for Glorot init or augmentation, got {self.seed!r}")
        if not needs_seed and self.seed is not None:
            raise ValueError(
                f"seed: got {self.seed!r}, but this recipe draws nothing at random (course init, no "
                "augmentation; the batch shuffle follows the course's fixed seed schedule): "
                "use --init glorot or --recipe improved, or drop --seed"
            )

    def train_spec(self) -> TrainSpec:
        """The ``TrainSpec`` handed to a backend's ``Trainer`` (starting learning rate)."""
        return replace(
            COURSE_TRAINING,
            learning_rate=float(self.learning_rate),
            mini_batch_size=int(self.mini_batch_size),
            num_epochs=int(self.num_epochs),
            first_seed=int(self.first_seed),
            beta1=float(self.beta1),
            beta2=float(self.beta2),
            epsilon=float(self.epsilon),
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def course_recipe(**overrides) -> Recipe:
    """The course's recipe (module docstring), with optional field overrides."""
    return Recipe(**{"name": "course", **overrides})


def improved_recipe(**overrides) -> Recipe:
    """The improved recipe: lr 0.004, cosine decay, 150 epochs, augmentation (module docstring)."""
    fields = {
        "name": "improved",
        "learning_rate": 0.004,
        "num_epochs": 150,
        "schedule": "cosine",
        "augmentation": Augmentation(),
        "seed": 0,
    }
    return Recipe(**{**fields, **overrides})


def make_recipe(name: str, **overrides) -> Recipe:
    """``course_recipe`` or ``improved_recipe`` by name, with field overrides."""
    if name == "course":
        return course_recipe(**overrides)
    if name == "improved":
        return improved_recipe(**overrides)
    raise ValueError(f"recipe: expected one of {RECIPES}, got {name!r}")


def course_cost_divisor(m: int, mini_batch_size: int) -> int:
    """The course's ``num_minibatches = int(m / minibatch_size)`` (16 for 1080 / 64, not 17).

    With fewer examples than one batch the course would divide by zero; 1 is used instead.
    """
    return max(1, int(m / mini_batch_size))


def learning_rate_at(recipe: Recipe, epoch: int) -> float:
    """The learning rate of 0-based ``epoch``: constant, or cosine ``lr * (1 + cos(pi e / E)) / 2``."""
    if recipe.schedule == "constant":
        return float(recipe.learning_rate)
    return float(recipe.learning_rate) * 0.5 * (1.0 + math.cos(math.pi * epoch / max(recipe.num_epochs, 1)))


def augment_batch(X: np.ndarray, augmentation: Augmentation, rng: np.random.Generator) -> np.ndarray:
    """A randomly flipped, shifted and brightened copy of a batch.

    Parameters
    ----------
    X : np.ndarray, (b, n_H, n_W, n_C) NHWC, values in [0, 1], float32 or float64
    augmentation : Augmentation
    rng : np.random.Generator, the batch's own stream

    Returns
    -------
    np.ndarray, same shape and dtype as ``X``.
    """
    if X.ndim != 4:
        raise ValueError(f"X: expected 4 dims (m, n_H, n_W, n_C), got shape {X.shape}")
    b, n_H, n_W, _ = X.shape
    out = np.array(X, copy=True)
    # Draw every random number up front, in a fixed order, so the stream does not depend on
    # which transformations are switched on.
    flips = rng.random(b) < 0.5
    shifts = rng.integers(-augmentation.max_shift, augmentation.max_shift + 1, size=(b, 2))
    factors = rng.uniform(1.0 - augmentation.brightness, 1.0 + augmentation.brightness, size=b)
    if augmentation.flip:
        out[flips] = out[flips, :, ::-1, :]  # W is axis 2 in NHWC
    s = int(augmentation.max_shift)
    if s:
        padded = np.pad(out, ((0, 0), (s, s), (s, s), (0, 0)), mode="edge")
        for i, (dy, dx) in enumerate(shifts):
            out[i] = padded[i, s + dy : s + dy + n_H, s + dx : s + dx + n_W, :]
    if augmentation.brightness:
        out *= factors.astype(X.dtype)[:, None, None, None]
        np.clip(out, 0.0, 1.0, out=out)
    return out


def initial_params(recipe: Recipe, dtype) -> dict[str, np.ndarray]:
    """The recipe's starting weights (canonical dict, ``dtype``)."""
    from reference.init import course_init, glorot_init

    if recipe.init == "course":
        return course_init(COURSE_MODEL, dtype=dtype)
    return glorot_init(int(recipe.seed), COURSE_MODEL, dtype=dtype)


# --------------------------------------------------------------------------------------------
# Data helpers and metrics
# --------------------------------------------------------------------------------------------


def subset(data, limit: int | None):
    """``data`` (a ``reference.data.dataset.SignsData``) cut to at most ``limit`` examples per split.

    The examples kept are evenly spaced through each split (``np.linspace`` indices), so a small
    subset of a label-sorted image folder still holds every class.
    """
    if limit is None:
        return data
    if int(limit) != limit or limit < 1:
        raise ValueError(f"limit: expected a positive integer, got {limit!r}")

    def cut(X, Y):
        if X is None or X.shape[0] <= limit:
            return X, Y
        index = np.unique(np.linspace(0, X.shape[0] - 1, int(limit)).round().astype(np.int64))
        return X[index], Y[index]

    X_train, Y_train = cut(data.X_train, data.Y_train)
    X_test, Y_test = cut(data.X_test, data.Y_test)
    return replace(data, X_train=X_train, Y_train=Y_train, X_test=X_test, Y_test=Y_test)


def predict_classes(backend, params, X: np.ndarray, *, device: str = "cpu") -> np.ndarray:
    """int64 (m,) argmax of the backend's logits for X (m, 64, 64, 3), computed in chunks."""
    classes = []
    for start in range(0, X.shape[0], _PREDICT_CHUNK):
        logits = backend.predict_logits(params, X[start : start + _PREDICT_CHUNK], spec=COURSE_MODEL, device=device)
        classes.append(np.argmax(np.asarray(logits), axis=1))
    return np.concatenate(classes).astype(np.int64) if classes else np.zeros(0, dtype=np.int64)


def accuracy(backend, params, X: np.ndarray, Y: np.ndarray, *, device: str = "cpu") -> float:
    """The course's accuracy: mean of argmax(logits) == argmax(Y); X (m, 64, 64, 3), Y (m, 6)."""
    return float(np.mean(predict_classes(backend, params, X, device=device) == np.argmax(Y, axis=1)))


def confusion_matrix(true: np.ndarray, predicted: np.ndarray, n_classes: int = COURSE_MODEL.n_classes) -> np.ndarray:
    """int64 (n_classes, n_classes) counts: row = true class, column = predicted class."""
    true, predicted = np.asarray(true, dtype=np.int64), np.asarray(predicted, dtype=np.int64)
    if true.shape != predicted.shape:
        raise ValueError(f"predicted: expected shape {true.shape} like the labels, got {predicted.shape}")
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (true, predicted), 1)
    return matrix


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


def default_out_dir(backend: str, recipe: str, root: str | os.PathLike = "runs") -> Path:
    """A new folder name ``runs/YYYYmmdd-HHMMSS-<backend>-<recipe>`` (suffixed if taken)."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(root) / f"{stamp}-{backend}-{recipe}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


# --------------------------------------------------------------------------------------------
# The driver
# --------------------------------------------------------------------------------------------


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
    """

    backend: str
    recipe: Recipe = field(default_factory=course_recipe)
    dtype: str = "float32"
    device: str = "cpu"
    eval_every: int = 1

    def __post_init__(self) -> None:
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype: expected float32 or float64, got {self.dtype!r}")
        if self.device not in ("cpu", "cuda"):
            raise ValueError(f"device: expected cpu or cuda, got {self.device!r}")
        if self.backend == "numpy" and self.device != "cpu":
            raise ValueError(f"device: the numpy backend runs on cpu only, got {self.device!r}")
        if int(self.eval_every) != self.eval_every or self.eval_every < 0:
            raise ValueError(f"eval_every: expected a non-negative integer, got {self.eval_every!r}")


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


def _data_identity(data) -> dict[str, Any]:
    """Which data a run trained on (part of the run identity checked by ``--resume``)."""
    return {
        "train": str(Path(data.sources["train"]).resolve()),
        "test": str(Path(data.sources["test"]).resolve()) if "test" in data.sources else None,
        "train_examples": int(data.X_train.shape[0]),
        "test_examples": int(data.X_test.shape[0]) if data.X_test is not None else 0,
    }


def _run_identity(config: RunConfig, data) -> dict[str, Any]:
    return {
        "backend": config.backend,
        "dtype": config.dtype,
        "device": config.device,
        "recipe": config.recipe.to_json(),
        "data": _data_identity(data),
    }


def _check_params_finite(params: dict[str, np.ndarray]) -> str | None:
    """The name of the first weight tensor holding a NaN or inf, else None."""
    for name in PARAM_NAMES:
        if not np.all(np.isfinite(params[name])):
            return name
    return None


def _prepare_out_dir(out_dir: Path, resume: bool, force: bool) -> None:
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
    for name in existing:  # starting over: no stale result may outlive the old run
        (out_dir / name).unlink()
    out_dir.mkdir(parents=True, exist_ok=True)


def train(
    config: RunConfig,
    data,
    out_dir: str | os.PathLike,
    *,
    resume: bool = False,
    force: bool = False,
    progress: bool | None = None,
    echo: Callable[[str], None] = print,
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

    Raises
    ------
    NonFiniteLoss
        A batch cost (or the weights after an epoch) was NaN/inf. The checkpoint of the last
        completed epoch is kept; metrics.json and cost.png describe the run up to there.
    TrainingInterrupted
        KeyboardInterrupt: the checkpoint of the last completed epoch is saved first.
    """
    from signs.backends import get_backend

    out_dir = Path(out_dir)
    recipe = config.recipe
    dtype = np.dtype(config.dtype)
    if data.X_train is None or data.Y_train is None:
        raise ValueError("data: expected a train split (X_train, Y_train), got none")
    for name, array in (("X_train", data.X_train), ("Y_train", data.Y_train), ("X_test", data.X_test), ("Y_test", data.Y_test)):
        if array is not None and array.dtype != dtype:
            raise ValueError(f"data.{name}: expected dtype {dtype} (the run's --dtype), got {array.dtype}")
    backend = get_backend(config.backend)
    _prepare_out_dir(out_dir, resume, force)
    checkpoint_path = out_dir / CHECKPOINT_NAME
    identity = _run_identity(config, data)

    if resume:
        state = load_checkpoint(checkpoint_path)
        ignore = ("device",) + (("recipe.num_epochs",) if recipe.schedule == "constant" else ())
        check_compatible(state.config, identity, ignore=ignore)
        if state.config.get("device") != config.device:
            echo(f"note: the checkpoint was trained on {state.config.get('device')}, continuing on "
                 f"{config.device}: results will not be bitwise those of one uninterrupted run")
        state.config = identity
        trainer = backend.Trainer(state.params, train=recipe.train_spec(), spec=COURSE_MODEL, device=config.device)
        trainer.set_optimizer_state(state.optimizer)
        echo(f"resuming {out_dir} after {state.epoch} completed epochs (of {recipe.num_epochs})")
    else:
        params = initial_params(recipe, dtype)
        trainer = backend.Trainer(params, train=recipe.train_spec(), spec=COURSE_MODEL, device=config.device)
        state = Checkpoint(
            params=trainer.get_params(), optimizer=trainer.get_optimizer_state(), epoch=0,
            history=[], elapsed_s=0.0, config=identity,
        )
        save_checkpoint(checkpoint_path, state)  # epoch 0: a NaN in the first epoch still leaves one
    resumed_from = state.epoch

    latest = _Latest(state)
    try:
        state = _train_epochs(trainer, backend, config, data, latest, checkpoint_path, progress, echo)
    except KeyboardInterrupt:
        # Ctrl-C may have landed inside save_checkpoint, whose atomic write then left the previous
        # epoch's file: write the last completed epoch again.
        save_checkpoint(checkpoint_path, latest.checkpoint)
        _write_summary(out_dir, config, data, latest.checkpoint, status="interrupted")
        raise TrainingInterrupted(
            f"interrupted after {latest.checkpoint.epoch} completed epochs; checkpoint saved to "
            f"{checkpoint_path}; continue with the same options plus --resume --out {out_dir}",
            checkpoint=checkpoint_path, completed=latest.checkpoint.epoch,
        ) from None
    except NonFiniteLoss:
        _write_summary(out_dir, config, data, latest.checkpoint, status="non-finite loss")
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
    files = _write_summary(
        out_dir, config, data, state, status="complete",
        final={"train_accuracy": train_acc, "test_accuracy": test_acc},
    )
    from reference.weights_io import save_safetensors

    files["weights"] = save_safetensors(
        params, out_dir / WEIGHTS_NAME, force=True,
        metadata={
            "backend": config.backend, "recipe": recipe.name, "init": recipe.init,
            "epochs": str(state.epoch), "train_accuracy": f"{train_acc:.6f}",
            "test_accuracy": "n/a" if test_acc is None else f"{test_acc:.6f}",
        },
    )
    files["checkpoint"] = checkpoint_path
    return TrainResult(
        params=params, history=state.history, train_accuracy=train_acc, test_accuracy=test_acc,
        out_dir=out_dir, files=files, resumed_from=resumed_from,
    )


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
    divisor = course_cost_divisor(m, recipe.mini_batch_size)
    n_batches = -(-m // recipe.mini_batch_size)
    show = bool(progress) if progress is not None else bool(getattr(sys.stderr, "isatty", lambda: False)())
    current_lr = float(recipe.learning_rate)  # what the Trainer was built with
    for epoch in range(state.epoch, recipe.num_epochs):
        lr = learning_rate_at(recipe, epoch)
        if lr != current_lr:
            trainer.set_learning_rate(lr)
            current_lr = lr
        batches = epoch_mini_batches(
            data.X_train, data.Y_train, epoch, mini_batch_size=recipe.mini_batch_size, first_seed=recipe.first_seed
        )
        course_cost, loss_sum, seen = 0.0, 0.0, 0
        bar = tqdm(total=n_batches, desc=f"epoch {epoch + 1}/{recipe.num_epochs}", unit="batch",
                   leave=False, disable=not show)
        start = time.perf_counter()
        for batch, (X_batch, Y_batch) in enumerate(batches):
            if recipe.augmentation is not None:
                rng = np.random.default_rng([int(recipe.seed), epoch, batch])
                X_batch = augment_batch(X_batch, recipe.augmentation, rng)
            cost = float(trainer.step(X_batch, Y_batch))
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
            "seed": recipe.first_seed + 1 + epoch,
            "learning_rate": lr,
            "course_cost": course_cost,
            "mean_loss": loss_sum / m,
            "train_accuracy": None,
            "test_accuracy": None,
            "wall_s": wall,
            "images_per_s": m / max(wall, 1e-9),
        }
        last_epoch = epoch + 1 == recipe.num_epochs
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
        if epoch % COURSE_TRAINING.print_every == 0:
            echo("Cost after epoch %i: %f" % (epoch, course_cost))
    return state


def _write_summary(out_dir: Path, config: RunConfig, data, state: Checkpoint, *, status: str,
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
            **_data_identity(data),
            "describe": data.describe().splitlines() if hasattr(data, "describe") else [],
        },
        "hyperparameters": {
            "learning_rate": recipe.learning_rate,
            "mini_batch_size": recipe.mini_batch_size,
            "num_epochs": recipe.num_epochs,
            "beta1": recipe.beta1,
            "beta2": recipe.beta2,
            "epsilon": recipe.epsilon,
            "first_seed": recipe.first_seed,
            "schedule": recipe.schedule,
        },
        "batches_per_epoch": -(-m // recipe.mini_batch_size),
        "course_cost_divisor": course_cost_divisor(m, recipe.mini_batch_size),
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
        recipe.learning_rate,
        mean_losses=[r["mean_loss"] for r in history],
        force=True,
    )
    return {"metrics": metrics_path, "cost_plot": plot_path}
