"""Convolutional cell ops of the DARTS family (DARTS, P-DARTS, PC-DARTS, GDAS, SGAS, ...).

Definitions follow Liu et al., "DARTS: Differentiable Architecture Search" (ICLR 2019) and
its public code, so that networks built from a genotype have exactly the reference
modules and parameter counts:

* ``sep_conv_kxk``: two stacked ReLU - depthwise kxk - pointwise 1x1 - BN blocks, the
  stride on the first depthwise conv, no dilation;
* ``dil_conv_kxk``: one ReLU - depthwise kxk dilated by 2 - pointwise - BN block;
* ``skip_connect``: identity, or factorized reduce at stride 2;
* ``max_pool_3x3`` / ``avg_pool_3x3``: pooling with padding 1 (average excludes the
  padding); ``pool_bn=True`` appends a non-affine BN, as inside the DARTS search mixed op;
* ``relu_conv_bn``: ReLU - conv - BN (1x1 by default);
* ``preprocess``: the cell input preprocessing, ReLU - conv 1x1 - BN at stride 1 and
  factorized reduce at stride 2 (the input of a cell that follows a reduction cell);
* ``conv_7x1_1x7``: ReLU - 1x7 conv - 7x1 conv - BN (AmoebaNet; 2-D only);
* ``aux_head``: the auxiliary classifier of DARTS ``AuxiliaryHeadCIFAR`` (ReLU, 5x5 average
  pool at stride 3, conv 1x1 to 128 - BN - ReLU, conv 2x2 to 768 - BN - ReLU, linear), for
  an 8x8 input (length 8 to 10 in 1-D).

Every op takes ``dim`` (1 or 2) so that the same cells run on sequences.

Shapes:
    - input: ``(N, C_in, *spatial)``
    - output: ``(N, C_out, *ceil(spatial / stride))``
"""

from __future__ import annotations

import math
from dataclasses import replace

import torch
import torch.nn as nn
import torch.nn.functional as F

from supernet.counting import module_cost, register_module_cost
from supernet.ops.basic import avg_pool_cls, bn_cls, conv_cls, max_pool_cls, zero_last
from supernet.ops.forms import ConvBlock, IdentityBlock, Pool, Stage, chain
from supernet.ops.prefix import SequentialOp
from supernet.ops.registry import register_op

__all__ = ["ReLUConvBN", "SepConv", "DilConv", "FactorizedReduce", "Conv7x1x1x7", "AuxiliaryHead"]


class ReLUConvBN(SequentialOp):
    """ReLU, convolution (no bias), batch norm."""

    def __init__(self, C_in, C_out, kernel_size, stride, padding, dilation=1, affine=True,
                 track_running_stats=True, dim=2):
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            conv_cls(dim)(C_in, C_out, kernel_size, stride, padding, dilation, bias=False),
            bn_cls(dim)(C_out, affine=affine, track_running_stats=track_running_stats),
        )


class DilConv(SequentialOp):
    """ReLU, depthwise dilated conv, pointwise conv, batch norm."""

    def __init__(self, C_in, C_out, kernel_size, stride, padding, dilation, affine=True, dim=2):
        super().__init__()
        Conv = conv_cls(dim)
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            Conv(C_in, C_in, kernel_size, stride, padding, dilation, groups=C_in, bias=False),
            Conv(C_in, C_out, 1, padding=0, bias=False),
            bn_cls(dim)(C_out, affine=affine),
        )


class SepConv(SequentialOp):
    """Two stacked ReLU - depthwise - pointwise - BN blocks; stride on the first."""

    def __init__(self, C_in, C_out, kernel_size, stride, padding, affine=True, dim=2):
        super().__init__()
        Conv, BN = conv_cls(dim), bn_cls(dim)
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            Conv(C_in, C_in, kernel_size, stride, padding, groups=C_in, bias=False),
            Conv(C_in, C_in, 1, padding=0, bias=False),
            BN(C_in, affine=affine),
            nn.ReLU(inplace=False),
            Conv(C_in, C_in, kernel_size, 1, padding, groups=C_in, bias=False),
            Conv(C_in, C_out, 1, padding=0, bias=False),
            BN(C_out, affine=affine),
        )


