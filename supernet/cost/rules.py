"""Cost rules of torch's own modules: output shape, parameters and operations of a module
for a given per-sample input shape, computed from the module's hyperparameters without
running it.

The record (:class:`Cost`) and the per-module-type registry live in
:mod:`supernet.counting`, re-exported here; an op module registers the rules of its own
module classes next to their definitions, and an op may carry a rule of its own
(``register_op(name, cost=rule)``). Register the rule of your module with
:func:`register_module_cost`.

Conventions (per sample):

* convolution: ``out_elements * C_in / groups * prod(kernel)`` MACs (bias adds not counted,
  as thop and fvcore do);
* linear: ``out_elements * in_features`` MACs;
* batch norm: ``out_elements`` (one multiply-add each, foldable into the previous conv);
* pooling: ``out_elements * prod(kernel)`` window reads, the full window even where padding
  cuts it; adaptive average pooling reads each input element of each window once.

Those are the rules of the default convention, ``"thop"``. In ``"nas-bench-201"`` (the
FLOPs NAS-Bench-201 publishes, see :mod:`supernet.counting`) a ``Conv1d``, ``Conv2d`` or
``Linear`` with a bias adds ``out_elements`` to :attr:`Cost.macs`; every other rule is the
default's.

Examples:
    >>> import torch.nn as nn
    >>> from supernet.cost import module_cost
    >>> module_cost(nn.Conv2d(3, 8, 3, padding=1), (3, 32, 32))
    ((8, 32, 32), Cost(params=224, macs=221184, bn=0, pool=0, other=0))

(:mod:`supernet.counting` shows a rule for a module of one's own.)
"""

from __future__ import annotations

import math

import torch.nn as nn

from supernet.counting import (
    Cost,
    counting_convention,
    conv_out,
    module_cost,
    parameter_count,
    register_module_cost,
    unregister_module_cost,
)
from supernet.errors import SupernetError

__all__ = ["Cost", "register_module_cost", "unregister_module_cost", "module_cost", "conv_out",
           "counting_convention"]


def _tuple(v, n):
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * n


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
    return out, Cost(params=parameter_count(m), macs=macs)


@register_module_cost(nn.Linear)
def _linear(m, shape):
    out = (*shape[:-1], m.out_features)
    return out, Cost(params=parameter_count(m), macs=math.prod(out) * m.in_features)


@register_module_cost(nn.Conv1d, nn.Conv2d, nn.Linear, convention="nas-bench-201")
def _with_bias_adds(m, shape):
    """AutoDL-Projects' counter: the multiply-adds, plus one addition per output element
    when the layer has a bias."""
    out, c = (_linear if isinstance(m, nn.Linear) else _conv)(m, shape)
    if m.bias is not None:
        c = c + Cost(macs=math.prod(out))
    return out, c


@register_module_cost(nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.GroupNorm,
                      nn.LayerNorm, nn.InstanceNorm1d, nn.InstanceNorm2d)
def _norm(m, shape):
    return shape, Cost(params=parameter_count(m), bn=math.prod(shape))


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
