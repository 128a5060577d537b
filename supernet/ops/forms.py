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
  only as the single in-edge of a node without an op of its own);
* :class:`Composite` -- a small unit graph of its own: :class:`Stage` nodes joined by
  :class:`Link` blocks (a separable conv is ReLU, depthwise conv, pointwise conv and BN,
  twice). The op's input feeds the links whose source is ``"in"``; the last stage is the
  op's output, added into the edge's destination by an identity block.

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
    "Stage",
    "Link",
    "Composite",
    "chain",
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


@dataclass(frozen=True)
class Stage:
    """A node inside a :class:`Composite`: ``width`` units, their activation and norm.

    Attributes:
        name: its name inside the op (the lowered node is named after the edge and it).
        norm_of: ``f(module) -> the normalization module`` (its weights, statistics,
            ``eps`` and ``momentum`` go to the node).
    """

    name: str
    width: int
    act: str = "identity"
    norm: str | None = None
    norm_of: Callable | None = field(default=None, compare=False, repr=False)
    eps: float = 1e-5
    momentum: float = 0.1


@dataclass(frozen=True)
class Link:
    """A block inside a :class:`Composite`, from ``src`` (``"in"`` or a stage) to ``dst``.

    Attributes:
        block: a :class:`ConvBlock`, :class:`DenseBlock`, :class:`IdentityBlock` or
            :class:`Pool` (of ``src``, before an identity block).
        pool: for a weighted block, a :class:`Pool` of the source applied first.
        weight: ``f(module) -> tensor`` of the block's whole weight (``(width of dst,
            width of src / groups, *kernel)``); default: ``block.weights(module).weight``.
        bias: ``f(module) -> tensor or None``, added to ``dst``'s bias; default: the bias
            of ``block.weights(module)``.
    """

    src: str
    dst: str
    block: "ConvBlock | DenseBlock | IdentityBlock | Pool"
    pool: "Pool | None" = None
    weight: Callable | None = field(default=None, compare=False, repr=False)
    bias: Callable | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Composite:
    """An op that is a small unit graph: ``stages`` in order, the last one its output."""

    stages: tuple[Stage, ...]
    links: tuple[Link, ...]

    @property
    def output(self) -> Stage:
        return self.stages[-1]


def chain(*steps) -> Composite:
    """A :class:`Composite` that is a chain: ``steps`` are ``(block, stage)`` or
    ``(block, stage, link options)`` pairs, each block reading the previous stage (the op's
    input first).

    Examples:
        >>> c = chain((IdentityBlock(), Stage("relu", 4, "relu")),
        ...           (ConvBlock.square(3, bias=False), Stage("bn", 8, norm="batchnorm")))
        >>> [(l.src, l.dst) for l in c.links], c.output.name
        ([('in', 'relu'), ('relu', 'bn')], 'bn')
    """
    stages, links, prev = [], [], "in"
    for block, stage, *options in steps:
        links.append(Link(prev, stage.name, block, **(options[0] if options else {})))
        stages.append(stage)
        prev = stage.name
    return Composite(tuple(stages), tuple(links))


Form = Union[ConvBlock, DenseBlock, IdentityBlock, EmptyBlock, Pool, PerUnit, Composite]
