"""reference.fused (CONV -> RELU -> MAXPOOL of the training step, block by block) against the
layer-by-layer fast path and the course's loops; reference.gemm's block workers."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from reference import fast_layers, fused, gemm, layers
from reference.layers import ConvGeometry, PoolGeometry
from reference.model import model_backward, model_forward, relu_backward, relu_forward, train_gradients
from reference.spec import COURSE_MODEL, param_shapes
from signs.tolerances import LOOP_VS_FAST_FLOAT32, LOOP_VS_FAST_FLOAT64, relative_error

TOL = {np.float64: LOOP_VS_FAST_FLOAT64, np.float32: LOOP_VS_FAST_FLOAT32}


def geometry(X, W, spec=COURSE_MODEL):
    conv = ConvGeometry(X, W, None, spec.conv1.hparameters)
    pool = PoolGeometry(np.empty(conv.output_shape, dtype=conv.dtype), spec.pool1.hparameters)
    return conv, pool


def batch(m, n_H, n_W, dtype, seed, shift=0.3):
    """Inputs in [-shift, 1 - shift): the larger the shift, the more windows with the ReLU off."""
    rng = np.random.default_rng(seed)
    X = (rng.random((m, n_H, n_W, 3)) - shift).astype(dtype)
    W = (rng.standard_normal((4, 4, 3, 8)) * 0.4).astype(dtype)
    return X, W, rng


@pytest.fixture(params=[1, 2, 3], ids=lambda w: f"{w}workers")
def workers(request):
    previous = gemm.set_block_workers(request.param)
    yield request.param
    gemm.set_block_workers(previous)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("m, n_H, n_W", [(5, 64, 64), (3, 16, 40), (1, 8, 8)])
def test_forward_equals_conv_relu_pool_layers(workers, dtype, m, n_H, n_W):
    """P and the conv output against conv_forward_fast -> relu -> pool_forward_fast; odd batch
    sizes leave a shorter last block."""
    X, W, _ = batch(m, n_H, n_W, dtype, seed=m)
    conv, pool = geometry(X, W)
    assert fused.can_fuse(conv, pool)
    Z = fast_layers.conv_forward_fast(X, W, None, COURSE_MODEL.conv1.hparameters)[0]
    P_layers = fast_layers.pool_forward_fast(relu_forward(Z), COURSE_MODEL.pool1.hparameters)[0]
    Z_out = np.full(conv.output_shape, np.nan, dtype=dtype)
    P, _ = fused.conv_relu_pool_forward(X, W, conv, pool, Z_out=Z_out)
    assert P.dtype == dtype and P.shape == P_layers.shape and P.flags.c_contiguous
    assert relative_error(Z_out, Z) <= TOL[dtype]
    assert relative_error(P, P_layers) <= TOL[dtype]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_weight_grad_equals_the_course_loops(workers, dtype):
    """dW from the gathered fields against the course's loop conv_backward of the dense dZ
    (pool backward to the first maximum, ReLU backward)."""
    X, W, rng = batch(3, 16, 24, dtype, seed=7, shift=0.9)
    conv, pool = geometry(X, W)
    P, cache = fused.conv_relu_pool_forward(X, W, conv, pool)
    assert (P == 0).any() and (P > 0).any()  # windows of both kinds
    dP = rng.standard_normal(P.shape).astype(dtype)
    dW = fused.conv_relu_pool_weight_grad(dP, cache, conv, pool)

    Z, conv_cache = layers.conv_forward(X, W, None, COURSE_MODEL.conv1.hparameters)
    dA = fast_layers.pool_backward_fast(dP, (relu_forward(Z), COURSE_MODEL.pool1.hparameters), "max")
    _, dW_loop, _ = layers.conv_backward(relu_backward(dA, Z), conv_cache)
    assert dW.shape == W.shape and dW.dtype == dtype
    assert relative_error(dW, dW_loop) <= TOL[dtype]


def test_first_maximum_of_tied_windows_gets_the_gradient():
    """Small integers make exact ties between different receptive fields: each window's
    gradient must go to its first maximum in row-major order (as TF and torch route it), not to
    a later tied cell. The expected cells are found by a Python loop over the fused path's Z."""
    rng = np.random.default_rng(3)
    X = rng.integers(-2, 3, size=(3, 24, 24, 3)).astype(np.float64)
    W = rng.integers(-1, 2, size=(4, 4, 3, 8)).astype(np.float64)
    conv, pool = geometry(X, W)
    Z = np.empty(conv.output_shape)
    P, cache = fused.conv_relu_pool_forward(X, W, conv, pool, Z_out=Z)
    dP = np.random.default_rng(4).standard_normal(P.shape)
    dZ = np.zeros_like(Z)
    ties = 0
    for n, oh, ow, c in np.ndindex(P.shape):
        cells = [(8 * oh + i, 8 * ow + j) for i in range(8) for j in range(8)]
        values = [Z[n, h, w, c] for h, w in cells]
        ties += values.count(max(values)) > 1
        h, w = cells[values.index(max(values))]  # list.index: the first maximum
        dZ[n, h, w, c] = dP[n, oh, ow, c] if P[n, oh, ow, c] > 0 else 0.0
    assert ties >= 8  # the test is about ties: make sure there are some
    _, dW_first, _ = layers.conv_backward(dZ, (X, W, None, COURSE_MODEL.conv1.hparameters))
    dW = fused.conv_relu_pool_weight_grad(dP, cache, conv, pool)
    np.testing.assert_allclose(dW, dW_first, rtol=1e-12, atol=1e-14)