class FactorizedReduce(nn.Module):
    """Halve the resolution with two offset strided 1x1 convs, concatenated, then BN.

    Odd sizes are padded at the end so both halves agree (even sizes are unaffected).
    """

    def __init__(self, C_in, C_out, affine=True, dim=2):
        super().__init__()
        if C_out % 2:
            raise ValueError(f"factorized reduce needs an even C_out, got {C_out}")
        Conv = conv_cls(dim)
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = Conv(C_in, C_out // 2, 1, stride=2, padding=0, bias=False)
        self.conv_2 = Conv(C_in, C_out // 2, 1, stride=2, padding=0, bias=False)
        self.bn = bn_cls(dim)(C_out, affine=affine)

    def forward(self, x):
        return self._reduce(self.relu(x))

    def shared_prefix(self):
        if type(self).forward is not FactorizedReduce.forward:
            return None
        return self.relu, self._reduce

    def _reduce(self, x):
        shifted = x[(slice(None), slice(None)) + (slice(1, None),) * (x.dim() - 2)]
        if any(s % 2 for s in x.shape[2:]):
            shifted = F.pad(shifted, [0, 1] * (x.dim() - 2))
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1))


class Conv7x1x1x7(SequentialOp):
    """ReLU, 1x7 then 7x1 convolution, batch norm (2-D only)."""

    def __init__(self, C_in, C_out, stride, affine=True):
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_in, (1, 7), stride=(1, stride), padding=(0, 3), bias=False),
            nn.Conv2d(C_in, C_out, (7, 1), stride=(stride, 1), padding=(3, 0), bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )


