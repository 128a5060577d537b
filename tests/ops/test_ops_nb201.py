"""NAS-Bench-201 ops: the details that set them apart from the DARTS ops of the same name."""

import pytest
import torch
import torch.nn as nn

from supernet.errors import GraphError
from supernet.ops import build_op, resolve_op
from supernet.ops.nb201 import NB201FactorizedReduce, NB201Pooling


@pytest.mark.parametrize("name, k", [("nor_conv_1x1", 1), ("nor_conv_3x3", 3)])
def test_relu_conv_bn_bias_iff_not_affine(name, k):
    search = build_op(name, 4, 6, {"affine": False, "track_running_stats": False})
    relu, conv, bn = search.op
    assert isinstance(relu, nn.ReLU) and conv.kernel_size == (k, k)
    assert conv.padding == (k // 2, k // 2)
    assert conv.bias is not None and not bn.affine and bn.running_mean is None
    final = build_op(name, 4, 6, {})
    assert final.op[1].bias is None and final.op[2].affine and final.op[2].track_running_stats
    assert final(torch.randn(2, 4, 7, 7)).shape == (2, 6, 7, 7)


def test_skip_connect_variants():
    assert isinstance(build_op("nb201_skip_connect", 4, 4, {}), nn.Identity)
    fr = build_op("nb201_skip_connect", 4, 5, {"stride": 2, "affine": False})
    assert isinstance(fr, NB201FactorizedReduce)
    assert [c.out_channels for c in fr.convs] == [2, 3]  # odd widths split C//2, C - C//2
    assert all(c.bias is not None for c in fr.convs) and isinstance(fr.pad, nn.ConstantPad2d)
    for size in (6, 7):
        x = torch.randn(2, 4, size, size)
        fr.train()
        y = fr(x)
        assert y.shape == (2, 5, (size + 1) // 2, (size + 1) // 2)
        # The second conv sees the input shifted by one pixel, zero-padded at the end.
        shifted = nn.functional.pad(x.relu(), (0, 1, 0, 1))[:, :, 1:, 1:]
        raw = torch.cat([fr.convs[0](x.relu()), fr.convs[1](shifted)], 1)
        torch.testing.assert_close(y, fr.bn(raw))
    one = build_op("nb201_skip_connect", 4, 6, {"stride": 1})
    assert isinstance(one, NB201FactorizedReduce) and not hasattr(one, "convs")
    x = -torch.rand(2, 4, 5, 5)  # stride 1 has no ReLU: a negative input still passes
    one.eval()
    torch.testing.assert_close(one(x), one.bn(one.conv(x)))
    assert one(x).abs().sum() > 0


def test_pooling_projects_only_when_the_width_changes():
    same = build_op("nb201_avg_pool_3x3", 4, 4, {})
    assert isinstance(same, NB201Pooling) and same.preprocess is None
    assert same.op.count_include_pad is False and n_params(same) == 0
    proj = build_op("nb201_avg_pool_3x3", 4, 8, {"stride": 2})
    assert proj.preprocess is not None and proj(torch.randn(1, 4, 8, 8)).shape == (1, 8, 4, 4)


def test_downsample_variants():
    down = build_op("nb201_downsample", 4, 8, {"stride": 2})
    assert isinstance(down[0], nn.AvgPool2d) and down[1].bias is None
    assert down(torch.randn(1, 4, 8, 8)).shape == (1, 8, 4, 4)
    assert build_op("nb201_downsample", 4, 8, {}).op[1].kernel_size == (1, 1)
    assert isinstance(build_op("nb201_downsample", 4, 4, {}), nn.Identity)
    with pytest.raises(GraphError, match=r"cannot build op 'nb201_downsample'.*stride 1 or 2"):
        build_op("nb201_downsample", 4, 8, {"stride": 3})


@pytest.mark.parametrize("name, C_out, args", [
    ("nor_conv_3x3", 4, {}), ("nor_conv_1x1", 4, {"affine": False}),
    ("nb201_skip_connect", 6, {"stride": 2}), ("nb201_skip_connect", 6, {"affine": False}),
    ("nb201_downsample", 6, {"stride": 2}), ("nb201_downsample", 6, {}),
])
def test_zero_output_hooks(name, C_out, args):
    op = build_op(name, 4, C_out, args)
    resolve_op(name).zero_output(op)
    x = torch.randn(2, 4, 6, 6)
    y = op(x)
    assert y.abs().max() == 0
    (y * torch.randn_like(y)).sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in op.parameters())


def test_identity_skip_cannot_start_at_zero():
    with pytest.raises(ValueError, match="identity has no parameters"):
        resolve_op("nb201_skip_connect").zero_output(nn.Identity())


def n_params(m):
    return sum(p.numel() for p in m.parameters())
