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
    "MAX_OPTION",
    "MAX_SIZE",
    "MAX_CONNECTIONS",
    "check_size",
    "check_connections",
    "check_names",
    "check_number",
]

#: Bound of every integer in the options of a space (``create_space``, ``decode``), checked
#: before its builder runs: a size or count past it could never be allocated, and would take
#: minutes or all memory to fail.
MAX_OPTION = 2 ** 32

#: The largest size or count a space option or text form gives by default (units of a group,
#: channels, cells, nodes, classes), as :func:`check_size` checks it.
MAX_SIZE = 2 ** 16

#: The most connections (mask entries) a channel- or neuron-level space builds.
MAX_CONNECTIONS = 2 ** 26


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
    """Build the graph of space ``name`` with keyword arguments ``kwargs``.

    Raises:
        ConfigError: an argument the builder does not take, an integer past
            :data:`MAX_OPTION` (at once, before the builder runs), or a value the builder
            refuses.

    Examples:
        >>> create_space("darts", layers=2 ** 63)
        Traceback (most recent call last):
        ...
        supernet.errors.ConfigError: space 'darts': layers=9223372036854775808 is past 4294967296, the bound of every integer option of a space...
    """
    fn = space_entry(name)
    _check_kwargs(f"space {name!r}", fn, kwargs)
    return fn(**kwargs)


def check_size(space: str, key: str, value, lo: int = 1, hi: int = MAX_SIZE) -> int:
    """``value`` as an int when it is one in ``[lo, hi]``; else a :class:`ConfigError`
    naming the space, the key and the bounds. For the builders of spaces, before they
    allocate.

    Examples:
        >>> check_size("toy", "width", 8)
        8
        >>> check_size("toy", "hidden[1]", 2 ** 40)
        Traceback (most recent call last):
        ...
        supernet.errors.ConfigError: toy: hidden[1]=1099511627776 is past its bound 65536
    """
    import numpy as np

    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or \
            value < lo:
        need = "a positive int" if lo == 1 else f"an int >= {lo}"
        raise ConfigError(f"{space}: {key} must be {need}, got {value!r:.60}")
    if value > hi:
        raise ConfigError(f"{space}: {key}={value} is past its bound {hi}")
    return int(value)


def check_number(space: str, key: str, value, lo: float = 0.0, hi: float = 1.0) -> float:
    """``value`` as a float when it is a real number in ``[lo, hi]`` (so not NaN); else a
    :class:`ConfigError` naming the space and the key.

    Examples:
        >>> check_number("toy", "dropout", 0.25)
        0.25
        >>> check_number("toy", "dropout", float("nan"))
        Traceback (most recent call last):
        ...
        supernet.errors.ConfigError: toy: dropout must be a number in [0.0, 1.0], got nan
    """
    import numbers

    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not lo <= value <= hi:
        raise ConfigError(f"{space}: {key} must be a number in [{lo}, {hi}], got {value!r:.60}")
    return float(value)


def check_names(space: str, key: str, value, choices=None) -> list:
    """``value``, a name or a list of names (of ``choices`` when given), as a list; else a
    :class:`ConfigError` naming the space and the key.

    Examples:
        >>> check_names("toy", "gated", "units", ("units", "connections"))
        ['units']
        >>> check_names("toy", "ops", 0.5)
        Traceback (most recent call last):
        ...
        supernet.errors.ConfigError: toy: ops must be a name or a list of names, got 0.5
    """
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"{space}: {key} must be a name or a list of names, got "
                          f"{value!r:.60}")
    bad = [n for n in names if choices is not None and n not in choices]
    if bad:
        raise ConfigError(f"{space}: {key}={list(names)}: unknown {bad}; choose from "
                          f"{list(choices)}")
    return list(names)


def check_connections(space: str, count: int, what: str = "") -> None:
    """Refuse a space whose masks would hold more than :data:`MAX_CONNECTIONS` entries,
    before they are allocated."""
    if count > MAX_CONNECTIONS:
        raise ConfigError(
            f"{space}: {what + ' make ' if what else ''}{count} connections, more than the "
            f"{MAX_CONNECTIONS} (MAX_CONNECTIONS) a space builds; make the groups narrower")


def _check_kwargs(what: str, fn: Callable, kwargs: dict) -> None:
    """Raise :class:`ConfigError` for keyword arguments ``fn`` does not take, and for an
    integer anywhere in them past :data:`MAX_OPTION`."""
    params = inspect.signature(fn).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(kwargs) - set(params))
        if unknown:
            raise ConfigError(
                f"{what} does not take argument(s) {unknown}; it takes {list(params)}"
            )
    for key, value in kwargs.items():
        _check_ints(what, key, value, 0)


def _check_ints(what: str, key: str, value, depth: int) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_OPTION:
        raise ConfigError(
            f"{what}: {key}={value!r:.40} is past {MAX_OPTION}, the bound of every integer "
            "option of a space (a size or count past it cannot be built)")
    if isinstance(value, (list, tuple, dict)):
        if depth > 8:
            raise ConfigError(f"{what}: {key} is nested more than 8 deep")
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for k, v in items:
            _check_ints(what, f"{key}[{k!r}]", v, depth + 1)