class AuxiliaryHead(nn.Module):
    """The DARTS auxiliary classifier (``AuxiliaryHeadCIFAR``), for 1-D or 2-D features.

    It expects an 8x8 input (the resolution after the second reduction cell on CIFAR): the
    5x5 pool at stride 3 leaves 2x2, the 2x2 conv leaves 1x1. ``pool_stride=2,
    last_bn=False`` is ``AuxiliaryHeadImageNet`` (a 7x7 input; the reference leaves out the
    batch norm after the 768-channel conv, as in its paper's experiments).
    """

    def __init__(self, C_in, num_classes, dim=2, pool_stride=3, last_bn=True):
        super().__init__()
        Conv, BN = conv_cls(dim), bn_cls(dim)
        self.features = nn.Sequential(
            nn.ReLU(inplace=False),  # the reference's in-place ReLU would also change the trunk
            avg_pool_cls(dim)(5, stride=pool_stride, padding=0, count_include_pad=False),
            Conv(C_in, 128, 1, bias=False),
            BN(128),
            nn.ReLU(inplace=False),
            Conv(128, 768, 2, bias=False),
            *([BN(768)] if last_bn else []),
            nn.ReLU(inplace=False),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


def _zero_relu_conv_bn(m):
    zero_last(m.op[1])


def _zero_op_index(i):
    return lambda m: zero_last(m.op[i])


def _zero_factorized(m):
    if isinstance(m, FactorizedReduce):
        zero_last(m.conv_1, m.conv_2)
    elif isinstance(m, ReLUConvBN):
        zero_last(m.op[1])
    else:
        raise ValueError("the identity has no parameters to start from zero")


# ---------------------------------------------------------------------- channel-level forms
def _at(i):
    return lambda m: m.op[i]


def _relu():
    return IdentityBlock(), Stage("relu", 0, "relu")


def _stages(C_in, *steps):
    """``chain`` with the ReLU stage's width filled in (``C_in``)."""
    return chain(*[(b, replace(st, width=C_in) if st.width == 0 else st, *o)
                   for b, st, *o in steps])


def relu_conv_bn_form(C_in, C_out, conv: ConvBlock, norm_of, relu: bool = True):
    """ReLU (a stage reading the input through the identity), the conv ``conv``, a BN stage."""
    bn = Stage("bn", C_out, norm="batchnorm", norm_of=norm_of)
    return _stages(C_in, *([_relu()] if relu else []), (conv, bn))


def factorized_reduce_form(C_in, C_out, halves, convs, norm_of, dim, relu=True, bias=False):
    """Factorized reduce: two 1x1 convs at stride 2, the second reading the input shifted by
    one position, concatenated, then BN. At unit level it is one 3x3 conv at stride 2 with
    padding 1 (the output size of a 1x1 conv at stride 2 for every input size) whose first
    ``halves[0]`` output channels hold their 1x1 weight at the centre tap (input ``2i``) and
    the others at the last tap (input ``2i + 1``, zero past the end as the op pads); the
    other taps start at zero.
    """

    def weight(m):
        c1, c2 = convs(m)
        w = c1.weight.new_zeros((C_out, C_in) + (3,) * dim)
        w[(slice(0, halves[0]), slice(None)) + (1,) * dim] = c1.weight.flatten(1)
        w[(slice(halves[0], None), slice(None)) + (2,) * dim] = c2.weight.flatten(1)
        return w

    def bias_of(m):
        c1, c2 = convs(m)
        return None if c1.bias is None else torch.cat([c1.bias, c2.bias])

    conv = ConvBlock.square(3, 2, 1, dim=dim, bias=bias)
    bn = Stage("bn", C_out, norm="batchnorm", norm_of=norm_of)
    return _stages(C_in, *([_relu()] if relu else []),
                   (conv, bn, {"weight": weight, "bias": bias_of}))


def _separable(C_in, C_out, k, stride, padding, dilation, dim, twice):
    dw = ConvBlock.square(k, stride, padding, dilation, C_in, dim, bias=False, weights=_at(1))
    if not twice:
        pw = ConvBlock.square(1, dim=dim, bias=False, weights=_at(2))
        return _stages(C_in, _relu(), (dw, Stage("dw", C_in)),
                       (pw, Stage("bn", C_out, norm="batchnorm", norm_of=_at(3))))
    dw2 = ConvBlock.square(k, 1, padding, 1, C_in, dim, bias=False, weights=_at(5))
    return _stages(
        C_in, _relu(), (dw, Stage("dw1", C_in)),
        (ConvBlock.square(1, dim=dim, bias=False, weights=_at(2)),
         Stage("bn1", C_in, "relu", "batchnorm", norm_of=_at(3))),  # BN, then the next ReLU
        (dw2, Stage("dw2", C_in)),
        (ConvBlock.square(1, dim=dim, bias=False, weights=_at(6)),
         Stage("bn2", C_out, norm="batchnorm", norm_of=_at(7))))


def _lower_relu_conv_bn(C_in, C_out, a):
    if not a["track_running_stats"]:
        return None  # unit-level batch norm keeps running statistics
    p = a["padding"]
    conv = ConvBlock.square(a["kernel_size"], a["stride"], p, a["dilation"], dim=a["dim"],
                            bias=False, weights=_at(1))
    return relu_conv_bn_form(C_in, C_out, conv, _at(2))


def _fr_form(C_in, C_out, dim):
    return factorized_reduce_form(C_in, C_out, (C_out // 2, C_out // 2),
                                  lambda m: (m.conv_1, m.conv_2), lambda m: m.bn, dim)


def _lower_skip(C_in, C_out, a):
    if a["stride"] == 1 and C_in == C_out:
        return IdentityBlock()
    if a["stride"] == 1:
        conv = ConvBlock.square(1, dim=a["dim"], bias=False, weights=_at(1))
        return relu_conv_bn_form(C_in, C_out, conv, _at(2))
    return _fr_form(C_in, C_out, a["dim"]) if a["stride"] == 2 else None


def _lower_preprocess(C_in, C_out, a):
    if a["stride"] == 2:
        return _fr_form(C_in, C_out, a["dim"])
    conv = ConvBlock.square(1, dim=a["dim"], bias=False, weights=_at(1))
    return relu_conv_bn_form(C_in, C_out, conv, _at(2)) if a["stride"] == 1 else None


def _lower_conv7(C_in, C_out, a):
    s = a["stride"]
    c1 = ConvBlock((1, 7), (1, s), (0, 3), (1, 1), bias=False, weights=_at(1))
    c2 = ConvBlock((7, 1), (s, 1), (3, 0), (1, 1), bias=False, weights=_at(2))
    return _stages(C_in, _relu(), (c1, Stage("conv", C_in)),
                   (c2, Stage("bn", C_out, norm="batchnorm", norm_of=_at(3))))


def _lower_stem(C_in, C_out, a):
    k = a["kernel_size"]
    conv = ConvBlock.square(k, a["stride"], k // 2, dim=a["dim"], bias=False,
                            weights=lambda m: m[0])
    return relu_conv_bn_form(C_in, C_out, conv, lambda m: m[1], relu=False)


# ---------------------------------------------------------------------- cost and lowering rules
@register_module_cost(ReLUConvBN, SepConv, DilConv, Conv7x1x1x7)
def _wrapped_cost(m, shape):
    return module_cost(m.op, shape)


@register_module_cost(FactorizedReduce)
def _factorized_cost(m, shape):
    # conv_2 reads the input shifted by one, padded back to even sizes (see FactorizedReduce)
    shifted = (shape[0], *(s - 1 + (s % 2) for s in shape[1:]))
    out1, c1 = module_cost(m.conv_1, shape)
    out2, c2 = module_cost(m.conv_2, shifted)
    out = (out1[0] + out2[0], *out1[1:])
    _, c3 = module_cost(m.bn, out)
    return out, c1 + c2 + c3


@register_module_cost(AuxiliaryHead)
def _aux_cost(m, shape):
    shape, c1 = module_cost(m.features, shape)
    out, c2 = module_cost(m.classifier, (math.prod(shape),))
    return out, c1 + c2


def _lower_pool(kind):
    def lower(C_in, C_out, a):
        pool = Pool.window(kind, 3, a["stride"], 1, a["dim"])
        if a["pool_bn"]:  # the pooling, then a (non-affine) BN stage
            return chain((pool, Stage("bn", C_in, norm="batchnorm", norm_of=lambda m: m[1])))
        return pool

    return lower


def _lift_pool(kind):
    def lift(form):
        if not isinstance(form, Pool) or form.kind != kind or form.is_global:
            return None
        n = len(form.kernel)
        if form.kernel != (3,) * n or form.padding != (1,) * n or len(set(form.stride)) != 1:
            return None
        return {"stride": form.stride[0], **({"dim": n} if n != 2 else {})}

    return lift


def _pool(pool, pool_bn, C, dim):
    if not pool_bn:
        return pool
    return nn.Sequential(pool, bn_cls(dim)(C, affine=False))


@register_op("max_pool_3x3", same_channels=True, lower=_lower_pool("max"),
             lift=_lift_pool("max"))
def max_pool_3x3(C_in, C_out, stride=1, pool_bn=False, affine=True, dim=2):
    """3x3 max pooling, padding 1 (``pool_bn``: then a non-affine BN)."""
    return _pool(max_pool_cls(dim)(3, stride=stride, padding=1), pool_bn, C_in, dim)


@register_op("avg_pool_3x3", same_channels=True, lower=_lower_pool("avg"),
             lift=_lift_pool("avg"))
def avg_pool_3x3(C_in, C_out, stride=1, pool_bn=False, affine=True, dim=2):
    """3x3 average pooling, padding 1, padding excluded (``pool_bn``: then a non-affine BN)."""
    pool = avg_pool_cls(dim)(3, stride=stride, padding=1, count_include_pad=False)
    return _pool(pool, pool_bn, C_in, dim)


@register_op("skip_connect", identity=True, zero_output=_zero_factorized, lower=_lower_skip)
def skip_connect(C_in, C_out, stride=1, affine=True, dim=2):
    """Identity; factorized reduce when the stride is 2 or the width changes."""
    if stride == 1 and C_in == C_out:
        return nn.Identity()
    if stride not in (1, 2):
        raise ValueError(f"skip_connect supports stride 1 or 2, got {stride}")
    if stride == 1:
        return ReLUConvBN(C_in, C_out, 1, 1, 0, affine=affine, dim=dim)
    return FactorizedReduce(C_in, C_out, affine=affine, dim=dim)


@register_op("factorized_reduce", zero_output=_zero_factorized,
             lower=lambda C_in, C_out, a: _fr_form(C_in, C_out, a["dim"]))
def factorized_reduce(C_in, C_out, affine=True, dim=2):
    """Halve the resolution with two offset 1x1 convs (DARTS ``FactorizedReduce``)."""
    return FactorizedReduce(C_in, C_out, affine=affine, dim=dim)


@register_op("relu_conv_bn", zero_output=_zero_relu_conv_bn, lower=_lower_relu_conv_bn)
def relu_conv_bn(C_in, C_out, kernel_size=1, stride=1, padding=None, dilation=1, affine=True,
                 track_running_stats=True, dim=2):
    """ReLU - conv - BN (DARTS cell preprocessing; 1x1 by default)."""
    if padding is None:
        padding = dilation * (kernel_size - 1) // 2
    return ReLUConvBN(C_in, C_out, kernel_size, stride, padding, dilation, affine,
                      track_running_stats, dim)


def _sep(k):
    @register_op(f"sep_conv_{k}x{k}", zero_output=_zero_op_index(6),
                 lower=lambda C_in, C_out, a: _separable(C_in, C_out, k, a["stride"], k // 2, 1,
                                                         a["dim"], True))
    def build(C_in, C_out, stride=1, affine=True, dim=2):
        return SepConv(C_in, C_out, k, stride, k // 2, affine=affine, dim=dim)

    build.__doc__ = f"Two stacked ReLU - depthwise {k}x{k} - pointwise - BN blocks."
    return build


def _dil(k):
    @register_op(f"dil_conv_{k}x{k}", zero_output=_zero_op_index(2),
                 lower=lambda C_in, C_out, a: _separable(C_in, C_out, k, a["stride"], k - 1, 2,
                                                         a["dim"], False))
    def build(C_in, C_out, stride=1, affine=True, dim=2):
        return DilConv(C_in, C_out, k, stride, k - 1, 2, affine=affine, dim=dim)

    build.__doc__ = f"ReLU - depthwise {k}x{k} dilated by 2 - pointwise - BN."
    return build


sep_conv_3x3, sep_conv_5x5, sep_conv_7x7 = _sep(3), _sep(5), _sep(7)
dil_conv_3x3, dil_conv_5x5 = _dil(3), _dil(5)


@register_op("conv_7x1_1x7", zero_output=_zero_op_index(2), lower=_lower_conv7)
def conv_7x1_1x7(C_in, C_out, stride=1, affine=True, dim=2):
    """ReLU - 1x7 conv - 7x1 conv - BN (2-D only)."""
    if dim != 2:
        raise ValueError(f"conv_7x1_1x7 is a 2-D op, got dim={dim}")
    return Conv7x1x1x7(C_in, C_out, stride, affine=affine)


@register_op("preprocess", zero_output=_zero_factorized, lower=_lower_preprocess)
def preprocess(C_in, C_out, stride=1, affine=True, dim=2):
    """Cell input preprocessing: ReLU - conv 1x1 - BN, or factorized reduce at stride 2."""
    if stride == 1:
        return ReLUConvBN(C_in, C_out, 1, 1, 0, affine=affine, dim=dim)
    if stride != 2:
        raise ValueError(f"preprocess supports stride 1 or 2, got {stride}")
    return FactorizedReduce(C_in, C_out, affine=affine, dim=dim)


@register_op("aux_head", zero_output=lambda m: zero_last(m.classifier))
def aux_head(C_in, C_out, dim=2):
    """The DARTS auxiliary classifier (AuxiliaryHeadCIFAR) to ``C_out`` classes."""
    return AuxiliaryHead(C_in, C_out, dim=dim)


@register_op("aux_head_imagenet", zero_output=lambda m: zero_last(m.classifier))
def aux_head_imagenet(C_in, C_out):
    """The DARTS auxiliary classifier of ImageNet networks (AuxiliaryHeadImageNet)."""
    return AuxiliaryHead(C_in, C_out, dim=2, pool_stride=2, last_bn=False)


@register_op("stem_conv_bn", zero_output=lambda m: zero_last(m[1]), lower=_lower_stem)
def stem_conv_bn(C_in, C_out, kernel_size=3, stride=1, affine=True, dim=2):
    """Conv (no bias) then BN: the DARTS and NAS-Bench-201 stem."""
    return nn.Sequential(
        conv_cls(dim)(C_in, C_out, kernel_size, stride, kernel_size // 2, bias=False),
        bn_cls(dim)(C_out, affine=affine),
    )
