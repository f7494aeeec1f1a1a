"""Issue 13.2: writing a TF1 checkpoint checks every file it will write before writing any, and
moves them into place only when all were written."""

import pytest

from signs.cli import main

pytest.importorskip("tensorflow", reason="TF1 checkpoints need TensorFlow")


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    path = tmp_path_factory.mktemp("src") / "w.safetensors"
    assert main(["init", str(path), "--seed", "4"]) == 0
    return str(path)


def listing(folder):
    return sorted(p.name for p in folder.iterdir())


def last_error(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_an_unrelated_checkpoint_file_is_not_clobbered_without_force(tmp_path, source, capsys):
    notes = tmp_path / "checkpoint"
    notes.write_text("my notes, not a TF state file\n")
    assert main(["convert", source, str(tmp_path / "model.ckpt")]) == 2
    assert "checkpoint: exists and is not a TF checkpoint state file; pass --force" in last_error(capsys)
    assert listing(tmp_path) == ["checkpoint"] and notes.read_text() == "my notes, not a TF state file\n"
    assert main(["convert", source, str(tmp_path / "model.ckpt"), "--force"]) == 0
    assert 'model_checkpoint_path: "model.ckpt"' in notes.read_text()


def test_an_existing_state_file_gains_the_new_checkpoint(tmp_path, source):
    assert main(["convert", source, str(tmp_path / "a.ckpt")]) == 0
    assert main(["convert", source, str(tmp_path / "b.ckpt")]) == 0
    state = (tmp_path / "checkpoint").read_text()
    assert 'model_checkpoint_path: "b.ckpt"' in state
    assert 'all_model_checkpoint_paths: "a.ckpt"' in state and 'all_model_checkpoint_paths: "b.ckpt"' in state


@pytest.mark.parametrize("blocker", ["checkpoint", "model.ckpt.index", "model.ckpt.data-00000-of-00001"])
def test_a_folder_in_the_way_is_refused_before_anything_is_written(tmp_path, source, capsys, blocker):
    (tmp_path / blocker).mkdir()
    assert main(["convert", source, str(tmp_path / "model.ckpt"), "--force"]) == 2
    assert "got a directory" in last_error(capsys)
    assert listing(tmp_path) == [blocker]


def test_a_failed_write_leaves_the_folder_as_it_was(tmp_path, source, capsys, monkeypatch):
    import tf_model.tf1_checkpoint as tf1

    assert main(["convert", source, str(tmp_path / "model.ckpt")]) == 0
    before = {name: (tmp_path / name).read_bytes() for name in listing(tmp_path)}
    real_write = tf1._write_with_saver

    def write_then_fail(tensors, tmp_prefix):
        real_write(tensors, tmp_prefix)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tf1, "_write_with_saver", write_then_fail)
    assert main(["init", str(tmp_path / "model.ckpt"), "--seed", "9", "--force"]) == 2
    assert "could not be written (No space left on device)" in last_error(capsys)
    assert {name: (tmp_path / name).read_bytes() for name in listing(tmp_path)} == before
