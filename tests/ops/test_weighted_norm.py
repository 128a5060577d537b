"""``weighted_batch_norm``: ``bn(z) * w`` without keeping the norm's output, against the
plain expression it replaces."""

import copy

import pytest
import torch
import torch.nn as nn
from autograd_helpers import saved_bytes
from torch.overrides import TorchFunctionMode

from supernet.ops.prefix import split_norm_tail
from supernet.ops.weighted_norm import weighted_batch_norm


def pair(affine=True, momentum=0.1, track=True, dim=2):
    torch.manual_seed(0)
    cls = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}[dim]
    bn = cls(3, affine=affine, momentum=momentum, track_running_stats=track).double()
    if affine:
        with torch.no_grad():
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)
    shape = {1: (6, 3, 5), 2: (4, 3, 5, 5), 3: (2, 3, 3, 4, 4)}[dim]
    return bn, copy.deepcopy(bn), shape


@pytest.mark.parametrize("affine,momentum,track,dim", [
    (True, 0.1, True, 2), (False, 0.1, True, 2), (True, None, True, 2),
    (False, 0.1, False, 2), (True, 0.1, True, 1), (False, 0.3, True, 3)])
def test_value_bitwise_gradients_and_statistics_as_bn_times_w(affine, momentum, track, dim):
    fused_bn, plain_bn, shape = pair(affine, momentum, track, dim)
    z0 = torch.randn(*shape, dtype=torch.float64)
    g = torch.randn(*shape, dtype=torch.float64)
    results = []
    for bn, fused in ((fused_bn, True), (plain_bn, False)):
        z = z0.clone().requires_grad_()
        w = torch.tensor(0.37, dtype=torch.float64, requires_grad=True)
        for _ in range(2):  # twice: running statistics and the momentum=None average move
            y = weighted_batch_norm(z, bn, w) if fused else bn(z) * w
        (y * g).sum().backward()
        params = [p.grad for p in bn.parameters()]
        results.append((y.detach(), z.grad, w.grad, params, [b.clone() for b in bn.buffers()]))
    (y1, gz1, gw1, gp1, b1), (y0, gz0, gw0, gp0, b0) = results
    assert torch.equal(y1, y0)
    torch.testing.assert_close(gz1, gz0, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(gw1, gw0, rtol=1e-10, atol=1e-12)
    for a, b in zip(gp1, gp0):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    assert len(b1) == len(b0) == (3 if track else 0)
    for a, b in zip(b1, b0):  # running mean, var and num_batches_tracked: bitwise
        assert torch.equal(a, b)
    if track:
        assert int(fused_bn.num_batches_tracked) == 2


def test_the_norms_output_is_not_kept_for_backward():
    fused_bn, plain_bn, shape = pair()
    z = torch.randn(64, 3, 16, 16, dtype=torch.float64, requires_grad=True)
    w = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    _, fused = saved_bytes(lambda: weighted_batch_norm(z, fused_bn, w))
    _, plain = saved_bytes(lambda: plain_bn(z) * w)
    assert plain - fused >= z.numel() * z.element_size()  # one tensor of z's size less
    assert fused < 1.1 * z.numel() * z.element_size()  # z itself and small tensors only


def test_double_backward_matches_the_plain_expression():
    fused_bn, plain_bn, shape = pair()
    z0 = torch.randn(*shape, dtype=torch.float64)
    outs = []
    for bn, fused in ((fused_bn, True), (plain_bn, False)):
        z = z0.clone().requires_grad_()
        w = torch.tensor(0.8, dtype=torch.float64, requires_grad=True)
        y = weighted_batch_norm(z, bn, w) if fused else bn(z) * w
        loss = (y.sin()).sum()
        gz, gw = torch.autograd.grad(loss, (z, w), create_graph=True)
        hz, hw = torch.autograd.grad((gz ** 2).sum() + gw, (z, w))
        outs.append((gz.detach(), gw.detach(), hz, hw))
    for a, b in zip(*outs):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)


def test_gradcheck_of_the_fused_function():
    bn, _, shape = pair(momentum=0.0)  # momentum 0: the running statistics stay fixed
    z = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    w = torch.tensor(-0.6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda z, w: weighted_batch_norm(z, bn, w), (z, w))
    assert torch.autograd.gradgradcheck(lambda z, w: weighted_batch_norm(z, bn, w), (z, w))


class Recording(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.calls = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.calls.append(func)
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("case", ["eval", "no_grad", "w_constant", "w_vector", "hooked",
                                  "function_mode"])
def test_falls_back_to_bn_times_w_where_fusing_would_change_something(case):
    bn, ref, shape = pair()
    z = torch.randn(*shape, dtype=torch.float64)
    w = torch.tensor(0.4, dtype=torch.float64, requires_grad=case != "w_constant")
    if case == "w_vector":
        w = torch.full((1, 3, 1, 1), 0.4, dtype=torch.float64, requires_grad=True)
    if case == "eval":
        bn.eval(), ref.eval()
    seen = []
    if case == "hooked":
        bn.register_forward_hook(lambda m, i, o: seen.append(o))
    mode = Recording()
    if case == "function_mode":
        with mode:
            y = weighted_batch_norm(z, bn, w)
        assert nn.functional.batch_norm in mode.calls  # the module's own forward ran
    elif case == "no_grad":
        with torch.no_grad():
            y = weighted_batch_norm(z, bn, w)
    else:
        y = weighted_batch_norm(z, bn, w)
    assert len(seen) == (case == "hooked")
    torch.testing.assert_close(y, ref(z) * w, rtol=0, atol=0)
    for a, b in zip(bn.buffers(), ref.buffers()):
        assert torch.equal(a, b)
    if y.requires_grad:
        assert type(y.grad_fn).__name__ == "MulBackward0"  # bn(z) * w as written


def test_split_norm_tail_of_ops():
    from supernet.ops.cnn import ReLUConvBN, SepConv

    op = ReLUConvBN(4, 4, 3, 1, 1)
    body, bn = split_norm_tail(op)
    x = torch.randn(2, 4, 6, 6)
    assert isinstance(bn, nn.BatchNorm2d)
    torch.testing.assert_close(bn(body(x)), copy.deepcopy(op)(x), rtol=0, atol=0)
    sep = SepConv(4, 4, 3, 1, 1)
    body, bn = split_norm_tail(sep)
    assert bn is list(sep.modules())[-1]
    torch.testing.assert_close(bn(body(x)), copy.deepcopy(sep)(x), rtol=0, atol=0)
    norm = nn.BatchNorm2d(3)
    assert split_norm_tail(norm) == (None, norm)
    assert split_norm_tail(nn.Sequential(nn.ReLU(), nn.Conv2d(3, 3, 1))) is None
    assert split_norm_tail(nn.Conv2d(3, 3, 1)) is None

    class Custom(nn.Sequential):  # its own forward: not split
        def forward(self, x):
            return super().forward(x) + 1

    assert split_norm_tail(Custom(nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3))) is None
