"""Mobile ops: the MBConv (inverted residual) candidates of MobileNetV2 and ProxylessNAS.

Definitions follow Cai et al., "ProxylessNAS: Direct Neural Architecture Search on Target
Task and Hardware" (ICLR 2019) and its public search code:

* ``mbconv_{k}x{k}_e{e}`` (k in 3, 5, 7; e in 1, 3, 6): 1x1 expansion conv to
  ``round(C_in * e)`` channels - BN - ReLU6 (absent when ``e == 1``), k x k depthwise conv
  (stride on it, "same" padding ``k // 2``) - BN - ReLU6, 1x1 projection conv - BN (no
  activation). Convolutions have no bias. The shortcut is not part of the op: a space adds
  it as an identity edge around the op.
* ``conv_bn_relu6``: conv (no bias, "same" padding) - BN - ReLU6, the first conv layer and
  the feature-mix layer.

Batch norms take ``bn_momentum`` and ``bn_eps`` (ProxylessNAS uses 0.1 and 1e-3).

Shapes:
    - input: ``(N, C_in, H, W)``
    - output: ``(N, C_out, ceil(H / stride), ceil(W / stride))``

Examples:
    >>> import torch
    >>> from supernet.ops import build_op, resolve_op
    >>> op = build_op("mbconv_5x5_e6", 8, 16, {"stride": 2})
    >>> op(torch.randn(2, 8, 9, 9)).shape
    torch.Size([2, 16, 5, 5])
    >>> resolve_op("mbconv_5x5_e6").zero_output(op)
    >>> float(op(torch.randn(2, 8, 9, 9)).detach().abs().max())
    0.0
"""

from __future__ import annotations

from collections import OrderedDict

import torch.nn as nn

from supernet.counting import Cost, module_cost, register_module_cost
from supernet.ops.basic import zero_last
from supernet.ops.forms import ConvBlock, Stage, chain
from supernet.ops.registry import register_op

__all__ = ["MBConv", "ConvBNReLU6", "MBCONV_KERNELS", "MBCONV_EXPANSIONS", "mbconv_name"]

MBCONV_KERNELS = (3, 5, 7)
MBCONV_EXPANSIONS = (1, 3, 6)


def mbconv_name(kernel: int, expansion: int) -> str:
    """Registry name of the MBConv op, e.g. ``mbconv_name(3, 6) == "mbconv_3x3_e6"``."""
    return f"mbconv_{kernel}x{kernel}_e{expansion}"


