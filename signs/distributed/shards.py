"""How a global mini-batch is shared between data-parallel ranks, and how each rank's loss is weighted.

Every rank builds the *same* global mini-batches (the course's ``random_mini_batches`` with its seed
schedule, which reseeds NumPy's global RNG identically everywhere) and takes one contiguous slice of
each: with B examples on N ranks, ranks ``0 .. B % N - 1`` take ``ceil(B / N)`` examples and the
others ``floor(B / N)`` (64 on 3 ranks: 22, 21, 21; the course's last batch of 56: 19, 19, 18).

The rescale. The single-process loss is the mean over the global batch,
``L = (1/B) sum_i l_i``. Rank r computes the mean over its own ``b_r`` examples,
``L_r = (1/b_r) sum_{i in r} l_i``. DistributedDataParallel (and tf.distribute's all-reduce of a
per-replica loss scaled by ``1/N``) *averages* the per-rank gradients: ``(1/N) sum_r grad L_r``.
That equals ``grad L`` only when every ``b_r = B / N``. Weighting rank r's loss by
``w_r = N * b_r / B`` makes the average ``(1/N) sum_r (N b_r / B) (1/b_r) sum_{i in r} grad l_i =
(1/B) sum_i grad l_i = grad L`` exactly (up to float rounding), for any split.
"""

from __future__ import annotations

__all__ = ["rank_slice", "loss_weight", "cost_share", "check_split"]


def _check(batch_size: int, world_size: int, rank: int) -> None:
    if int(world_size) != world_size or world_size < 1:
        raise ValueError(f"world_size: expected a positive integer, got {world_size!r}")
    if int(rank) != rank or not 0 <= rank < world_size:
        raise ValueError(f"rank: expected an integer in [0, {world_size}), got {rank!r}")
    if int(batch_size) != batch_size or batch_size < world_size:
        raise ValueError(
            f"batch_size: expected at least one example per rank ({world_size} ranks), got {batch_size!r}"
        )


def rank_slice(batch_size: int, world_size: int, rank: int) -> slice:
    """The contiguous examples ``[start, stop)`` of a global batch of ``batch_size`` that ``rank`` takes."""
    _check(batch_size, world_size, rank)
    base, extra = divmod(int(batch_size), int(world_size))
    start = rank * base + min(rank, extra)
    return slice(start, start + base + (1 if rank < extra else 0))


def loss_weight(batch_size: int, world_size: int, rank: int) -> float:
    """``N * b_r / B``: the factor on rank r's mean loss that makes the *averaged* gradient the
    gradient of the global batch's mean loss (see the module docstring)."""
    part = rank_slice(batch_size, world_size, rank)
    return world_size * (part.stop - part.start) / batch_size


def cost_share(batch_size: int, world_size: int, rank: int) -> float:
    """``b_r / B``: the factor on rank r's mean loss whose *sum* over ranks is the global mean loss."""
    part = rank_slice(batch_size, world_size, rank)
    return (part.stop - part.start) / batch_size


def check_split(m: int, mini_batch_size: int, world_size: int, what: str = "--nproc") -> None:
    """ValueError unless every global batch of an epoch (``m`` examples in batches of
    ``mini_batch_size``, the last one ``m % mini_batch_size`` if not 0) gives each rank an example."""
    sizes = [min(int(mini_batch_size), int(m))]
    if m % mini_batch_size:
        sizes.append(int(m % mini_batch_size))
    smallest = min(sizes)
    if smallest < world_size:
        raise ValueError(
            f"{what}: expected at most {smallest} processes (the smallest global batch of {m} examples in "
            f"batches of {mini_batch_size} holds {smallest}, one example per rank at least), got {world_size}"
        )
