"""Cell ops of NAS-Bench-201 (Dong & Yang, ICLR 2020), as its reference code defines them.

The NAS-Bench-201 ops look like the DARTS ops of the same names but differ in details that
change parameter counts and outputs, so they are registered under their own names:

==================== ======================= ==============================================
arch-string name     registry name           definition
==================== ======================= ==============================================
``none``             ``none``                zeros (the shared zero op; see below)
``skip_connect``     ``nb201_skip_connect``  identity; :class:`NB201FactorizedReduce`
                                             when the stride or the width changes
``nor_conv_1x1``     ``nor_conv_1x1``        ReLU - 1x1 conv - BN
``nor_conv_3x3``     ``nor_conv_3x3``        ReLU - 3x3 conv (padding 1) - BN
``avg_pool_3x3``     ``nb201_avg_pool_3x3``  [ReLU - 1x1 conv - BN if the width changes],
                                             3x3 average pooling, padding 1, padding
                                             excluded from the average
==================== ======================= ==============================================

Details that differ from :mod:`supernet.ops.cnn`: every convolution has a bias exactly when
its batch norm is not affine (``bias = not affine``: the search network, built with
``affine=False``, has conv biases; the evaluation network has none); batch norms take
``track_running_stats``; the factorized reduce splits odd widths as ``C//2, C - C//2``,
holds its two convs in ``convs``, pads with an ``nn.ConstantPad2d`` and, at stride 1, is a
1x1 conv - BN without ReLU; the pooling op projects with a ReLU - conv - BN first when the
width changes. The reference zero op returns zeros of the *unstrided* shape when the width
changes; every network NAS-Bench-201 builds applies it with equal widths, where it agrees
with the shared ``none`` op, which is used.

``nb201_downsample`` is the residual branch of the reference ``ResNetBasicblock`` (2x2
average pooling then a bias-free 1x1 conv at stride 2; ReLU - 1x1 conv - BN when only the
width changes; the identity otherwise).

Shapes:
    - input: ``(N, C_in, H, W)``
    - output: ``(N, C_out, ceil(H / stride), ceil(W / stride))``

Examples:
    >>> import torch
    >>> from supernet.ops import build_op
    >>> op = build_op("nor_conv_3x3", 4, 4, {"affine": False})
    >>> op.op[1].bias is not None  # no affine BN, so the conv has a bias
    True
    >>> build_op("nb201_skip_connect", 4, 8, {"stride": 2})(torch.randn(2, 4, 5, 5)).shape
    torch.Size([2, 8, 3, 3])
"""

from __future__ import annotations

import torch
import torch.nn as nn

from supernet.counting import Cost, module_cost, register_module_cost
from supernet.ops.basic import zero_last
from supernet.ops.cnn import factorized_reduce_form, relu_conv_bn_form
from supernet.ops.forms import ConvBlock, IdentityBlock, Pool, Stage, chain
from supernet.ops.prefix import SequentialOp
from supernet.ops.registry import register_op

__all__ = ["NB201ReLUConvBN", "NB201FactorizedReduce", "NB201Pooling"]


class NB201ReLUConvBN(SequentialOp):
    """ReLU, convolution (bias iff the BN is not affine), batch norm."""

    def __init__(self, C_in, C_out, kernel_size, stride, padding, affine=True,
                 track_running_stats=True):
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_out, kernel_size, stride=stride, padding=padding,
                      bias=not affine),
            nn.BatchNorm2d(C_out, affine=affine, track_running_stats=track_running_stats),
        )


