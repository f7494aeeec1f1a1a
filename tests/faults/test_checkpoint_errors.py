"""Issue 13.6: a damaged checkpoint is a one-line ValueError naming the file and what is wrong."""

import json
import os

import numpy as np
import pytest

from reference.init import glorot_init
from signs.checkpoint import Checkpoint, load_checkpoint, save_checkpoint


def make_checkpoint(tmp_path, **changes):
    params = glorot_init(1)
    state = Checkpoint(
        params=params,
        optimizer={"t": 3, "m": {k: v * 0 for k, v in params.items()}, "v": {k: v * 0 + 1 for k, v in params.items()}},
        epoch=1, history=[{"epoch": 0, "course_cost": 1.5}], elapsed_s=0.5, config={"backend": "numpy"},
    )
    for key, value in changes.items():
        setattr(state, key, value)
    return save_checkpoint(tmp_path / "checkpoint.npz", state)


def rewrite(path, mutate):
    """Load every entry of the checkpoint, let ``mutate`` change the dict, write it back."""
    with np.load(path, allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}
    mutate(arrays)
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)
    return path


def refused(path, *fragments):
    with pytest.raises(ValueError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert "\n" not in message and f"checkpoint {path}" in message, message
    for fragment in fragments:
        assert fragment in message, message


def test_a_good_checkpoint_loads(tmp_path):
    assert load_checkpoint(make_checkpoint(tmp_path)).epoch == 1


def test_truncated(tmp_path):
    path = make_checkpoint(tmp_path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    refused(path, "not a readable checkpoint (.npz) file")


@pytest.mark.parametrize("size", [0, 7, 5000])
def test_random_bytes(tmp_path, size):
    path = tmp_path / "checkpoint.npz"
    path.write_bytes(np.random.default_rng(size).bytes(size))
    refused(path, "not a readable checkpoint (.npz) file")


def test_a_bare_npy_file(tmp_path):
    path = tmp_path / "checkpoint.npz"
    with open(path, "wb") as handle:
        np.save(handle, np.zeros(3))
    refused(path, "not a readable checkpoint")


def test_missing_entry(tmp_path):
    path = rewrite(make_checkpoint(tmp_path), lambda a: a.pop("adam/v/W3"))
    refused(path, "missing entries ['adam/v/W3']")


@pytest.mark.parametrize("field", ["t", "epoch", "history", "elapsed_s", "config"])
def test_missing_meta_field(tmp_path, field):
    def drop(arrays):
        meta = json.loads(str(arrays["meta"]))
        del meta[field]
        arrays["meta"] = np.array(json.dumps(meta))

    refused(rewrite(make_checkpoint(tmp_path), drop), f"meta[{field!r}]")


def test_meta_not_json(tmp_path):
    path = rewrite(make_checkpoint(tmp_path), lambda a: a.update(meta=np.array("{not json")))
    refused(path, "'meta': expected a JSON object")


@pytest.mark.parametrize("entry", ["params/W2", "adam/m/b3", "adam/v/W1"])
def test_nan_inside(tmp_path, entry):
    def poison(arrays):
        arrays[entry] = arrays[entry].copy()
        arrays[entry].flat[0] = np.nan

    refused(rewrite(make_checkpoint(tmp_path), poison), "expected finite values, got 1 of")


def test_wrong_shape(tmp_path):
    path = rewrite(make_checkpoint(tmp_path), lambda a: a.update({"adam/m/W3": np.zeros((6, 64), np.float32)}))
    refused(path, "expected shape (64, 6), got (6, 64)")


def test_directory(tmp_path):
    (tmp_path / "checkpoint.npz").mkdir()
    refused(tmp_path / "checkpoint.npz", "expected a file")
    assert os.path.isdir(tmp_path / "checkpoint.npz")
