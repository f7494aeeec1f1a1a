"""``MirroredTrainer``: the TensorFlow ``Trainer`` under a tf.distribute strategy.

The model, its Adam (TF1's rule, ``tf_model.model.make_adam``) and the learning-rate variable are
built inside ``strategy.scope()``, so they are mirrored on every replica. ``step`` receives the
*global* mini-batch, gives replica r its contiguous slice (``signs.distributed.shards.rank_slice``,
through ``experimental_distribute_values_from_function``) and runs one replica step on each.

The rescale under tf.distribute: Keras 3's optimizer, called in a replica context, all-reduces the
replicas' gradients with ``ReduceOp.SUM`` (``TFOptimizer._all_reduce_sum_gradients``). Replica r's
loss is therefore its mean cost times ``b_r / B`` (``cost_share``): the sum over replicas is then
the gradient of the global batch's mean loss exactly, for any split. (``tf.nn.compute_average_loss``
with ``global_batch_size=B`` is the same factor.)

Strategies (:func:`make_strategy`): ``MultiWorkerMirroredStrategy`` when ``TF_CONFIG`` names
several workers (one replica per worker and local GPU); otherwise ``MirroredStrategy`` over N GPUs
(``--device cuda``) or N logical CPU devices, which must be declared before TensorFlow initialises
(:func:`configure_logical_cpus`). Never imports torch.
"""

from __future__ import annotations

import json
import os
from typing import Callable

import numpy as np
import tensorflow as tf

from reference.spec import COURSE_MODEL, COURSE_TRAINING, ModelSpec, TrainSpec
from reference.validate import check_batch
from signs.distributed.shards import cost_share, rank_slice
from tf_model.backend import Trainer, course_cost

__all__ = ["tf_config_workers", "configure_logical_cpus", "make_strategy", "MirroredTrainer", "TFParallel"]


def tf_config_workers(environ=os.environ) -> tuple[int, int]:
    """(number of workers, this task's index) from ``TF_CONFIG``; (1, 0) when it is unset."""
    text = environ.get("TF_CONFIG")
    if not text:
        return 1, 0
    try:
        config = json.loads(text)
        workers = len(config.get("cluster", {}).get("worker", []))
        index = int(config.get("task", {}).get("index", 0))
    except (ValueError, AttributeError, TypeError) as exc:
        raise ValueError(f"environment TF_CONFIG: expected JSON with cluster.worker and task.index, got {text!r} ({exc})") from None
    return max(workers, 1), index


def configure_logical_cpus(n: int) -> None:
    """Split the first physical CPU into ``n`` logical devices /CPU:0 .. /CPU:n-1 (before TF starts)."""
    cpus = tf.config.list_physical_devices("CPU")
    wanted = [tf.config.LogicalDeviceConfiguration() for _ in range(int(n))]
    current = tf.config.get_logical_device_configuration(cpus[0])
    if current is not None and len(current) == int(n):
        return
    try:
        tf.config.set_logical_device_configuration(cpus[0], wanted)
    except RuntimeError as exc:
        have = len(tf.config.list_logical_devices("CPU"))
        raise ValueError(
            f"--replicas: expected to declare {n} logical CPU devices before TensorFlow initialises, but it "
            f"already runs with {have} ({exc})"
        ) from None


def make_strategy(replicas: int, device: str = "cpu") -> tf.distribute.Strategy:
    """MultiWorkerMirroredStrategy under a multi-worker TF_CONFIG, else MirroredStrategy over
    ``replicas`` GPUs (``device="cuda"``) or logical CPU devices."""
    workers, _ = tf_config_workers()
    if workers > 1:
        return tf.distribute.MultiWorkerMirroredStrategy()
    if device in ("cuda", "gpu"):
        gpus = tf.config.list_physical_devices("GPU")
        if len(gpus) < replicas:
            raise ValueError(f"--replicas: expected at most {len(gpus)} (the GPUs TensorFlow sees), got {replicas}")
        return tf.distribute.MirroredStrategy([f"/GPU:{i}" for i in range(replicas)])
    configure_logical_cpus(replicas)
    return tf.distribute.MirroredStrategy([f"/CPU:{i}" for i in range(replicas)])


class MirroredTrainer(Trainer):
    """:class:`tf_model.backend.Trainer` whose variables live under ``strategy`` and whose step
    shares every global batch between the replicas (see the module docstring)."""

    def __init__(self, params, *, train: TrainSpec = COURSE_TRAINING, spec: ModelSpec = COURSE_MODEL,
                 device: str = "cpu", strategy: tf.distribute.Strategy) -> None:
        self.strategy = strategy
        with strategy.scope():
            super().__init__(params, train=train, spec=spec, device=device)
        # One trace per distinct per-replica shape (a full and a partial batch); no input signature
        # because the arguments are per-replica values.
        self._replica_steps = tf.function(self._distributed_step, reduce_retracing=True)

    def _replica_step(self, X, Y, share):
        """One replica: its slice's mean cost times b_r / B, gradients (summed across replicas by
        the optimizer), the Adam update; returns the weighted cost (its sum is the global mean)."""
        with tf.GradientTape() as tape:
            logits = self.training_model(X, training=True)
            cost = course_cost(Y, logits) * share
        grads = tape.gradient(cost, [v.value for v in self._variables])
        self.optimizer.apply(grads, self._variables)
        return cost

    def _distributed_step(self, X, Y, share):
        per_replica = self.strategy.run(self._replica_step, args=(X, Y, share))
        return self.strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    def step(self, X: np.ndarray, Y: np.ndarray) -> float:
        """One Adam update on the global batch X (B, n_H, n_W, n_C) NHWC, Y (B, 6); the global
        batch's mean cost before it."""
        check_batch(X, Y, self.dtype, self.spec)
        batch, replicas = X.shape[0], self.strategy.num_replicas_in_sync

        def replica_inputs(context):
            r = context.replica_id_in_sync_group
            part = rank_slice(batch, replicas, r)
            return (tf.constant(X[part]), tf.constant(Y[part]),
                    tf.constant(cost_share(batch, replicas, r), dtype=self.dtype.name))

        inputs = self.strategy.experimental_distribute_values_from_function(replica_inputs)
        return float(self._replica_steps(*inputs).numpy())


class TFParallel:
    """The hook ``signs train``'s body applies to the driver's ``train`` with ``--replicas N``."""

    def __init__(self, strategy: tf.distribute.Strategy, chief: bool) -> None:
        self.strategy, self.chief = strategy, chief

    @classmethod
    def from_args(cls, args, replicas: int) -> "TFParallel":
        workers, index = tf_config_workers()
        return cls(make_strategy(replicas, args.device), chief=index == 0 or workers == 1)

    def wrap(self, train: Callable) -> Callable:
        """``train`` with MirroredTrainer as the Trainer; the chief writes the run folder."""
        from signs.distributed.launch import parallel_train_function

        def make_trainer(params, **kwargs):
            return MirroredTrainer(params, strategy=self.strategy, **kwargs)

        return parallel_train_function(train, make_trainer=make_trainer, world_size=self.strategy.num_replicas_in_sync,
                                       writer=self.chief, option="--replicas")
