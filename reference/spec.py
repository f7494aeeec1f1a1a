"""The one source of truth for the course ConvNet: architecture, names and hyperparameters.

Every backend (``reference``, ``tf_model``, ``torch_model``) and every cross-framework tool reads
this module; nothing else hard-codes a layer size, a parameter name or a hyperparameter.

Layouts (canonical, shared by every weight file the project writes):
  activations  NHWC   (m, n_H, n_W, n_C)
  conv kernels HWIO   (f, f, n_C_prev, n_C)
  dense kernel (n_in, n_out), rows in NHWC-flatten order of the last pooled activation
  dense bias   (n_out,)
"""

from __future__ import annotations

from dataclasses import dataclass, field
import math

from reference.padding import same_output_size

__all__ = [
    "ConvSpec",
    "PoolSpec",
    "ModelSpec",
    "TrainSpec",
    "COURSE_MODEL",
    "COURSE_TRAINING",
    "IMPROVED_TRAINING",
    "SIGNS_TRAIN_EXAMPLES",
    "PARAM_NAMES",
    "ACTIVATION_NAMES",
    "GRADIENT_NAMES",
    "param_shapes",
    "activation_shapes",
]


@dataclass(frozen=True)
class ConvSpec:
    """A bias-free conv layer, ``padding`` as TensorFlow spells it ("SAME" or "VALID")."""

    name: str
    param: str  # canonical parameter name, e.g. "W1"
    kernel: int
    filters: int
    stride: int = 1
    padding: str = "SAME"

    @property
    def hparameters(self) -> dict:
        """The layer functions' ``hparameters`` (``reference.layers.conv_forward``)."""
        return {"stride": self.stride, "pad": self.padding}


@dataclass(frozen=True)
class PoolSpec:
    """A max-pool layer; ``window`` and ``stride`` are square."""

    name: str
    window: int
    stride: int
    padding: str = "SAME"

    @property
    def hparameters(self) -> dict:
        """The layer functions' ``hparameters`` (``reference.layers.pool_forward``)."""
        return {"stride": self.stride, "f": self.window, "pad": self.padding}


@dataclass(frozen=True)
class ModelSpec:
    """CONV -> RELU -> MAXPOOL -> CONV -> RELU -> MAXPOOL -> FLATTEN -> DENSE (logits)."""

    input_shape: tuple[int, int, int] = (64, 64, 3)  # (n_H, n_W, n_C), NHWC without the batch
    conv1: ConvSpec = ConvSpec("conv1", "W1", kernel=4, filters=8)
    pool1: PoolSpec = PoolSpec("pool1", window=8, stride=8)
    conv2: ConvSpec = ConvSpec("conv2", "W2", kernel=2, filters=16)
    pool2: PoolSpec = PoolSpec("pool2", window=4, stride=4)
    n_classes: int = 6
    dense_name: str = "dense"
    flatten_name: str = "flatten"

    def with_input(self, n_H: int, n_W: int, n_C: int = 3) -> "ModelSpec":
        """The same network for another input size; the dense width follows from the shapes."""
        from dataclasses import replace

        return replace(self, input_shape=(int(n_H), int(n_W), int(n_C)))


@dataclass(frozen=True)
class TrainSpec:
    """The course's training recipe (TF1 ``AdamOptimizer`` update rule)."""

    learning_rate: float = 0.009
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-8
    mini_batch_size: int = 64
    num_epochs: int = 100
    first_seed: int = 3  # the course sets seed = 3 and increments it before every epoch
    print_every: int = 5
    graph_seed: int = 1  # tf.set_random_seed(1) in the course's initialize_parameters
    conv_init_op_seed: int = 0  # xavier_initializer(seed=0) for W1 and W2
    dense_init_op_seed: int = 45  # TF1 derived fully_connected's op seed from the graph op count
    classes: tuple[int, ...] = field(default=(0, 1, 2, 3, 4, 5))


COURSE_MODEL = ModelSpec()
COURSE_TRAINING = TrainSpec()
# The improved recipe's schedule (signs/training/recipes.py): a lower base rate, cosine-decayed over
# more epochs; the Adam constants and batches stay the course's.
IMPROVED_TRAINING = TrainSpec(learning_rate=0.004, num_epochs=150)
SIGNS_TRAIN_EXAMPLES = 1080  # images in the SIGNS train split (120 in test)

PARAM_NAMES: tuple[str, ...] = ("W1", "W2", "W3", "b3")
# Z1 conv1, A1 relu, P1 pool1, Z2 conv2, A2 relu, P2 pool2, F flatten (NHWC order), Z3 logits.
ACTIVATION_NAMES: tuple[str, ...] = ("Z1", "A1", "P1", "Z2", "A2", "P2", "F", "Z3")
GRADIENT_NAMES: tuple[str, ...] = ("dW1", "dW2", "dW3", "db3", "dX")


def activation_shapes(spec: ModelSpec = COURSE_MODEL, m: int = 1) -> dict[str, tuple[int, ...]]:
    """Shape of every named activation for a batch of ``m`` (all layers are SAME)."""
    n_H, n_W, _ = spec.input_shape
    shapes: dict[str, tuple[int, ...]] = {}
    shapes["Z1"] = shapes["A1"] = (m, n_H, n_W, spec.conv1.filters)  # stride-1 SAME keeps n_H, n_W
    n_H, n_W = same_output_size(n_H, spec.pool1.stride), same_output_size(n_W, spec.pool1.stride)
    shapes["P1"] = (m, n_H, n_W, spec.conv1.filters)
    shapes["Z2"] = shapes["A2"] = (m, n_H, n_W, spec.conv2.filters)
    n_H, n_W = same_output_size(n_H, spec.pool2.stride), same_output_size(n_W, spec.pool2.stride)
    shapes["P2"] = (m, n_H, n_W, spec.conv2.filters)
    shapes["F"] = (m, n_H * n_W * spec.conv2.filters)
    shapes["Z3"] = (m, spec.n_classes)
    return shapes


def param_shapes(spec: ModelSpec = COURSE_MODEL) -> dict[str, tuple[int, ...]]:
    """Canonical parameter shapes: W1, W2 HWIO; W3 (n_flat, n_classes) NHWC-flatten rows; b3."""
    n_C0 = spec.input_shape[2]
    n_flat = activation_shapes(spec)["F"][1]
    return {
        "W1": (spec.conv1.kernel, spec.conv1.kernel, n_C0, spec.conv1.filters),
        "W2": (spec.conv2.kernel, spec.conv2.kernel, spec.conv1.filters, spec.conv2.filters),
        "W3": (n_flat, spec.n_classes),
        "b3": (spec.n_classes,),
    }


def glorot_limit(shape: tuple[int, ...]) -> float:
    """Glorot-uniform limit sqrt(6 / (fan_in + fan_out)) with TF's fan rule (receptive field)."""
    receptive = math.prod(shape[:-2]) if len(shape) > 2 else 1
    fan_in, fan_out = shape[-2] * receptive, shape[-1] * receptive
    return math.sqrt(6.0 / (fan_in + fan_out))
