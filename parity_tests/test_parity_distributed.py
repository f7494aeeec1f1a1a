"""Data-parallel training equals one process: torch DDP (gloo ranks) against torch_model's Trainer,
and tf.distribute.MirroredStrategy (logical CPU devices) against tf_model's Trainer.

Every step of N-way training is compared with single-process training on the same global batches:
120 synthetic 20x20 RGB examples (the course network at a smaller input, ``COURSE_MODEL.with_input``:
the same layers, SAME padding on both pools, 16x less arithmetic than 64x64 so the suite stays fast)
in the course's batches of 64 (the last batch of each epoch holds 56), so
K = 18 steps cover nine epochs and nine partial batches. On 3 ranks the batches split unevenly
(22/21/21 and 19/19/18): without the loss rescale of ``signs.distributed.shards`` DDP's gradient
average is not the global batch's gradient and the 3-rank tests fail (planted once: a loss weight of
1 instead of N * b_r / B fails 3 ranks in float64 and float32; 2 ranks split 64 and 56 evenly; in TF,
a replica weight of 1/N instead of b_r / B fails tf 3-way in both dtypes). One set of three
spawned ranks serves every world size and dtype of torch; one spawned process per replica count
serves TF (logical devices are declared before TensorFlow starts).
"""

from __future__ import annotations

import numpy as np
import pytest

from reference.init import course_init
from reference.spec import COURSE_MODEL, PARAM_NAMES
from signs.distributed.parity import single_trajectory, trajectory_key, worst_errors
from signs.tolerances import adam_tolerance
from signs.verify.options import cast_arrays

ENGINES = ("torch", "tf")
M, STEPS, WORLD_SIZES, DTYPES = 120, 18, (2, 3), ("float64", "float32")
SPEC = COURSE_MODEL.with_input(20, 20)


@pytest.fixture(scope="module")
def data():
    """Course-init weights for SPEC, uniform [0, 1) images, balanced one-hot labels (seeded)."""
    rng = np.random.default_rng(11)
    X = rng.random((M, *SPEC.input_shape))
    Y = np.eye(SPEC.n_classes)[rng.permutation(np.arange(M) % SPEC.n_classes)]
    return course_init(spec=SPEC, dtype=np.float64), X, Y


@pytest.fixture(scope="module")
def parallel(data, tmp_path_factory):
    """{engine: {key: weights}} from 2 and 3 ranks / replicas (one launch per engine and module)."""
    from signs.distributed import parity

    params, X, Y = data
    out = tmp_path_factory.mktemp("parallel")
    runs = {}
    if _available("torch"):
        runs["torch"] = parity.torch_ddp_trajectories(params, X, Y, STEPS, world_sizes=WORLD_SIZES, dtypes=DTYPES,
                                                      out_path=out / "torch.npz", spec=SPEC)
    if _available("tf"):
        runs["tf"] = parity.tf_mirror_trajectories(params, X, Y, STEPS, replica_counts=WORLD_SIZES, dtypes=DTYPES,
                                                   out_path=out / "tf.npz", spec=SPEC)
    return runs


def _available(engine: str) -> bool:
    from signs.backends import BackendUnavailable, get_backend

    try:
        get_backend(engine)
    except BackendUnavailable:
        return False
    return True


@pytest.fixture(scope="module")
def single(data):
    """{(engine, dtype): weights after every step} of one process's Trainer."""
    from signs.backends import get_backend

    params, X, Y = data
    return {
        (engine, dtype): single_trajectory(get_backend(engine).Trainer(cast_arrays(params, dtype), spec=SPEC),
                                           X.astype(dtype), Y.astype(dtype), STEPS)
        for engine in ENGINES if _available(engine) for dtype in DTYPES
    }


def _runs(parallel, engine):
    if engine not in parallel:
        pytest.skip(f"the {engine} backend is unavailable")
    return parallel[engine]


def test_the_steps_cover_partial_batches_and_uneven_splits(data):
    from signs.verify.adam_steps import training_batches

    sizes = [X.shape[0] for X, _ in training_batches(data[1], data[2], STEPS)]
    assert len(sizes) >= 17 and sizes.count(56) == STEPS // 2 and sizes.count(64) == STEPS // 2
    assert any(size % 3 for size in sizes)  # 3 ranks get unequal slices


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("world_size", WORLD_SIZES)
@pytest.mark.parametrize("engine", ENGINES)
def test_parallel_weights_equal_single_process_after_every_step(parallel, single, engine, world_size, dtype):
    runs = _runs(parallel, engine)
    trajectory = [{name: runs[trajectory_key(world_size, dtype, step, name)] for name in PARAM_NAMES}
                  for step in range(1, STEPS + 1)]
    errors = worst_errors(single[engine, dtype], trajectory)
    tolerance = adam_tolerance(dtype)
    assert max(errors.values()) <= tolerance, f"{engine}, {world_size}-way, {dtype}: {errors} (tolerance {tolerance:g})"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("world_size", WORLD_SIZES)
@pytest.mark.parametrize("engine", ENGINES)
def test_every_rank_holds_the_same_weights(parallel, engine, world_size, dtype):
    assert float(_runs(parallel, engine)[f"{world_size}/{dtype}/rank_spread"]) == 0.0
