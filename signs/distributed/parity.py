"""N-way data-parallel training against one process, step by step, per parameter.

Both sides train from the same weights on the course's global mini-batches
(``reference.data.batches.epoch_mini_batches``: seed ``first_seed + 1 + epoch``, the last batch of
an epoch partial) for ``steps`` Adam steps, and record the weights after every step. The
data-parallel side runs in spawned ranks (torch: gloo process group; TF: one process with N
logical CPU devices, since logical devices must be declared before TensorFlow initialises), so the
calling process may already hold either framework. ``signs verify --replicas N`` and
parity_tests/test_parity_distributed.py use these functions.
"""

from __future__ import annotations

import os
from pathlib import Path
import numpy as np

from reference.spec import COURSE_MODEL, COURSE_TRAINING, PARAM_NAMES, ModelSpec, TrainSpec

__all__ = ["single_trajectory", "torch_ddp_trajectories", "tf_mirror_trajectories", "trajectory_key", "worst_errors"]


def trajectory_key(world_size: int, dtype, step: int, name: str) -> str:
    """The key of one recorded tensor: ``"3/float64/17/W1"`` (step counted from 1)."""
    return f"{world_size}/{np.dtype(dtype).name}/{step}/{name}"


def single_trajectory(trainer, X: np.ndarray, Y: np.ndarray, steps: int,
                      train: TrainSpec = COURSE_TRAINING) -> list[dict[str, np.ndarray]]:
    """Weights after each of ``steps`` steps of ``trainer`` (any backend's Trainer, or a data-parallel
    one) on the course's global batches (``signs.verify.adam_steps.training_batches``)."""
    from signs.verify.adam_steps import training_batches

    trajectory = []
    for X_batch, Y_batch in training_batches(X, Y, steps, train):
        trainer.step(X_batch, Y_batch)
        trajectory.append(trainer.get_params())
    return trajectory


def worst_errors(single: list[dict], parallel: list[dict]) -> dict[str, float]:
    """Per parameter, the largest relative error (``signs.tolerances.relative_error``) over the steps."""
    from signs.tolerances import relative_error

    if len(single) != len(parallel):
        raise ValueError(f"trajectories: expected equal lengths, got {len(single)} and {len(parallel)}")
    return {name: max(relative_error(a[name], b[name]) for a, b in zip(single, parallel)) for name in PARAM_NAMES}


# ---------------------------------------------------------------------------------------------
# torch DDP


def _positive_counts(name: str, values) -> tuple[int, ...]:
    """``values`` as a non-empty tuple of ints >= 1 (world sizes, replica counts), else ValueError."""
    counts = tuple(int(n) for n in values)
    if not counts or min(counts) < 1:
        raise ValueError(f"{name}: expected positive integers, got {values!r}")
    return counts


def _trajectory_job(params, X, Y, steps, dtypes, out_path, train: TrainSpec, spec: ModelSpec, **counts) -> dict:
    """What every spawned process of a trajectory run receives (dtypes by name: picklable, exact)."""
    return dict(params=params, X=X, Y=Y, steps=int(steps), **counts,
                dtypes=tuple(np.dtype(d).name for d in dtypes), out_path=str(out_path), train=train, spec=spec)


def _spawn(worker, processes: int, job: dict, failure: str) -> None:
    """Run ``worker(job)`` in ``processes`` spawned processes; a stop is re-raised as
    KeyboardInterrupt, any non-zero exit as RuntimeError("<failure>: exit codes [...]")."""
    from signs.distributed.launch import spawn_workers

    outcome = spawn_workers(worker, processes, (job,))
    if outcome.interrupted:
        raise KeyboardInterrupt
    if any(code != 0 for code in outcome.exit_codes):
        raise RuntimeError(f"{failure}: exit codes {outcome.exit_codes}")


