"""The compiler registry: one :func:`compile` for every level, a compiler per level.

Examples:
    >>> from supernet import Graph
    >>> from supernet.compiler import COMPILERS, compile
    >>> COMPILERS.list()
    ['channel', 'layer', 'neuron']
    >>> g = Graph("layer", name="g")
    >>> g.nx.graph["level"] = "cell"  # a level with no compiler
    >>> compile(g)
    Traceback (most recent call last):
    ...
    supernet.errors.UnknownNameError: g: could not resolve compiler of level 'cell' among
    ['channel', 'layer', 'neuron']; register one with @supernet.compiler.register_compiler(level)
"""

from __future__ import annotations

from typing import Callable

from supernet.compiler.module import GraphModule
from supernet.registry import Registry

__all__ = ["COMPILERS", "compile", "register_compiler"]

#: Level name -> ``compiler(graph, **kwargs) -> GraphModule``.
COMPILERS: Registry[Callable[..., GraphModule]] = Registry(
    "compiler of level", hint="register one with @supernet.compiler.register_compiler(level)"
)


def register_compiler(level: str, override: bool = False):
    """Decorator registering the compiler of ``level`` graphs.

    Raises:
        DuplicateNameError: ``level`` has a compiler already and ``override`` is False.
    """
    return COMPILERS.register(level, override=override)


def compile(graph, **kwargs) -> GraphModule:
    """Compile ``graph`` to an ``nn.Module`` (a :class:`GraphModule`).

    The execution schedule is computed here, once; ``forward`` only runs it.

    Raises:
        UnknownNameError: no compiler is registered for ``graph.level``.
    """
    return COMPILERS.resolve(graph.level, where=graph.name)(graph, **kwargs)
