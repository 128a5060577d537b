"""What a layer-level op becomes at channel level: the records of an op's ``lower=`` rule.

An op registered with ``register_op(name, lower=rule)`` tells :func:`supernet.lowering.lower`
its channel-level form: ``rule(C_in, C_out, args) -> form`` (``args`` are the edge's
arguments with the builder's defaults filled in), or ``None`` when these arguments have no
unit-level form (a ``skip_connect`` at stride 2). The forms:

* :class:`ConvBlock` -- a block of convolution kernels (one per channel pair of the mask);
* :class:`DenseBlock` -- a block of weights (a linear layer);
* :class:`IdentityBlock` -- the diagonal: each channel goes on unchanged;
* :class:`EmptyBlock` -- no connections (the zero op);
* :class:`Pool` -- the diagonal, the source pooled first;
* :class:`PerUnit` -- an activation and/or normalization of each unit of a node (on an edge,
  only as the single in-edge of a node without an op of its own).

``lift=rule`` is the inverse, used by :func:`supernet.lowering.lift` for channel-level edges
and nodes that do not come from the op they record: ``rule(form) -> args`` when the op can
hold the form, else ``None``.

Examples:
    >>> ConvBlock.square(3, stride=2)
    ConvBlock(kernel=(3, 3), stride=(2, 2), padding=(1, 1), dilation=(1, 1), groups=1, bias=True)
    >>> ConvBlock.square(3, dim=1, bias=False) == ConvBlock.square(3, dim=1)  # bias aside
    True
    >>> Pool.window("max", 3, stride=2, padding=1, dim=2).unit_spec()
    {'kind': 'max', 'kernel': [3, 3], 'stride': [2, 2], 'padding': [1, 1]}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Union

__all__ = [
    "ConvBlock",
    "DenseBlock",
    "IdentityBlock",
    "EmptyBlock",
    "Pool",
    "PerUnit",
    "Form",
]


def _dims(v, dim: int) -> tuple[int, ...]:
    return tuple(int(x) for x in v) if isinstance(v, (tuple, list)) else (int(v),) * dim


@dataclass(frozen=True)
class ConvBlock:
    """A block of convolution kernels.

    Attributes:
        kernel, stride, padding, dilation: per spatial dimension.
        groups: channel groups (the mask is block-diagonal).
        bias: the op adds a bias (carried by the destination node at unit level).
        weights: ``f(module) -> submodule`` holding ``weight`` (``(C_out, C_in / groups,
            *kernel)``) and ``bias``; default: the op's module itself.
    """

    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int = 1
    bias: bool = field(default=True, compare=False)
    weights: Callable | None = field(default=None, compare=False, repr=False)

    @classmethod
    def square(cls, kernel_size: int, stride=1, padding=None, dilation=1, groups: int = 1,
               dim: int = 2, bias: bool = True, weights: Callable | None = None) -> "ConvBlock":
        """The same size in every dimension; ``padding=None`` keeps the size at stride 1."""
        k, d = _dims(kernel_size, dim), _dims(dilation, dim)
        p = tuple(di * (ki - 1) // 2 for ki, di in zip(k, d)) if padding is None \
            else _dims(padding, dim)
        return cls(k, _dims(stride, dim), p, d, int(groups), bool(bias), weights)


@dataclass(frozen=True)
class DenseBlock:
    """A block of weights: ``weights(module)`` holds ``weight`` ``(C_out, C_in)`` and ``bias``."""

    bias: bool = field(default=True, compare=False)
    weights: Callable | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class IdentityBlock:
    """The diagonal: channel ``i`` of the source is channel ``i`` of the edge."""


@dataclass(frozen=True)
class EmptyBlock:
    """No connections: the edge contributes zeros."""


@dataclass(frozen=True)
class Pool:
    """The diagonal after pooling the source.

    Attributes:
        kind: ``"max"`` or ``"avg"`` (a window), or ``"global_avg"`` / ``"global_max"``.
        kernel, stride, padding: the window per spatial dimension (empty when global).
    """

    kind: str
    kernel: tuple[int, ...] = ()
    stride: tuple[int, ...] = ()
    padding: tuple[int, ...] = ()

    @classmethod
    def window(cls, kind: str, kernel_size, stride=None, padding=0, dim: int = 2) -> "Pool":
        """A ``kind`` pooling window, the same size in every dimension."""
        k = _dims(kernel_size, dim)
        return cls(kind, k, k if stride is None else _dims(stride, dim), _dims(padding, dim))

    @property
    def is_global(self) -> bool:
        return self.kind.startswith("global_")

    def unit_spec(self):
        """The ``pool`` attribute of a unit-level edge."""
        if self.is_global:
            return self.kind
        return {"kind": self.kind, "kernel": list(self.kernel), "stride": list(self.stride),
                "padding": list(self.padding)}

    @classmethod
    def from_unit_spec(cls, spec) -> "Pool":
        if isinstance(spec, str):
            return cls(spec)
        return cls(spec["kind"], tuple(spec["kernel"]), tuple(spec["stride"]),
                   tuple(spec["padding"]))


@dataclass(frozen=True)
class PerUnit:
    """An activation and a normalization of each unit of a node.

    Attributes:
        act: the unit-level activation (``"identity"``, ``"relu"``, ...).
        norm: ``None`` or ``"batchnorm"``.
        norm_of: ``f(module) -> the normalization module`` whose weights and statistics
            the node takes; default: the op's module itself.
    """

    act: str = "identity"
    norm: str | None = None
    norm_of: Callable | None = field(default=None, compare=False, repr=False)


Form = Union[ConvBlock, DenseBlock, IdentityBlock, EmptyBlock, Pool, PerUnit]
