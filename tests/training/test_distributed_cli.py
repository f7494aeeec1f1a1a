"""``signs train --nproc N`` end to end, its refusals, and the launcher's fault reports.

The step-by-step proof that N ranks equal one process is parity_tests/test_parity_distributed.py;
here the command line: two gloo ranks train one epoch into a run folder, one process resumes it
for a second epoch (a checkpoint written by N ranks continues on M), and the result equals two
uninterrupted single-process epochs within the float32 Adam tolerance (float32: torch's float64
convolutions are several times slower, and the float64 proof is the parity test's).
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import time

import numpy as np
import pytest

from signs.cli import main
from signs.distributed.launch import PEER_LOST, LaunchEnv, peer_lost, spawn_workers
from signs.tolerances import adam_tolerance, relative_error
from training_helpers import backend_or_skip


def _train_args(data_dir, out, epochs: int, *extra: str) -> list[str]:
    return ["train", "--backend", "torch", "--data", str(data_dir), "--limit", "120", "--epochs", str(epochs),
            "--dtype", "float32", "--eval-every", "0", "--no-progress", "--out", str(out), *extra]


def test_two_ranks_then_one_process_resume_equals_single_process_training(fast_data_dir, small_data, tmp_path, capfd):
    backend_or_skip("torch")
    from reference.weights_io import load_safetensors
    from signs.training.driver import RunConfig, train
    from signs.training.recipes import make_recipe

    out = tmp_path / "ddp"
    assert main(_train_args(fast_data_dir, out, 1, "--nproc", "2")) == 0
    printed = capfd.readouterr().out  # the ranks write to the inherited descriptor 1
    assert printed.count("Cost after epoch 0") == 1  # rank 0 prints, rank 1 is silent
    assert main(_train_args(fast_data_dir, out, 2, "--resume")) == 0
    config = RunConfig(backend="torch", recipe=make_recipe("course", num_epochs=2), dtype="float32", eval_every=0)
    single = train(config, small_data("float32", 120), tmp_path / "single", progress=False, echo=lambda line: None)
    resumed, _ = load_safetensors(out / "weights.safetensors")
    for name, expected in single.params.items():
        assert relative_error(resumed[name], expected) <= adam_tolerance(np.float32), name
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.npz", "cost.png", "metrics.json", "weights.safetensors"]


@pytest.mark.parametrize("argv, message", [
    (["--backend", "numpy", "--nproc", "2"], "--nproc: torch DDP only"),
    (["--backend", "torch", "--replicas", "2"], "--replicas: tf.distribute only"),
    (["--backend", "torch", "--nproc", "0"], "--nproc: expected a positive integer, got 0"),
])
def test_bad_parallel_options_are_one_line_errors(argv, message, tmp_path, capsys):
    assert main(["train", *argv, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("signs train: error: ") and message in err and "\n" not in err


def test_the_torchrun_environment_is_read_and_checked():
    env = {"RANK": "1", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "MASTER_ADDR": "h", "MASTER_PORT": "1"}
    assert LaunchEnv.from_environ(env) == LaunchEnv(rank=1, world_size=4, local_rank=1, spawned=False)
    assert LaunchEnv.from_environ({}) is None
    with pytest.raises(ValueError, match="RANK, WORLD_SIZE: expected 0 <= RANK < WORLD_SIZE, got 4, 4"):
        LaunchEnv.from_environ({**env, "RANK": "4"})
    with pytest.raises(ValueError, match="MASTER_PORT: expected it set"):
        LaunchEnv.from_environ({k: v for k, v in env.items() if k != "MASTER_PORT"})


def _rank_one_dies() -> int:
    """Rank 1 is killed after the group is up; rank 0 waits for it in an all-reduce."""
    import torch
    import torch.distributed as dist

    dist.init_process_group("gloo", timeout=dt.timedelta(seconds=300))
    # One collective first: the death this test is about happens mid-training, once the group is up.
    dist.all_reduce(torch.zeros(1))
    if dist.get_rank() == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    try:
        dist.all_reduce(torch.zeros(1))
    except RuntimeError as exc:
        if not peer_lost(exc):
            raise
        return PEER_LOST  # what signs train's worker returns when a peer leaves
    return 0


def test_a_dead_rank_stops_the_others_within_seconds_and_is_named():
    backend_or_skip("torch")
    start = time.monotonic()
    outcome = spawn_workers(_rank_one_dies, 2)
    # the survivor noticed the closed sockets at once, far sooner than the group's 300 s timeout
    assert time.monotonic() - start < 45
    # The survivor either raised (PEER_LOST, what signs train's worker returns) or was aborted by
    # gloo itself when the peer's sockets closed (SIGABRT: seen now and then here, also on a quiet machine):
    # both stop it; the rank named is the one that died first.
    assert outcome.exit_codes[1] == -signal.SIGKILL
    assert outcome.exit_codes[0] in (PEER_LOST, -signal.SIGABRT)
    assert outcome.describe_dead() == "rank 1 died (killed by SIGKILL)"


def test_verify_replicas_adds_a_data_parallel_section(capfd):
    backend_or_skip("torch")
    code = main(["verify", "--backends", "numpy,torch", "--dtype", "float32", "--steps", "2", "--replicas", "2"])
    out = capfd.readouterr().out
    assert "data-parallel: 2-way against one process, 2 Adam steps" in out
    row = next(line for line in out.splitlines() if line.startswith("torch  float32"))
    assert row.endswith("ok") and " yes " in row
    assert code == 0


def test_verify_replicas_needs_steps(capsys):
    assert main(["verify", "--replicas", "2"]) == 2
    assert "--replicas: expected a positive integer, and --steps K >= 1" in capsys.readouterr().err


def _nan_in_rank_one_slice() -> int:
    """Both ranks step on a global batch whose NaN lies only in rank 1's slice; exit 0 when this
    rank's returned (global) cost is NaN, as the driver needs to stop every rank at that batch."""
    import math

    import torch.distributed as dist

    from reference.init import course_init
    from reference.spec import COURSE_MODEL
    from signs.distributed.torch_ddp import DDPTrainer

    dist.init_process_group("gloo", timeout=dt.timedelta(seconds=300))
    try:
        spec = COURSE_MODEL.with_input(8, 8)
        X = np.full((4, *spec.input_shape), 0.5)
        X[3] = np.nan  # rank_slice(4, 2, 1) = [2, 4): rank 1 only
        Y = np.eye(spec.n_classes)[[0, 1, 2, 3]]
        cost = DDPTrainer(course_init(spec=spec, dtype=np.float64), spec=spec).step(X, Y)
    finally:
        dist.destroy_process_group()
    return 0 if math.isnan(cost) else 1


def test_a_non_finite_loss_on_one_rank_reaches_every_rank():
    backend_or_skip("torch")
    assert spawn_workers(_nan_in_rank_one_slice, 2).exit_codes == [0, 0]
