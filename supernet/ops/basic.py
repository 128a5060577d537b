"""Basic ops: identity, zero, convolution, linear, pooling, normalization, activations.

Every op takes ``C_in, C_out`` and keyword arguments; ``dim`` selects 1-D or 2-D
convolutions, pooling and normalization (default 2).

Shapes:
    - input: ``(N, C_in, *spatial)`` (``(N, C_in)`` for ``linear``)
    - output: ``(N, C_out, *spatial / stride)``
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from supernet.counting import Cost, module_rule, register_module_cost
from supernet.ops.forms import ConvBlock, DenseBlock, EmptyBlock, IdentityBlock, PerUnit, Pool
from supernet.ops.registry import register_op

__all__ = [
    "Zero",
    "Classifier",
    "GlobalAvgPool",
    "conv_cls",
    "bn_cls",
    "avg_pool_cls",
    "max_pool_cls",
    "zero_last",
]


def conv_cls(dim: int) -> type[nn.Module]:
    return {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[dim]


def bn_cls(dim: int) -> type[nn.Module]:
    return {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}[dim]


def avg_pool_cls(dim: int) -> type[nn.Module]:
    return {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}[dim]


def max_pool_cls(dim: int) -> type[nn.Module]:
    return {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}[dim]


def zero_last(*modules: nn.Module) -> None:
    """Zero the weights (and biases) of ``modules`` in place: used by ``zero_output`` hooks."""
    with torch.no_grad():
        for m in modules:
            m.weight.zero_()
            if getattr(m, "bias", None) is not None:
                m.bias.zero_()


class Zero(nn.Module):
    """The ``none`` op: zeros of the output shape (strided like the other candidates)."""

    def __init__(self, C_in: int, C_out: int, stride: int = 1):
        super().__init__()
        self.C_in, self.C_out, self.stride = C_in, C_out, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() > 2 and self.stride > 1:
            index = (slice(None), slice(None)) + (slice(None, None, self.stride),) * (x.dim() - 2)
            x = x[index]
        if self.C_out != self.C_in:
            shape = list(x.shape)
            shape[1] = self.C_out
            return x.new_zeros(shape)
        return x.mul(0.0)

    def extra_repr(self) -> str:
        return f"stride={self.stride}"


class GlobalAvgPool(nn.Module):
    """Global average pooling to ``(N, C)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(2).mean(-1) if x.dim() > 2 else x


