"""Data-parallel training equals one process: torch DDP (gloo ranks) against torch_model's Trainer.

Every step of N-way training is compared with single-process training on the same global batches:
120 synthetic 20x20 RGB examples (the course network at a smaller input, ``COURSE_MODEL.with_input``:
the same layers, SAME padding on both pools, 16x less arithmetic than 64x64 so the suite stays fast)
in the course's batches of 64 (the last batch of each epoch holds 56), so
K = 18 steps cover nine epochs and nine partial batches. On 3 ranks the batches split unevenly
(22/21/21 and 19/19/18): without the loss rescale of ``signs.distributed.shards`` DDP's gradient
average is not the global batch's gradient and the 3-rank tests fail (planted once: a loss weight of
1 instead of N * b_r / B fails 3 ranks in float64 and float32; 2 ranks split 64 and 56 evenly). One set of three
spawned ranks serves every world size and dtype of the module.
"""

from __future__ import annotations

import numpy as np
import pytest

from reference.init import course_init
from reference.spec import COURSE_MODEL, PARAM_NAMES
from signs.distributed.parity import course_steps, single_trajectory, trajectory_key, worst_errors
from signs.tolerances import adam_tolerance
from signs.verify.options import cast_arrays

torch_backend = pytest.importorskip("torch_model.backend", reason="torch is not installed")

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
def ddp(data, tmp_path_factory):
    """{key: weights} from 2 and 3 gloo ranks (one spawn for the whole module)."""
    from signs.distributed.parity import torch_ddp_trajectories

    params, X, Y = data
    out = tmp_path_factory.mktemp("ddp") / "trajectories.npz"
    return torch_ddp_trajectories(params, X, Y, STEPS, world_sizes=WORLD_SIZES, dtypes=DTYPES, out_path=out,
                                  spec=SPEC)


@pytest.fixture(scope="module")
def single(data):
    """{dtype: weights after every step} of one process's torch Trainer."""
    params, X, Y = data
    return {
        dtype: single_trajectory(torch_backend.Trainer(cast_arrays(params, dtype), spec=SPEC), X.astype(dtype),
                                 Y.astype(dtype), STEPS)
        for dtype in DTYPES
    }


def test_the_steps_cover_partial_batches_and_uneven_splits(data):
    sizes = [X.shape[0] for X, _ in course_steps(data[1], data[2], STEPS)]
    assert len(sizes) >= 17 and sizes.count(56) == STEPS // 2 and sizes.count(64) == STEPS // 2
    assert any(size % 3 for size in sizes)  # 3 ranks get unequal slices


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("world_size", WORLD_SIZES)
def test_ddp_weights_equal_single_process_after_every_step(ddp, single, world_size, dtype):
    parallel = [{name: ddp[trajectory_key(world_size, dtype, step, name)] for name in PARAM_NAMES}
                for step in range(1, STEPS + 1)]
    errors = worst_errors(single[dtype], parallel)
    tolerance = adam_tolerance(dtype)
    assert max(errors.values()) <= tolerance, f"{world_size} ranks, {dtype}: {errors} (tolerance {tolerance:g})"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("world_size", WORLD_SIZES)
def test_every_rank_holds_the_same_weights(ddp, world_size, dtype):
    assert float(ddp[f"{world_size}/{dtype}/rank_spread"]) == 0.0
