"""Training recipes: everything that decides a trajectory besides backend, dtype and device.

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

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from reference.spec import COURSE_MODEL, COURSE_TRAINING, IMPROVED_TRAINING, TrainSpec
from reference.validate import check_learning_rate

__all__ = [
    "RECIPES",
    "INITS",
    "SCHEDULES",
    "Augmentation",
    "Recipe",
    "RECIPE_TRAIN_FIELDS",
    "course_recipe",
    "improved_recipe",
    "make_recipe",
    "learning_rate_at",
    "augment_batch",
    "initial_params",
]

RECIPES = ("course", "improved")
INITS = ("course", "glorot")
SCHEDULES = ("constant", "cosine")


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


# The TrainSpec fields a recipe chooses (the rest, e.g. the course's init seeds, are fixed).
RECIPE_TRAIN_FIELDS: tuple[str, ...] = (
    "learning_rate", "mini_batch_size", "num_epochs", "first_seed", "beta1", "beta2", "epsilon",
)


@dataclass(frozen=True)
class Recipe:
    """Everything that decides a training trajectory besides backend, dtype and device.

    Attributes
    ----------
    name : "course" or "improved" (a label; the fields below are what count).
    train : the ``TrainSpec`` handed to a backend's ``Trainer``: Adam's base learning rate and
        constants, ``mini_batch_size`` (the last batch of an epoch holds the remainder),
        ``num_epochs`` and the course's batch seed schedule (``first_seed``).
    init : "course" (the notebook's exact TF1 weights) or "glorot" (seeded Glorot-uniform).
    seed : seeds Glorot weights and the augmentation; ``None`` when neither is used.
    schedule : "constant" (the course) or "cosine" (decay to 0 over ``num_epochs``, per epoch).
    augmentation : ``Augmentation`` or ``None`` (the course).
    """

    name: str = "course"
    train: TrainSpec = COURSE_TRAINING
    init: str = "course"
    seed: int | None = None
    schedule: str = "constant"
    augmentation: Augmentation | None = None

    def __post_init__(self) -> None:
        if self.name not in RECIPES:
            raise ValueError(f"recipe: expected one of {RECIPES}, got {self.name!r}")
        if self.init not in INITS:
            raise ValueError(f"init: expected one of {INITS}, got {self.init!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule: expected one of {SCHEDULES}, got {self.schedule!r}")
        check_learning_rate(self.train.learning_rate)
        batch, epochs = self.train.mini_batch_size, self.train.num_epochs
        if int(batch) != batch or batch < 1:
            raise ValueError(f"mini_batch_size: expected a positive integer, got {batch!r}")
        if int(epochs) != epochs or epochs < 0:
            raise ValueError(f"num_epochs: expected a non-negative integer, got {epochs!r}")
        needs_seed = self.init == "glorot" or self.augmentation is not None
        if needs_seed and (self.seed is None or int(self.seed) != self.seed or self.seed < 0):
            raise ValueError(f"seed: expected a non-negative integer for Glorot init or augmentation, got {self.seed!r}")
        if not needs_seed and self.seed is not None:
            raise ValueError(
                f"seed: got {self.seed!r}, but this recipe draws nothing at random (course init, no "
                "augmentation; the batch shuffle follows the course's fixed seed schedule): "
                "use --init glorot or --recipe improved, or drop --seed"
            )

    def to_json(self) -> dict[str, Any]:
        """The recipe as metrics.json and a checkpoint's run identity record it: one flat dict, the
        recipe's own fields and :data:`RECIPE_TRAIN_FIELDS` side by side."""
        train = {name: getattr(self.train, name) for name in RECIPE_TRAIN_FIELDS}
        return {
            "name": self.name,
            **{name: train.pop(name) for name in ("learning_rate", "mini_batch_size", "num_epochs")},
            "init": self.init,
            "seed": self.seed,
            "schedule": self.schedule,
            "augmentation": None if self.augmentation is None else asdict(self.augmentation),
            **train,
        }


def _recipe(fields: dict[str, Any], train: TrainSpec, overrides: dict[str, Any]) -> Recipe:
    """A Recipe from its fields and ``train``; ``overrides`` may name Recipe fields or
    :data:`RECIPE_TRAIN_FIELDS` (e.g. ``learning_rate=0.01, num_epochs=10, init="glorot"``)."""
    train_overrides = {name: overrides.pop(name) for name in list(overrides) if name in RECIPE_TRAIN_FIELDS}
    return Recipe(**{**fields, **overrides, "train": replace(train, **train_overrides)})


def course_recipe(**overrides) -> Recipe:
    """The course's recipe (module docstring), with optional overrides (see :func:`_recipe`)."""
    return _recipe({"name": "course"}, COURSE_TRAINING, dict(overrides))


def improved_recipe(**overrides) -> Recipe:
    """The improved recipe: ``IMPROVED_TRAINING`` (lr 0.004, 150 epochs), cosine decay,
    augmentation (module docstring), with optional overrides (see :func:`_recipe`)."""
    fields = {"name": "improved", "schedule": "cosine", "augmentation": Augmentation(), "seed": 0}
    return _recipe(fields, IMPROVED_TRAINING, dict(overrides))


def make_recipe(name: str, **overrides) -> Recipe:
    """``course_recipe`` or ``improved_recipe`` by name, with field overrides."""
    if name == "course":
        return course_recipe(**overrides)
    if name == "improved":
        return improved_recipe(**overrides)
    raise ValueError(f"recipe: expected one of {RECIPES}, got {name!r}")


def learning_rate_at(recipe: Recipe, epoch: int) -> float:
    """The learning rate of 0-based ``epoch``: constant, or cosine ``lr * (1 + cos(pi e / E)) / 2``."""
    if recipe.schedule == "constant":
        return float(recipe.train.learning_rate)
    base, epochs = float(recipe.train.learning_rate), max(recipe.train.num_epochs, 1)
    return base * 0.5 * (1.0 + math.cos(math.pi * epoch / epochs))


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
