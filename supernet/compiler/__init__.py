"""Compilers: graph -> ``nn.Module``, one per abstraction level."""

from __future__ import annotations

from typing import Callable

from ..errors import GraphError
from .module import GraphModule, full_version, module_key

__all__ = ["compile", "register_compiler", "GraphModule", "full_version", "module_key"]

_COMPILERS: dict[str, Callable] = {}


def register_compiler(level: str):
    """Decorator registering the compiler of ``level`` graphs."""

    def wrap(fn):
        _COMPILERS[level] = fn
        return fn

    return wrap


def compile(graph, **kwargs) -> GraphModule:
    """Compile ``graph`` to an ``nn.Module`` (a :class:`GraphModule`).

    The execution schedule is computed here, once; ``forward`` only runs it.
    """
    from . import layer  # noqa: F401  (registers the layer compiler)
    from .. import units  # noqa: F401  (registers the channel and neuron compilers)

    try:
        fn = _COMPILERS[graph.level]
    except KeyError:
        raise GraphError(
            f"no compiler for level {graph.level!r}; known: {sorted(_COMPILERS)}"
        ) from None
    return fn(graph, **kwargs)
