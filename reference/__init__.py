"""The NumPy reference implementation of the course ConvNet (NumPy only: no TensorFlow, no torch).

The course's API, unchanged, so a learner's notebook code runs after
``from reference import conv_forward, pool_forward, ...``:

- loops, as in the notebook (:mod:`reference.layers`): ``zero_pad``, ``conv_single_step``,
  ``conv_forward``, ``conv_backward``, ``pool_forward``, ``create_mask_from_window``,
  ``distribute_value``, ``pool_backward``;
- vectorised, same signatures and caches (:mod:`reference.fast_layers`): ``conv_forward_fast``,
  ``conv_backward_fast``, ``pool_forward_fast``, ``pool_backward_fast``;
- the whole model (:mod:`reference.model`): ``model_forward``, ``model_backward``,
  ``compute_cost``, ``train_gradients`` and the small layers;
- ``Adam`` with TF1's update rule (:mod:`reference.adam`);
- ``resolve_padding`` (:mod:`reference.padding`): int, "same", "valid" or explicit padding.
"""

from reference.adam import Adam
from reference.fast_layers import (
    conv_backward_fast,
    conv_forward_fast,
    pool_backward_fast,
    pool_forward_fast,
)
from reference.layers import (
    conv_backward,
    conv_forward,
    conv_single_step,
    create_mask_from_window,
    distribute_value,
    pool_backward,
    pool_forward,
    zero_pad,
)
from reference.model import (
    compute_cost,
    dense_backward,
    dense_forward,
    flatten_backward,
    flatten_forward,
    model_backward,
    model_forward,
    predict_logits,
    relu_backward,
    relu_forward,
    softmax,
    softmax_cross_entropy,
    softmax_cross_entropy_backward,
    train_gradients,
)
from reference.padding import resolve_padding

__all__ = [
    # course API (loops)
    "zero_pad",
    "conv_single_step",
    "conv_forward",
    "conv_backward",
    "pool_forward",
    "create_mask_from_window",
    "distribute_value",
    "pool_backward",
    # vectorised equivalents
    "conv_forward_fast",
    "conv_backward_fast",
    "pool_forward_fast",
    "pool_backward_fast",
    # whole model
    "relu_forward",
    "relu_backward",
    "flatten_forward",
    "flatten_backward",
    "dense_forward",
    "dense_backward",
    "softmax",
    "softmax_cross_entropy",
    "softmax_cross_entropy_backward",
    "compute_cost",
    "model_forward",
    "model_backward",
    "train_gradients",
    "predict_logits",
    # optimizer, padding
    "Adam",
    "resolve_padding",
]

from reference.init import course_init, glorot_init  # noqa: E402
from reference.weights_io import load_npz, load_safetensors, save_npz, save_safetensors  # noqa: E402

__all__ += ["course_init", "glorot_init", "load_safetensors", "save_safetensors", "load_npz", "save_npz"]
