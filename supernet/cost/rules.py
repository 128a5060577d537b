"""Per-module cost rules of :mod:`supernet.cost.layer`: output shape, parameters and operations of a
module for a given per-sample input shape, computed from the module's hyperparameters
without running it.

A rule is ``rule(module, shape) -> (out_shape, Cost)`` with ``shape`` the per-sample input
shape ``(C, *spatial)`` (no batch dimension). Rules are looked up by the module's type, then
its base classes, so a subclass of ``nn.Conv2d`` is counted as a convolution. Register your
own with :func:`register_module_cost`.

Conventions (per sample):

* convolution: ``out_elements * C_in / groups * prod(kernel)`` MACs (bias adds not counted,
  as thop and fvcore do);
* linear: ``out_elements * in_features`` MACs;
* batch norm: ``out_elements`` (one multiply-add each, foldable into the previous conv);
* pooling: ``out_elements * prod(kernel)`` window reads, the full window even where padding
  cuts it; adaptive average pooling reads each input element of each window once.
"""

from __future__ import annotations

import math
from dataclasses import astuple, dataclass
from typing import Callable

import torch.nn as nn

from supernet.errors import SupernetError
from supernet.ops.basic import Classifier, GlobalAvgPool, Zero
from supernet.ops.cnn import (
    AuxiliaryHead,
    Conv7x1x1x7,
    DilConv,
    FactorizedReduce,
    ReLUConvBN,
    SepConv,
)
from supernet.ops.mobile import ConvBNReLU6, MBConv
from supernet.ops.nb201 import NB201FactorizedReduce, NB201Pooling, NB201ReLUConvBN

__all__ = ["Cost", "register_module_cost", "module_cost", "conv_out"]


@dataclass(frozen=True)
class Cost:
    """Parameters and operations of a module, op, edge or graph, per sample.

    Attributes:
        params: trainable parameters.
        macs: multiply-accumulates of convolutions and linear layers: the figure papers
            report as "FLOPs" or "multi-adds" (thop's convention).
        bn: normalization multiply-adds, one per output element.
        pool: pooling window reads.
        other: operations counted by user rules under no other field.
    """

    params: int = 0
    macs: int = 0
    bn: int = 0
    pool: int = 0
    other: int = 0

    @property
    def ops(self) -> int:
        """All operations: ``macs + bn + pool + other``."""
        return self.macs + self.bn + self.pool + self.other

    def __add__(self, o: "Cost") -> "Cost":
        return Cost(*(a + b for a, b in zip(astuple(self), astuple(o))))

    def __mul__(self, k: int) -> "Cost":
        return Cost(*(a * k for a in astuple(self)))

    __rmul__ = __mul__


_RULES: dict[type, Callable] = {}


def register_module_cost(*types: type):
    """Decorator registering ``rule(module, shape) -> (out_shape, Cost)`` for ``types``.

    Examples:
        >>> import torch.nn as nn
        >>> from supernet.cost.layer import Cost, register_module_cost, module_cost
        >>> class Scale(nn.Module):
        ...     def forward(self, x):
        ...         return 2 * x
        >>> @register_module_cost(Scale)
        ... def _scale(m, shape):
        ...     return shape, Cost(other=math.prod(shape))
        >>> module_cost(Scale(), (4, 8))[1].other
        32
    """

    def wrap(fn):
        for t in types:
            _RULES[t] = fn
        return fn

    return wrap


def _params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def module_cost(module: nn.Module, shape: tuple) -> tuple[tuple, "Cost"]:
    """Output shape and cost of ``module`` on a per-sample input of ``shape``."""
    for t in type(module).__mro__:
        rule = _RULES.get(t)
        if rule is not None:
            return rule(module, tuple(shape))
    raise SupernetError(
        f"no cost rule for module type {type(module).__name__}; register one with "
        "@supernet.cost.layer.register_module_cost(YourModule) (rule(module, shape) -> "
        "(out_shape, Cost)), or one for the op with @supernet.cost.layer.register_op_cost(name)"
    )


def _tuple(v, n):
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * n


def conv_out(size: int, kernel: int, stride: int, padding: int, dilation: int = 1,
             ceil_mode: bool = False) -> int:
    """Output length of a convolution or pooling window along one dimension."""
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


