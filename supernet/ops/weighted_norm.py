"""Candidates that end in a batch norm, weighted without keeping the norm's output.

A mixed edge computes ``sum_k w_k * op_k(x)``. The multiply by ``w_k`` keeps ``op_k(x)`` for
backward (``d/dw_k = <grad, op_k(x)>``), and for a candidate that ends in a batch norm (every
ReLU - conv - BN op of a DARTS cell, and the pooling - BN candidates of its search network)
the norm has already kept its own input ``z``: the output ``(z - mean) * invstd`` is one more
tensor of the edge's size per candidate, held from the forward to the backward pass, about
a fifth of what a DARTS cell keeps. :func:`weighted_batch_norm` computes ``w * bn(z)`` as one
autograd function that keeps ``z``, the batch statistics and ``w`` only, and recomputes the
normalized value in backward to get ``w``'s gradient.

On CPU the value is that of ``bn(z) * w`` bitwise (the same kernel computes it; on CUDA,
where ``bn``'s own forward may call cuDNN instead, it is equal to float rounding), and the
norm's running statistics and ``num_batches_tracked`` move as ``bn``'s own forward moves
them, once; the gradients of ``z``, ``w`` and the norm's affine parameters are the same
math, equal to float rounding (the normalized value is recomputed). The backward pass is
itself differentiable (a double backward, as the exact DARTS hypergradient takes, works).

The norm is fused only where that saves memory and changes nothing else: ``bn`` in training
mode, its class' own ``_BatchNorm.forward``, no hooks, a one-element ``w`` that needs a
gradient, gradients enabled, and no torch function mode active (data-parallel search
replaces the batch norm by a synced one through such a mode). Otherwise the call is
``bn(z) * w`` as written.

How an op splits into a body and its norm: :func:`supernet.ops.prefix.split_norm_tail`.

Examples:
    >>> import torch, torch.nn as nn
    >>> torch.manual_seed(0) and None
    >>> bn = nn.BatchNorm2d(3, affine=False)
    >>> z = torch.randn(4, 3, 5, 5, requires_grad=True)
    >>> w = torch.tensor(0.3, requires_grad=True)
    >>> y = weighted_batch_norm(z, bn, w)
    >>> torch.equal(y, nn.functional.batch_norm(z, None, None, training=True) * w)
    True
    >>> int(bn.num_batches_tracked)
    1
"""

from __future__ import annotations

import torch
from torch.nn.modules.batchnorm import _BatchNorm

from supernet.ops.prefix import has_hooks

__all__ = ["weighted_batch_norm"]


def _fusable(bn, w) -> bool:
    return (torch.is_grad_enabled() and bn.training and isinstance(w, torch.Tensor)
            and w.requires_grad and w.numel() == 1 and w.dim() == 0
            and not has_hooks(bn) and not torch._C._is_torch_function_mode_enabled())


def weighted_batch_norm(z: torch.Tensor, bn: _BatchNorm, w: torch.Tensor) -> torch.Tensor:
    """``bn(z) * w``, the norm's output not kept for backward (see the module docstring)."""
    if not _fusable(bn, w):
        return bn(z) * w
    bn._check_input_dim(z)
    # the bookkeeping of ``_BatchNorm.forward`` in training mode
    factor = 0.0 if bn.momentum is None else bn.momentum
    if bn.track_running_stats and bn.num_batches_tracked is not None:
        bn.num_batches_tracked.add_(1)
        factor = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
    track = bn.track_running_stats
    return _WeightedNorm.apply(z, w, bn.weight, bn.bias, bn.running_mean if track else None,
                               bn.running_var if track else None, factor, bn.eps)


class _WeightedNorm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z, w, weight, bias, running_mean, running_var, momentum, eps):
        out, mean, invstd = torch.native_batch_norm(z, weight, bias, running_mean, running_var,
                                                    True, momentum, eps)
        ctx.save_for_backward(z, w, weight, bias, mean, invstd)
        ctx.eps = eps
        return out * w

    @staticmethod
    def backward(ctx, g):
        z, w, weight, bias, mean, invstd = ctx.saved_tensors
        need_z, need_w, need_weight, need_bias = ctx.needs_input_grad[:4]
        grad_z = grad_w = grad_weight = grad_bias = None
        if need_w:  # <g, bn(z)>, the norm's output recomputed
            shape = (1, -1) + (1,) * (z.dim() - 2)
            if torch.is_grad_enabled():  # a double backward: the statistics as functions of z
                var, m = torch.var_mean(z, [0, *range(2, z.dim())], correction=0, keepdim=True)
                y = (z - m) * (var + ctx.eps).rsqrt()
                y = y if weight is None else y * weight.view(shape)
                y = y if bias is None else y + bias.view(shape)
            else:
                scale = invstd if weight is None else invstd * weight
                shift = -mean * scale if bias is None else bias - mean * scale
                y = z * scale.view(shape) + shift.view(shape)
            grad_w = (g * y).sum()
        if need_z or need_weight or need_bias:
            grad_z, grad_weight, grad_bias = torch.ops.aten.native_batch_norm_backward(
                g * w, z, weight, None, None, mean, invstd, True, ctx.eps,
                [need_z, need_weight, need_bias])
        return grad_z, grad_w, grad_weight, grad_bias, None, None, None, None

