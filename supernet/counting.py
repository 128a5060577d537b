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

Counting conventions (:data:`CONVENTIONS`): the default, ``"thop"``, counts the
multiply-accumulates of convolutions and linear layers (bias additions left out) as thop
and fvcore do. Other conventions replace the rules of some module types
(``register_module_cost(T, convention=name)``); every other type keeps its default rule.
The convention in force is that of the innermost :func:`counting_convention` block (or
``module_cost(..., convention=name)``), so a rule that counts its children with
:func:`module_cost` counts them in the same convention. ``"nas-bench-201"`` is the
convention of the FLOPs NAS-Bench-201 (Dong & Yang, ICLR 2020) publishes, its counter
``get_model_infos`` (AutoDL-Projects, ``utils/flop_benchmark.py``): multiply-accumulates
of ``Conv1d``, ``Conv2d`` and ``Linear`` layers *plus one addition per output element for
a bias*; its figure is :attr:`Cost.macs` (divide by ``1e6`` for the benchmark's "MFLOPs").
That counter hooks pooling layers too but leaves them out of its sum, and counts no
normalization or activation, so :attr:`Cost.bn` and :attr:`Cost.pool` are not in it (they
are still counted, under their own fields).

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

import contextlib
import contextvars
from dataclasses import astuple, dataclass
from typing import Callable

from supernet.errors import ConfigError

from supernet.errors import SupernetError
from supernet.registry import Registry

__all__ = [
    "Cost",
    "CONVENTIONS",
    "DEFAULT_CONVENTION",
    "check_convention",
    "counting_convention",
    "current_convention",
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


#: Counting convention -> what it counts (see the module docstring).
CONVENTIONS = {
    "thop": "multiply-accumulates of convolutions and linear layers, bias additions left "
            "out (thop, fvcore; the 'FLOPs' or 'multi-adds' of DARTS-family papers)",
    "nas-bench-201": "multiply-accumulates plus bias additions of Conv1d, Conv2d and Linear "
                     "layers, pooling and normalization left out (the FLOPs NAS-Bench-201 "
                     "publishes, in units; the benchmark divides by 1e6)",
}
DEFAULT_CONVENTION = "thop"
_CONVENTION = contextvars.ContextVar("supernet_counting_convention", default=DEFAULT_CONVENTION)


def check_convention(convention: str, where: str = "cost") -> str:
    """``convention`` if it is one of :data:`CONVENTIONS`, else a :class:`ConfigError`."""
    if convention not in CONVENTIONS:
        raise ConfigError(f"{where}: counting convention {convention!r} is unknown; use one of "
                          f"{sorted(CONVENTIONS)}")
    return convention


def current_convention() -> str:
    """The counting convention in force (``"thop"`` outside :func:`counting_convention`)."""
    return _CONVENTION.get()


@contextlib.contextmanager
def counting_convention(convention: str | None):
    """Count in ``convention`` inside the block (``None``: keep the one in force).

    Examples:
        >>> import torch.nn as nn
        >>> fc = nn.Linear(4, 3)
        >>> module_cost(fc, (4,))[1].macs
        12
        >>> with counting_convention("nas-bench-201"):
        ...     module_cost(fc, (4,))[1].macs  # 12 multiply-adds and 3 bias additions
        15
    """
    if convention is None:
        yield current_convention()
        return
    token = _CONVENTION.set(check_convention(convention, "counting_convention"))
    try:
        yield convention
    finally:
        _CONVENTION.reset(token)


def _type_name(t: type, convention: str = DEFAULT_CONVENTION) -> str:
    name = f"{t.__module__}.{t.__qualname__}"
    return name if convention == DEFAULT_CONVENTION else f"{convention}:{name}"


#: Module type (by its qualified name, prefixed ``"convention:"`` for a rule of a convention
#: other than the default) -> ``(type, rule)``.
MODULE_COSTS: Registry = Registry(
    "module cost rule",
    hint="register one with @supernet.cost.register_module_cost(YourModule)",
)


def register_module_cost(*types: type, override: bool = False,
                         convention: str = DEFAULT_CONVENTION):
    """Decorator registering ``rule(module, shape) -> (out_shape, Cost)`` for ``types``.

    A type that has a rule already is refused unless ``override=True`` (a class defined
    again under the same name, as in a re-run test, replaces the old one's rule). With
    ``convention``, the rule counts ``types`` in that convention only.
    """
    check_convention(convention, "register_module_cost")

    def wrap(fn: Callable):
        for t in types:
            key = _type_name(t, convention)
            old = MODULE_COSTS.get(key)
            MODULE_COSTS.register(key, (t, fn),
                                  override=override or (old is not None and old[0] is not t))
        return fn

    return wrap


def unregister_module_cost(t: type, convention: str = DEFAULT_CONVENTION) -> Callable:
    """Remove the rule of module type ``t`` (in ``convention``); returns it."""
    return MODULE_COSTS.unregister(_type_name(t, convention))[1]


def module_rule(t: type, convention: str | None = None) -> Callable | None:
    """The rule counting modules of type ``t``: its own, else that of its closest base.

    In a convention other than the default, a type's (or a base's) rule of that convention
    comes before its default rule. ``convention``: default, the one in force.
    """
    convention = current_convention() if convention is None else convention
    names = [convention, DEFAULT_CONVENTION] if convention != DEFAULT_CONVENTION else [convention]
    for base in t.__mro__:
        for name in names:
            entry = MODULE_COSTS.get(_type_name(base, name))
            if entry is not None and entry[0] is base:
                return entry[1]
    return None


def module_cost(module, shape: tuple, convention: str | None = None) -> tuple[tuple, Cost]:
    """Output shape and cost of ``module`` on a per-sample input of ``shape``, counted in
    ``convention`` (default: the one in force, see :func:`counting_convention`)."""
    if convention is not None:
        with counting_convention(convention):
            return module_cost(module, shape)
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
