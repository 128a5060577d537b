"""The graph IR: a thin wrapper around :class:`networkx.DiGraph`.

A :class:`Graph` is data only: it never holds tensors or modules. It is compiled to an
``nn.Module`` by :func:`supernet.compile` and changed by the neural operators in
:mod:`supernet.edits`. Every change bumps :attr:`Graph.version`, so a compiled module knows
when it is stale.

The attribute schema of each level is documented in :mod:`supernet.schema`.

``graph.nx`` and the dicts :meth:`Graph.node` and :meth:`Graph.edge` return are for reading:
every change goes through a method of :class:`Graph` (the construction methods, the
attribute setters :meth:`~Graph.set_node_attrs`, :meth:`~Graph.set_edge_attrs` and
:meth:`~Graph.set_meta`, the raw :meth:`~Graph.insert_node` / :meth:`~Graph.insert_edge` of
the unit-level storage in :mod:`supernet.units` and :meth:`~Graph.from_parts` of the file
readers), each of which bumps :attr:`~Graph.version`.

Examples:
    >>> from supernet import Graph
    >>> g = Graph("layer", name="tiny")
    >>> g.add_input("x", channels=3)
    >>> g.add_node("h", channels=8)
    >>> g.add_edge("x", "h", ["conv_3x3", "skip_connect"])
    >>> g.set_outputs(["h"])
    >>> g.edge("x", "h")["ops"]
    ['conv_3x3', 'skip_connect']
    >>> g.version > 0
    True
"""

from __future__ import annotations

import copy
import itertools
from typing import Any, Iterable, Iterator

import networkx as nx
import numpy as np
import scipy.sparse

from supernet.codec import to_node_link
from supernet.errors import (
    CycleError,
    DuplicateNameError,
    EdgeNotFound,
    GraphError,
    NodeNotFound,
    did_you_mean,
)
from supernet.schema import LEVELS, MERGES, NODE_KINDS

__all__ = ["Graph"]

_graph_ids = itertools.count()


