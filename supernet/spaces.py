"""The space registry (as timm's model registry): register by decorator, create by name.

Examples:
    >>> from supernet.spaces import SPACES, register_space, create_space, list_spaces
    >>> from supernet import Graph
    >>> @register_space("toy_chain")
    ... def toy_chain(width=8):
    ...     g = Graph("layer", name="toy_chain")
    ...     g.add_input("x", channels=3)
    ...     g.add_node("h", channels=width)
    ...     g.add_edge("x", "h", ["conv_3x3", "conv_1x1"])
    ...     g.set_outputs(["h"])
    ...     return g
    >>> "toy_chain" in list_spaces()
    True
    >>> create_space("toy_chain", width=4).node("h")["channels"]
    4
    >>> list_spaces("toy_*")
    ['toy_chain']
    >>> _ = SPACES.unregister("toy_chain")  # leave the registry as it was
"""

from __future__ import annotations

import inspect
from typing import Callable, NamedTuple

from supernet.errors import ConfigError
from supernet.registry import Registry

__all__ = [
    "register_space",
    "create_space",
    "list_spaces",
    "space_entry",
    "encode",
    "decode",
    "Example",
    "space_example",
    "SpaceEntry",
    "SPACES",
]


class SpaceEntry(NamedTuple):
    """A registered space: its builder and, where it has them, its text form and example."""

    build: Callable
    encode: Callable | None = None
    decode: Callable | None = None
    example: Callable | None = None


#: The spaces. Installed packages add theirs through the ``supernet.spaces`` entry-point
#: group (the bundled library, :mod:`search_spaces`, is one).
SPACES: Registry[SpaceEntry] = Registry(
    "space", hint="register one with @supernet.spaces.register_space",
    entry_points="supernet.spaces",
)


class Example(NamedTuple):
    """A small instance of a space and inputs for it, used by the registry-wide tests.

    Attributes:
        kwargs: keyword arguments of the builder for a small, fast instance (also passed to
            ``decode``, those it takes).
        inputs: ``inputs(graph) -> (args, kwargs)``: example inputs of the compiled module,
            ``module(*args, **kwargs)`` (e.g. ``kwargs={"edge_index": ...}`` for a GNN).
    """

    kwargs: dict
    inputs: Callable


def register_space(
    name: str,
    override: bool = False,
    encode: Callable | None = None,
    decode: Callable | None = None,
    example: Callable | None = None,
):
    """Decorator registering a function ``(**kw) -> supernet.Graph`` as space ``name``.

    Args:
        encode: ``encode(graph) -> str``, the space's text form of a discretized graph
            (a DARTS genotype, a NAS-Bench-201 arch string).
        decode: ``decode(text, **kw) -> supernet.Graph``, its inverse.
        example: ``example() -> Example(kwargs, inputs)`` (or a plain 2-tuple): a small
            instance and inputs for it. The registry-wide tests build, compile, run and
            export every space with it, and fail for a space that has none.

    The builder should set ``graph.set_meta(space=name)`` so that :func:`encode` finds it.
    """

    def wrap(fn):
        SPACES.register(name, SpaceEntry(fn, encode, decode, example), override=override)
        return fn

    return wrap


def _codec(name: str | None, which: str, what: str) -> Callable:
    fn = getattr(SPACES.resolve(name), which) if name and name in SPACES else None
    if fn is None:
        have = [n for n, e in SPACES.items() if getattr(e, which) is not None]
        raise ConfigError(
            f"space {name!r} has no text form to {what}; spaces that have one: {have}"
        )
    return fn


def encode(graph) -> str:
    """The text form (genotype, arch string) of a discretized graph of a registered space."""
    return _codec(graph.meta.get("space"), "encode", "encode to")(graph)


def decode(space: str, text: str, **kwargs):
    """The graph of space ``space`` described by ``text``."""
    space_entry(space)
    fn = _codec(space, "decode", "decode from")
    _check_kwargs(f"space {space!r}: decode", fn, kwargs)
    return fn(text, **kwargs)


def list_spaces(filter: str | None = None) -> list[str]:
    """Registered space names, sorted; ``filter`` is a glob such as ``"darts*"``."""
    return SPACES.list(filter)


def space_entry(name: str) -> Callable:
    """The registered builder of ``name``; fails with the list of choices."""
    return SPACES.resolve(name).build


def space_example(name: str) -> Example:
    """The :class:`Example` registered with space ``name``.

    Raises:
        ConfigError: the space was registered without ``example=``.
    """
    example = SPACES.resolve(name).example
    if example is None:
        raise ConfigError(
            f"space {name!r} has no example; add one to its registration: "
            f"register_space({name!r}, example=fn) with fn() -> Example(kwargs, inputs), "
            "kwargs of a small instance and inputs(graph) -> (args, kwargs) for its module"
        )
    return Example(*example())


def create_space(name: str, **kwargs):
    """Build the graph of space ``name`` with keyword arguments ``kwargs``."""
    fn = space_entry(name)
    _check_kwargs(f"space {name!r}", fn, kwargs)
    return fn(**kwargs)


def _check_kwargs(what: str, fn: Callable, kwargs: dict) -> None:
    """Raise :class:`ConfigError` for keyword arguments ``fn`` does not take."""
    params = inspect.signature(fn).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(kwargs) - set(params))
        if unknown:
            raise ConfigError(
                f"{what} does not take argument(s) {unknown}; it takes {list(params)}"
            )
