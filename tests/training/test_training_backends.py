"""The training driver on every backend, on a small subset of the real SIGNS data.

Each backend: trains and lowers the loss, writes every output file, and a run interrupted by
Ctrl-C then resumed ends with weights bitwise equal to an uninterrupted run. In float64 the three
backends follow the same trajectory for the first epoch. TF is slow: 2 epochs on 128 images.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from reference.weights_io import load_safetensors
from signs.checkpoint import load_checkpoint
from signs.tolerances import adam_tolerance, relative_error
from signs.training.driver import RunConfig, TrainingInterrupted, train
from signs.training.run_folder import WEIGHTS_NAME
from signs.training.metrics import accuracy
from signs.training.recipes import course_recipe
from signs.training.summary import COST_PLOT_NAME, METRICS_NAME
from training_helpers import (
    BACKEND_NAMES,
    PNG_SIGNATURE,
    assert_params_bitwise_equal,
    backend_or_skip,
    trainer_proxy,
)

pytestmark = pytest.mark.data

EPOCHS = 2
METRICS_KEYS = {
    "status", "completed_epochs", "backend", "dtype", "device", "versions", "recipe", "init", "seed",
    "data", "hyperparameters", "batches_per_epoch", "course_cost_divisor", "wall_time_s", "epochs", "final",
}
EPOCH_KEYS = {
    "epoch", "seed", "learning_rate", "course_cost", "mean_loss", "train_accuracy", "test_accuracy",
    "wall_s", "images_per_s",
}


def quiet(_line: str) -> None:
    """Swallow the course's progress lines."""


@pytest.fixture(scope="module", params=BACKEND_NAMES)
def uninterrupted(request, small_data, tmp_path_factory):
    """(backend name, TrainResult) of a 2-epoch float32 course run on 128 images."""
    backend_or_skip(request.param)
    out = tmp_path_factory.mktemp(f"run-{request.param}")
    config = RunConfig(backend=request.param, recipe=course_recipe(num_epochs=EPOCHS), eval_every=0)
    return request.param, train(config, small_data(), out, progress=False, echo=quiet)


def test_trains_lowers_loss_and_writes_outputs(uninterrupted, small_data):
    name, result = uninterrupted
    history = result.history
    assert [r["epoch"] for r in history] == list(range(EPOCHS))
    assert [r["seed"] for r in history] == [4, 5]  # the course: seed 3, incremented before each epoch
    assert history[1]["mean_loss"] < history[0]["mean_loss"] - 1e-3
    assert history[0]["mean_loss"] == pytest.approx(history[0]["course_cost"])  # 128 = 2 x 64: no remainder

    out = result.out_dir
    metrics = json.loads((out / METRICS_NAME).read_text())
    assert METRICS_KEYS <= set(metrics) and metrics["status"] == "complete"
    assert metrics["backend"] == name and metrics["dtype"] == "float32" and metrics["device"] == "cpu"
    assert "numpy" in metrics["versions"] and metrics["data"]["train_examples"] == 128
    assert all(EPOCH_KEYS <= set(r) for r in metrics["epochs"])
    assert metrics["final"]["train_accuracy"] == result.train_accuracy
    assert (out / COST_PLOT_NAME).read_bytes()[:8] == PNG_SIGNATURE

    params, metadata = load_safetensors(out / WEIGHTS_NAME)
    assert_params_bitwise_equal(params, result.params)
    assert metadata["backend"] == name
    checkpoint = load_checkpoint(result.files["checkpoint"])
    assert checkpoint.epoch == EPOCHS and checkpoint.optimizer["t"] == EPOCHS * 2
    assert_params_bitwise_equal(checkpoint.params, result.params)
    backend = backend_or_skip(name)
    data = small_data()
    assert result.train_accuracy == accuracy(backend, params, data.X_train, data.Y_train)


def test_interrupt_then_resume_is_bitwise_identical(uninterrupted, small_data, tmp_path, monkeypatch):
    name, reference_run = uninterrupted
    backend = backend_or_skip(name)
    config = RunConfig(backend=name, recipe=course_recipe(num_epochs=EPOCHS), eval_every=0)

    def interrupt_third_step(n, real_step):
        if n == 3:  # epoch 1, batch 0
            raise KeyboardInterrupt
        return real_step()

    monkeypatch.setattr("signs.backends.get_backend", lambda _name: trainer_proxy(backend, interrupt_third_step))
    with pytest.raises(TrainingInterrupted, match="--resume") as caught:
        train(config, small_data(), tmp_path, progress=False, echo=quiet)
    assert caught.value.completed == 1
    stopped = load_checkpoint(tmp_path / "checkpoint.npz")
    assert stopped.epoch == 1
    assert json.loads((tmp_path / METRICS_NAME).read_text())["status"] == "interrupted"
    # The stopped run is usable: its weights are the last completed epoch's (issue 13.3).
    assert_params_bitwise_equal(load_safetensors(tmp_path / WEIGHTS_NAME)[0], stopped.params)

    monkeypatch.undo()
    resumed = train(config, small_data(), tmp_path, resume=True, progress=False, echo=quiet)
    assert resumed.resumed_from == 1
    assert_params_bitwise_equal(resumed.params, reference_run.params)
    assert [r["course_cost"] for r in resumed.history] == [r["course_cost"] for r in reference_run.history]


def test_float64_first_epoch_agrees_across_backends(small_data, tmp_path):
    """Same weights, same batches: the three trajectories agree within the Adam tolerance."""
    names = list(BACKEND_NAMES)
    for name in names:
        backend_or_skip(name)
    config_recipe = course_recipe(num_epochs=1)
    data = small_data("float64")  # 2 batches of 64
    results = {
        name: train(RunConfig(backend=name, recipe=config_recipe, dtype="float64", eval_every=0),
                    data, tmp_path / name, progress=False, echo=quiet)
        for name in names
    }
    tolerance = adam_tolerance(np.float64)
    reference = results["numpy"]
    for name in names[1:]:
        other = results[name]
        for tensor in reference.params:
            err = relative_error(reference.params[tensor], other.params[tensor])
            assert err <= tolerance, f"{name} {tensor}: relative error {err:.3e} > {tolerance:g}"
        err = relative_error(reference.history[0]["course_cost"], other.history[0]["course_cost"])
        assert err <= tolerance, f"{name} course cost: relative error {err:.3e}"
