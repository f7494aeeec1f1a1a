"""The NumPy reference implementation of the course ConvNet (NumPy only: no TensorFlow, no torch).

The course's API, unchanged, so a learner's notebook code runs after
``from reference import conv_forward, pool_forward, ...``:

- loops, as in the notebook (:mod:`reference.layers`): ``zero_pad``, ``conv_single_step``,
  ``conv_forward``, ``conv_backward``, ``pool_forward``, ``create_mask_from_window``,
  ``distribute_value``, ``pool_backward``, and the geometry and argument checks they share with
  the vectorised layers;
- vectorised, same signatures and caches (:mod:`reference.fast_layers`): ``conv_forward_fast``,
  ``conv_backward_fast``, ``pool_forward_fast``, ``pool_backward_fast``;
- the whole model (:mod:`reference.model`): ``model_forward``, ``model_backward``,
  ``compute_cost``, ``forward_backward``, ``train_gradients`` and the small layers; the training
  step's conv1 -> relu -> pool1 fused block by block (:mod:`reference.fused`) on the block workers
  of :mod:`reference.gemm` (``set_block_workers``; results do not depend on their number);
- ``Adam`` with TF1's update rule (:mod:`reference.adam`);
- ``resolve_padding`` (:mod:`reference.padding`): int, "same", "valid" or explicit padding.
"""

# The names are imported one by one so a reader sees each; they are exported through __all__,
# which is built from the submodules' lists (F401 cannot see that).
from reference import layers, model
from reference.adam import Adam  # noqa: F401
from reference.fast_layers import (  # noqa: F401
    conv_backward_fast,
    conv_forward_fast,
    pool_backward_fast,
    pool_forward_fast,
)
from reference.init import course_init, glorot_init  # noqa: F401
from reference.layers import (  # noqa: F401
    POOL_MODES,
    ConvGeometry,
    PoolGeometry,
    as_float_array,
    check_mode,
    check_upstream,
    conv_backward,
    conv_forward,
    conv_geometry,
    conv_single_step,
    create_mask_from_window,
    distribute_value,
    pool_backward,
    pool_forward,
    pool_geometry,
    zero_pad,
)
from reference.model import (  # noqa: F401
    IMPLEMENTATIONS,
    compute_cost,
    dense_backward,
    dense_forward,
    flatten_backward,
    flatten_forward,
    forward_backward,
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
from reference.padding import resolve_padding  # noqa: F401
from reference.weights_io import load_npz, load_safetensors, save_npz, save_safetensors  # noqa: F401

# The package exports what each submodule exports (its own ``__all__`` is the one list of its
# public names), plus the few names it takes from the modules that are mostly internal.
__all__ = [
    *layers.__all__,  # course API (loops) and their argument checks
    # vectorised equivalents (fast_layers' other names are its building blocks)
    "conv_forward_fast",
    "conv_backward_fast",
    "pool_forward_fast",
    "pool_backward_fast",
    *model.__all__,  # whole model
    "Adam",
    "resolve_padding",
    "course_init",
    "glorot_init",
    "load_safetensors",
    "save_safetensors",
    "load_npz",
    "save_npz",
]
