"""The course ConvNet ported to PyTorch by hand, as a user would write it (NCHW, bias-free convs).

Check it against the course's reference with::

    signs compare examples/ports/course_torch.py:CourseNet
    signs compare examples/ports/course_torch.py:CourseNetSamePadding
    signs compare examples/ports/course_torch.py:CourseNet --steps 5 \
        --optimizer examples/ports/course_torch.py:tf1_adam

Both modules take NCHW batches (m, 3, 64, 64) and return logits (m, 6). TensorFlow's SAME padding
of an even kernel puts the extra row and column after (bottom, right): ``CourseNet`` pads
explicitly, ``CourseNetSamePadding`` uses torch's own ``padding="same"``, which splits the same way
at stride 1. The pools need no padding for 64x64 images (64 and 8 are multiples of the strides).
The dense layer reads the features in TensorFlow's NHWC order, so the course's W3 fits unchanged.
"""

import torch
import torch.nn.functional as F
from torch import nn


class CourseNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, kernel_size=4, bias=False)
        self.conv2 = nn.Conv2d(8, 16, kernel_size=2, bias=False)
        self.fc = nn.Linear(2 * 2 * 16, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (1, 2, 1, 2))  # SAME for a 4x4 kernel: (left, right, top, bottom)
        x = F.max_pool2d(F.relu(self.conv1(x)), kernel_size=8, stride=8)
        x = F.pad(x, (0, 1, 0, 1))  # SAME for a 2x2 kernel
        x = F.max_pool2d(F.relu(self.conv2(x)), kernel_size=4, stride=4)
        x = x.permute(0, 2, 3, 1).flatten(1)  # NHWC order, as tf.contrib.layers.flatten
        return self.fc(x)


class CourseNetSamePadding(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 4, padding="same", bias=False), nn.ReLU(), nn.MaxPool2d(8, 8),
            nn.Conv2d(8, 16, 2, padding="same", bias=False), nn.ReLU(), nn.MaxPool2d(4, 4),
        )
        self.classifier = nn.Linear(64, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        return self.classifier(torch.flatten(x.permute(0, 2, 3, 1), 1))


def tf1_adam(model: nn.Module) -> torch.optim.Optimizer:
    """TF1's AdamOptimizer (epsilon added before bias correction), as signs-parity ships it."""
    from torch_model.optim import TF1Adam

    return TF1Adam(model.parameters(), lr=0.009, betas=(0.9, 0.999), eps=1e-8)