def test_nan_window_sends_no_gradient():
    """A NaN input makes every conv output over it NaN; each window holding one is NaN in P (max
    and argmax agree) and sends no gradient, so dW stays finite and equals the general sparse
    path's (model_backward without dX)."""
    from reference.model import _conv1_weight_grad_sparse

    X, W, rng = batch(2, 16, 16, np.float64, seed=9)
    X[1, 5, 5, 0] = np.nan
    conv, pool = geometry(X, W)
    P, cache = fused.conv_relu_pool_forward(X, W, conv, pool)
    assert np.isnan(P[1]).any() and not np.isnan(P[0]).any()
    dP = rng.standard_normal(P.shape)
    dW = fused.conv_relu_pool_weight_grad(dP, cache, conv, pool)
    assert np.isfinite(dW).all()
    spec = COURSE_MODEL.with_input(16, 16)
    params = {"W1": W, "W2": np.zeros((2, 2, 8, 16)), "W3": np.zeros((16, 6)), "b3": np.zeros(6)}
    acts = model_forward(params, X, spec)
    np.testing.assert_allclose(dW, _conv1_weight_grad_sparse(dP, X, W, acts, spec), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bits_do_not_depend_on_the_number_of_workers(dtype):
    """Every block's products and the block-order sum are fixed: 1, 2 and 5 workers give the same
    bits (a training run is reproducible whatever --threads says)."""
    X, W, rng = batch(9, 32, 32, dtype, seed=11)
    conv, pool = geometry(X, W)
    dP = rng.standard_normal((9, 4, 4, 8)).astype(dtype)
    results = []
    previous = gemm.block_workers()
    try:
        for count in (1, 2, 5):
            gemm.set_block_workers(count)
            Z = np.empty(conv.output_shape, dtype=dtype)
            P, cache = fused.conv_relu_pool_forward(X, W, conv, pool, Z_out=Z)
            results.append((Z, P, fused.conv_relu_pool_weight_grad(dP, cache, conv, pool)))
    finally:
        gemm.set_block_workers(previous)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


def test_can_fuse_only_tiling_pools():
    X, W, _ = batch(1, 20, 24, np.float64, seed=1)
    conv, pool = geometry(X, W)  # 20 rows: the 8x8/8 SAME pool pads
    assert not fused.can_fuse(conv, pool)
    with pytest.raises(ValueError, match="tile the conv output"):
        fused.conv_relu_pool_forward(X, W, conv, pool)
    overlapping = PoolGeometry(np.empty(conv.output_shape), {"f": 4, "stride": 2, "pad": "valid"})
    assert not fused.can_fuse(conv, overlapping)


@pytest.mark.parametrize("n_H, n_W", [(32, 48), (20, 36)], ids=["fused", "padded-pool1"])
def test_training_step_paths_agree_with_model_backward(n_H, n_W):
    """train_gradients takes the fused path when pool1 tiles conv1's output and the general
    sparse path otherwise; both equal model_backward's full backward."""
    spec = COURSE_MODEL.with_input(n_H, n_W)
    rng = np.random.default_rng(5)
    params = {name: rng.standard_normal(shape) * 0.4 for name, shape in param_shapes(spec).items()}
    X = rng.random((3, n_H, n_W, 3)) - 0.4
    Y = np.eye(6)[[0, 2, 5]]
    acts = model_forward(params, X, spec)
    full = model_backward(params, X, Y, acts, spec)
    _, grads = train_gradients(params, X, Y, spec)
    assert set(grads) == {"dW1", "dW2", "dW3", "db3"}
    for name, g in grads.items():
        assert relative_error(g, full[name]) <= LOOP_VS_FAST_FLOAT64, name


def test_forward_keeps_conv1_bits_of_the_training_step():
    """model_forward computes Z1 with the training step's own products: its P1 is the fused
    path's to the bit, and the cost Trainer.step reports is the forward's (float32, where orders
    of summation show)."""
    from reference.backend import Trainer
    from reference.init import course_init
    from reference.model import compute_cost, conv1_pool1_geometry

    rng = np.random.default_rng(2)
    params = course_init()
    X = rng.random((16, 64, 64, 3), dtype=np.float32)
    Y = np.eye(6, dtype=np.float32)[rng.integers(0, 6, 16)]
    acts = model_forward(params, X)
    P_fused, _ = fused.conv_relu_pool_forward(X, params["W1"], *conv1_pool1_geometry(params, X))
    np.testing.assert_array_equal(acts["P1"], P_fused)
    assert Trainer(params).step(X, Y) == float(compute_cost(acts["Z3"], Y))


# --------------------------------------------------------------------------------------------
# reference.gemm: block workers
# --------------------------------------------------------------------------------------------


def test_map_blocks_keeps_order_and_uses_threads(workers):
    names = set()

    def work(i):
        names.add(threading.current_thread().name)
        return i * i

    assert gemm.map_blocks(work, range(11)) == [i * i for i in range(11)]
    # the executor may hand a quick share to a thread that is already idle: >= 1 pool thread
    pool_threads = {n for n in names if n.startswith("reference-block")}
    assert (len(pool_threads) >= 1) if workers > 1 else not pool_threads


def test_map_blocks_raises_a_block_error(workers):
    def work(i):
        if i == 3:
            raise ValueError("block 3 failed")
        return i

    with pytest.raises(ValueError, match="block 3 failed"):
        gemm.map_blocks(work, range(6))


def test_nested_map_blocks_runs_inline():
    """A block that maps blocks itself runs them inline: queueing them on the pool whose threads
    are all busy with the outer blocks would deadlock (run in a thread, so a hang fails)."""
    previous = gemm.set_block_workers(2)
    result = []
    try:
        runner = threading.Thread(target=lambda: result.append(
            gemm.map_blocks(lambda i: sum(gemm.map_blocks(lambda j: i * j, range(3))), range(4))), daemon=True)
        runner.start()
        runner.join(timeout=30)
        assert not runner.is_alive(), "nested map_blocks deadlocked"
        assert result == [[0, 3, 6, 9]]
    finally:
        gemm.set_block_workers(previous)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2", None])
def test_set_block_workers_refuses_bad_counts(bad):
    with pytest.raises(ValueError, match="workers: expected a positive integer"):
        gemm.set_block_workers(bad)


def test_scratch_is_reused_per_thread_and_shape():
    a = gemm.scratch("test.a", (3, 4), np.float32)
    assert gemm.scratch("test.a", (3, 4), np.float32) is a
    assert gemm.scratch("test.a", (4, 3), np.float32) is not a
    other = []
    thread = threading.Thread(target=lambda: other.append(gemm.scratch("test.a", (4, 3), np.float32)))
    thread.start()
    thread.join()
    assert other[0] is not gemm.scratch("test.a", (4, 3), np.float32)


def test_map_blocks_works_in_a_forked_child():
    """A child forked after the pool exists (multiprocessing's default start method on Linux)
    inherits the pool object but not its threads: map_blocks must make a new pool, not hang."""
    import multiprocessing

    previous = gemm.set_block_workers(2)
    try:
        # Slow items, so that both pool threads start (and idle afterwards) before the fork.
        assert gemm.map_blocks(lambda i: time.sleep(0.05) or i + 1, range(4)) == [1, 2, 3, 4]
        context = multiprocessing.get_context("fork")
        queue = context.Queue()
        child = context.Process(target=lambda: queue.put(gemm.map_blocks(lambda i: i * 10, range(4))))
        child.start()
        child.join(timeout=30)
        hung = child.is_alive()
        if hung:
            child.kill()
        assert not hung, "map_blocks hung in a forked child"
        assert queue.get(timeout=5) == [0, 10, 20, 30]
    finally:
        gemm.set_block_workers(previous)
