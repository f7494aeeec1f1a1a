"""Reproducible training: ``signs train --threads N --deterministic --perturb-ulp S``.

Two deterministic runs of every backend, each in a fresh process (TensorFlow's thread pools can
only be sized before its runtime starts), end with bitwise equal weights and per-epoch costs, and
their metrics.json records what decided them. Plus the pieces: the weights' SHA-256, the 1-ulp
perturbation, the thread settings.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from reference.init import ULP_PERTURBED, course_init, perturb_one_ulp
from reference.weights_io import load_safetensors
from reference.weights_io import params_sha256
from signs.run_environment import apply_thread_settings, blas_pools
from signs.training.recipes import course_recipe, initial_params
from training_helpers import BACKEND_NAMES, assert_params_bitwise_equal, backend_or_skip

LIMIT = 64  # one batch per epoch
EPOCHS = 2
PERTURB_SEED = 0
REPO_ROOT = Path(__file__).resolve().parents[2]

# Two runs in one fresh interpreter: the CLI twice, into two folders.
TWO_RUNS = """
import sys
from signs.cli import main
backend, data, out = sys.argv[1:4]
for name in ("a", "b"):
    code = main(["train", "--backend", backend, "--data", data, "--limit", "%d", "--epochs", "%d",
                 "--eval-every", "0", "--no-progress", "--threads", "1", "--deterministic",
                 "--perturb-ulp", "%d", "--out", f"{out}/{name}"])
    if code:
        sys.exit(code)
