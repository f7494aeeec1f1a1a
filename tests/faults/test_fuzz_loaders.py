"""Fuzzing the weight and data loaders (issue 13, last part).

Random byte strings, truncations and bit flips of valid files must end in a one-line
ValueError/FileNotFoundError or in a load that passes the loader's own checks: never another
exception, never a hang (each load is cut off after HANG_S seconds) and never more memory than
stated: MEMORY_BOUND of Python/NumPy allocations per load (tracemalloc) and RSS_BOUND of growth of
the process' peak resident memory over a whole test (resource.getrusage, which also sees the
C/C++ allocations of HDF5, TensorFlow and PyTorch). Hypothesis runs derandomized, with few
examples per format, so the suite stays deterministic and fast.
"""

from __future__ import annotations

import contextlib
import resource
import signal
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reference.init import glorot_init
from reference.spec import PARAM_NAMES

MEMORY_BOUND = 64 * 2**20  # bytes traced per load
RSS_BOUND = 512 * 2**20  # bytes of peak-RSS growth per fuzz test
HANG_S = 20  # seconds before one load counts as a hang

FUZZ = settings(max_examples=25, deadline=10_000, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

WEIGHT_FILES = {"safetensors": "w.safetensors", "npz": "w.npz", "keras": "w.weights.h5", "torch": "w.pt"}


def mutations(valid: bytes):
    """Random bytes, a truncation, or 1-4 bit flips of ``valid``."""
    n_bits = len(valid) * 8

    def flip(positions):
        data = bytearray(valid)
        for bit in positions:
            data[bit // 8] ^= 1 << (bit % 8)
        return bytes(data)

    return st.one_of(
        st.binary(max_size=4096),
        st.integers(0, len(valid) - 1).map(lambda n: valid[:n]),
        st.lists(st.integers(0, n_bits - 1), min_size=1, max_size=4).map(flip),
    )


@contextlib.contextmanager
def hang_guard(seconds: int = HANG_S):
    def on_alarm(signum, frame):
        raise TimeoutError(f"a load took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def load_or_refuse(load):
    """Run ``load()``: its result, or None after a one-line ValueError/FileNotFoundError.
    Anything else (another exception, a hang, too much memory) fails the test."""
    tracemalloc.start()
    try:
        with hang_guard():
            try:
                result = load()
            except (ValueError, FileNotFoundError) as exc:
                assert "\n" not in str(exc) and str(exc), repr(exc)
                result = None
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < MEMORY_BOUND, f"{peak / 2**20:.0f} MiB traced during one load"
    return result


@pytest.fixture(scope="module")
def rss_at_start():
    return peak_rss()


@pytest.fixture(scope="module")
def valid_weights(tmp_path_factory):
    from signs.convert import save_weights

    folder = tmp_path_factory.mktemp("valid")
    params = glorot_init(11)
    files = {}
    for fmt, name in WEIGHT_FILES.items():
        if fmt in ("keras",):
            pytest.importorskip("tensorflow")
        if fmt == "torch":
            pytest.importorskip("torch")
        save_weights(params, folder / name)
        files[fmt] = (folder / name).read_bytes()
    return files


def check_loaded_params(params):
    assert sorted(params) == sorted(PARAM_NAMES)
    for value in params.values():
        assert np.all(np.isfinite(value))


@pytest.mark.parametrize("fmt", list(WEIGHT_FILES))
def test_fuzz_weight_loaders(valid_weights, rss_at_start, tmp_path, fmt):
    from signs.convert import load_weights

    path = tmp_path / WEIGHT_FILES[fmt]

    @FUZZ
    @given(data=mutations(valid_weights[fmt]))
    def run(data):
        path.write_bytes(data)
        result = load_or_refuse(lambda: load_weights(path))
        if result is not None:
            check_loaded_params(result[0])

    run()
    assert peak_rss() - rss_at_start < RSS_BOUND


@pytest.fixture(scope="module")
def valid_tf1(tmp_path_factory):
    pytest.importorskip("tensorflow")
    from signs.convert import save_weights

    folder = tmp_path_factory.mktemp("tf1")
    save_weights(glorot_init(12), folder / "model.ckpt")
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.name.startswith("model.ckpt.")}


@pytest.mark.parametrize("part", ["model.ckpt.index", "model.ckpt.data-00000-of-00001"])
def test_fuzz_tf1_checkpoint_loader(valid_tf1, rss_at_start, tmp_path, part):
    from signs.convert import load_weights

    for name, data in valid_tf1.items():
        (tmp_path / name).write_bytes(data)

    @FUZZ
    @given(data=mutations(valid_tf1[part]))
    def run(data):
        (tmp_path / part).write_bytes(data)
        result = load_or_refuse(lambda: load_weights(tmp_path / "model.ckpt"))
        if result is not None:
            check_loaded_params(result[0])

    run()
    assert peak_rss() - rss_at_start < RSS_BOUND


@pytest.fixture(scope="module")
def valid_h5(tmp_path_factory):
    import h5py

    path = tmp_path_factory.mktemp("h5") / "test_signs.h5"
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as h5:
        h5.create_dataset("test_set_x", data=rng.integers(0, 256, (3, 64, 64, 3), dtype=np.uint8))
        h5.create_dataset("test_set_y", data=np.array([0, 5, 2]))
        h5.create_dataset("list_classes", data=np.arange(6))
        h5.create_dataset("test_set_files", data=["0_a.jpg", "5_b.jpg", "2_c.jpg"], dtype=h5py.string_dtype("utf-8"))
    return path.read_bytes()


def test_fuzz_h5_loader(valid_h5, rss_at_start, tmp_path):
    from reference.data.course_h5 import read_signs_h5

    path = tmp_path / "test_signs.h5"

    @FUZZ
    @given(data=mutations(valid_h5))
    def run(data):
        path.write_bytes(data)
        result = load_or_refuse(lambda: read_signs_h5(path, "test"))
        if result is not None:
            X, y, classes, files = result
            assert X.dtype == np.uint8 and X.shape[1:] == (64, 64, 3) and y.shape == (X.shape[0],)
            assert classes.tolist() == list(range(6)) and set(y.tolist()) <= set(range(6))

    run()
    assert peak_rss() - rss_at_start < RSS_BOUND


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_fuzz_image_folder_loader(rss_at_start, tmp_path, suffix):
    from PIL import Image

    from reference.data.images import read_image_folder

    folder = tmp_path / "images"
    folder.mkdir()
    path = folder / f"3_a{suffix}"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path)
    valid = path.read_bytes()

    @FUZZ
    @given(data=mutations(valid))
    def run(data):
        path.write_bytes(data)
        result = load_or_refuse(lambda: read_image_folder(folder, progress=False))
        if result is not None:
            assert result.X_orig.shape == (1, 64, 64, 3) and result.y.tolist() == [3]

    run()
    assert peak_rss() - rss_at_start < RSS_BOUND


def test_fuzz_checkpoint_loader(rss_at_start, tmp_path):
    from signs.checkpoint import Checkpoint, load_checkpoint, save_checkpoint

    params = glorot_init(13)
    zeros = {k: v * 0 for k, v in params.items()}
    path = save_checkpoint(tmp_path / "checkpoint.npz", Checkpoint(
        params=params, optimizer={"t": 0, "m": zeros, "v": zeros}, epoch=0, config={"backend": "numpy"}))
    valid = path.read_bytes()

    @FUZZ
    @given(data=mutations(valid))
    def run(data):
        path.write_bytes(data)
        result = load_or_refuse(lambda: load_checkpoint(path))
        if result is not None:
            check_loaded_params(result.params)
            check_loaded_params(result.optimizer["m"])

    run()
    assert peak_rss() - rss_at_start < RSS_BOUND