class NB201FactorizedReduce(nn.Module):
    """NAS-Bench-201's factorized reduce.

    Stride 2: ReLU, then two 1x1 convs at stride 2, the second on the input shifted by one
    pixel (zero-padded at the end), concatenated, then BN. Stride 1: a 1x1 conv then BN.
    """

    def __init__(self, C_in, C_out, stride, affine=True, track_running_stats=True):
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"factorized reduce supports stride 1 or 2, got {stride}")
        self.stride = stride
        self.relu = nn.ReLU(inplace=False)
        if stride == 2:
            halves = [C_out // 2, C_out - C_out // 2]
            self.convs = nn.ModuleList(
                nn.Conv2d(C_in, c, 1, stride=2, padding=0, bias=not affine) for c in halves
            )
            self.pad = nn.ConstantPad2d((0, 1, 0, 1), 0)
        else:
            self.conv = nn.Conv2d(C_in, C_out, 1, stride=1, padding=0, bias=not affine)
        self.bn = nn.BatchNorm2d(C_out, affine=affine, track_running_stats=track_running_stats)

    def forward(self, x):
        if self.stride == 2:
            return self._reduce(self.relu(x))
        return self.bn(self.conv(x))

    def shared_prefix(self):
        if self.stride != 2 or type(self).forward is not NB201FactorizedReduce.forward:
            return None
        return self.relu, self._reduce

    def _reduce(self, x):
        shifted = self.pad(x)[:, :, 1:, 1:]
        return self.bn(torch.cat([self.convs[0](x), self.convs[1](shifted)], dim=1))


class NB201Pooling(nn.Module):
    """Optional ReLU - 1x1 conv - BN projection (when the width changes), then pooling."""

    def __init__(self, C_in, C_out, stride, mode="avg", affine=True, track_running_stats=True):
        super().__init__()
        self.preprocess = (
            None if C_in == C_out
            else NB201ReLUConvBN(C_in, C_out, 1, 1, 0, affine, track_running_stats)
        )
        if mode == "avg":
            self.op = nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)
        else:
            self.op = nn.MaxPool2d(3, stride=stride, padding=1)

    def forward(self, x):
        if self.preprocess is not None:
            x = self.preprocess(x)
        return self.op(x)


@register_module_cost(NB201ReLUConvBN)
def _relu_conv_bn_cost(m, shape):
    return module_cost(m.op, shape)


@register_module_cost(NB201FactorizedReduce)
def _factorized_cost(m, shape):
    if m.stride == 1:
        out, c = module_cost(m.conv, shape)
    else:
        # the second conv reads the input shifted by one and zero-padded back to its size
        out0, c0 = module_cost(m.convs[0], shape)
        out1, c1 = module_cost(m.convs[1], shape)
        out, c = (out0[0] + out1[0], *out0[1:]), c0 + c1
    _, cb = module_cost(m.bn, out)
    return out, c + cb


@register_module_cost(NB201Pooling)
def _pooling_cost(m, shape):
    c = Cost()
    if m.preprocess is not None:
        shape, c = module_cost(m.preprocess, shape)
    out, cp = module_cost(m.op, shape)
    return out, c + cp


def _zero_relu_conv_bn(m: NB201ReLUConvBN) -> None:
    # Without an affine BN the conv is zeroed: the output is exactly zero (BN of zeros) and
    # the conv gets gradients, but once it moves a training-mode BN rescales it to unit
    # variance, as for any non-affine op.
    conv, bn = m.op[1], m.op[2]
    zero_last(bn if bn.affine else conv)


def _zero_skip(m) -> None:
    if not isinstance(m, NB201FactorizedReduce):
        raise ValueError("the identity has no parameters to start from zero")
    if m.bn.affine:
        zero_last(m.bn)
    else:
        zero_last(*(m.convs if m.stride == 2 else [m.conv]))


def _zero_downsample(m) -> None:
    if isinstance(m, nn.Sequential):
        zero_last(m[1])
    elif isinstance(m, NB201ReLUConvBN):
        _zero_relu_conv_bn(m)
    else:
        raise ValueError("the identity has no parameters to start from zero")


# ---------------------------------------------------------------------- channel-level forms
def _op(i):
    return lambda m: m.op[i]