""" % (LIMIT, EPOCHS, PERTURB_SEED)


@pytest.fixture(scope="module", params=BACKEND_NAMES)
def two_deterministic_runs(request, fast_data_dir, tmp_path_factory):
    """(backend, metrics a, metrics b, weights a, weights b) of two identical deterministic runs."""
    backend_or_skip(request.param)
    out = tmp_path_factory.mktemp(f"deterministic-{request.param}")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", TWO_RUNS, request.param, str(fast_data_dir), str(out)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    runs = [(json.loads((out / name / "metrics.json").read_text()), load_safetensors(out / name / "weights.safetensors")[0])
            for name in ("a", "b")]
    return request.param, runs[0][0], runs[1][0], runs[0][1], runs[1][1]


@pytest.mark.data
def test_two_deterministic_runs_are_bitwise_identical(two_deterministic_runs):
    _, metrics_a, metrics_b, weights_a, weights_b = two_deterministic_runs
    assert_params_bitwise_equal(weights_a, weights_b)
    costs = [[r["course_cost"] for r in m["epochs"]] for m in (metrics_a, metrics_b)]
    assert len(costs[0]) == EPOCHS and costs[0] == costs[1]  # floats from JSON: equal means bitwise
    assert weights_a["W1"].dtype == np.float32


@pytest.mark.data
def test_metrics_record_what_decided_the_run(two_deterministic_runs):
    backend, metrics, _, _, _ = two_deterministic_runs
    assert metrics["run_settings"]["threads"] == 1 and metrics["run_settings"]["deterministic"] is True
    environment = metrics["environment"]
    assert environment["backend"] == backend and environment["device"] == "cpu"
    assert environment["versions"]["numpy"] == np.__version__
    assert [p["num_threads"] for p in environment["blas"] if p["user_api"] == "blas"] == [1]
    assert "TF_ENABLE_ONEDNN_OPTS" in environment["env"]
    expected, perturbation = perturb_one_ulp(course_init(), PERTURB_SEED)
    assert metrics["perturbation"] == perturbation
    assert metrics["recipe"]["perturb_ulp"] == PERTURB_SEED
    assert environment["initial_weights_sha256"] == params_sha256(expected)
    if backend == "torch":
        pools = environment["torch"]
        assert (pools["intra_op_threads"], pools["inter_op_threads"]) == (1, 1)
        assert pools["deterministic_algorithms"] is True
        assert {"tf32_matmul", "tf32_cudnn", "mkldnn_enabled"} <= set(pools)
    if backend == "tf":
        pools = environment["tf"]
        assert (pools["intra_op_threads"], pools["inter_op_threads"]) == (1, 1)
        assert pools["op_determinism"] is True
        assert pools["onednn"] in (True, False) and "tf32" in pools


def test_sha256_tells_weights_apart():
    params = course_init()
    digest = params_sha256(params)
    assert params_sha256({name: value.copy() for name, value in params.items()}) == digest
    assert params_sha256(perturb_one_ulp(params, 0)[0]) != digest
    assert params_sha256({**params, "W3": np.ascontiguousarray(params["W3"].T).reshape(64, 6)}) != digest
    assert params_sha256({**params, "W1": params["W1"].reshape(4, 4, 8, 3)}) != digest  # same bytes, other shape
    assert params_sha256({name: value.astype(np.float64) for name, value in params.items()}) != digest
    with pytest.raises(ValueError, match="params"):
        params_sha256({"W1": params["W1"]})


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_perturb_moves_one_element_by_one_ulp(seed):
    params = course_init()
    perturbed, info = perturb_one_ulp(params, seed)
    changed = [(name, index) for name in params for index in zip(*np.nonzero(perturbed[name] != params[name]))]
    assert changed == [(info["name"], tuple(info["index"]))]
    assert info["name"] in ULP_PERTURBED
    old = params[info["name"]][tuple(info["index"])]
    new = perturbed[info["name"]][tuple(info["index"])]
    assert new > old and new == np.nextafter(old, np.float32(np.inf)) and new.dtype == np.float32
    assert (info["before"], info["after"]) == (float(old), float(new))
    again, info_again = perturb_one_ulp(params, seed)  # seeded: the same element every time
    assert info_again == info and params_sha256(again) == params_sha256(perturbed)


def test_perturbation_seeds_choose_different_elements():
    chosen = {tuple([perturb_one_ulp(course_init(), seed)[1]["name"], *perturb_one_ulp(course_init(), seed)[1]["index"]])
              for seed in range(8)}
    assert len(chosen) > 1


def test_recipe_perturbation_reaches_the_initial_weights():
    params = initial_params(course_recipe(perturb_ulp=3), np.float32)
    assert params_sha256(params) == params_sha256(perturb_one_ulp(course_init(), 3)[0])
    assert_params_bitwise_equal(initial_params(course_recipe(), np.float32), course_init())
    assert "perturb_ulp" not in course_recipe().to_json()  # absent = unperturbed: old checkpoints resume
    with pytest.raises(ValueError, match="perturb_ulp"):
        course_recipe(perturb_ulp=-1)


def test_thread_settings_reach_blas_and_the_numpy_block_workers():
    from reference import gemm
    from signs.run_environment import describe_run_environment

    before = [p["num_threads"] for p in blas_pools() if p["user_api"] == "blas"]
    workers_before = gemm.block_workers()
    try:
        applied = apply_thread_settings("numpy", 1)
        assert applied == {"threads": 1, "deterministic": False}
        assert [p["num_threads"] for p in blas_pools() if p["user_api"] == "blas"] == [1] * len(before)
        assert gemm.block_workers() == 1
        assert describe_run_environment("numpy")["numpy_block_workers"] == 1
    finally:
        apply_thread_settings("numpy", before[0])
        gemm.set_block_workers(workers_before)


@pytest.mark.parametrize("threads", [0, -1, 1.5, True])
def test_bad_thread_counts_are_refused(threads):
    with pytest.raises(ValueError, match="threads"):
        apply_thread_settings("numpy", threads)


def test_tf_threads_after_tf_started_are_refused():
    """Asked for other pool sizes once TF's runtime runs, the CLI must not pretend it applied them."""
    backend_or_skip("tf")
    import tensorflow as tf

    tf.constant(1.0) + 1.0  # starts TF's runtime
    current = tf.config.threading.get_intra_op_parallelism_threads()
    with pytest.raises(ValueError, match="already started"):
        apply_thread_settings("tf", current + 1)
