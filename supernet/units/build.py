"""Building channel- and neuron-level graphs: groups of units and blocks of connections.

These functions add nodes and edges to a :class:`supernet.Graph` of level ``"channel"`` or
``"neuron"`` following the schema in :mod:`supernet.schema`. Connectivity is given as a
whole mask per block (``"full"``, a density, a dense array or a sparse matrix).

Examples:
    >>> from supernet import Graph
    >>> from supernet.units import add_input, add_group, connect
    >>> g = Graph("neuron", name="mlp")
    >>> add_input(g, "x", 4)
    >>> add_group(g, "h", 8, act="relu")
    >>> add_group(g, "y", 2)
    >>> connect(g, "x", "h", density=0.5, seed=0)
    >>> connect(g, "h", "y")
    >>> g.set_outputs(["y"])
    >>> g.edge("x", "h")["mask"].nnz, g.edge("h", "y")["mask"].nnz
    (16, 16)
"""

from __future__ import annotations

import math

import numpy as np

from supernet.errors import DuplicateNameError, GraphError
from supernet.graph import Graph
from supernet.ops.activations import resolve_activation
from supernet.registry import Registry
from supernet.units.masks import (
    as_mask,
    block_mask,
    diagonal_mask,
    entry_keys,
    full_mask,
    random_mask,
)

__all__ = [
    "UNIT_LEVELS",
    "EDGE_KINDS",
    "add_input",
    "add_group",
    "connect",
    "mlp",
    "units_of",
    "taps",
    "mask_shape",
    "edge_key",
    "check_unit_graph",
    "connection_ids",
    "columns_per_unit",
]

UNIT_LEVELS = ("channel", "neuron")
EDGE_KINDS = ("dense", "conv", "identity")
NORMS = (None, "batchnorm")


def check_unit_graph(graph, what: str = "this function") -> None:
    if graph.level not in UNIT_LEVELS:
        raise GraphError(
            f"{graph.name}: {what} works on channel- or neuron-level graphs, got a "
            f"{graph.level!r}-level graph; lower it first with supernet.lowering()"
        )


def edge_key(u: str, v: str) -> str:
    """The key of edge ``u -> v`` in gate tables and score dicts."""
    return f"{u}->{v}"


def units_of(graph, node: str) -> np.ndarray:
    """The unit ids of ``node`` (an int64 array in tensor order)."""
    return graph.node(node)["units"]


def taps(edge: dict) -> int:
    """Scalar weights per kernel of a conv edge (1 for other kinds)."""
    return math.prod(edge["kernel"]) if edge.get("kind") == "conv" else 1


#: Mask columns per source unit, by level: a channel-level connection is a whole kernel
#: (one column), a neuron-level one is one tap of it (a column per tap).
COLUMNS: Registry = Registry("unit level", hint="the unit storage holds channel and neuron graphs")
COLUMNS.register("channel", lambda e: 1)
COLUMNS.register("neuron", taps)


def columns_per_unit(graph, edge: dict) -> int:
    """Mask columns of one source unit in edge attributes ``edge`` at ``graph``'s level."""
    return COLUMNS.resolve(graph.level, graph.name)(edge)


def mask_shape(graph, u: str, v: str) -> tuple[int, int]:
    """The shape the mask of edge ``u -> v`` must have."""
    e = graph.nx.edges[u, v]
    n_dst, n_src = len(units_of(graph, v)), len(units_of(graph, u))
    return (n_dst, n_src * columns_per_unit(graph, e))


def _ids(size, units, where) -> np.ndarray:
    if units is None:
        if size is None or int(size) < 0:
            raise GraphError(f"{where}: give size= (a count >= 0) or units= (a list of ids)")
        return np.arange(int(size), dtype=np.int64)
    ids = np.asarray(units, dtype=np.int64).reshape(-1)
    if len(np.unique(ids)) != len(ids):
        raise DuplicateNameError(f"{where}: unit ids repeat; give each unit its own id")
    if (ids < 0).any():
        raise GraphError(f"{where}: unit ids are non-negative integers")
    return ids


def add_input(graph, name: str, width: int, units=None, **attrs) -> None:
    """Add an input group: the ``width`` features (or channels) of a tensor the caller passes.

    Args:
        units: which of the ``width`` features the network reads (default: all of them).
    """
    check_unit_graph(graph, "add_input")
    ids = _ids(width, units, f"{graph.name}: input {name!r}")
    if len(ids) and ids.max() >= width:
        raise GraphError(f"{graph.name}: input {name!r}: unit ids index a tensor of width {width}")
    graph._new_node(name, kind="input", units=ids, next_id=int(width), width=int(width), **attrs)
    graph.set_inputs(graph.inputs + [name])


