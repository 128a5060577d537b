"""The shared pieces of the cost model: the :class:`Cost` record and the per-module-type
registry of counting rules.

They live apart from :mod:`supernet.cost` so that an op module can register the rule of its
own module classes next to their definitions (``supernet.ops`` imports this module, and
:mod:`supernet.cost` imports ``supernet.ops``; both point here). The rules of torch's own
modules (convolutions, linear layers, norms, pools, activations, ``nn.Sequential``) are
registered by :mod:`supernet.cost.rules`, which :mod:`supernet.cost` loads; count through
:mod:`supernet.cost`, which re-exports everything here under the same names.

A rule is ``rule(module, shape) -> (out_shape, Cost)`` with ``shape`` the per-sample input
shape ``(C, *spatial)`` (no batch dimension). Rules are looked up by the module's type, then
its base classes, so a subclass of ``nn.Conv2d`` is counted as a convolution.

Examples:
    >>> import math
    >>> import torch.nn as nn
    >>> class Scale(nn.Module):
    ...     def forward(self, x):
    ...         return 2 * x
    >>> @register_module_cost(Scale)
    ... def _scale(m, shape):
    ...     return shape, Cost(other=math.prod(shape))
    >>> module_cost(Scale(), (4, 8))[1].other
    32
    >>> _ = unregister_module_cost(Scale)
"""

from __future__ import annotations

from dataclasses import astuple, dataclass
from typing import Callable

from supernet.errors import SupernetError
from supernet.registry import Registry

__all__ = [
    "Cost",
    "MODULE_COSTS",
    "register_module_cost",
    "unregister_module_cost",
    "module_rule",
    "module_cost",
    "conv_out",
    "parameter_count",
]


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


def _type_name(t: type) -> str:
    return f"{t.__module__}.{t.__qualname__}"


#: Module type (by its qualified name) -> ``(type, rule)``.
MODULE_COSTS: Registry = Registry(
    "module cost rule",
    hint="register one with @supernet.cost.register_module_cost(YourModule)",
)


def register_module_cost(*types: type, override: bool = False):
    """Decorator registering ``rule(module, shape) -> (out_shape, Cost)`` for ``types``.

    A type that has a rule already is refused unless ``override=True`` (a class defined
    again under the same name, as in a re-run test, replaces the old one's rule).
    """

    def wrap(fn: Callable):
        for t in types:
            old = MODULE_COSTS.get(_type_name(t))
            MODULE_COSTS.register(_type_name(t), (t, fn),
                                  override=override or (old is not None and old[0] is not t))
        return fn

    return wrap


def unregister_module_cost(t: type) -> Callable:
    """Remove the rule of module type ``t``; returns it."""
    return MODULE_COSTS.unregister(_type_name(t))[1]


def module_rule(t: type) -> Callable | None:
    """The rule counting modules of type ``t``: its own, else that of its closest base."""
    for base in t.__mro__:
        entry = MODULE_COSTS.get(_type_name(base))
        if entry is not None and entry[0] is base:
            return entry[1]
    return None


def module_cost(module, shape: tuple) -> tuple[tuple, Cost]:
    """Output shape and cost of ``module`` on a per-sample input of ``shape``."""
    rule = module_rule(type(module))
    if rule is None:
        raise SupernetError(
            f"no cost rule for module type {type(module).__name__}; register one with "
            "@supernet.cost.register_module_cost(YourModule) (rule(module, shape) -> "
            "(out_shape, Cost)), or give the op its own with register_op(name, cost=rule)"
        )
    return rule(module, tuple(shape))


def parameter_count(module) -> int:
    """Number of parameters of ``module`` (trainable or not)."""
    return sum(p.numel() for p in module.parameters())


def conv_out(size: int, kernel: int, stride: int, padding: int, dilation: int = 1,
             ceil_mode: bool = False) -> int:
    """Output length of a convolution or pooling window along one dimension."""
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out
