"""The op registry: candidate operations resolved by name.

An op is a builder ``build(C_in, C_out, **args) -> nn.Module`` plus the facts the engine
needs without building it (does it keep the channel count, is it the zero op, which
context tensors does it read), and, optionally, how the cost model counts it (``cost=``)
and what it becomes at channel level (``lower=``, ``lift=``; see :mod:`supernet.ops.forms`).
Users extend the registry with :func:`register_op`; :data:`OPS` is the registry itself.

Examples:
    >>> import torch
    >>> from supernet.ops import register_op, build_op, list_ops, unregister_op
    >>> @register_op("my_double", same_channels=True)
    ... def my_double(C_in, C_out, stride=1):
    ...     return torch.nn.Identity() if stride == 1 else torch.nn.AvgPool2d(stride)
    >>> list_ops("my_*")
    ['my_double']
    >>> build_op("my_double", 4, 4, {})
    Identity()
    >>> unregister_op("my_double")
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Callable

import torch.nn as nn

from supernet.errors import GraphError, ShapeError
from supernet.registry import Registry

__all__ = [
    "OpSpec",
    "OPS",
    "register_op",
    "resolve_op",
    "build_op",
    "list_ops",
    "unregister_op",
    "bound_args",
]


@dataclass(frozen=True)
class OpSpec:
    """What the engine knows about a registered op.

    Attributes:
        name: registry name, e.g. ``"sep_conv_3x3"``.
        build: ``build(C_in, C_out, **args) -> nn.Module``.
        same_channels: the op cannot change the channel count (pools, identity).
        zero: the op outputs zeros (the ``none`` op); mixtures skip computing it.
        identity: the op is the identity at stride 1 (drop-path spares it).
        context: names of context tensors its forward reads as keyword arguments
            (e.g. ``("edge_index",)`` for graph convolutions).
        zero_output: optional ``f(module) -> None`` that makes the module output zeros
            while keeping it trainable; used by function-preserving creation.
        doc: one-line description.
        params: the builder's arguments besides ``C_in`` and ``C_out``.
        cost: optional ``rule(C_in, C_out, args, shape) -> (out_shape, Cost)`` counting the
            op without building it; without one, the cost model builds the op and counts
            its modules by their types' rules.
        lower: optional ``rule(C_in, C_out, args) -> form | None``: the op at channel level
            (a record of :mod:`supernet.ops.forms`; ``args`` with the defaults filled in).
        lift: optional ``rule(form) -> args | None``: the op that holds a channel-level
            form, for lifting edges and nodes that do not come from this op.
    """

    name: str
    build: Callable[..., nn.Module]
    same_channels: bool = False
    zero: bool = False
    identity: bool = False
    context: tuple[str, ...] = ()
    zero_output: Callable[[nn.Module], None] | None = None
    doc: str = ""
    params: tuple[str, ...] = field(default=())
    cost: Callable | None = None
    lower: Callable | None = None
    lift: Callable | None = None


#: Every registered op, by name.
OPS: Registry[OpSpec] = Registry("op", hint="register your own with @supernet.register_op")


def register_op(
    name: str,
    *,
    same_channels: bool = False,
    zero: bool = False,
    identity: bool = False,
    context: tuple[str, ...] = (),
    zero_output: Callable[[nn.Module], None] | None = None,
    cost: Callable | None = None,
    lower: Callable | None = None,
    lift: Callable | None = None,
    override: bool = False,
):
    """Decorator registering ``build(C_in, C_out, **args)`` under ``name``.

    A name registered already is refused unless ``override=True``. ``cost``, ``lower`` and
    ``lift`` are the op's rules for the cost model and for lowering (see :class:`OpSpec`).
    """

    def wrap(build: Callable[..., nn.Module]):
        sig = inspect.signature(build)
        params = tuple(p for p in sig.parameters if p not in ("C_in", "C_out"))
        doc = (inspect.getdoc(build) or "").split("\n")[0]
        OPS.register(name, OpSpec(name, build, same_channels, zero, identity, tuple(context),
                                  zero_output, doc, params, cost, lower, lift),
                     override=override)
        return build

    return wrap


def unregister_op(name: str) -> None:
    """Remove ``name`` from the registry (mostly for tests)."""
    OPS.unregister(name)


def list_ops(filter: str | None = None) -> list[str]:
    """Registered op names, sorted; ``filter`` is a shell-style glob (``"mbconv_*"``)."""
    return OPS.list(filter)


def resolve_op(name: str, where: str = "") -> OpSpec:
    """The :class:`OpSpec` of ``name``; fails with the list of known ops."""
    return OPS.resolve(name, where)


def bound_args(spec: OpSpec, C_in: int, C_out: int, args: dict, where: str = "") -> dict:
    """``args`` of op ``spec`` with the builder's defaults filled in (unknown ones dropped)."""
    sig = inspect.signature(spec.build)
    known = {k: v for k, v in args.items() if k in spec.params}
    try:
        bound = sig.bind(C_in, C_out, **known)
    except TypeError as exc:
        at = f"{where}: " if where else ""
        raise GraphError(f"{at}op {spec.name!r} cannot take arguments {args}: {exc}") from None
    bound.apply_defaults()
    return {k: v for k, v in bound.arguments.items() if k in spec.params}


def build_op(name: str, C_in: int, C_out: int, args: dict, where: str = "") -> nn.Module:
    """Build op ``name`` for ``C_in -> C_out`` channels with ``args``.

    Errors in the arguments are reported against ``where`` (an edge such as ``"x->h"``).
    """
    spec = resolve_op(name, where)
    at = f"{where}: " if where else ""
    unknown = [k for k in args if k not in spec.params]
    has_var_kw = any(
        p.kind is inspect.Parameter.VAR_KEYWORD
        for p in inspect.signature(spec.build).parameters.values()
    )
    if unknown and not has_var_kw:
        raise GraphError(
            f"{at}op {name!r} does not take argument(s) {unknown}; it takes {list(spec.params)}"
        )
    if spec.same_channels and C_in != C_out and not spec.zero:
        raise ShapeError(
            f"{at}op {name!r} keeps the channel count but the edge maps {C_in} -> {C_out} "
            "channels; use a convolution, or make both ends the same width"
        )
    try:
        return spec.build(C_in, C_out, **args)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise GraphError(f"{at}cannot build op {name!r}({C_in} -> {C_out}, {args}): {exc}") from exc