def add_group(graph, name: str, size: int | None = None, units=None, act: str = "identity",
              bias: bool = True, norm: str | None = None, gated: bool = False, **attrs) -> None:
    """Add a group of computed units (the channels of a conv layer or a dense layer's neurons).

    Args:
        size: number of units (ids ``0 .. size-1``), or
        units: explicit unit ids.
        act: activation name (:data:`ACTIVATIONS`).
        norm: ``None`` or ``"batchnorm"``.
        gated: give the units a keep/drop gate group (see :mod:`supernet.units.gates`).
    """
    check_unit_graph(graph, "add_group")
    where = f"{graph.name}: node {name!r}"
    ids = _ids(size, units, where)
    resolve_activation(act, where)
    if norm not in NORMS:
        raise GraphError(f"{where}: norm {norm!r} is not one of {list(NORMS)}")
    next_id = int(ids.max()) + 1 if len(ids) else 0
    graph._new_node(name, kind="units", units=ids, next_id=next_id, bias=bool(bias), act=act,
                    norm=norm, gated=bool(gated), **attrs)


def _dims(value, dim: int, where: str, name: str) -> list[int]:
    vals = [value] * dim if isinstance(value, int) else list(value)
    if len(vals) != dim or not all(isinstance(v, (int, np.integer)) for v in vals):
        raise GraphError(f"{where}: {name} must be an int or a list of {dim} ints, got {value!r}")
    return [int(v) for v in vals]


