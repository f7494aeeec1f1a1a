"""TF-semantics conv/pool ops against direct NumPy computations; layout permutes; TF32 switch."""

from __future__ import annotations

import itertools
import zlib

import numpy as np
import pytest
import torch

from signs.tolerances import FLOAT32_PARITY, FLOAT64_PARITY, relative_error
from torch_model import ops

KERNELS = [(1, 1), (2, 2), (3, 3), (4, 4), (2, 3), (5, 2)]
STRIDES = [(1, 1), (2, 2), (3, 3), (1, 2), (3, 1)]
SIZES = [(8, 8), (7, 9), (5, 11)]


def _seed(*case) -> int:
    """A stable per-case seed (hash() of a str differs between processes)."""
    return zlib.crc32(repr(case).encode())


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a))


@pytest.mark.parametrize("kernel, stride, size", list(itertools.product(KERNELS, STRIDES, SIZES)))
def test_conv_same_matches_numpy(npref, kernel, stride, size):
    rng = np.random.default_rng(_seed(kernel, stride, size))
    x = rng.standard_normal((2, *size, 3))
    w = rng.standard_normal((*kernel, 3, 4))
    pads = (npref.same_pads(size[0], kernel[0], stride[0]), npref.same_pads(size[1], kernel[1], stride[1]))
    want = npref.conv(x, w, stride, pads)
    got = ops.conv2d_nhwc(_t(x), _t(w), stride, "same").numpy()
    assert got.shape == (2, -(-size[0] // stride[0]), -(-size[1] // stride[1]), 4)
    assert relative_error(got, want) <= FLOAT64_PARITY


@pytest.mark.parametrize("padding, pads", [
    ("valid", ((0, 0), (0, 0))),
    ("VALID", ((0, 0), (0, 0))),
    (2, ((2, 2), (2, 2))),
    (((2, 0), (1, 3)), ((2, 0), (1, 3))),
    (((0, 1), (3, 0)), ((0, 1), (3, 0))),
])
@pytest.mark.parametrize("stride", [(1, 1), (2, 3)])
def test_conv_explicit_padding_matches_numpy(npref, padding, pads, stride):
    rng = np.random.default_rng(7)
    x, w = rng.standard_normal((2, 9, 8, 2)), rng.standard_normal((3, 2, 2, 5))
    got = ops.conv2d_nhwc(_t(x), _t(w), stride, padding).numpy()
    assert relative_error(got, npref.conv(x, w, stride, pads)) <= FLOAT64_PARITY


@pytest.mark.parametrize("stride", [1, 2])
def test_conv_float32_memory_formats_agree(npref, stride):
    """channels_last (an NHWC tensor viewed as NCHW) and contiguous NCHW give the same result."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 10, 13, 3)).astype(np.float32)
    w = rng.standard_normal((4, 4, 3, 8)).astype(np.float32)
    x_nchw = ops.nhwc_to_nchw(_t(x))
    assert x_nchw.is_contiguous(memory_format=torch.channels_last)
    a = ops.conv2d(x_nchw, ops.hwio_to_oihw(_t(w)), stride)
    b = ops.conv2d(x_nchw.contiguous(), ops.hwio_to_oihw(_t(w)), stride)
    assert relative_error(a.numpy(), b.numpy()) <= FLOAT32_PARITY["Z1"]
    pads = (npref.same_pads(10, 4, stride), npref.same_pads(13, 4, stride))
    want = npref.conv(x.astype(np.float64), w.astype(np.float64), (stride, stride), pads)
    assert relative_error(ops.nchw_to_nhwc(a).numpy(), want) <= FLOAT32_PARITY["Z1"]


@pytest.mark.parametrize("kernel, stride", [((4, 4), 1), ((2, 3), 1), ((4, 2), 2), ((3, 3), 2)])
def test_conv_gradients_gradcheck(kernel, stride):
    """Autograd through every padding path (symmetric, crop at stride 1, F.pad at stride > 1)."""
    gen = torch.Generator().manual_seed(11)
    x = torch.randn(2, 2, 7, 6, dtype=torch.float64, generator=gen, requires_grad=True)
    w = torch.randn(3, 2, *kernel, dtype=torch.float64, generator=gen, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: ops.conv2d(a, b, stride, "same"), (x, w), fast_mode=True)


@pytest.mark.parametrize("kernel, stride", [((4, 4), 1), ((3, 3), 2), ((2, 3), 3)])
def test_conv_nhwc_gradients_with_hwio_leaf(kernel, stride):
    """The canonical-layout wrapper differentiates through its permuted views (float64)."""
    gen = torch.Generator().manual_seed(12)
    x = torch.randn(2, 7, 6, 2, dtype=torch.float64, generator=gen, requires_grad=True)
    w = torch.randn(*kernel, 2, 3, dtype=torch.float64, generator=gen, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: ops.conv2d_nhwc(a, b, stride, "same"), (x, w), fast_mode=True)


POOL_CASES = list(itertools.product([(2, 2), (3, 3), (4, 4), (8, 8), (2, 3)], [(1, 1), (2, 2), (3, 3), (4, 4)], SIZES))


@pytest.mark.parametrize("window, stride, size", POOL_CASES)
def test_max_pool_same_never_picks_padding(npref, window, stride, size):
    """All inputs negative: a zero pad would win, TF's (and ours) must not."""
    rng = np.random.default_rng(_seed(window, stride, size))
    x = -rng.random((2, *size, 3)) - 0.5
    pads = (npref.same_pads(size[0], window[0], stride[0]), npref.same_pads(size[1], window[1], stride[1]))
    got = ops.max_pool2d_nhwc(_t(x), window, stride, "same").numpy()
    want = npref.pool(x, window, stride, pads, "max")
    assert got.shape == want.shape == (2, -(-size[0] // stride[0]), -(-size[1] // stride[1]), 3)
    assert np.all(got < 0)
    np.testing.assert_array_equal(got, want)  # a max is exact


@pytest.mark.parametrize("window, stride, size", POOL_CASES)
def test_avg_pool_same_divides_by_real_cells(npref, window, stride, size):
    rng = np.random.default_rng(_seed(window, stride, size, "avg"))
    x = rng.standard_normal((2, *size, 3)) + 3.0  # offset: a count including padding would show
    pads = (npref.same_pads(size[0], window[0], stride[0]), npref.same_pads(size[1], window[1], stride[1]))
    got = ops.avg_pool2d_nhwc(_t(x), window, stride, "same").numpy()
    assert relative_error(got, npref.pool(x, window, stride, pads, "avg")) <= FLOAT64_PARITY


@pytest.mark.parametrize("padding, pads", [
    (((2, 0), (0, 1)), ((2, 0), (0, 1))),  # before > after: PyTorch's symmetric pool cannot do it
    (((0, 2), (1, 1)), ((0, 2), (1, 1))),
    (1, ((1, 1), (1, 1))),
    ("valid", ((0, 0), (0, 0))),
])
@pytest.mark.parametrize("mode", ["max", "avg"])
def test_pool_explicit_padding_matches_numpy(npref, padding, pads, mode):
    rng = np.random.default_rng(5)
    x = -rng.random((2, 7, 8, 2)) - 0.5
    op = ops.max_pool2d_nhwc if mode == "max" else ops.avg_pool2d_nhwc
    got = op(_t(x), (3, 3), (2, 2), padding).numpy()
    assert relative_error(got, npref.pool(x, (3, 3), (2, 2), pads, mode)) <= FLOAT64_PARITY


def test_max_pool_gradient_goes_to_real_max():
    """The gradient of an all-negative SAME pool lands on the real maxima, never on padding."""
    x = -torch.rand(1, 1, 5, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(2)) - 0.5
    x.requires_grad_(True)
    ops.max_pool2d(x, 4, 4, "same").sum().backward()
    assert x.grad.sum().item() == 4.0  # 2x2 windows, one unit of gradient each
    assert torch.autograd.gradcheck(lambda a: ops.max_pool2d(a, (3, 2), (2, 3), "same"), (x.detach().requires_grad_(),), fast_mode=True)


@pytest.mark.parametrize("bad", ["full", -1, ((1, 2),), ((1, -1), (0, 0)), ((1.5, 0), (0, 0)), None])
def test_bad_padding_raises(bad):
    with pytest.raises(ValueError, match="padding"):
        ops.conv2d(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 2, 2), 1, bad)


def test_bad_shapes_and_strides_raise():
    with pytest.raises(ValueError, match="stride"):
        ops.conv2d(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 2, 2), 0)
    with pytest.raises(ValueError, match=r"w: expected OIHW \(n_C, 3"):
        ops.conv2d(torch.zeros(1, 3, 4, 4), torch.zeros(1, 2, 2, 2))
    with pytest.raises(ValueError, match="x: expected 4 dims"):
        ops.max_pool2d(torch.zeros(4, 4), 2)
    with pytest.raises(ValueError, match="less than the window"):
        ops.max_pool2d(torch.zeros(1, 1, 4, 4), 2, 2, 2)


def test_layout_permutes_move_each_element_where_stated():
    w_hwio = torch.randn(4, 3, 2, 5, generator=torch.Generator().manual_seed(0))
    w_oihw = ops.hwio_to_oihw(w_hwio)
    assert w_oihw.shape == (5, 2, 4, 3)
    assert w_oihw[4, 1, 3, 2] == w_hwio[3, 2, 1, 4]
    assert torch.equal(ops.oihw_to_hwio(w_oihw), w_hwio)
    x = torch.arange(2 * 3 * 4 * 5.0).reshape(2, 3, 4, 5)  # NHWC
    assert ops.nhwc_to_nchw(x)[1, 4, 2, 3] == x[1, 2, 3, 4]
    assert torch.equal(ops.nchw_to_nhwc(ops.nhwc_to_nchw(x)), x)
    dense = torch.randn(7, 3, generator=torch.Generator().manual_seed(1))  # (n_in, n_out)
    linear = ops.dense_kernel_to_torch(dense)
    assert linear.shape == (3, 7)
    for i, o in itertools.product(range(7), range(3)):  # every element: a reshape lands elsewhere
        assert linear[o, i] == dense[i, o], (i, o)  # nn.Linear (n_out, n_in)
    assert torch.equal(ops.dense_kernel_from_torch(ops.dense_kernel_to_torch(dense)), dense)


def test_flatten_nhwc_order():
    """Element (h, w, c) of P2 lands at column (h * W + w) * C + c."""
    x = torch.randn(2, 5, 3, 4, generator=torch.Generator().manual_seed(4))  # NCHW, C=5 H=3 W=4
    flat = ops.FlattenNHWC()(x)
    for h, w, c in [(0, 0, 1), (2, 3, 4), (1, 2, 0)]:
        assert torch.equal(flat[:, (h * 4 + w) * 5 + c], x[:, c, h, w])


def test_no_tf32_sets_and_restores_flags():
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    before = (matmul.allow_tf32, cudnn.allow_tf32)
    with pytest.raises(RuntimeError, match="inside"):
        with ops.no_tf32():
            assert (matmul.allow_tf32, cudnn.allow_tf32) == (False, False)
            raise RuntimeError("inside")
    assert (matmul.allow_tf32, cudnn.allow_tf32) == before
