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
from typing import Iterator

import numpy as np

from reference.spec import COURSE_MODEL, COURSE_TRAINING, PARAM_NAMES, ModelSpec, TrainSpec

__all__ = ["course_steps", "single_trajectory", "torch_ddp_trajectories", "trajectory_key", "worst_errors"]


def course_steps(X: np.ndarray, Y: np.ndarray, steps: int, *, mini_batch_size: int = COURSE_TRAINING.mini_batch_size,
                 first_seed: int = COURSE_TRAINING.first_seed) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The first ``steps`` global mini-batches of the course's schedule, epoch after epoch."""
    from reference.data.batches import epoch_mini_batches

    if int(steps) != steps or steps < 1:
        raise ValueError(f"steps: expected a positive integer, got {steps!r}")
    done, epoch = 0, 0
    while done < steps:
        for X_batch, Y_batch in epoch_mini_batches(X, Y, epoch, mini_batch_size=mini_batch_size, first_seed=first_seed):
            if done == steps:
                return
            yield X_batch, Y_batch
            done += 1
        epoch += 1


def trajectory_key(world_size: int, dtype, step: int, name: str) -> str:
    """The key of one recorded tensor: ``"3/float64/17/W1"`` (step counted from 1)."""
    return f"{world_size}/{np.dtype(dtype).name}/{step}/{name}"


def single_trajectory(trainer, X: np.ndarray, Y: np.ndarray, steps: int, **batching) -> list[dict[str, np.ndarray]]:
    """Weights after each of ``steps`` steps of one process's ``trainer`` (any backend's Trainer)."""
    trajectory = []
    for X_batch, Y_batch in course_steps(X, Y, steps, **batching):
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


def torch_ddp_trajectories(params: dict[str, np.ndarray], X: np.ndarray, Y: np.ndarray, steps: int, *,
                           world_sizes: tuple[int, ...], dtypes: tuple = (np.float64,), out_path: str | os.PathLike,
                           train: TrainSpec = COURSE_TRAINING, spec: ModelSpec = COURSE_MODEL, mini_batch_size: int = COURSE_TRAINING.mini_batch_size,
                           first_seed: int = COURSE_TRAINING.first_seed) -> dict[str, np.ndarray]:
    """DDP weights after every step, for every world size and dtype, from ONE set of spawned ranks.

    ``max(world_sizes)`` gloo ranks are spawned once; smaller world sizes use a subgroup of the first
    ranks. Returns ``{trajectory_key(n, dtype, step, name): array}`` plus ``"<n>/<dtype>/rank_spread"``:
    the largest difference between any rank's final weights and rank 0's (0 when every rank applied
    the same update). Rank 0 writes the arrays to ``out_path`` (.npz, atomically) and this reads them.
    ``params``, ``X``, ``Y`` are float64 and cast to each dtype; ``spec`` is the network they fit
    (a smaller ``COURSE_MODEL.with_input(...)`` makes a fast test).
    """
    from signs.distributed.launch import spawn_workers

    world_sizes = tuple(int(n) for n in world_sizes)
    if not world_sizes or min(world_sizes) < 1:
        raise ValueError(f"world_sizes: expected positive integers, got {world_sizes!r}")
    job = dict(params=params, X=X, Y=Y, steps=int(steps), world_sizes=world_sizes,
               dtypes=tuple(np.dtype(d).name for d in dtypes), out_path=str(out_path), train=train, spec=spec,
               batching={"mini_batch_size": mini_batch_size, "first_seed": first_seed})
    outcome = spawn_workers(_torch_trajectory_rank, max(world_sizes), (job,))
    if outcome.interrupted:
        raise KeyboardInterrupt
    if any(code != 0 for code in outcome.exit_codes):
        raise RuntimeError(f"torch DDP ranks failed: exit codes {outcome.exit_codes}")
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
                X, Y = job["X"].astype(dtype), job["Y"].astype(dtype)
                trajectory = single_trajectory(trainer, X, Y, job["steps"], **job["batching"])
                for step, weights in enumerate(trajectory, start=1):
                    records.update({trajectory_key(world_size, dtype, step, n): w for n, w in weights.items()})
                records[f"{world_size}/{dtype}/rank_spread"] = np.array(_rank_spread(trajectory[-1], group))
        if rank == 0:
            _save_npz(job["out_path"], records)
        dist.barrier()
    finally:
        dist.destroy_process_group()
    return 0


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
