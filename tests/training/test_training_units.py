"""Pieces of the training driver that need no backend: recipes, augmentation, checkpoints, plots."""

from __future__ import annotations

import json
from dataclasses import replace
import math

import numpy as np
import pytest

from reference.spec import COURSE_TRAINING, param_shapes
from signs.checkpoint import Checkpoint, check_compatible, load_checkpoint, save_checkpoint
from signs.plots import format_confusion_table, save_confusion_plot, save_cost_plot
from signs.training.metrics import confusion_matrix, course_cost_divisor
from signs.training.recipes import (
    Augmentation,
    Recipe,
    augment_batch,
    course_recipe,
    improved_recipe,
    learning_rate_at,
)
from training_helpers import PNG_SIGNATURE, assert_params_bitwise_equal


def random_params(seed: int, dtype=np.float32) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {name: rng.standard_normal(shape).astype(dtype) for name, shape in param_shapes().items()}


def random_checkpoint(dtype=np.float32) -> Checkpoint:
    return Checkpoint(
        params=random_params(1, dtype),
        optimizer={"t": 34, "m": random_params(2, dtype), "v": random_params(3, dtype)},
        epoch=2,
        history=[{"epoch": 0, "course_cost": 1.0 / 3.0}, {"epoch": 1, "course_cost": 0.1 + 0.2}],
        elapsed_s=12.5,
        config={"backend": "numpy", "dtype": np.dtype(dtype).name, "recipe": {"learning_rate": 0.009}},
    )


# ------------------------------------------------------------------------------ the recipe


def test_course_divides_by_16_for_17_batches():
    m, b = 1080, COURSE_TRAINING.mini_batch_size
    assert -(-m // b) == 17
    assert course_cost_divisor(m, b) == 16
    assert course_cost_divisor(30, 64) == 1  # the course would divide by zero


def test_learning_rate_schedules():
    course = course_recipe()
    assert all(learning_rate_at(course, e) == COURSE_TRAINING.learning_rate for e in (0, 50, 99))
    cosine = course_recipe(schedule="cosine", num_epochs=10, learning_rate=0.01)
    assert learning_rate_at(cosine, 0) == 0.01
    assert learning_rate_at(cosine, 5) == pytest.approx(0.005, rel=1e-12)
    assert learning_rate_at(cosine, 9) == pytest.approx(0.01 * 0.5 * (1 + math.cos(math.pi * 0.9)), rel=1e-12)
    rates = [learning_rate_at(cosine, e) for e in range(10)]
    assert all(a > b > 0 for a, b in zip(rates, rates[1:]))


def test_recipe_seed_rules():
    with pytest.raises(ValueError, match="seed"):
        course_recipe(seed=5)  # nothing random to seed: refused, not ignored
    with pytest.raises(ValueError, match="seed"):
        course_recipe(init="glorot")  # Glorot needs a seed
    assert course_recipe(init="glorot", seed=7).seed == 7
    assert improved_recipe().augmentation == Augmentation() and improved_recipe().seed == 0
    with pytest.raises(ValueError, match="schedule"):
        Recipe(schedule="linear")
    with pytest.raises(ValueError, match="learning_rate"):
        Recipe(train=replace(COURSE_TRAINING, learning_rate=-1.0))


def test_augment_batch_is_seeded_and_keeps_shape_dtype_range():
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, size=(8, 64, 64, 3)).astype(np.float32)
    original = X.copy()
    aug = Augmentation()
    a = augment_batch(X, aug, np.random.default_rng([0, 1, 2]))
    b = augment_batch(X, aug, np.random.default_rng([0, 1, 2]))
    c = augment_batch(X, aug, np.random.default_rng([0, 1, 3]))
    assert a.shape == X.shape and a.dtype == X.dtype
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert a.min() >= 0.0 and a.max() <= 1.0
    assert np.array_equal(X, original)  # the input is not modified


def test_augment_flip_only_mirrors_width_axis():
    rng = np.random.default_rng(1)
    X = rng.uniform(0, 1, size=(16, 64, 64, 3))
    out = augment_batch(X, Augmentation(flip=True, max_shift=0, brightness=0.0), np.random.default_rng(5))
    flipped = [i for i in range(16) if not np.array_equal(out[i], X[i])]
    assert 0 < len(flipped) < 16
    for i in range(16):
        assert np.array_equal(out[i], X[i, :, ::-1, :]) or np.array_equal(out[i], X[i])