class Classifier(nn.Linear):
    """``nn.Linear`` that flattens its input first (a network's head)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x.flatten(1), self.weight, self.bias)


@register_module_cost(Zero)
def _zero_cost(m, shape):
    spatial = tuple(-(-s // m.stride) for s in shape[1:])
    return (m.C_out, *spatial), Cost()


@register_module_cost(GlobalAvgPool)
def _gap_cost(m, shape):
    return shape[:1], Cost(pool=math.prod(shape))


@register_module_cost(Classifier)
def _classifier_cost(m, shape):
    return module_rule(nn.Linear)(m, (math.prod(shape),))


# ---------------------------------------------------------------------- lowering rules
def _lift_conv(form):
    if not isinstance(form, ConvBlock):
        return None
    if any(len(set(v)) > 1 for v in (form.kernel, form.stride, form.padding, form.dilation)):
        return None  # non-square convs have no layer op
    args = {"kernel_size": form.kernel[0], "stride": form.stride[0],
            "padding": form.padding[0], "dilation": form.dilation[0], "groups": form.groups}
    if len(form.kernel) != 2:
        args["dim"] = len(form.kernel)
    return args


def _lift_as(want, args=None):
    """A ``lift=`` rule accepting exactly the form ``want``."""
    return lambda form: dict(args or {}) if form == want else None


def _bn_first(m):
    return m[0]


@register_op("none", zero=True, lower=lambda C_in, C_out, a: EmptyBlock())
def none(C_in, C_out, stride=1):
    """Zero op: contributes nothing; mixtures skip computing it."""
    return Zero(C_in, C_out, stride)


@register_op("identity", same_channels=True, identity=True,
             lower=lambda C_in, C_out, a: IdentityBlock(), lift=_lift_as(IdentityBlock()))
def identity(C_in, C_out):
    """Identity (no stride, no channel change)."""
    return nn.Identity()


def _conv(C_in, C_out, kernel_size, stride, padding, dilation, groups, bias, dim):
    if padding is None:
        padding = dilation * (kernel_size - 1) // 2
    return conv_cls(dim)(C_in, C_out, kernel_size, stride, padding, dilation, groups, bias)


@register_op("conv", zero_output=lambda m: zero_last(m), lift=_lift_conv,
             lower=lambda C_in, C_out, a: ConvBlock.square(
                 a["kernel_size"], a["stride"], a["padding"], a["dilation"], a["groups"],
                 a["dim"], a["bias"]))
def conv(C_in, C_out, kernel_size=3, stride=1, padding=None, dilation=1, groups=1, bias=True, dim=2):
    """A plain convolution (padding keeps the size at stride 1)."""
    return _conv(C_in, C_out, kernel_size, stride, padding, dilation, groups, bias, dim)


@register_op("conv_1x1", zero_output=lambda m: zero_last(m),
             lower=lambda C_in, C_out, a: ConvBlock.square(1, a["stride"], 0, dim=a["dim"],
                                                           bias=a["bias"]))
def conv_1x1(C_in, C_out, stride=1, bias=True, dim=2):
    """1x1 convolution."""
    return _conv(C_in, C_out, 1, stride, 0, 1, 1, bias, dim)


@register_op("conv_3x3", zero_output=lambda m: zero_last(m),
             lower=lambda C_in, C_out, a: ConvBlock.square(3, a["stride"], 1, dim=a["dim"],
                                                           bias=a["bias"]))
def conv_3x3(C_in, C_out, stride=1, bias=True, dim=2):
    """3x3 convolution, padding 1."""
    return _conv(C_in, C_out, 3, stride, 1, 1, 1, bias, dim)


@register_op("linear", zero_output=lambda m: zero_last(m),
             lower=lambda C_in, C_out, a: DenseBlock(a["bias"]),
             lift=lambda form: {} if isinstance(form, DenseBlock) else None)
def linear(C_in, C_out, bias=True):
    """``nn.Linear`` on the last dimension."""
    return nn.Linear(C_in, C_out, bias=bias)


@register_op("classifier", zero_output=lambda m: zero_last(m),
             lower=lambda C_in, C_out, a: DenseBlock(a["bias"]))
def classifier(C_in, C_out, bias=True):
    """Flatten, then ``nn.Linear`` (a head after global pooling)."""
    return Classifier(C_in, C_out, bias=bias)


@register_op("global_avg_pool", same_channels=True,
             lower=lambda C_in, C_out, a: Pool("global_avg"), lift=_lift_as(Pool("global_avg")))
def global_avg_pool(C_in, C_out):
    """Global average pooling ``(N, C, *spatial) -> (N, C)``."""
    return GlobalAvgPool()


@register_op("adaptive_avg_pool", same_channels=True,
             lower=lambda C_in, C_out, a: Pool("global_avg"))
def adaptive_avg_pool(C_in, C_out, dim=2):
    """``nn.AdaptiveAvgPool{dim}d(1)``: keeps singleton spatial dims, as most references do."""
    return {1: nn.AdaptiveAvgPool1d, 2: nn.AdaptiveAvgPool2d}[dim](1)


def _lower_avg_pool(C_in, C_out, a):
    if a["padding"]:
        return None  # torch counts the padding in the average, unit-level pooling does not
    k = a["kernel_size"]
    return Pool.window("avg", k, k if a["stride"] is None else a["stride"], 0, a["dim"])


@register_op("avg_pool", same_channels=True, lower=_lower_avg_pool)
def avg_pool(C_in, C_out, kernel_size=2, stride=None, padding=0, dim=2):
    """``nn.AvgPool{dim}d(kernel_size, stride, padding)`` (e.g. the 7x7 global pooling of
    ImageNet networks)."""
    return avg_pool_cls(dim)(kernel_size, stride=stride, padding=padding)


@register_op("flatten", same_channels=True)
def flatten(C_in, C_out):
    """Flatten all but the batch dimension."""
    return nn.Flatten(1)


@register_op("relu", same_channels=True, lower=lambda C_in, C_out, a: PerUnit("relu"),
             lift=_lift_as(PerUnit("relu")))
def relu(C_in, C_out):
    """ReLU."""
    return nn.ReLU(inplace=False)


@register_op("batchnorm", same_channels=True, zero_output=lambda m: zero_last(m),
             lower=lambda C_in, C_out, a: PerUnit("identity", "batchnorm"),
             lift=_lift_as(PerUnit("identity", "batchnorm")))
def batchnorm(C_in, C_out, affine=True, track_running_stats=True, dim=2):
    """Batch normalization."""
    return bn_cls(dim)(C_in, affine=affine, track_running_stats=track_running_stats)


@register_op("bn_relu", same_channels=True,
             lower=lambda C_in, C_out, a: PerUnit("relu", "batchnorm", norm_of=_bn_first),
             lift=_lift_as(PerUnit("relu", "batchnorm")))
def bn_relu(C_in, C_out, affine=True, dim=2):
    """Batch normalization then ReLU (a pre-activation head)."""
    return nn.Sequential(bn_cls(dim)(C_in, affine=affine), nn.ReLU(inplace=False))


@register_op("dropout", same_channels=True)
def dropout(C_in, C_out, p=0.5):
    """Dropout."""
    return nn.Dropout(p)