def _nor_conv_form(C_in, C_out, k, stride, affine, track, weights=_op(1), norm_of=_op(2)):
    if not track:
        return None  # unit-level batch norm keeps running statistics
    conv = ConvBlock.square(k, stride, k // 2, bias=not affine, weights=weights)
    return relu_conv_bn_form(C_in, C_out, conv, norm_of)


def _lower_skip(C_in, C_out, a):
    if a["stride"] == 1 and C_in == C_out:
        return IdentityBlock()
    if not a["track_running_stats"] or a["stride"] not in (1, 2):
        return None
    if a["stride"] == 1:  # a 1x1 conv and BN, no ReLU
        conv = ConvBlock.square(1, bias=not a["affine"], weights=lambda m: m.conv)
        return relu_conv_bn_form(C_in, C_out, conv, lambda m: m.bn, relu=False)
    return factorized_reduce_form(C_in, C_out, (C_out // 2, C_out - C_out // 2),
                                  lambda m: tuple(m.convs), lambda m: m.bn, 2,
                                  bias=not a["affine"])


def _lower_pool(C_in, C_out, a):
    pool = Pool.window("avg", 3, a["stride"], 1)
    if C_in == C_out:
        return pool
    proj = _nor_conv_form(C_in, C_out, 1, 1, a["affine"], a["track_running_stats"],
                          lambda m: m.preprocess.op[1], lambda m: m.preprocess.op[2])
    if proj is None:
        return None
    return chain(*[(l.block, st, {"weight": l.weight, "bias": l.bias})
                   for l, st in zip(proj.links, proj.stages)], (pool, Stage("pool", C_out)))


def _lower_downsample(C_in, C_out, a):
    if a["stride"] == 2:
        conv = ConvBlock.square(1, bias=False, weights=lambda m: m[1])
        return chain((conv, Stage("conv", C_out), {"pool": Pool.window("avg", 2, 2, 0)}))
    if a["stride"] != 1:
        return None
    if C_in != C_out:
        return _nor_conv_form(C_in, C_out, 1, 1, a["affine"], a["track_running_stats"])
    return IdentityBlock()


def _conv(k):
    @register_op(f"nor_conv_{k}x{k}", zero_output=_zero_relu_conv_bn,
                 lower=lambda C_in, C_out, a: _nor_conv_form(C_in, C_out, k, a["stride"],
                                                             a["affine"],
                                                             a["track_running_stats"]))
    def build(C_in, C_out, stride=1, affine=True, track_running_stats=True):
        return NB201ReLUConvBN(C_in, C_out, k, stride, k // 2, affine, track_running_stats)

    build.__doc__ = f"NAS-Bench-201 ReLU - {k}x{k} conv (bias iff not affine) - BN."
    return build


nor_conv_1x1, nor_conv_3x3 = _conv(1), _conv(3)


@register_op("nb201_skip_connect", identity=True, zero_output=_zero_skip, lower=_lower_skip)
def nb201_skip_connect(C_in, C_out, stride=1, affine=True, track_running_stats=True):
    """NAS-Bench-201 skip: identity, or its factorized reduce when stride or width change."""
    if stride == 1 and C_in == C_out:
        return nn.Identity()
    return NB201FactorizedReduce(C_in, C_out, stride, affine, track_running_stats)


@register_op("nb201_avg_pool_3x3", lower=_lower_pool)
def nb201_avg_pool_3x3(C_in, C_out, stride=1, affine=True, track_running_stats=True):
    """NAS-Bench-201 3x3 average pooling (projected first when the width changes)."""
    return NB201Pooling(C_in, C_out, stride, "avg", affine, track_running_stats)


@register_op("nb201_downsample", zero_output=_zero_downsample, lower=_lower_downsample)
def nb201_downsample(C_in, C_out, stride=1, affine=True, track_running_stats=True):
    """Residual branch of NAS-Bench-201's ResNet basic block (pool + 1x1 conv at stride 2)."""
    if stride == 2:
        return nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
            nn.Conv2d(C_in, C_out, kernel_size=1, stride=1, padding=0, bias=False),
        )
    if stride != 1:
        raise ValueError(f"the residual branch supports stride 1 or 2, got {stride}")
    if C_in != C_out:
        return NB201ReLUConvBN(C_in, C_out, 1, 1, 0, affine, track_running_stats)
    return nn.Identity()