def test_augment_shift_moves_content_by_at_most_max_shift():
    X = np.zeros((4, 64, 64, 3))
    X[:, 30, 30, :] = 1.0  # one bright pixel, far from the edges
    out = augment_batch(X, Augmentation(flip=False, max_shift=3, brightness=0.0), np.random.default_rng(2))
    for i in range(4):
        rows, cols = np.nonzero(out[i, :, :, 0])
        assert rows.size == 1 and abs(rows[0] - 30) <= 3 and abs(cols[0] - 30) <= 3


def test_confusion_matrix_counts_rows_true_columns_predicted():
    true = np.array([0, 0, 1, 2, 2, 2])
    pred = np.array([0, 1, 1, 2, 0, 2])
    matrix = confusion_matrix(true, pred, 3)
    np.testing.assert_array_equal(matrix, [[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    table = format_confusion_table(matrix, ["0", "1", "2"])
    lines = table.splitlines()
    assert len(lines) == 4 and lines[3].split()[-1] == "0.6667"
    with pytest.raises(ValueError, match="matrix"):
        format_confusion_table(matrix, ["0", "1"])


# ------------------------------------------------------------------------------ checkpoints


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_checkpoint_round_trip_is_exact_and_pickle_free(tmp_path, dtype):
    checkpoint = random_checkpoint(dtype)
    path = save_checkpoint(tmp_path / "checkpoint.npz", checkpoint)
    with np.load(path, allow_pickle=False) as archive:  # would raise on an object array
        assert "meta" in archive.files and archive["meta"].dtype.kind == "U"
    loaded = load_checkpoint(path)
    assert_params_bitwise_equal(loaded.params, checkpoint.params)
    assert_params_bitwise_equal(loaded.optimizer["m"], checkpoint.optimizer["m"])
    assert_params_bitwise_equal(loaded.optimizer["v"], checkpoint.optimizer["v"])
    assert loaded.optimizer["t"] == 34 and loaded.epoch == 2 and loaded.elapsed_s == 12.5
    assert loaded.history == checkpoint.history  # floats round-trip exactly through JSON
    assert loaded.config == checkpoint.config
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.npz"]  # no temporary left behind


def test_checkpoint_write_failure_keeps_previous_file(tmp_path):
    path = save_checkpoint(tmp_path / "checkpoint.npz", random_checkpoint())
    before = path.read_bytes()
    broken = random_checkpoint()
    del broken.optimizer["v"]["W3"]
    with pytest.raises(ValueError, match="optimizer"):
        save_checkpoint(path, broken)
    assert path.read_bytes() == before


def test_load_checkpoint_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint"):
        load_checkpoint(tmp_path / "none.npz")
    bad = tmp_path / "bad.npz"
    np.savez(bad, W1=np.zeros(3))
    with pytest.raises(ValueError, match="meta"):
        load_checkpoint(bad)


def test_check_compatible_names_the_field():
    saved = {"backend": "numpy", "dtype": "float32", "device": "cpu", "recipe": {"learning_rate": 0.009, "num_epochs": 3}}
    check_compatible(saved, json.loads(json.dumps(saved)))
    with pytest.raises(ValueError, match=r"dtype differs: the checkpoint has 'float32', this run asks for 'float64'"):
        check_compatible(saved, {**saved, "dtype": "float64"})
    with pytest.raises(ValueError, match=r"backend differs"):
        check_compatible(saved, {**saved, "backend": "torch"})
    longer = {**saved, "recipe": {"learning_rate": 0.009, "num_epochs": 5}}
    with pytest.raises(ValueError, match=r"recipe\.num_epochs differs"):
        check_compatible(saved, longer)
    check_compatible(saved, longer, ignore=("recipe.num_epochs",))


# ------------------------------------------------------------------------------ plots


def test_cost_plot_is_a_png(tmp_path):
    path = save_cost_plot(tmp_path / "cost.png", [1.9, 1.5, 1.2], 0.009, mean_losses=[1.8, 1.4, 1.1])
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    with pytest.raises(FileExistsError):
        save_cost_plot(path, [1.0], 0.009, force=False)


def test_confusion_plot_is_a_png(tmp_path):
    matrix = np.arange(36).reshape(6, 6)
    path = save_confusion_plot(tmp_path / "c.png", {"train": matrix, "test": matrix.T}, [str(i) for i in range(6)])
    assert path.read_bytes()[:8] == PNG_SIGNATURE
