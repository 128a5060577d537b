"""Parameter-free prefixes that the candidate ops of one node share.

Every ReLU - conv - BN candidate of a DARTS cell starts with ``relu(x)``, and every pooling
candidate of the node's out-edges pools the same ``x`` at the same stride. Computed per
candidate, these are equal tensors, each computed and saved for backward again on every
out-edge of the node. An op module is split into a *prefix* (a parameter-free module whose
output depends on ``x`` only) and a *rest*; the compiled plan computes each distinct prefix
of a node's value once per forward pass and runs each candidate's rest on it
(:meth:`supernet.compiler.layer.LayerModule.run`). The value and the gradients are those of
calling the op itself, bitwise: ``rest(prefix(x))`` is the op's own sequence of calls.

How a module splits (:func:`split_prefix`):

* a ReLU (not in place) or a pooling module is all prefix;
* an ``nn.Sequential`` whose first module is one of those: that module, then the others;
* a module with a ``shared_prefix()`` method returns ``(prefix module, rest callable)`` or
  ``None`` (the DARTS ops of :mod:`supernet.ops.cnn` and :mod:`supernet.ops.nb201`).

The same ops end in a batch norm, whose output a mixed edge multiplies by the candidate's
weight: :func:`split_norm_tail` splits an op into a body and that norm, for
:mod:`supernet.ops.weighted_norm`. A batch norm is all tail; an ``nn.Sequential`` (with its
own forward) ending in one is ``(the modules before it, the norm)``; a module with a
``norm_tail()`` method returns that split or ``None``.

The key of a prefix is its class and its arguments (``extra_repr``), so ``max_pool(3, 1, 1)``
of two edges is one value and ``max_pool(3, 2, 1)`` another.

Examples:
    >>> import torch, torch.nn as nn
    >>> from supernet.ops.cnn import SepConv
    >>> op = SepConv(4, 4, 3, 1, 1)
    >>> key, prefix, rest = split_prefix(op)
    >>> key
    ('ReLU', '')
    >>> x = torch.randn(2, 4, 5, 5)
    >>> torch.equal(rest(prefix(x)), op(x))
    True
    >>> split_prefix(nn.Conv2d(4, 4, 3)) is None  # a conv has parameters: no shared prefix
    True
"""

from __future__ import annotations

from typing import Callable

import torch.nn as nn
from torch.nn.modules import module as _m
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.pooling import _AvgPoolNd, _MaxPoolNd

__all__ = ["split_prefix", "split_norm_tail", "SequentialOp", "has_hooks"]


def _prefix_module(m) -> bool:
    if isinstance(m, nn.ReLU):
        return not m.inplace
    return isinstance(m, (_MaxPoolNd, _AvgPoolNd)) and not getattr(m, "return_indices", False)


def has_hooks(m) -> bool:
    """Whether calling module ``m`` runs hooks that calling its parts would skip (a
    non-module, e.g. a bound callable, counts as hooked: it is called as it is)."""
    if not isinstance(m, nn.Module):
        return True
    return bool(m._forward_hooks or m._forward_pre_hooks or m._backward_hooks
                or m._backward_pre_hooks or _m._global_forward_hooks
                or _m._global_forward_pre_hooks or _m._global_backward_hooks
                or _m._global_backward_pre_hooks)


def _key(m) -> tuple[str, str]:
    return type(m).__name__, m.extra_repr()


class _Chain:
    """The modules after a sequential op's prefix, called in order. A plain object holding
    the modules (not a closure over them), so that ``copy.deepcopy`` and pickling of a
    compiled module carry it over to the copy's own modules."""

    __slots__ = ("mods",)

    def __init__(self, mods):
        self.mods = tuple(mods)

    def __call__(self, y):
        for m in self.mods:
            y = m(y)
        return y


def _chain(mods) -> Callable:
    mods = tuple(mods)
    return mods[0] if len(mods) == 1 else _Chain(mods)


def split_prefix(module) -> tuple[tuple[str, str], nn.Module, Callable | None] | None:
    """``(key, prefix, rest)`` of an op module, ``rest`` ``None`` when it is all prefix, or
    ``None`` when the module has no parameter-free prefix (see the module docstring)."""
    if _prefix_module(module):
        return _key(module), module, None
    if isinstance(module, nn.Sequential):
        if len(module) >= 2 and type(module).forward is nn.Sequential.forward \
                and _prefix_module(module[0]):
            return _key(module[0]), module[0], _chain(list(module)[1:])
        return None
    fn = getattr(module, "shared_prefix", None)
    if fn is None:
        return None
    split = fn()
    if split is None:
        return None
    prefix, rest = split
    return _key(prefix), prefix, rest


def _plain_norm(m) -> bool:
    return isinstance(m, _BatchNorm) and type(m).forward is _BatchNorm.forward


def split_norm_tail(module) -> tuple[Callable | None, _BatchNorm] | None:
    """``(body, bn)`` with ``bn(body(x))`` the op's value (``body`` ``None`` when the op is
    the norm itself), or ``None`` when the op does not end in a plain batch norm."""
    if _plain_norm(module):
        return None, module
    if isinstance(module, _Chain):
        mods = module.mods
    elif isinstance(module, nn.Sequential) and type(module).forward is nn.Sequential.forward:
        mods = tuple(module)
    else:
        fn = getattr(module, "norm_tail", None)
        return None if fn is None else fn()
    if not mods or not _plain_norm(mods[-1]):
        return None
    return (_chain(mods[:-1]) if len(mods) > 1 else None), mods[-1]


class SequentialOp(nn.Module):
    """An op whose forward is ``self.op(x)``, an ``nn.Sequential``: its prefix is that of
    ``self.op`` (for subclasses that keep this forward)."""

    def forward(self, x):
        return self.op(x)

    def shared_prefix(self):
        if type(self).forward is not SequentialOp.forward:
            return None  # a subclass computes something else
        split = split_prefix(self.op)
        return None if split is None else split[1:]

    def norm_tail(self):
        """``(body, bn)`` when ``self.op`` ends in a batch norm (:func:`split_norm_tail`),
        else ``None``."""
        if type(self).forward is not SequentialOp.forward:
            return None
        return split_norm_tail(self.op)
