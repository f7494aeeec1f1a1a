"""PyTorch ports of the course net for the signs compare tests: correct ones in several styles, and
one broken variant per porting trap, each written the way a user would make the mistake.

Every factory returns an nn.Module taking NCHW (or, where said, NHWC) batches and returning (m, 6).
"""

import torch
import torch.nn.functional as F
from torch import nn


class Port(nn.Module):
    """The course net with every trap as a switch (all off: a correct port)."""

    def __init__(self, *, conv1_pad=(1, 2, 1, 2), conv_bias=False, pool_ceil=False,
                 flatten_nchw=False, softmax=False) -> None:
        super().__init__()
        self.conv1_pad = conv1_pad
        self.conv1 = nn.Conv2d(3, 8, 4, bias=conv_bias)
        self.conv2 = nn.Conv2d(8, 16, 2, bias=conv_bias)
        self.pool1 = nn.MaxPool2d(8, 8, ceil_mode=pool_ceil)
        self.pool2 = nn.MaxPool2d(4, 4, ceil_mode=pool_ceil)
        self.fc = nn.Linear(64, 6)
        self.flatten_nchw, self.softmax = flatten_nchw, softmax

    def forward(self, x):
        x = self.pool1(F.relu(self.conv1(F.pad(x, self.conv1_pad))))
        x = self.pool2(F.relu(self.conv2(F.pad(x, (0, 1, 0, 1)))))
        x = x.flatten(1) if self.flatten_nchw else x.permute(0, 2, 3, 1).flatten(1)
        x = self.fc(x)
        return F.softmax(x, dim=1) if self.softmax else x


# ---------------------------------------------------------------- correct ports, other styles
def correct():
    return Port()


class FunctionalNHWC(nn.Module):
    """Bare OIHW Parameters, NHWC input, functional calls, pool before ReLU (the same numbers),
    reshape instead of flatten, ``x @ W.t() + b`` instead of a Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.w1 = nn.Parameter(torch.zeros(8, 3, 4, 4))
        self.w2 = nn.Parameter(torch.zeros(16, 8, 2, 2))
        self.w_fc = nn.Parameter(torch.zeros(6, 64))
        self.b_fc = nn.Parameter(torch.zeros(6))

    def forward(self, x):
        x = x.permute(0, 3, 1, 2)  # NHWC in
        x = F.conv2d(F.pad(x, (1, 2, 1, 2)), self.w1)
        x = torch.relu(F.max_pool2d(x, 8))
        x = F.conv2d(F.pad(x, (0, 1, 0, 1)), self.w2)
        x = torch.relu(F.max_pool2d(x, 4))
        x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)
        return x @ self.w_fc.t() + self.b_fc


def functional_nhwc():
    return FunctionalNHWC()


def same_padding():
    return nn.Sequential(
        nn.Conv2d(3, 8, 4, padding="same", bias=False), nn.ReLU(inplace=True), nn.MaxPool2d(8),
        nn.Conv2d(8, 16, 2, padding="same", bias=False), nn.ReLU(inplace=True), nn.MaxPool2d(4),
        _NHWCFlatten(), nn.Linear(64, 6),
    )


class _NHWCFlatten(nn.Module):
    def forward(self, x):
        return x.permute(0, 2, 3, 1).flatten(1)


# ---------------------------------------------------------------- one trap each
def padding_before():
    """same-padding-side: the 4x4 kernel's extra row/column before (top/left)."""
    return Port(conv1_pad=(2, 1, 2, 1))


def conv_bias():
    """conv-bias: nn.Conv2d's default bias=True."""
    return Port(conv_bias=True)


def pool_ceil():
    """pool-padding: torch's ceil_mode=True instead of TF's SAME (visible at 60x60)."""
    return Port(pool_ceil=True)


def flatten_nchw():
    """flatten-order: x.flatten(1) on NCHW features."""
    return Port(flatten_nchw=True)


def softmax_output():
    """softmax-output: the model returns probabilities."""
    return Port(softmax=True)