def conv_attrs(kernel, stride=1, padding=None, dilation=1, groups=1, dim=None,
               where: str = "") -> dict:
    """Normalized conv attributes (lists per spatial dim)."""
    if dim is None:
        dim = 2 if isinstance(kernel, int) else len(kernel)
    if dim not in (1, 2):
        raise GraphError(f"{where}: conv edges are 1-D or 2-D, got dim={dim}")
    k = _dims(kernel, dim, where, "kernel")
    d = _dims(dilation, dim, where, "dilation")
    if padding is None:
        padding = [di * (ki - 1) // 2 for ki, di in zip(k, d)]
    return {"kernel": k, "stride": _dims(stride, dim, where, "stride"),
            "padding": _dims(padding, dim, where, "padding"), "dilation": d,
            "groups": int(groups)}


def normalize_pool(pool, where: str):
    """``None``, ``"global_avg"``, ``"global_max"`` or a dict with list-valued sizes."""
    if pool is None or pool in ("global_avg", "global_max"):
        return pool
    if isinstance(pool, dict) and pool.get("kind") in ("max", "avg"):
        dim = 2 if isinstance(pool.get("kernel"), int) else len(pool.get("kernel", [0, 0]))
        kernel = _dims(pool.get("kernel"), dim, where, "pool kernel")
        stride = _dims(pool.get("stride", kernel), dim, where, "pool stride")
        padding = _dims(pool.get("padding", 0), dim, where, "pool padding")
        return {"kind": pool["kind"], "kernel": kernel, "stride": stride, "padding": padding}
    raise GraphError(
        f"{where}: pool {pool!r} is not None, 'global_avg', 'global_max' or "
        "{'kind': 'max'|'avg', 'kernel': k, 'stride': s, 'padding': p}"
    )


def connect(graph, u: str, v: str, kind: str = "dense", mask="full", density: float | None = None,
            seed=None, kernel=None, stride=1, padding=None, dilation=1, groups: int = 1,
            pool=None, offset: int = 0, gated: bool = False, port: int | None = None,
            **attrs) -> None:
    """Add the block of connections ``u -> v``.

    Args:
        kind: ``"dense"``, ``"conv"`` (give ``kernel``) or ``"identity"``.
        mask: ``"full"``, a dense boolean array or a sparse matrix of the schema's shape.
        density: instead of ``mask``, a uniformly random mask with this fraction of entries.
        offset: identity edges: source unit ``i`` feeds destination ``i + offset`` (a concat).
        pool: pooling of the source before the edge (``"global_avg"``, ...).
        gated: give every connection a keep/drop gate.
    """
    check_unit_graph(graph, "connect")
    where = f"{graph.name}: edge {u}->{v}"
    graph.node(u), graph.node(v)
    if graph.nx.has_edge(u, v):
        raise DuplicateNameError(f"{where} exists already; edit its mask with AddConnections")
    if graph.nx.nodes[v].get("kind") == "input":
        raise GraphError(f"{where} points into input node {v!r}; inputs are fed by the caller")
    if kind not in EDGE_KINDS:
        raise GraphError(f"{where}: kind {kind!r} is not one of {list(EDGE_KINDS)}")
    n_dst, n_src = len(units_of(graph, v)), len(units_of(graph, u))
    attrs = dict(attrs, kind=kind)
    per = 1
    if kind == "conv":
        if kernel is None:
            raise GraphError(f"{where}: a conv edge needs kernel= (e.g. 3 or [3, 3])")
        attrs.update(conv_attrs(kernel, stride, padding, dilation, groups, where=where))
        per = columns_per_unit(graph, attrs)
        g = attrs["groups"]
        if g < 1 or n_src % g or n_dst % g:
            raise GraphError(
                f"{where}: groups={g} must divide both widths ({n_src} -> {n_dst} units)"
            )
    shape = (n_dst, n_src * per)
    if density is not None:
        m = random_mask(*shape, density, seed)
        if kind == "conv" and attrs["groups"] > 1:
            m = m.multiply(block_mask(n_dst, n_src, attrs["groups"], per)).tocsr()
    elif isinstance(mask, str) and mask == "full":
        if kind == "identity":
            if n_src + offset > n_dst:
                raise GraphError(
                    f"{where}: an identity edge maps {n_src} source units from position "
                    f"{offset}, but {v!r} has only {n_dst}; widen {v!r} or give offset/mask"
                )
            m = diagonal_mask(n_src, offset, n_dst)
        elif kind == "conv" and attrs["groups"] > 1:
            m = block_mask(n_dst, n_src, attrs["groups"], per)
        else:
            m = full_mask(*shape)
    else:
        m = as_mask(mask, shape, where)
    if port is None:
        ports = [d.get("port", 0) for _, _, d in graph.nx.in_edges(v, data=True)]
        port = max(ports, default=-1) + 1
    attrs["pool"] = normalize_pool(pool, where)
    graph.insert_edge(u, v, mask=m, gated=bool(gated), port=int(port), **attrs)
    graph.touch()


def mlp(sizes: list[int], level: str = "neuron", density=1.0, act: str = "relu",
        bias: bool = True, seed=None, name: str = "mlp"):
    """A multilayer perceptron ``sizes[0] -> ... -> sizes[-1]`` (last layer without act).

    Nodes are ``"x"``, ``"h1"``, ..., ``"y"``; every block has the given density, or
    ``density[i]`` for block ``i`` when it is a sequence (e.g. the Erdős–Rényi densities of
    :func:`supernet.units.sparsity.erk_densities`); each block holds exactly
    ``round(density * size)`` connections.

    Examples:
        >>> from supernet.units import mlp
        >>> g = mlp([784, 100, 10], density=0.1, seed=0)
        >>> [g.edge(u, v)["mask"].nnz for u, v in g.nx.edges]
        [7840, 100]
    """

    g = Graph(level, name=name)
    add_input(g, "x", sizes[0])
    names = ["x"] + [f"h{i}" for i in range(1, len(sizes) - 1)] + ["y"]
    per = list(density) if isinstance(density, (list, tuple, np.ndarray)) else \
        [density] * (len(sizes) - 1)
    if len(per) != len(sizes) - 1:
        raise GraphError(f"mlp: {len(per)} densities for {len(sizes) - 1} blocks; give one "
                         "density, or one per block")
    rng = np.random.default_rng(seed)
    for i, (n, size) in enumerate(zip(names[1:], sizes[1:])):
        add_group(g, n, size, act=act if n != "y" else "identity", bias=bias)
        d = None if per[i] >= 1.0 else float(per[i])
        connect(g, names[i], n, density=d, seed=int(rng.integers(2**31)))
    g.set_outputs(["y"])
    return g


def connection_ids(graph, u: str, v: str, entries=None):
    """``(dst ids, src ids, taps or None)`` of mask entries ``entries`` (default: all)."""
    e = graph.edge(u, v)
    m = e["mask"]
    keys = entry_keys(m)
    if entries is not None:
        keys = keys[np.asarray(entries, dtype=np.int64)]
    c = max(m.shape[1], 1)
    rows, cols = keys // c, keys % c
    per = columns_per_unit(graph, e)
    dst = graph.nx.nodes[v]["units"][rows]
    src = graph.nx.nodes[u]["units"][cols // per]
    return dst, src, (cols % per if per > 1 else None)
