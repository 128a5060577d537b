"""The compiler registry: one :func:`compile` for every level, a compiler per level."""

from __future__ import annotations

from typing import Callable

from supernet.compiler.module import GraphModule
from supernet.errors import GraphError

__all__ = ["compile", "register_compiler"]

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
    try:
        fn = _COMPILERS[graph.level]
    except KeyError:
        raise GraphError(
            f"no compiler for level {graph.level!r}; known: {sorted(_COMPILERS)}"
        ) from None
    return fn(graph, **kwargs)