class Graph:
    """A structural-learning graph at one abstraction level.

    Args:
        level: ``"layer"``, ``"channel"`` or ``"neuron"``.
        name: a name used in messages and file names.

    Attributes:
        nx: the underlying :class:`networkx.DiGraph`. Read it freely; change it only
            through the methods of this class (which :mod:`supernet.edits` uses), which
            keep :attr:`version` in step.
        cells: cell templates (layer level), by name. A ``call`` node instantiates one.
        version: bumped by every structural or attribute change.
    """

    def __init__(self, level: str = "layer", name: str = "graph"):
        _check_level(level, name)
        self.nx = nx.DiGraph(level=level, name=name, inputs=[], outputs=[], meta={})
        self.cells: dict[str, Graph] = {}
        self.version = 0
        self.uid = next(_graph_ids)

    # ------------------------------------------------------------------ properties
    @property
    def level(self) -> str:
        return self.nx.graph["level"]

    @property
    def name(self) -> str:
        return self.nx.graph["name"]

    @property
    def inputs(self) -> list[str]:
        return list(self.nx.graph["inputs"])

    @property
    def outputs(self) -> list[str]:
        return list(self.nx.graph["outputs"])

    @property
    def meta(self) -> dict:
        """Free-form metadata (space name, constraints, ...); JSON-serializable."""
        return self.nx.graph["meta"]

    def touch(self) -> None:
        """Mark the graph as changed (bumps :attr:`version`)."""
        self.version += 1

    @classmethod
    def from_parts(
        cls,
        attrs: dict,
        nodes: Iterable[tuple[str, dict]],
        edges: Iterable[tuple[str, str, dict]],
        cells: dict[str, "Graph"] | None = None,
        version: int = 0,
    ) -> "Graph":
        """A graph holding exactly the given parts, as the file readers of :mod:`supernet.io`
        rebuild one: no attribute is added, dropped or checked against the schema (that is
        :func:`supernet.lint`'s job), but names are.

        Args:
            attrs: the graph attributes (``level``, ``name``, ``inputs``, ``outputs``,
                ``meta`` and any other).
            nodes: ``(name, attributes)`` in order.
            edges: ``(u, v, attributes)`` in order.
            cells: the cell templates, by name.
            version: the edit counter to restore.

        Raises:
            GraphError: an unknown level, a name that is not a string, a node named twice,
                an edge listed twice or to a node that is not there, an input or output that
                is not a node, a call node of a cell template that is not there.
        """
        attrs = dict(attrs)
        name = attrs.get("name", "graph")
        if not isinstance(name, str):
            raise GraphError(f"a graph's name is a string, got {name!r:.60}")
        g = cls(attrs.get("level"), name)
        for n, d in nodes:
            g.insert_node(n, **d)
        for u, v, d in edges:
            g.insert_edge(u, v, **d)
        for key in ("inputs", "outputs"):
            names = attrs.get(key, [])
            if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
                raise GraphError(f"{g.name}: {key} is a list of node names, got {names!r:.80}")
            missing = [n for n in names if n not in g.nx]
            if missing:
                raise NodeNotFound(f"{g.name}: {key} {missing} are not nodes of the graph")
        attrs["inputs"] = list(attrs.get("inputs", []))
        attrs["outputs"] = list(attrs.get("outputs", []))
        meta = attrs.get("meta") or {}
        if not isinstance(meta, dict):
            raise GraphError(f"{g.name}: meta is a dict, got {meta!r:.80}")
        attrs["meta"] = dict(meta)
        g.nx.graph.update(attrs)
        cells = dict(cells or {})
        for n, d in g.nx.nodes(data=True):
            if d.get("kind") == "call" and (not isinstance(d.get("cell"), str)
                                            or d["cell"] not in cells):
                raise GraphError(
                    f"{g.name}: call node {n!r} calls cell {d.get('cell')!r:.60}, which is not "
                    f"among the cell templates {sorted(cells)}")
        for cell_name, cell in cells.items():
            g.add_cell(cell_name, cell)
        if not isinstance(version, int) or isinstance(version, bool) or version < 0:
            raise GraphError(f"{g.name}: the version is a non-negative int, got {version!r:.40}")
        g.version = int(version)
        return g

    # ------------------------------------------------------------------ lookups
    def __contains__(self, node: object) -> bool:
        return node in self.nx

    def __len__(self) -> int:
        return self.nx.number_of_nodes()

    def __iter__(self) -> Iterator[str]:
        return iter(self.nx.nodes)

    def node(self, name: str) -> dict:
        """The attribute dict of node ``name`` (read it; change it with
        :meth:`set_node_attrs`); raises :class:`NodeNotFound`."""
        try:
            return self.nx.nodes[name]
        except KeyError:
            raise NodeNotFound(
                f"{self.name}: no node {name!r}.{did_you_mean(name, self.nx.nodes)} "
                f"Nodes: {_short(list(self.nx.nodes))}"
            ) from None

    def edge(self, u: str, v: str) -> dict:
        """The attribute dict of edge ``u -> v`` (read it; change it with
        :meth:`set_edge_attrs`); raises :class:`EdgeNotFound`."""
        self.node(u), self.node(v)
        if not self.nx.has_edge(u, v):
            succ = list(self.nx.successors(u))
            raise EdgeNotFound(
                f"{self.name}: no edge {u}->{v}; {u!r} feeds {_short(succ) or 'nothing'}"
            )
        return self.nx.edges[u, v]

    def in_edges(self, v: str) -> list[tuple[str, str]]:
        """In-edges of ``v`` in port order (the order a concat uses)."""
        preds = list(self.nx.predecessors(v))
        preds.sort(key=lambda u: self.nx.edges[u, v].get("port", 0))
        return [(u, v) for u in preds]

    def _in_edges_as_given(self, v: str) -> list[tuple[str, str]]:
        """:meth:`in_edges`, or in insertion order where the ports are not all ints (a
        graph read from a damaged file, shown before :func:`supernet.lint` says so)."""
        ports = [d.get("port", 0) for _, _, d in self.nx.in_edges(v, data=True)]
        if all(isinstance(p, (int, np.integer)) for p in ports):
            return self.in_edges(v)
        return [(u, v) for u in self.nx.predecessors(v)]

    def topological_order(self) -> list[str]:
        """Nodes in a deterministic topological order (ties broken by insertion order)."""
        index = {n: i for i, n in enumerate(self.nx.nodes)}
        try:
            return list(nx.lexicographical_topological_sort(self.nx, key=index.__getitem__))
        except nx.NetworkXUnfeasible:
            cycle = nx.find_cycle(self.nx)
            path = " -> ".join(str(u) for u, _ in cycle) + f" -> {cycle[0][0]}"
            raise CycleError(
                f"{self.name}: the graph has a cycle {path}; remove one of its edges"
            ) from None

    # ------------------------------------------------------------------ construction
    def add_input(self, name: str, channels: Any = None, shape: Any = None, **attrs) -> None:
        """Add a named graph input (a tensor fed by the caller)."""
        self._new_node(name, kind="input", channels=channels, shape=shape, **attrs)
        self.nx.graph["inputs"] = self.inputs + [name]

    def add_node(self, name: str, merge: str = "sum", channels: Any = None, **attrs) -> None:
        """Add a tensor node whose value merges its in-edges (``sum`` or ``concat``).

        Optional attributes: ``op``/``op_args`` (an op applied after the merge),
        ``train_only`` (skipped in eval mode) and anything JSON-serializable.
        """
        if merge not in MERGES:
            raise GraphError(
                f"{self.name}: node {name!r} has merge {merge!r}; expected one of {list(MERGES)}"
            )
        self._new_node(name, kind="merge", merge=merge, channels=channels, **attrs)

    def add_call(
        self,
        name: str,
        cell: str,
        args: list[str],
        bind: dict | None = None,
        weights: str | None = None,
        **attrs,
    ) -> None:
        """Add a node whose value is cell template ``cell`` applied to nodes ``args``.

        Args:
            cell: name of a template in :attr:`cells`.
            args: predecessor nodes, in the order of the template's inputs.
            bind: values for the template's ``"$symbol"`` attributes.
            weights: a weight-sharing key; calls with the same key share parameters
                (default: the node's own name, i.e. own weights).
        """
        if cell not in self.cells:
            raise GraphError(
                f"{self.name}: node {name!r} calls unknown cell {cell!r}; "
                f"add it first with graph.add_cell(name, template). Known: {sorted(self.cells)}"
            )
        template = self.cells[cell]
        if len(args) != len(template.inputs):
            raise GraphError(
                f"{self.name}: node {name!r} passes {len(args)} argument(s) to cell {cell!r}, "
                f"which takes {len(template.inputs)} ({template.inputs})"
            )
        for a in args:
            self.node(a)
        self._new_node(
            name, kind="call", cell=cell, args=list(args), bind=dict(bind or {}),
            weights=weights or name, **attrs,
        )
        for a in dict.fromkeys(args):
            self.nx.add_edge(a, name, ops=[], args={}, port=args.index(a))

    def add_cell(self, name: str, template: "Graph") -> None:
        """Register a cell template (a layer-level graph with inputs and one output)."""
        if template.level != "layer":
            raise GraphError(f"cell {name!r}: templates are layer-level graphs")
        if name in self.cells:
            raise DuplicateNameError(f"{self.name}: a cell named {name!r} exists already")
        self.cells[name] = template
        self.touch()

    def add_edge(
        self,
        u: str,
        v: str,
        ops: Iterable[str] | str,
        port: int | None = None,
        channels: Any = None,
        drop_path: bool = False,
        **args,
    ) -> None:
        """Add edge ``u -> v`` carrying candidate operations ``ops``.

        Args:
            port: position among the in-edges of ``v`` (concat order); default: last.
            channels: output channels of the edge, when not implied by ``v``.
            drop_path: apply drop-path to the edge's output in training (eval networks).
            **args: passed to every op's builder (``stride=2``, ``affine=False``, ...).
        """
        self.node(u), self.node(v)
        if self.nx.has_edge(u, v):
            raise DuplicateNameError(
                f"{self.name}: edge {u}->{v} exists already; add candidate ops to it with "
                "add_op, or route through an intermediate node"
            )
        if self.nx.nodes[v].get("kind") == "input":
            raise GraphError(f"{self.name}: edge {u}->{v} points into input node {v!r}")
        if self.nx.nodes[v].get("kind") == "call":
            raise GraphError(
                f"{self.name}: edge {u}->{v}: call node {v!r} takes its inputs from its "
                "'args'; give its arguments their own nodes instead"
            )
        ops = [ops] if isinstance(ops, str) else list(ops)
        if port is None:
            ports = [d.get("port", 0) for _, _, d in self.nx.in_edges(v, data=True)]
            port = max(ports, default=-1) + 1
        attrs: dict[str, Any] = {"ops": ops, "args": dict(args), "port": port}
        if channels is not None:
            attrs["channels"] = channels
        if drop_path:
            attrs["drop_path"] = True
        self.nx.add_edge(u, v, **attrs)
        self.touch()

    def set_inputs(self, names: list[str]) -> None:
        """Declare the graph's inputs, in order: nodes of kind ``input`` (the unit-level
        :func:`supernet.units.add_input` adds its nodes with :meth:`insert_node`)."""
        for n in names:
            if self.node(n).get("kind") != "input":
                raise GraphError(
                    f"{self.name}: node {n!r} is a {self.node(n).get('kind')!r} node, not an "
                    "input; add inputs with add_input()"
                )
        if len(set(names)) != len(names):
            raise DuplicateNameError(f"{self.name}: inputs {list(names)} name a node twice")
        self.nx.graph["inputs"] = list(names)
        self.touch()

    def set_outputs(self, names: list[str]) -> None:
        """Declare the graph's outputs, in order."""
        for n in names:
            self.node(n)
        self.nx.graph["outputs"] = list(names)
        self.touch()

    def remove_edge(self, u: str, v: str) -> None:
        self.edge(u, v)
        if self.nx.nodes[v].get("kind") == "call":
            raise GraphError(
                f"{self.name}: edge {u}->{v} is an argument of call node {v!r}; remove the node"
            )
        self.nx.remove_edge(u, v)
        self.touch()

    def remove_node(self, name: str) -> None:
        """Remove ``name`` and all its connections. Refuses graph inputs and outputs."""
        self.node(name)
        if name in self.nx.graph["inputs"]:
            raise GraphError(f"{self.name}: {name!r} is a graph input and cannot be removed")
        if name in self.nx.graph["outputs"]:
            raise GraphError(
                f"{self.name}: {name!r} is a graph output; set_outputs() without it first"
            )
        users = [v for v in self.nx.successors(name) if self.nx.nodes[v].get("kind") == "call"]
        if users:
            raise GraphError(
                f"{self.name}: node {name!r} is an argument of call node(s) {users}; "
                "remove those first"
            )
        self.nx.remove_node(name)
        self.touch()

    def set_ops(self, u: str, v: str, ops: list[str]) -> None:
        """Replace the candidate ops of edge ``u -> v`` (used by edits)."""
        self.edge(u, v)["ops"] = list(ops)
        self.touch()

    def _new_node(self, name: str, **attrs) -> None:
        self.insert_node(name, **{k: v for k, v in attrs.items() if v is not None})

    # ------------------------------------------------------------------ raw storage
    def insert_node(self, name: str, /, **attrs) -> None:
        """Add node ``name`` with exactly ``attrs``, at any level and of any kind.

        The storage of the unit levels (:mod:`supernet.units`) and :meth:`from_parts` build
        with it; at the layer level use :meth:`add_input`, :meth:`add_node` and
        :meth:`add_call`, which also check the attributes.
        """
        if not isinstance(name, str) or not name:
            raise GraphError(f"{self.name}: node names are non-empty strings, got {name!r}")
        if name in self.nx:
            raise DuplicateNameError(f"{self.name}: a node named {name!r} exists already")
        self.nx.add_node(name, **attrs)
        self.touch()

    def insert_edge(self, u: str, v: str, /, **attrs) -> None:
        """Add edge ``u -> v`` with exactly ``attrs`` (both ends must exist), at any level.

        The counterpart of :meth:`insert_node`; at the layer level use :meth:`add_edge`.
        """
        for end in (u, v):
            if end not in self.nx:
                raise NodeNotFound(
                    f"{self.name}: edge {u}->{v} names unknown node {end!r}."
                    f"{did_you_mean(end, self.nx.nodes)} Add the node first"
                )
        if self.nx.has_edge(u, v):
            raise DuplicateNameError(f"{self.name}: edge {u}->{v} exists already")
        self.nx.add_edge(u, v, **attrs)
        self.touch()

    # ------------------------------------------------------------------ attributes
    def set_node_attrs(self, name: str, **attrs) -> None:
        """Set attributes of node ``name`` (bumps :attr:`version`).

        Examples:
            >>> g = Graph("layer"); g.add_input("x", channels=3); g.add_node("h", channels=4)
            >>> v = g.version; g.set_node_attrs("h", channels=8, keep=True)
            >>> g.node("h")["channels"], g.node("h")["keep"], g.version > v
            (8, True, True)
        """
        self.node(name).update(attrs)
        self.touch()

    def del_node_attrs(self, name: str, *keys: str) -> None:
        """Remove attributes ``keys`` of node ``name`` (those it has; bumps :attr:`version`)."""
        d = self.node(name)
        for k in keys:
            d.pop(k, None)
        self.touch()

    def set_edge_attrs(self, u: str, v: str, **attrs) -> None:
        """Set attributes of edge ``u -> v`` (bumps :attr:`version`); candidate ops change
        with :meth:`set_ops`."""
        self.edge(u, v).update(attrs)
        self.touch()

    def del_edge_attrs(self, u: str, v: str, *keys: str) -> None:
        """Remove attributes ``keys`` of edge ``u -> v`` (those it has; bumps :attr:`version`)."""
        e = self.edge(u, v)
        for k in keys:
            e.pop(k, None)
        self.touch()

    def set_meta(self, **items) -> None:
        """Set entries of :attr:`meta` (bumps :attr:`version`)."""
        self.nx.graph["meta"].update(items)
        self.touch()

    def set_level(self, level: str) -> None:
        """Relabel the graph as ``level``; :mod:`supernet.lowering` converts the attributes
        between the channel and neuron levels with it."""
        _check_level(level, self.name)
        self.nx.graph["level"] = level
        self.touch()

    # ------------------------------------------------------------------ undo
    def snapshot(self) -> tuple:
        """The structure, attributes, cell table and :attr:`version`, for :meth:`restore`
        (a failed edit is undone with it). Arrays and sparse masks are shared, not copied:
        edits replace them and never change them in place."""
        return _share_arrays_copy(self.nx), self.version, dict(self.cells)

    def restore(self, snapshot: tuple) -> None:
        """Put back what :meth:`snapshot` saved (the cell templates themselves are restored
        from their own snapshots); the snapshot stays valid for another restore."""
        saved, self.version, cells = snapshot
        self.nx = _share_arrays_copy(saved)
        self.cells.clear()
        self.cells.update(cells)

    # ------------------------------------------------------------------ whole-graph
    def copy(self) -> "Graph":
        """A deep copy (new :attr:`uid`, same :attr:`version`)."""
        new = Graph.__new__(Graph)
        new.nx = copy.deepcopy(self.nx)
        new.cells = {k: c.copy() for k, c in self.cells.items()}
        new.version = self.version
        new.uid = next(_graph_ids)
        return new

    def same_as(self, other: "Graph") -> bool:
        """True if structure, attributes, node/edge order and cells are all equal.

        The edit counter :attr:`version` is not compared: two graphs built by different
        sequences of edits are the same graph when their content is.
        """
        def content(link: dict) -> dict:
            out = {k: v for k, v in link.items() if k != "version"}
            out["cells"] = {k: content(c) for k, c in link["cells"].items()}
            return out

        return content(to_node_link(self)) == content(to_node_link(other))

    def gate_edges(self) -> list[tuple[str, str]]:
        """Edges with more than one candidate op (the layer-level gates)."""
        return [(u, v) for u, v, d in self.nx.edges(data=True)
                if isinstance(d.get("ops"), list) and len(d["ops"]) > 1]

    def nodes_of_kind(self, kind: str) -> list[str]:
        if kind not in NODE_KINDS:
            raise GraphError(f"unknown node kind {kind!r}; expected one of {list(NODE_KINDS)}")
        return [n for n, d in self.nx.nodes(data=True) if d.get("kind") == kind]

    def tabular(self) -> str:
        """A table of nodes and their in-edges (as torch.fx ``print_tabular``)."""
        rows = [("node", "kind", "channels", "inputs")]
        for n in self.topological_order():
            d = self.nx.nodes[n]
            if d.get("kind") == "call":
                args = d.get("args") or []
                ins = f"{d.get('cell')}({', '.join(map(str, _as_list(args)))})"
            else:
                ins = ", ".join(
                    f"{u}[{'|'.join(_edge_ops(self.nx.edges[u, n]))}]"
                    for u, _ in self._in_edges_as_given(n)
                )
            kind = f"{d.get('kind', '?')}" + (f":{d.get('merge', '?')}"
                                              if d.get("kind") == "merge" else "")
            width = d.get("channels", _size(d["units"]) if "units" in d else "")
            rows.append((str(n), kind, str(width), ins))
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        lines = [
            "  ".join(r[i].ljust(widths[i]) for i in range(3)) + "  " + r[3] for r in rows
        ]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"Graph(level={self.level!r}, name={self.name!r}, nodes={self.nx.number_of_nodes()}, "
            f"edges={self.nx.number_of_edges()}, cells={sorted(self.cells)})"
        )


