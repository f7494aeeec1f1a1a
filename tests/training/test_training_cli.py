"""``signs train``, ``signs evaluate`` and ``signs predict`` end to end, on the numpy backend.

Runs in-process through ``signs.cli.main`` on 64 images of each split (one batch per epoch),
1-2 epochs, accuracy measured only at the end.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from reference.model import softmax
from reference.weights_io import load_safetensors
from signs.checkpoint import load_checkpoint
from signs.cli import main
from signs.training.run_folder import WEIGHTS_NAME
from signs.training.summary import METRICS_NAME
from training_helpers import (
    CLI_BACKEND,
    CLI_LIMIT,
    PNG_SIGNATURE,
    assert_params_bitwise_equal,
    backend_or_skip,
    train_argv,
    trainer_proxy,
)

pytestmark = pytest.mark.data

def run_cli(capfd, argv) -> tuple[int, str, str]:
    code = main(argv)
    captured = capfd.readouterr()
    return code, captured.out, captured.err


def test_train_prints_course_lines_and_data_files(fast_data_dir, tmp_path, capfd):
    backend_or_skip(CLI_BACKEND)
    code, out, err = run_cli(capfd, train_argv(fast_data_dir, tmp_path / "run", "--epochs", "1"))
    assert code == 0, err
    assert "data used:" in out and "train_signs.h5" in out and "test_signs.h5" in out
    assert "Cost after epoch 0: " in out
    assert "Train Accuracy: " in out and "Test Accuracy: " in out


def test_resume_after_more_epochs_equals_longer_run(fast_data_dir, two_epoch_run, tmp_path, capfd):
    out = tmp_path / "run"
    assert main(train_argv(fast_data_dir, out, "--epochs", "1")) == 0
    code, _, err = run_cli(capfd, train_argv(fast_data_dir, out, "--epochs", "1"))
    assert code == 2 and "--resume" in err and "--force" in err  # never overwrites a run silently
    code, stdout, err = run_cli(capfd, train_argv(fast_data_dir, out, "--epochs", "2", "--resume"))
    assert code == 0, err
    assert "resuming" in stdout
    resumed, _ = load_safetensors(out / WEIGHTS_NAME)
    uninterrupted, _ = load_safetensors(two_epoch_run / WEIGHTS_NAME)
    assert_params_bitwise_equal(resumed, uninterrupted)


@pytest.mark.parametrize(
    "change, field",
    [
        (["--dtype", "float64"], "dtype differs: the checkpoint has 'float32', this run asks for 'float64'"),
        (["--lr", "0.01"], "recipe.learning_rate differs"),
        (["--batch-size", "32"], "recipe.mini_batch_size differs"),
    ],
)
def test_resume_refuses_another_recipe(fast_data_dir, two_epoch_run, capfd, change, field):
    before = (two_epoch_run / "checkpoint.npz").read_bytes()
    code, _, err = run_cli(capfd, train_argv(fast_data_dir, two_epoch_run, "--epochs", "2", "--resume", *change))
    assert code == 2 and field in err and len(err.strip().splitlines()) == 1
    assert (two_epoch_run / "checkpoint.npz").read_bytes() == before


def test_resume_refuses_another_backend(fast_data_dir, two_epoch_run, capfd):
    backend_or_skip("torch")
    argv = train_argv(fast_data_dir, two_epoch_run, "--epochs", "2", "--resume")
    argv[argv.index(CLI_BACKEND)] = "torch"
    code, _, err = run_cli(capfd, argv)
    assert code == 2 and "backend differs: the checkpoint has 'numpy', this run asks for 'torch'" in err


def test_missing_data_folder_is_a_clear_error(tmp_path, capfd):
    code, _, err = run_cli(capfd, train_argv(tmp_path / "nowhere", tmp_path / "run", "--epochs", "1"))
    assert code == 2
    assert "nowhere does not exist" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_seed_with_course_init_is_refused(fast_data_dir, tmp_path, capfd):
    code, _, err = run_cli(capfd, train_argv(fast_data_dir, tmp_path / "run", "--seed", "3"))
    assert code == 2 and "seed" in err and "--init glorot" in err


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning", "ignore:invalid value encountered:RuntimeWarning")
def test_huge_learning_rate_stops_with_clear_error(fast_data_dir, tmp_path, capfd):
    out = tmp_path / "run"
    argv = train_argv(fast_data_dir, out, "--epochs", "2", "--lr", "1e30", "--batch-size", "32")
    code, _, err = run_cli(capfd, argv)
    assert code == 1
    # The first step's cost is finite (taken before the update); the update explodes the weights.
    assert "non-finite loss" in err and "at epoch 0 (counted from 0, as the course prints), batch 1 of 2" in err
    checkpoint = load_checkpoint(out / "checkpoint.npz")
    assert checkpoint.epoch == 0  # the initial weights: the last good state
    assert all(np.all(np.isfinite(p)) for p in checkpoint.params.values())
    assert json.loads((out / METRICS_NAME).read_text())["status"] == "non-finite loss"
    weights, _ = load_safetensors(out / WEIGHTS_NAME)  # the last good weights, usable (issue 13.3)
    assert_params_bitwise_equal(weights, checkpoint.params)


def test_nan_batch_cost_keeps_last_good_checkpoint(fast_data_dir, two_epoch_run, tmp_path, capfd, monkeypatch):
    backend = backend_or_skip(CLI_BACKEND)

    def nan_at_second_step(n, real_step):
        cost = real_step()
        return float("nan") if n == 2 else cost  # epoch 1, batch 0

    monkeypatch.setattr("signs.backends.get_backend", lambda _name: trainer_proxy(backend, nan_at_second_step))
    out = tmp_path / "run"
    code, _, err = run_cli(capfd, train_argv(fast_data_dir, out, "--epochs", "2"))
    assert code == 1
    assert "non-finite loss nan at epoch 1" in err and "batch 0 of 1" in err and "1 completed epochs" in err
    assert load_checkpoint(out / "checkpoint.npz").epoch == 1
    reference = load_checkpoint(two_epoch_run / "checkpoint.npz").history[0]
    assert load_checkpoint(out / "checkpoint.npz").history[0]["course_cost"] == reference["course_cost"]


def test_ctrl_c_exits_130_and_says_how_to_resume(fast_data_dir, tmp_path, capfd, monkeypatch):
    backend = backend_or_skip(CLI_BACKEND)

    def interrupt_second_step(n, real_step):
        if n == 2:
            raise KeyboardInterrupt
        return real_step()

    monkeypatch.setattr("signs.backends.get_backend", lambda _name: trainer_proxy(backend, interrupt_second_step))
    out = tmp_path / "run"
    code, _, err = run_cli(capfd, train_argv(fast_data_dir, out, "--epochs", "2"))
    assert code == 130
    assert "interrupted after 1 completed epochs" in err and f"--resume --out {out}" in err
    assert load_checkpoint(out / "checkpoint.npz").epoch == 1


def test_improved_recipe_augments_and_resumes_bitwise(fast_data_dir, two_epoch_run, tmp_path, capfd, monkeypatch):
    """Augmentation and the cosine schedule are seeded per batch:
    an interrupted improved run resumes bitwise."""
    backend = backend_or_skip(CLI_BACKEND)
    schedule = "cosine"
    extra = ("--recipe", "improved", "--epochs", "2", "--schedule", schedule)
    whole = tmp_path / "whole"
    assert main(train_argv(fast_data_dir, whole, *extra)) == 0
    metrics = json.loads((whole / METRICS_NAME).read_text())
    assert metrics["recipe"]["augmentation"] == {"flip": False, "max_shift": 2, "brightness": 0.1}
    assert metrics["recipe"]["learning_rate"] == 0.004 and metrics["recipe"]["schedule"] == schedule
    plain, _ = load_safetensors(two_epoch_run / WEIGHTS_NAME)
    improved, _ = load_safetensors(whole / WEIGHTS_NAME)
    assert not np.array_equal(plain["W1"], improved["W1"])  # the batches really were augmented

    def interrupt_second_step(n, real_step):
        if n == 2:
            raise KeyboardInterrupt
        return real_step()

    out = tmp_path / "split"
    with monkeypatch.context() as patch:
        patch.setattr("signs.backends.get_backend", lambda _name: trainer_proxy(backend, interrupt_second_step))
        assert main(train_argv(fast_data_dir, out, *extra)) == 130
    assert main(train_argv(fast_data_dir, out, *extra, "--resume")) == 0
    resumed, _ = load_safetensors(out / WEIGHTS_NAME)
    assert_params_bitwise_equal(resumed, improved)


def test_cosine_schedule_changes_learning_rate(fast_data_dir, tmp_path):
    backend_or_skip(CLI_BACKEND)
    out = tmp_path / "run"
    assert main(train_argv(fast_data_dir, out, "--epochs", "2", "--schedule", "cosine")) == 0
    rates = [r["learning_rate"] for r in json.loads((out / METRICS_NAME).read_text())["epochs"]]
    assert rates == [0.009, pytest.approx(0.0045, rel=1e-12)]


# ------------------------------------------------------------------------------ evaluate, predict


def test_evaluate_reports_accuracy_and_confusion(fast_data_dir, two_epoch_run, tmp_path, capfd):
    weights = two_epoch_run / WEIGHTS_NAME
    argv = ["evaluate", "--weights", str(weights), "--backend", CLI_BACKEND, "--data", str(fast_data_dir),
            "--limit", str(CLI_LIMIT), "--out", str(tmp_path)]
    code, out, err = run_cli(capfd, argv)
    assert code == 0, err
    assert "data used:" in out and "true\\pred" in out and "Test Accuracy" in out
    summary = json.loads((tmp_path / "evaluation.json").read_text())
    final = json.loads((two_epoch_run / METRICS_NAME).read_text())["final"]
    assert summary["splits"]["train"]["accuracy"] == final["train_accuracy"]
    assert summary["splits"]["test"]["accuracy"] == final["test_accuracy"]
    matrix = np.array(summary["splits"]["test"]["confusion_matrix"])
    assert matrix.shape == (6, 6) and matrix.sum() == CLI_LIMIT and np.trace(matrix) / CLI_LIMIT == final["test_accuracy"]
    per_class = summary["splits"]["test"]["per_class_accuracy"]
    np.testing.assert_allclose(per_class, matrix.diagonal() / matrix.sum(axis=1))
    assert (tmp_path / "confusion_matrix.png").read_bytes()[:8] == PNG_SIGNATURE
    code, _, err = run_cli(capfd, argv)
    assert code == 2 and "--force" in err  # earlier results are not overwritten silently


def test_predict_prints_class_and_probabilities(fast_data_dir, two_epoch_run, tmp_path, capfd):
    from reference.data.dataset import load_signs

    backend = backend_or_skip(CLI_BACKEND)
    test = load_signs(fast_data_dir, splits=("test",), progress=False)
    pixels = np.round(test.X_test[:2] * 255).astype(np.uint8)
    exact = tmp_path / "exact.png"
    Image.fromarray(pixels[0]).save(exact)
    big = tmp_path / "big.png"
    Image.fromarray(pixels[1]).resize((100, 80)).convert("RGBA").save(big)
    missing = tmp_path / "missing.jpg"
    weights = two_epoch_run / WEIGHTS_NAME

    code, out, err = run_cli(capfd, ["predict", "--weights", str(weights), "--backend", CLI_BACKEND,
                                      str(exact), str(missing), str(big)])
    assert code == 2  # one image failed; the others are still classified
    assert err.strip() == f"signs predict: error: {missing}: no such image file"
    assert f"note: {big} is 100x80 RGBA" in out
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.startswith(str(tmp_path))}
    assert set(rows) == {str(exact), str(big)}
    params, _ = load_safetensors(weights)
    logits = backend.predict_logits(params, test.X_test[:1])
    expected = softmax(np.asarray(logits, dtype=np.float64))[0]
    predicted, probabilities = int(rows[str(exact)][0]), np.array(rows[str(exact)][1:], dtype=float)
    assert predicted == int(np.argmax(expected))
    np.testing.assert_allclose(probabilities, expected, atol=5e-5)  # printed with 4 decimals
    assert abs(np.array(rows[str(big)][1:], dtype=float).sum() - 1) < 1e-3


def test_predict_unreadable_image_is_one_line_error(two_epoch_run, tmp_path, capfd):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    code, _, err = run_cli(capfd, ["predict", "--weights", str(two_epoch_run / WEIGHTS_NAME), str(bad)])
    assert code == 2 and err.startswith(f"signs predict: error: {bad}: not a readable image")
    assert len(err.strip().splitlines()) == 1