def _conv_bn(C_in, C_out, kernel, stride, groups, bn_momentum, bn_eps, act):
    layers = [
        ("conv", nn.Conv2d(C_in, C_out, kernel, stride, kernel // 2, groups=groups, bias=False)),
        ("bn", nn.BatchNorm2d(C_out, eps=bn_eps, momentum=bn_momentum)),
    ]
    if act:
        layers.append(("act", nn.ReLU6(inplace=False)))
    return nn.Sequential(OrderedDict(layers))


class MBConv(nn.Module):
    """Inverted residual without its shortcut: expand - depthwise - project.

    Attributes:
        inverted_bottleneck: 1x1 expansion conv - BN - ReLU6, or ``None`` when the
            expansion is 1.
        depth_conv: depthwise k x k conv (carries the stride) - BN - ReLU6.
        point_linear: 1x1 projection conv - BN.
    """

    def __init__(self, C_in, C_out, kernel_size=3, stride=1, expansion=6,
                 bn_momentum=0.1, bn_eps=1e-3):
        super().__init__()
        self.kernel_size, self.stride, self.expansion = kernel_size, stride, expansion
        mid = round(C_in * expansion)
        self.inverted_bottleneck = (
            None if expansion == 1
            else _conv_bn(C_in, mid, 1, 1, 1, bn_momentum, bn_eps, act=True)
        )
        self.depth_conv = _conv_bn(mid, mid, kernel_size, stride, mid, bn_momentum, bn_eps,
                                   act=True)
        self.point_linear = _conv_bn(mid, C_out, 1, 1, 1, bn_momentum, bn_eps, act=False)

    def forward(self, x):
        if self.inverted_bottleneck is not None:
            x = self.inverted_bottleneck(x)
        return self.point_linear(self.depth_conv(x))

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, expansion={self.expansion}"


class ConvBNReLU6(nn.Module):
    """Convolution (no bias, "same" padding), batch norm, ReLU6."""

    def __init__(self, C_in, C_out, kernel_size=3, stride=1, bn_momentum=0.1, bn_eps=1e-3):
        super().__init__()
        self.conv = nn.Conv2d(C_in, C_out, kernel_size, stride, kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm2d(C_out, eps=bn_eps, momentum=bn_momentum)
        self.act = nn.ReLU6(inplace=False)

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


@register_module_cost(MBConv)
def _mbconv_cost(m, shape):
    total = Cost()
    parts = (m.inverted_bottleneck, m.depth_conv, m.point_linear)
    for part in (p for p in parts if p is not None):
        shape, c = module_cost(part, shape)
        total = total + c
    return shape, total


@register_module_cost(ConvBNReLU6)
def _conv_bn_relu6_cost(m, shape):
    shape, c1 = module_cost(m.conv, shape)
    _, c2 = module_cost(m.bn, shape)
    return shape, c1 + c2


def _zero_mbconv(m: MBConv) -> None:
    # The last BN's affine: the op then outputs exactly zero and its gamma still gets a
    # gradient (the normalized projection), so it can grow out of zero.
    zero_last(m.point_linear.bn)


# ---------------------------------------------------------------------- channel-level forms
def _conv_bn_step(part, k, stride, groups, width, act, a, name):
    """``(conv block, BN stage)`` of a conv - BN [- ReLU6] part ``part(module)``."""
    conv = ConvBlock.square(k, stride, k // 2, groups=groups, bias=False,
                            weights=lambda m: part(m).conv)
    return conv, Stage(name, width, act, "batchnorm", norm_of=lambda m: part(m).bn,
                       eps=a["bn_eps"], momentum=a["bn_momentum"])


def _lower_mbconv(kernel, expansion):
    """Expand 1x1 - BN - ReLU6 (absent at expansion 1), depthwise - BN - ReLU6, project 1x1 -
    BN: three stages (the shortcut is an identity edge of the space, not the op's)."""

    def lower(C_in, C_out, a):
        mid = round(C_in * expansion)
        steps = [] if expansion == 1 else [
            _conv_bn_step(lambda m: m.inverted_bottleneck, 1, 1, 1, mid, "relu6", a, "expand")]
        steps.append(_conv_bn_step(lambda m: m.depth_conv, kernel, a["stride"], mid, mid,
                                   "relu6", a, "dw"))
        steps.append(_conv_bn_step(lambda m: m.point_linear, 1, 1, 1, C_out, "identity", a,
                                   "project"))
        return chain(*steps)

    return lower


def _mbconv(kernel: int, expansion: int):
    @register_op(mbconv_name(kernel, expansion), zero_output=_zero_mbconv,
                 lower=_lower_mbconv(kernel, expansion))
    def build(C_in, C_out, stride=1, bn_momentum=0.1, bn_eps=1e-3):
        return MBConv(C_in, C_out, kernel, stride, expansion, bn_momentum, bn_eps)

    build.__doc__ = (
        f"MBConv: {'' if expansion == 1 else f'1x1 expand x{expansion} - BN - ReLU6, '}"
        f"{kernel}x{kernel} depthwise - BN - ReLU6, 1x1 project - BN."
    )
    return build


for _k in MBCONV_KERNELS:
    for _e in MBCONV_EXPANSIONS:
        _mbconv(_k, _e)


# No zero_output hook: ReLU6 has no gradient at 0, so a zeroed layer could not train.
@register_op("conv_bn_relu6", lower=lambda C_in, C_out, a: chain(_conv_bn_step(
    lambda m: m, a["kernel_size"], a["stride"], 1, C_out, "relu6", a, "bn")))
def conv_bn_relu6(C_in, C_out, kernel_size=3, stride=1, bn_momentum=0.1, bn_eps=1e-3):
    """Conv (no bias, same padding) - BN - ReLU6 (first conv and feature-mix layer)."""
    return ConvBNReLU6(C_in, C_out, kernel_size, stride, bn_momentum, bn_eps)
