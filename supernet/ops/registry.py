"""The op registry: candidate operations resolved by name.

An op is a builder ``build(C_in, C_out, **args) -> nn.Module`` plus a few facts the engine
needs without building it (does it keep the channel count, is it the zero op, which
context tensors does it read). Users extend the registry with :func:`register_op`.

Examples:
    >>> import torch
    >>> from supernet.ops import register_op, build_op, list_ops
    >>> @register_op("my_double", same_channels=True)
    ... def my_double(C_in, C_out, stride=1):
    ...     return torch.nn.Identity() if stride == 1 else torch.nn.AvgPool2d(stride)
    >>> "my_double" in list_ops()
    True
    >>> build_op("my_double", 4, 4, {})
    Identity()
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Callable

import torch.nn as nn

from supernet.errors import (
    DuplicateNameError,
    GraphError,
    ShapeError,
    UnknownNameError,
    did_you_mean,
)

__all__ = ["OpSpec", "register_op", "resolve_op", "build_op", "list_ops", "unregister_op"]


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
        zero_output: optional ``f(module)`` that makes the module output zeros while
            keeping it trainable; used by function-preserving creation.
        doc: one-line description.
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


_REGISTRY: dict[str, OpSpec] = {}


def register_op(
    name: str,
    *,
    same_channels: bool = False,
    zero: bool = False,
    identity: bool = False,
    context: tuple[str, ...] = (),
    zero_output: Callable[[nn.Module], None] | None = None,
    override: bool = False,
):
    """Decorator registering ``build(C_in, C_out, **args)`` under ``name``."""

    def wrap(build: Callable[..., nn.Module]):
        if name in _REGISTRY and not override:
            raise DuplicateNameError(
                f"op {name!r} is registered already; pass override=True to replace it"
            )
        sig = inspect.signature(build)
        params = tuple(p for p in sig.parameters if p not in ("C_in", "C_out"))
        doc = (inspect.getdoc(build) or "").split("\n")[0]
        _REGISTRY[name] = OpSpec(
            name, build, same_channels, zero, identity, tuple(context), zero_output, doc, params
        )
        return build

    return wrap


def unregister_op(name: str) -> None:
    """Remove ``name`` from the registry (mostly for tests)."""
    resolve_op(name)
    del _REGISTRY[name]


def list_ops(filter: str | None = None) -> list[str]:
    """Registered op names, sorted; ``filter`` keeps names containing it."""
    return sorted(n for n in _REGISTRY if filter is None or filter in n)


def resolve_op(name: str, where: str = "") -> OpSpec:
    """The :class:`OpSpec` of ``name``; fails with the list of known ops."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        at = f"{where}: " if where else ""
        raise UnknownNameError(
            f"{at}could not resolve op {name!r} among choices {list_ops()}."
            f"{did_you_mean(name, _REGISTRY)} Register your own with @supernet.register_op."
        ) from None


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