@register_module_cost(nn.Conv1d, nn.Conv2d, nn.Conv3d)
def _conv(m, shape):
    n = len(shape) - 1
    if isinstance(m.padding, str):
        raise SupernetError(f"{type(m).__name__}: padding={m.padding!r} is not counted; "
                            "give numeric padding")
    k, s, p, d = (_tuple(v, n) for v in (m.kernel_size, m.stride, m.padding, m.dilation))
    spatial = tuple(conv_out(shape[1 + i], k[i], s[i], p[i], d[i]) for i in range(n))
    out = (m.out_channels, *spatial)
    macs = math.prod(out) * (m.in_channels // m.groups) * math.prod(k)
    return out, Cost(params=_params(m), macs=macs)


@register_module_cost(nn.Linear)
def _linear(m, shape):
    out = (*shape[:-1], m.out_features)
    return out, Cost(params=_params(m), macs=math.prod(out) * m.in_features)


@register_module_cost(nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.GroupNorm,
                      nn.LayerNorm, nn.InstanceNorm1d, nn.InstanceNorm2d)
def _norm(m, shape):
    return shape, Cost(params=_params(m), bn=math.prod(shape))


@register_module_cost(nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d,
                      nn.AvgPool3d)
def _pool(m, shape):
    n = len(shape) - 1
    k = _tuple(m.kernel_size, n)
    s = _tuple(m.stride if m.stride is not None else m.kernel_size, n)
    p = _tuple(m.padding, n)
    d = _tuple(getattr(m, "dilation", 1), n)
    spatial = tuple(conv_out(shape[1 + i], k[i], s[i], p[i], d[i], m.ceil_mode) for i in range(n))
    out = (shape[0], *spatial)
    return out, Cost(pool=math.prod(out) * math.prod(k))


def _adaptive_reads(size: int, out: int) -> int:
    return sum(math.ceil((i + 1) * size / out) - (i * size) // out for i in range(out))


@register_module_cost(nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
                      nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d)
def _adaptive(m, shape):
    n = len(shape) - 1
    sizes = _tuple(m.output_size, n)
    sizes = tuple(shape[1 + i] if o is None else o for i, o in enumerate(sizes))
    reads = shape[0] * math.prod(_adaptive_reads(shape[1 + i], sizes[i]) for i in range(n))
    return (shape[0], *sizes), Cost(pool=reads)


@register_module_cost(GlobalAvgPool)
def _gap(m, shape):
    return shape[:1], Cost(pool=math.prod(shape))


@register_module_cost(nn.ReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.ELU,
                      nn.LeakyReLU, nn.Hardswish, nn.Identity, nn.Dropout, nn.Dropout2d)
def _free(m, shape):
    return shape, Cost()


@register_module_cost(nn.Flatten)
def _flatten(m, shape):
    return (math.prod(shape),), Cost()


@register_module_cost(nn.Sequential)
def _chain(m, shape):
    total = Cost()
    for child in m:
        shape, c = module_cost(child, shape)
        total = total + c
    return shape, total


@register_module_cost(ReLUConvBN, SepConv, DilConv, Conv7x1x1x7, NB201ReLUConvBN)
def _wrapped(m, shape):
    return module_cost(m.op, shape)


@register_module_cost(FactorizedReduce)
def _factorized(m, shape):
    # conv_2 reads the input shifted by one, padded back to even sizes (see FactorizedReduce)
    shifted = (shape[0], *(s - 1 + (s % 2) for s in shape[1:]))
    out1, c1 = module_cost(m.conv_1, shape)
    out2, c2 = module_cost(m.conv_2, shifted)
    out = (out1[0] + out2[0], *out1[1:])
    _, c3 = module_cost(m.bn, out)
    return out, c1 + c2 + c3


@register_module_cost(NB201FactorizedReduce)
def _nb201_factorized(m, shape):
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
def _nb201_pooling(m, shape):
    c = Cost()
    if m.preprocess is not None:
        shape, c = module_cost(m.preprocess, shape)
    out, cp = module_cost(m.op, shape)
    return out, c + cp


@register_module_cost(MBConv)
def _mbconv(m, shape):
    total = Cost()
    parts = (m.inverted_bottleneck, m.depth_conv, m.point_linear)
    for part in (p for p in parts if p is not None):
        shape, c = module_cost(part, shape)
        total = total + c
    return shape, total


@register_module_cost(ConvBNReLU6)
def _conv_bn_relu6(m, shape):
    shape, c1 = module_cost(m.conv, shape)
    _, c2 = module_cost(m.bn, shape)
    return shape, c1 + c2


@register_module_cost(Zero)
def _zero(m, shape):
    spatial = tuple(-(-s // m.stride) for s in shape[1:])
    return (m.C_out, *spatial), Cost()


@register_module_cost(Classifier)
def _classifier(m, shape):
    return _linear(m, (math.prod(shape),))


@register_module_cost(AuxiliaryHead)
def _aux(m, shape):
    shape, c1 = module_cost(m.features, shape)
    out, c2 = _linear(m.classifier, (math.prod(shape),))
    return out, c1 + c2