def torch_ddp_trajectories(params: dict[str, np.ndarray], X: np.ndarray, Y: np.ndarray, steps: int, *,
                           world_sizes: tuple[int, ...], dtypes: tuple = (np.float64,), out_path: str | os.PathLike,
                           train: TrainSpec = COURSE_TRAINING, spec: ModelSpec = COURSE_MODEL) -> dict[str, np.ndarray]:
    """DDP weights after every step, for every world size and dtype, from ONE set of spawned ranks.

    ``max(world_sizes)`` gloo ranks are spawned once; smaller world sizes use a subgroup of the first
    ranks. Returns ``{trajectory_key(n, dtype, step, name): array}`` plus ``"<n>/<dtype>/rank_spread"``:
    the largest difference between any rank's final weights and rank 0's (0 when every rank applied
    the same update). Rank 0 writes the arrays to ``out_path`` (.npz, atomically) and this reads them.
    ``params``, ``X``, ``Y`` are float64 and cast to each dtype; ``spec`` is the network they fit
    (a smaller ``COURSE_MODEL.with_input(...)`` makes a fast test).
    """
    world_sizes = _positive_counts("world_sizes", world_sizes)
    job = _trajectory_job(params, X, Y, steps, dtypes, out_path, train, spec, world_sizes=world_sizes)
    _spawn(_torch_trajectory_rank, max(world_sizes), job, "torch DDP ranks failed")
    with np.load(out_path, allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


def _torch_trajectory_rank(job: dict) -> int:
    """One spawned rank of :func:`torch_ddp_trajectories`."""
    import torch.distributed as dist

    from signs.distributed.torch_ddp import DDPTrainer, init_process_group
    from signs.verify.options import cast_arrays

    init_process_group("cpu")
    try:
        rank, records = dist.get_rank(), {}
        for world_size in job["world_sizes"]:
            group = dist.new_group(list(range(world_size)))  # every rank takes part in new_group
            if rank >= world_size:
                continue
            for dtype in job["dtypes"]:
                trainer = DDPTrainer(cast_arrays(job["params"], dtype), train=job["train"], spec=job["spec"],
                                     group=group)
                trajectory = _run_trajectory(trainer, job, world_size, dtype, records)
                records[f"{world_size}/{dtype}/rank_spread"] = np.array(_rank_spread(trajectory[-1], group))
        if rank == 0:
            _save_npz(job["out_path"], records)
        dist.barrier()
    finally:
        dist.destroy_process_group()
    return 0


def _run_trajectory(trainer, job: dict, world_size: int, dtype: str, records: dict) -> list[dict]:
    """``job["steps"]`` steps of ``trainer`` on the job's batch cast to ``dtype``: adds the weights
    after each step to ``records`` (keys of :func:`trajectory_key`) and returns the trajectory."""
    X, Y = job["X"].astype(dtype), job["Y"].astype(dtype)
    trajectory = single_trajectory(trainer, X, Y, job["steps"], job["train"])
    for step, weights in enumerate(trajectory, start=1):
        records.update({trajectory_key(world_size, dtype, step, n): w for n, w in weights.items()})
    return trajectory


def _rank_spread(params: dict[str, np.ndarray], group) -> float:
    """max over ranks and parameters of |rank's weights - rank 0's| (gathered over ``group``)."""
    import torch
    import torch.distributed as dist

    flat = torch.from_numpy(np.concatenate([params[n].ravel() for n in PARAM_NAMES]).astype(np.float64))
    gathered = [torch.empty_like(flat) for _ in range(dist.get_world_size(group))]
    dist.all_gather(gathered, flat, group=group)
    return max(float((g - gathered[0]).abs().max()) for g in gathered)


def _save_npz(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
    from reference.fileio import atomic_path

    with atomic_path(Path(path), force=True) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)


# ---------------------------------------------------------------------------------------------
# tf.distribute.MirroredStrategy


def tf_mirror_trajectories(params: dict[str, np.ndarray], X: np.ndarray, Y: np.ndarray, steps: int, *,
                           replica_counts: tuple[int, ...], dtypes: tuple = (np.float64,),
                           out_path: str | os.PathLike, train: TrainSpec = COURSE_TRAINING,
                           spec: ModelSpec = COURSE_MODEL) -> dict[str, np.ndarray]:
    """MirroredStrategy weights after every step, for every replica count and dtype.

    One spawned process per replica count N declares N logical CPU devices before TensorFlow
    initialises and trains with a MirroredStrategy over them (two strategies of different sizes in
    one process would share collective group keys, which TF refuses). Returns
    the keys of :func:`torch_ddp_trajectories` (``"<n>/<dtype>/rank_spread"``: the largest
    difference between any replica's copy of a weight and replica 0's).
    """
    counts = _positive_counts("replica_counts", replica_counts)
    job = _trajectory_job(params, X, Y, steps, dtypes, out_path, train, spec, replica_counts=counts)
    _spawn(_tf_trajectory_process, len(counts), job, "the tf.distribute processes failed")
    records = {}
    for count in counts:
        with np.load(_part_path(out_path, count), allow_pickle=False) as archive:
            records.update({key: archive[key] for key in archive.files})
    return records


def _part_path(out_path: str | os.PathLike, count: int) -> Path:
    path = Path(out_path)
    return path.with_name(f"{path.stem}-{count}{path.suffix}")


def _tf_trajectory_process(job: dict) -> int:
    """The spawned process of :func:`tf_mirror_trajectories`."""
    from signs.quiet import quiet_frameworks

    quiet_frameworks()
    import tensorflow as tf

    from signs.distributed.tf_mirror import MirroredTrainer, configure_logical_cpus
    from signs.verify.options import cast_arrays

    count = job["replica_counts"][int(os.environ["RANK"])]
    configure_logical_cpus(count)
    records = {}
    strategy = tf.distribute.MirroredStrategy([f"/CPU:{i}" for i in range(count)])
    for dtype in job["dtypes"]:
        trainer = MirroredTrainer(cast_arrays(job["params"], dtype), train=job["train"], spec=job["spec"],
                                  strategy=strategy)
        _run_trajectory(trainer, job, count, dtype, records)
        records[f"{count}/{dtype}/rank_spread"] = np.array(_replica_spread(trainer))
    _save_npz(_part_path(job["out_path"], count), records)
    return 0


def _replica_spread(trainer) -> float:
    """max over the model's variables and replicas of |replica's copy - replica 0's copy|."""
    spread = 0.0
    for variable in trainer._variables:
        copies = [np.asarray(c.numpy(), dtype=np.float64)
                  for c in trainer.strategy.experimental_local_results(variable.value)]
        spread = max([spread] + [float(np.abs(c - copies[0]).max()) for c in copies])
    return spread


# ---------------------------------------------------------------------------------------------
# signs verify --steps K --replicas N


ENGINES = ("torch", "tf")  # the backends with a data-parallel trainer


def data_parallel_rows(backends: dict, params: dict[str, np.ndarray], X: np.ndarray, Y: np.ndarray, steps: int,
                       replicas: int, dtypes: tuple[str, ...], out_dir: str | os.PathLike,
                       train: TrainSpec = COURSE_TRAINING) -> list[dict]:
    """One row per (engine, dtype): the largest relative error of each parameter over ``steps``
    steps of ``replicas``-way training against one process, the tolerance and whether it holds.

    ``backends`` maps names to loaded backend modules (torch and tf are used when present).
    """
    from signs.distributed.shards import check_split
    from signs.tolerances import adam_tolerance
    from signs.verify.options import cast_arrays

    check_split(X.shape[0], min(train.mini_batch_size, X.shape[0]), replicas, "--replicas")
    launch = {"torch": lambda path: torch_ddp_trajectories(params, X, Y, steps, world_sizes=(replicas,), dtypes=dtypes,
                                                          out_path=path, train=train),
              "tf": lambda path: tf_mirror_trajectories(params, X, Y, steps, replica_counts=(replicas,), dtypes=dtypes,
                                                       out_path=path, train=train)}
    rows = []
    for engine in (name for name in ENGINES if name in backends):
        runs = launch[engine](Path(out_dir) / f"{engine}.npz")
        for dtype in dtypes:
            trainer = backends[engine].Trainer(cast_arrays(params, dtype), train=train)
            single = single_trajectory(trainer, X.astype(dtype), Y.astype(dtype), steps, train)
            parallel = [{n: runs[trajectory_key(replicas, dtype, step, n)] for n in PARAM_NAMES}
                        for step in range(1, steps + 1)]
            errors = worst_errors(single, parallel)
            tolerance = adam_tolerance(dtype)
            rows.append({"engine": engine, "dtype": dtype, "replicas": replicas, "steps": steps, "errors": errors,
                         "rank_spread": float(runs[f"{replicas}/{dtype}/rank_spread"]), "tolerance": tolerance,
                         "ok": max(errors.values()) <= tolerance})
    return rows


def format_rows(rows: list[dict]) -> str:
    """The data-parallel section of ``signs verify`` as text."""
    if not rows:
        return "data-parallel: no torch or tf backend to check"
    head = (f"data-parallel: {rows[0]['replicas']}-way against one process, {rows[0]['steps']} Adam steps "
            "(largest relative error over the steps)")
    lines = [head, f"{'engine':<7}{'dtype':<9}" + "".join(f"{n:>10}" for n in PARAM_NAMES)
             + f"{'tolerance':>11}{'ranks agree':>13}  verdict"]
    for row in rows:
        lines.append(f"{row['engine']:<7}{row['dtype']:<9}" + "".join(f"{row['errors'][n]:>10.1e}" for n in PARAM_NAMES)
                     + f"{row['tolerance']:>11.0e}{'yes' if row['rank_spread'] == 0 else 'NO':>13}  "
                     + ("ok" if row["ok"] else "FAIL"))
    return "\n".join(lines)


def verify_data_parallel(options, replicas: int) -> list[dict]:
    """The rows of ``signs verify --steps K --replicas N`` for ``options`` (a VerifyOptions): the
    same weights and inputs as the rest of the check."""
    import tempfile

    from signs.verify.options import course_vectors, data_inputs, load_backends, load_params

    params, _ = load_params(options.weights)
    if options.data is None:
        inputs = course_vectors(options.batch or COURSE_TRAINING.mini_batch_size, options.seed)
    else:
        inputs = data_inputs(options.data, options.batch)
    backends, _ = load_backends(tuple(name for name in options.backends if name in ENGINES) or ENGINES[:1])
    with tempfile.TemporaryDirectory(prefix="signs-verify-") as out_dir:
        return data_parallel_rows(backends, params, inputs.X, inputs.Y, options.steps, replicas,
                                  tuple(options.dtypes), out_dir)
