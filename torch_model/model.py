"""The course SIGNS ConvNet as a PyTorch module (canonical NHWC input, TensorFlow semantics).

State-dict keys (stable; ``torch_model.convert.NAME_MAP`` maps the canonical names onto them)::

    features.conv1.weight   (8, 3, 4, 4)    OIHW   <- canonical W1 HWIO (4, 4, 3, 8)
    features.conv2.weight   (16, 8, 2, 2)   OIHW   <- canonical W2 HWIO (2, 2, 8, 16)
    classifier.dense.weight (6, 64)         (out, in) = W3.T, columns in NHWC-flatten order
    classifier.dense.bias   (6,)                      = b3
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import Tensor, nn

from reference.spec import ACTIVATION_NAMES, COURSE_MODEL, ModelSpec, param_shapes
from torch_model.ops import FlattenNHWC, TFConv2d, TFMaxPool2d, nchw_to_nhwc, nhwc_to_nchw

__all__ = ["SignsConvNet"]


class SignsConvNet(nn.Module):
    """CONV -> RELU -> MAXPOOL -> CONV -> RELU -> MAXPOOL -> FLATTEN (NHWC order) -> DENSE (logits).

    Every size comes from ``spec`` (``COURSE_MODEL`` or ``COURSE_MODEL.with_input(...)``). Input is
    NHWC (m, n_H, n_W, n_C) in the module's dtype; the output is logits (m, n_classes).
    """

    def __init__(self, spec: ModelSpec = COURSE_MODEL, dtype: torch.dtype = torch.float32,
                 device: torch.device | str | None = None) -> None:
        super().__init__()
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype: expected torch.float32 or torch.float64, got {dtype}")
        self.spec, self.dtype = spec, dtype
        n_in, n_out = param_shapes(spec)["W3"]
        conv1, pool1, conv2, pool2 = spec.conv1, spec.pool1, spec.conv2, spec.pool2
        kw = {"dtype": dtype, "device": device}
        self.features = nn.Sequential(OrderedDict([
            (conv1.name, TFConv2d(spec.input_shape[2], conv1.filters, conv1.kernel, conv1.stride, conv1.padding, **kw)),
            ("relu1", nn.ReLU()),
            (pool1.name, TFMaxPool2d(pool1.window, pool1.stride, pool1.padding)),
            (conv2.name, TFConv2d(conv1.filters, conv2.filters, conv2.kernel, conv2.stride, conv2.padding, **kw)),
            ("relu2", nn.ReLU()),
            (pool2.name, TFMaxPool2d(pool2.window, pool2.stride, pool2.padding)),
        ]))
        self.classifier = nn.Sequential(OrderedDict([
            (spec.flatten_name, FlattenNHWC()),  # permutes P2 to NHWC before flattening
            (spec.dense_name, nn.Linear(n_in, n_out, **kw)),
        ]))
        nn.init.xavier_uniform_(self.classifier[-1].weight)  # Keras Dense defaults
        nn.init.zeros_(self.classifier[-1].bias)

    def forward(self, x: Tensor) -> Tensor:
        """Logits (m, n_classes) for NHWC input ``x`` (m, n_H, n_W, n_C).

        ReLU runs after each max-pool: relu(maxpool(z)) == maxpool(relu(z)) exactly (both are
        monotone and exact), with the same gradients, but on 64x fewer elements after pool1
        (~40% off a training step). ``forward_with_activations`` keeps the course's layer order.
        """
        conv1, relu1, pool1, conv2, relu2, pool2 = self.features
        h = relu1(pool1(conv1(nhwc_to_nchw(x))))
        h = relu2(pool2(conv2(h)))
        return self.classifier(h)

    def forward_with_activations(self, x: Tensor) -> dict[str, Tensor]:
        """Every named activation (Z1 A1 P1 Z2 A2 P2 F Z3), 4-D ones as NHWC views."""
        activations, h = {}, nhwc_to_nchw(x)
        for name, layer in zip(ACTIVATION_NAMES, [*self.features, *self.classifier], strict=True):
            h = layer(h)
            activations[name] = nchw_to_nhwc(h) if h.dim() == 4 else h
        return activations
