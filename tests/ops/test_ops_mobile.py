"""MBConv ops: structure, expansion, zero-output hook, kernel growth by copy."""

import pytest
import torch
import torch.nn as nn

from supernet.edits import morph_into
from supernet.ops import build_op, list_ops, resolve_op
from supernet.ops.mobile import MBCONV_EXPANSIONS, MBCONV_KERNELS, MBConv, mbconv_name


def test_all_mbconv_ops_registered():
    names = [mbconv_name(k, e) for k in MBCONV_KERNELS for e in MBCONV_EXPANSIONS]
    assert len(names) == 9 and set(names) <= set(list_ops("mbconv_*"))


@pytest.mark.parametrize("k, e", [(3, 1), (5, 3), (7, 6)])
def test_structure(k, e):
    op = build_op(mbconv_name(k, e), 8, 12, {"stride": 2, "bn_eps": 1e-5, "bn_momentum": 0.2})
    assert isinstance(op, MBConv)
    mid = 8 * e
    if e == 1:
        assert op.inverted_bottleneck is None
    else:
        conv, bn, act = op.inverted_bottleneck
        assert conv.out_channels == mid and conv.kernel_size == (1, 1) and conv.bias is None
        assert isinstance(act, nn.ReLU6)
    dw = op.depth_conv.conv
    assert dw.groups == mid and dw.kernel_size == (k, k) and dw.stride == (2, 2)
    assert dw.padding == (k // 2, k // 2) and isinstance(op.depth_conv.act, nn.ReLU6)
    assert not hasattr(op.point_linear, "act") and op.point_linear.conv.out_channels == 12
    assert op.point_linear.bn.eps == 1e-5 and op.point_linear.bn.momentum == 0.2
    assert op(torch.randn(2, 8, 9, 9)).shape == (2, 12, 5, 5)


def test_conv_bn_relu6():
    op = build_op("conv_bn_relu6", 3, 8, {"stride": 2})
    assert op.conv.bias is None and op.bn.eps == 1e-3 and isinstance(op.act, nn.ReLU6)
    y = op(torch.randn(1, 3, 16, 16))
    assert y.shape == (1, 8, 8, 8) and 0 <= y.min() and y.max() <= 6


def test_zero_output_hook_keeps_the_op_trainable():
    op = build_op("mbconv_3x3_e6", 8, 8, {})
    resolve_op("mbconv_3x3_e6").zero_output(op)
    y = op(torch.randn(2, 8, 6, 6))
    assert y.abs().max() == 0
    y.sum().backward()
    assert op.point_linear.bn.bias.grad.abs().sum() > 0


def test_kernel_growth_by_copy_preserves_the_function():
    # Split creation of a 5x5 candidate from a 3x3 one zero-pads the depthwise kernel.
    small, big = build_op("mbconv_3x3_e3", 4, 4, {}), build_op("mbconv_5x5_e3", 4, 4, {})
    morph_into(small, big, "test")
    small.eval(), big.eval()
    x = torch.randn(2, 4, 7, 7)
    torch.testing.assert_close(big(x), small(x))
