"""Data-parallel training on the engines people already use: PyTorch DDP and tf.distribute.

``shards``     how a global mini-batch is cut between ranks and how each rank's loss is weighted
               (pure NumPy-free arithmetic, shared by both engines).
``launch``     ``signs train --nproc N``: spawning N ranks, or joining the ranks ``torchrun`` started.
``torch_ddp``  ``DDPTrainer``: ``torch_model.backend.Trainer`` wrapped in DistributedDataParallel.
``tf_mirror``  ``MirroredTrainer``: ``tf_model.backend.Trainer``'s step under a tf.distribute strategy.
``parity``     K steps N-way against one process, per parameter (``signs verify --replicas N``).

Frameworks are imported lazily; ``torch_ddp`` never imports TensorFlow and ``tf_mirror`` never
imports torch. docs/distributed.md describes the semantics and how to launch.
"""
