"""Issue 13.3, 13.6, 13.7 and 13.5 (train --out, evaluate): a stopped run is usable, --force
keeps the old run until the new one can replace it, damaged checkpoints and inconsistent
arguments are one-line errors before anything is touched."""

from __future__ import annotations

import os

import pytest

from reference.weights_io import load_safetensors
from signs.checkpoint import load_checkpoint
from signs.cli import main
from signs.training.run_folder import RUN_FILES, WEIGHTS_NAME
from training_helpers import CLI_BACKEND, assert_params_bitwise_equal, backend_or_skip, train_argv, trainer_proxy

pytestmark = pytest.mark.data

def one_error_line(capfd, command: str) -> str:
    err = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1, err
    assert err[0].startswith(f"signs {command}: error: "), err
    return err[0]


def snapshot(folder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def interrupt_at(step: int):
    def on_step(n, real_step):
        if n == step:
            raise KeyboardInterrupt
        return real_step()

    return on_step


# ------------------------------------------------------------------ 13.3 stopped runs stay usable


def test_an_interrupted_run_leaves_the_last_completed_epochs_weights(fast_data_dir, tmp_path, capfd, monkeypatch):
    backend = backend_or_skip(CLI_BACKEND)
    monkeypatch.setattr("signs.backends.get_backend", lambda _name: trainer_proxy(backend, interrupt_at(3)))
    out = tmp_path / "run"
    assert main(train_argv(fast_data_dir, out, "--epochs", "3")) == 130
    checkpoint = load_checkpoint(out / "checkpoint.npz")
    assert checkpoint.epoch == 2
    weights, metadata = load_safetensors(out / WEIGHTS_NAME)
    assert_params_bitwise_equal(weights, checkpoint.params)
    assert metadata["epochs"] == "2"
    capfd.readouterr()
    assert main(["evaluate", "--weights", str(out / WEIGHTS_NAME), "--data", str(fast_data_dir),
                 "--limit", "8", "--split", "test"]) == 0


def test_weights_follow_every_epoch_even_without_a_clean_exit(fast_data_dir, tmp_path, monkeypatch):
    """A hard kill (no exception handler runs) after epoch 1: weights.safetensors is epoch 1's."""
    backend = backend_or_skip(CLI_BACKEND)

    def killed(n, real_step):
        if n == 2:
            raise SystemExit(9)  # stands for SIGKILL: not caught by train()
        return real_step()

    monkeypatch.setattr("signs.backends.get_backend", lambda _name: trainer_proxy(backend, killed))
    out = tmp_path / "run"
    with pytest.raises(SystemExit):
        main(train_argv(fast_data_dir, out, "--epochs", "3"))
    weights, _ = load_safetensors(out / WEIGHTS_NAME)
    assert_params_bitwise_equal(weights, load_checkpoint(out / "checkpoint.npz").params)
    assert load_checkpoint(out / "checkpoint.npz").epoch == 1


def test_force_keeps_the_old_run_until_the_new_one_has_started(fast_data_dir, two_epoch_run, tmp_path, capfd, monkeypatch):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(two_epoch_run, out)
    before = snapshot(out)
    assert sorted(before) == sorted(RUN_FILES)

    backend = backend_or_skip(CLI_BACKEND)

    class BrokenTrainer:
        def __init__(self, *args, **kwargs):
            raise ValueError("device: stand-in for a failure before the first epoch")

    broken = trainer_proxy(backend, None)
    broken.Trainer = BrokenTrainer
    monkeypatch.setattr("signs.backends.get_backend", lambda _name: broken)
    assert main(train_argv(fast_data_dir, out, "--epochs", "2", "--force")) == 2
    one_error_line(capfd, "train")
    assert snapshot(out) == before


# ------------------------------------------------------------------ 13.7 inconsistent arguments


@pytest.mark.parametrize("epochs", ["1", "2"])
def test_resume_of_a_complete_run_is_refused(fast_data_dir, two_epoch_run, capfd, epochs):
    before = snapshot(two_epoch_run)
    assert main(train_argv(fast_data_dir, two_epoch_run, "--epochs", epochs, "--resume")) == 2
    line = one_error_line(capfd, "train")
    assert f"has completed 2 epochs and --epochs asks for {epochs}: nothing to train" in line
    assert snapshot(two_epoch_run) == before


@pytest.mark.parametrize("bad", [["--lr", "inf"], ["--lr", "nan"], ["--lr", "-1"], ["--limit", "0"],
                                 ["--batch-size", "0"], ["--eval-every", "-1"]])
def test_bad_arguments_are_refused_before_the_disk_is_touched(tmp_path, capfd, monkeypatch, bad):
    def no_data(*args, **kwargs):
        raise AssertionError("the data was loaded before the arguments were checked")

    monkeypatch.setattr("reference.data.dataset.load_signs", no_data)
    out = tmp_path / "run"
    assert main(train_argv(tmp_path / "nowhere", out, "--epochs", "1", *bad)) == 2
    one_error_line(capfd, "train")
    assert not out.exists()


def test_a_bad_resume_is_refused_before_the_data_is_loaded(fast_data_dir, two_epoch_run, tmp_path, capfd, monkeypatch):
    import shutil

    def no_data(*args, **kwargs):
        raise AssertionError("the data was loaded before the checkpoint was checked")

    monkeypatch.setattr("reference.data.dataset.load_signs", no_data)
    out = tmp_path / "run"
    shutil.copytree(two_epoch_run, out)
    assert main(train_argv(fast_data_dir, out, "--epochs", "5", "--resume", "--lr", "0.001")) == 2
    assert "recipe.learning_rate differs" in one_error_line(capfd, "train")


# ------------------------------------------------------------------ 13.6 damaged checkpoints, via the CLI


def test_resume_from_a_truncated_checkpoint_is_one_line(fast_data_dir, two_epoch_run, tmp_path, capfd):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(two_epoch_run, out)
    checkpoint = out / "checkpoint.npz"
    checkpoint.write_bytes(checkpoint.read_bytes()[:1000])
    before = snapshot(out)
    assert main(train_argv(fast_data_dir, out, "--epochs", "5", "--resume")) == 2
    assert f"checkpoint {checkpoint}: not a readable checkpoint" in one_error_line(capfd, "train")
    assert snapshot(out) == before


# ------------------------------------------------------------------ 13.5 write errors: train --out, evaluate


def _no_data(*args, **kwargs):
    raise AssertionError("the data was loaded before the destination was checked")


def test_train_out_with_a_folder_in_place_of_a_run_file_is_refused_first(tmp_path, capfd, monkeypatch):
    monkeypatch.setattr("reference.data.dataset.load_signs", _no_data)
    out = tmp_path / "run"
    (out / WEIGHTS_NAME).mkdir(parents=True)
    assert main(train_argv(tmp_path, out, "--epochs", "1", "--force")) == 2
    assert "weights.safetensors: expected a file name to write, got a directory" in one_error_line(capfd, "train")
    assert sorted(p.name for p in out.iterdir()) == [WEIGHTS_NAME]
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    assert main(train_argv(tmp_path, a_file, "--epochs", "1")) == 2
    assert "is a file, not a folder" in one_error_line(capfd, "train")


def test_train_full_disk_mid_run_is_one_line_and_keeps_the_last_good_files(fast_data_dir, tmp_path, capfd, monkeypatch):
    import errno

    import signs.checkpoint as checkpoint_module

    real_write, calls = checkpoint_module.write_npz, []

    def full_at_second_checkpoint(handle, arrays):
        calls.append(1)
        if len(calls) == 2:  # epoch 1's checkpoint (epoch 0's is the first)
            handle.write(b"PK partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(handle, arrays)

    monkeypatch.setattr(checkpoint_module, "write_npz", full_at_second_checkpoint)
    out = tmp_path / "run"
    assert main(train_argv(fast_data_dir, out, "--epochs", "2")) == 2
    assert "checkpoint.npz: could not be written (No space left on device)" in one_error_line(capfd, "train")
    assert load_checkpoint(out / "checkpoint.npz").epoch == 0
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.npz", WEIGHTS_NAME]  # no partial file


def test_evaluate_falls_back_to_the_working_directory(fast_data_dir, two_epoch_run, tmp_path, capfd, monkeypatch):
    weights_dir = str(two_epoch_run)
    real_access = os.access
    monkeypatch.setattr("os.access", lambda path, mode: False if str(path) == weights_dir else real_access(path, mode))
    monkeypatch.chdir(tmp_path)
    before = snapshot(two_epoch_run)
    argv = ["evaluate", "--weights", str(two_epoch_run / WEIGHTS_NAME), "--data", str(fast_data_dir),
            "--limit", "8", "--split", "test"]
    assert main(argv) == 0
    out = capfd.readouterr().out
    assert "note: cannot write next to the weights" in out and f"writing to {tmp_path} instead" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["confusion_matrix.png", "evaluation.json"]
    assert snapshot(two_epoch_run) == before
    monkeypatch.setattr("reference.data.dataset.load_signs", _no_data)
    assert main(argv + ["--out", weights_dir]) == 2  # an explicit --out is not second-guessed
    assert f"no write permission in {weights_dir}" in one_error_line(capfd, "evaluate")
