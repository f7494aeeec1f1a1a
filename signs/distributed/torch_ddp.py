"""``DDPTrainer``: the PyTorch ``Trainer`` with its module wrapped in DistributedDataParallel.

Each rank holds a whole :class:`torch_model.backend.Trainer` (the same module, the same
:class:`torch_model.optim.TF1Adam`). ``step`` receives the *global* mini-batch, which every rank
built identically, trains on this rank's contiguous slice with its loss weighted by
``signs.distributed.shards.loss_weight`` (so DDP's gradient *average* is the gradient of the global
mean loss, also for uneven splits), and returns the global batch's mean cost (one scalar
all-reduce). The averaged gradients are bitwise identical on every rank, so the TF1 Adam update,
and the weights, are too.

The process group: gloo on CPU, NCCL on CUDA (one GPU per rank, ``cuda:LOCAL_RANK``), created from
the torchrun-style environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) with a
timeout, so a rank that hangs stops the others with an error instead of waiting forever.
"""

from __future__ import annotations

import datetime as _dt
import os
from typing import Mapping

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from reference.spec import COURSE_MODEL, COURSE_TRAINING, ModelSpec, TrainSpec
from reference.validate import check_batch
from signs.distributed.shards import cost_share, loss_weight, rank_slice
from torch_model.backend import Trainer, _as_tensor, softmax_cross_entropy
from torch_model.ops import no_tf32

__all__ = ["DEFAULT_TIMEOUT_S", "process_group_backend", "init_process_group", "DDPTrainer"]

# Seconds a collective waits for the other ranks before failing. A rank that *dies* is noticed at
# once (its sockets close); this bounds the wait for one that hangs. SIGNS_DIST_TIMEOUT overrides.
DEFAULT_TIMEOUT_S = 120.0


def process_group_backend(device: str) -> str:
    """"gloo" for "cpu", "nccl" for "cuda"."""
    if device == "cpu":
        return "gloo"
    if device == "cuda":
        return "nccl"
    raise ValueError(f"device: expected 'cpu' or 'cuda', got {device!r}")


def init_process_group(device: str) -> None:
    """Join the process group the environment describes (torchrun's variables); on CUDA, bind this
    process to GPU ``LOCAL_RANK`` first so "cuda" means that GPU from here on."""
    if device == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        # The same convolution algorithms run after run (cuDNN's autotuner may pick others each time).
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = False, True
    timeout = float(os.environ.get("SIGNS_DIST_TIMEOUT", DEFAULT_TIMEOUT_S))
    dist.init_process_group(process_group_backend(device), timeout=_dt.timedelta(seconds=timeout))


class DDPTrainer(Trainer):
    """:class:`torch_model.backend.Trainer` training one rank's share of every global batch under DDP.

    Parameters are those of ``Trainer`` plus ``group``: the process group (default: the world).
    ``get_params``/``get_optimizer_state``/``set_optimizer_state`` are the base class's: the state
    is the same on every rank, so a checkpoint written by rank 0 resumes on any number of ranks.
    """

    def __init__(self, params: Mapping[str, np.ndarray], *, train: TrainSpec = COURSE_TRAINING,
                 spec: ModelSpec = COURSE_MODEL, device: str | torch.device = "cpu",
                 group: dist.ProcessGroup | None = None) -> None:
        super().__init__(params, train=train, spec=spec, device=device, optimizer="tf1")
        self.group = group
        self.rank = dist.get_rank(group)
        self.world_size = dist.get_world_size(group)
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        # DDP broadcasts rank 0's weights at construction: every rank starts from the same ones.
        self.ddp = DistributedDataParallel(self.module, device_ids=device_ids, process_group=group)

    def step(self, X: np.ndarray, Y: np.ndarray) -> float:
        """One Adam update on the global batch (X NHWC (B, n_H, n_W, n_C), Y (B, n_classes)), of which
        this rank computes the contiguous slice ``rank_slice(B, N, rank)``; returns the global
        batch's mean cost before the update (the same number on every rank)."""
        check_batch(X, Y, self.dtype, self.spec)
        batch = X.shape[0]
        part = rank_slice(batch, self.world_size, self.rank)
        x, y = _as_tensor(X[part], self.device), _as_tensor(Y[part], self.device)
        with no_tf32():
            self.optimizer.zero_grad(set_to_none=True)
            local_cost = softmax_cross_entropy(self.ddp(x), y)
            # DDP averages the ranks' gradients during backward; the weight N * b_r / B turns that
            # average into the gradient of the global mean loss (signs.distributed.shards).
            (local_cost * loss_weight(batch, self.world_size, self.rank)).backward()
            self.optimizer.step()
        # sum_r (b_r / B) * mean_r = the global mean; a NaN on any rank reaches every rank, so all
        # of them stop at the same batch (the driver's NonFiniteLoss).
        total = (local_cost.detach() * cost_share(batch, self.world_size, self.rank)).reshape(1)
        dist.all_reduce(total, group=self.group)
        return total.item()