def _course_weights_loaded(module: Port, *, kernel_hw_swapped=False, dense_rows_nchw=False) -> Port:
    """The course-exact weights converted into ``module`` with a hand-written (buggy) script."""
    from reference.init import course_init

    params = course_init()
    w1 = torch.tensor(params["W1"]).permute(3, 2, 1, 0) if kernel_hw_swapped else \
        torch.tensor(params["W1"]).permute(3, 2, 0, 1)  # HWIO -> OIHW
    w3 = params["W3"]
    if dense_rows_nchw:  # rows reordered for a model that flattens NCHW (this one flattens NHWC)
        w3 = w3.reshape(2, 2, 16, 6).transpose(2, 0, 1, 3).reshape(64, 6)
    with torch.no_grad():
        module.conv1.weight.copy_(w1)
        module.conv2.weight.copy_(torch.tensor(params["W2"]).permute(3, 2, 0, 1))
        module.fc.weight.copy_(torch.tensor(w3).t())
        module.fc.bias.copy_(torch.tensor(params["b3"]))
    return module


def converted_correctly():
    return _course_weights_loaded(Port())


def converted_kernel_hw_swapped():
    """kernel-layout: OIHW from HWIO written permute(3, 2, 1, 0) (H and W swapped)."""
    return _course_weights_loaded(Port(), kernel_hw_swapped=True)


def converted_dense_rows_nchw():
    """dense-layout: W3's rows reordered as if the features were NCHW-flattened."""
    return _course_weights_loaded(Port(), dense_rows_nchw=True)


# ---------------------------------------------------------------- losses and optimizers
def sum_loss(output, labels):
    """loss-reduction: summed over the batch."""
    return F.cross_entropy(output, labels.argmax(1), reduction="sum")


def tf1_adam(model):
    from torch_model.optim import TF1Adam

    return TF1Adam(model.parameters(), lr=0.009)


def tf1_adam_lr_001(model):
    """optimizer-hyperparameters: a framework-default learning rate."""
    from torch_model.optim import TF1Adam

    return TF1Adam(model.parameters(), lr=0.001)


def _tf32(t):
    """Round float32 to TF32's 10-bit mantissa (keep the top 19 bits), as a GPU's tensor cores do."""
    if t.dtype != torch.float32:
        return t
    rounded = (t.detach().contiguous().view(torch.int32) & ~0x1FFF).view(torch.float32)
    return t + (rounded - t).detach()  # the rounded value, the gradient of the identity


class TF32Emulated(Port):
    """The correct port with its conv and matmul operands rounded as TF32 would on a GPU while
    ``torch.backends.cudnn.allow_tf32`` is on (its default): the numbers of a correct port run on
    CUDA with TF32, reproduced on the CPU, switched off by the same flag."""

    def forward(self, x):
        if not torch.backends.cudnn.allow_tf32:
            return super().forward(x)
        x = F.pad(_tf32(x), self.conv1_pad)
        x = self.pool1(F.relu(F.conv2d(x, _tf32(self.conv1.weight))))
        x = F.pad(_tf32(x), (0, 1, 0, 1))
        x = self.pool2(F.relu(F.conv2d(x, _tf32(self.conv2.weight))))
        x = _tf32(x.permute(0, 2, 3, 1).flatten(1))
        return F.linear(x, _tf32(self.fc.weight), self.fc.bias)


def tf32_emulated():
    return TF32Emulated()


class _WithAuxiliary(Port):
    """A correct port carrying a second 3->8 4x4 conv it never uses (a left-over experiment)."""

    def __init__(self) -> None:
        super().__init__()
        self.aux = nn.Conv2d(3, 8, 4, bias=False)


def with_auxiliary_conv():
    return _WithAuxiliary()


def no_dense_bias():
    """The dense layer without its bias: the course's b3 is missing."""
    port = Port()
    port.fc = nn.Linear(64, 6, bias=False)
    return port


class _LastMaximumPool(Port):
    """A correct port whose max-pools route a tied window's gradient to its *last* maximum (pooling
    the flipped tensor): the same values, another tie-break."""

    def forward(self, x):
        def pool(t, k):
            return F.max_pool2d(t.flip(2, 3), k).flip(2, 3)

        x = pool(F.relu(self.conv1(F.pad(x, self.conv1_pad))), 8)
        x = pool(F.relu(self.conv2(F.pad(x, (0, 1, 0, 1)))), 4)
        return self.fc(x.permute(0, 2, 3, 1).flatten(1))


def last_maximum_pool():
    return _LastMaximumPool()