def _check_level(level, where: str) -> None:
    if level not in LEVELS:
        raise GraphError(f"{where}: unknown level {level!r}; expected one of {list(LEVELS)}")


def _edge_ops(e: dict) -> list[str]:
    """Candidate ops of a layer edge; the kind and connection count of a unit-level block."""
    if "mask" in e:
        return [f"{e.get('kind', '?')}:{getattr(e['mask'], 'nnz', '?')}"]
    return [str(op) for op in _as_list(e.get("ops", []))]


def _as_list(value) -> list:
    """``value`` itself where it is a list or tuple, else a list of it alone."""
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _size(units) -> object:
    """The number of units of a node, or ``"?"`` where ``units`` is no list of them."""
    try:
        return len(units)
    except TypeError:
        return "?"


def _short(items: list, n: int = 8) -> str:
    items = [str(i) for i in items]
    return ", ".join(items[:n]) + (f", ... ({len(items)} in all)" if len(items) > n else "")


def _share_arrays_copy(g: nx.DiGraph) -> nx.DiGraph:
    """A deep copy of ``g`` that shares its numpy arrays and sparse masks."""
    memo = {}
    datas = itertools.chain((d for _, d in g.nodes(data=True)),
                            (d for _, _, d in g.edges(data=True)))
    for d in datas:
        for v in d.values():
            if isinstance(v, np.ndarray) or scipy.sparse.issparse(v):
                memo[id(v)] = v
    return copy.deepcopy(g, memo)
