"""The four neural operators at channel and neuron level, as vectorized edit records.

One record changes many units or connections at once (arrays of unit ids or of
``(dst, src)`` pairs), so a pruning step over millions of synapses is one record. Each is
tagged with its neural operator, carries the seed of what it draws, and is applied by
:class:`supernet.edits.Editor` to the graph, the compiled module (surviving weights carried
over, new ones initialized by ``init``) and the optimizers (state sliced) together.

Examples:
    >>> import torch
    >>> from supernet import compile
    >>> from supernet.edits import Editor
    >>> from supernet.units import mlp
    >>> from supernet.edits.units import AddUnits, RemoveConnections
    >>> g = mlp([4, 6, 2], seed=0); net = compile(g, seed=0); x = torch.randn(5, 4)
    >>> before = net(x)
    >>> ed = Editor(g, net)
    >>> _ = ed.apply(AddUnits("h1", count=3, init="zero"))
    >>> net.block("x", "h1").weight.shape
    torch.Size([9, 4])
    >>> bool((net(x) - before).abs().max() < 1e-6)
    True
    >>> _ = ed.apply(RemoveConnections("x", "h1", dst=[0, 1], src=[0, 0]))
    >>> g.edge("x", "h1")["mask"].nnz
    34
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from supernet.edits.base import Edit, register_edit
from supernet.errors import EditError
from supernet.init import InitPolicy, resolve_policy
from supernet.units.build import check_unit_graph, columns_per_unit, connect
from supernet.units.masks import empty_mask
from supernet.units.surgery import add_connections, add_units, remove_connections, remove_units

__all__ = ["AddUnits", "RemoveUnits", "AddConnections", "RemoveConnections", "UngateUnits",
           "UngateConnections"]


def _ids(values) -> np.ndarray:
    try:
        return np.asarray(values, dtype=np.int64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise EditError(f"unit ids must be integers, got {values!r:.60}") from exc


@register_edit
@dataclass
class AddUnits(Edit):
    """Neuron creation: ``count`` new units in ``node`` (and in every node tied to it).

    Args:
        init: ``"zero"``: new units get random incoming and zero outgoing weights (the
            outputs do not change); ``"split"``: copy the units ``source`` (Net2WiderNet):
            incoming weights copied, outgoing weights divided between original and copy (the
            outputs do not change unless ``noise`` > 0, which perturbs the copies' incoming
            weights); ``"random"``: the layer's default initialization.
        source: unit ids to copy (``"split"``), one per new unit.
        connect: ``"full"`` connects new units to every unit of the neighbouring groups,
            ``"none"`` to none (``"split"`` always copies the source's connections).
    """

    kind = "add_units"
    operator = "neuron_creation"
    node: str = ""
    count: int = 1
    init: str = "zero"
    source: list | None = None
    noise: float = 0.0
    connect: str = "full"
    seed: int | None = None

    def apply_graph(self, graph):
        check_unit_graph(graph, "AddUnits")
        copies = resolve_policy(self.init, f"{graph.name}: AddUnits").copies
        InitPolicy(self.init, self.noise)  # refuses a bad noise before the graph changes
        if copies and self.source is None:
            raise EditError(f"{graph.name}: AddUnits(init={self.init!r}) needs source= (the "
                            f"unit ids of {self.node!r} to copy)")
        if not copies and self.source is not None:
            raise EditError(f"{graph.name}: AddUnits: source= is used by policies that copy "
                            f"(init='split'), not by init={self.init!r}")
        src = None if self.source is None else _ids(self.source)
        return add_units(graph, self.node, self.count, src, self.connect)

    def apply_module(self, module, optimizers=(), applied=None):
        copies = None
        if resolve_policy(self.init).copies:
            if applied is None:
                raise EditError(
                    f"AddUnits({self.node!r}, init={self.init!r}): the module step needs what "
                    "apply_graph returned (the units created and their templates); apply the "
                    "edit with supernet.edits.Editor or apply_edit"
                )
            copies = {n: (ids, applied["templates"][n]) for n, ids in applied["created"].items()}
        report = module.sync(InitPolicy(self.init, self.noise, self.seed, copies), optimizers)
        report["created"] = applied["created"]
        return report


@register_edit
@dataclass
class RemoveUnits(Edit):
    """Neuron removal: units ``{node: ids}`` and all their connections.

    With ``tied=True`` (default) the units tied to them (residual streams, concats, grouped
    convs) go too; the compiled tensors of producers and consumers shrink.
    """

    kind = "remove_units"
    operator = "neuron_removal"
    units: dict | None = None
    tied: bool = True

    def apply_graph(self, graph):
        check_unit_graph(graph, "RemoveUnits")
        if not isinstance(self.units, dict):
            raise EditError("RemoveUnits: give units={node: [unit ids]}")
        return remove_units(graph, {n: _ids(v) for n, v in self.units.items()}, self.tied)

    def apply_module(self, module, optimizers=(), applied=None):
        report = module.sync(InitPolicy("zero"), optimizers)
        report["removed_units"] = applied
        return report


@register_edit
@dataclass
class AddConnections(Edit):
    """Synaptogenesis: connections ``(dst[k], src[k])`` (unit ids) on edge ``u -> v``.

    ``init="zero"`` starts them at weight zero (the outputs do not change), ``"random"`` at
    the layer's default. If the edge does not exist, ``edge`` gives its attributes (as for
    :func:`supernet.units.connect`, e.g. ``{"kind": "dense"}``) and it is created.
    ``taps`` names kernel positions for neuron-level conv edges.
    """

    kind = "add_connections"
    operator = "synaptogenesis"
    u: str = ""
    v: str = ""
    dst: list | None = None
    src: list | None = None
    taps: list | None = None
    init: str = "zero"
    edge: dict | None = None
    seed: int | None = None

    def apply_graph(self, graph):
        check_unit_graph(graph, "AddConnections")
        where = f"{graph.name}: AddConnections {self.u}->{self.v}"
        if resolve_policy(self.init, where).copies:
            raise EditError(f"{where}: init={self.init!r} copies units; new connections start "
                            "from 'zero' or 'random'")
        graph.node(self.u), graph.node(self.v)
        if not graph.nx.has_edge(self.u, self.v):
            if self.edge is None:
                raise EditError(f"{graph.name}: there is no edge {self.u}->{self.v}; pass "
                                "edge={'kind': 'dense'} (or conv attributes) to create it")
            attrs = {k: v for k, v in self.edge.items() if k not in ("mask", "density")}
            connect(graph, self.u, self.v, mask=_empty_for(graph, self.u, self.v, attrs), **attrs)
        # on failure apply_edit restores the graph, the edge just created included
        return add_connections(graph, self.u, self.v, _ids(self.dst), _ids(self.src),
                               None if self.taps is None else _ids(self.taps))

    def apply_module(self, module, optimizers=(), applied=None):
        report = module.sync(InitPolicy(self.init, seed=self.seed), optimizers)
        report["added_connections"] = applied
        return report


def _empty_for(graph, u, v, attrs):
    n_dst, n_src = len(graph.nx.nodes[v]["units"]), len(graph.nx.nodes[u]["units"])
    k = attrs.get("kernel", 1)
    kernel = {"kind": attrs.get("kind"), "kernel": [k, k] if isinstance(k, int) else list(k)}
    return empty_mask(n_dst, n_src * columns_per_unit(graph, kernel))


@register_edit
@dataclass
class RemoveConnections(Edit):
    """Synaptic pruning: connections ``(dst[k], src[k])`` (unit ids) of edge ``u -> v``.

    The edge stays (possibly empty); its weights at the removed connections leave with
    their optimizer state.
    """

    kind = "remove_connections"
    operator = "synaptic_pruning"
    u: str = ""
    v: str = ""
    dst: list | None = None
    src: list | None = None
    taps: list | None = None

    def apply_graph(self, graph):
        check_unit_graph(graph, "RemoveConnections")
        return remove_connections(graph, self.u, self.v, _ids(self.dst), _ids(self.src),
                                  None if self.taps is None else _ids(self.taps))

    def apply_module(self, module, optimizers=(), applied=None):
        report = module.sync(InitPolicy("zero"), optimizers)
        report["removed_connections"] = applied
        return report


def _fix_gates(graph, what: str, items: list, flag: str) -> None:
    """Turn off the gate groups ``items`` (checked first: nothing changes on a bad name)."""
    for item in items:
        d = graph.node(item) if what == "units" else graph.edge(*item)
        if not d.get("gated"):
            where = f"node {item!r}" if what == "units" else f"edge {item[0]}->{item[1]}"
            raise EditError(f"{graph.name}: {where} has no keep/drop gates to fix; {flag} "
                            "names gated nodes or edges only (set_gated() gives them gates)")
    for item in items:
        if what == "units":
            graph.set_node_attrs(item, gated=False)
        else:
            graph.set_edge_attrs(*item, gated=False)
    graph.touch()


@register_edit
@dataclass
class UngateUnits(Edit):
    """The end of a neuron-removal decision: the units of ``nodes`` that are left stay for
    good, and their keep/drop gates leave the graph (and the architecture optimizer).

    A discretization removes the units its decision drops (:class:`RemoveUnits`), then
    fixes the rest with this record, so that the edit log replays the whole decision.
    """

    kind = "ungate_units"
    operator = "neuron_removal"
    nodes: list | None = None

    def apply_graph(self, graph):
        check_unit_graph(graph, "UngateUnits")
        nodes = [str(n) for n in (self.nodes or [])]
        _fix_gates(graph, "units", nodes, "nodes=")
        return nodes

    def apply_module(self, module, optimizers=(), applied=None):
        report = module.sync(InitPolicy("zero"), optimizers)
        report["ungated"] = applied
        return report


@register_edit
@dataclass
class UngateConnections(Edit):
    """The end of a synaptic-pruning decision: the connections left on ``edges``
    (``[[u, v], ...]``) stay for good, and their keep/drop gates leave."""

    kind = "ungate_connections"
    operator = "synaptic_pruning"
    edges: list | None = None

    def apply_graph(self, graph):
        check_unit_graph(graph, "UngateConnections")
        pairs = []
        for e in self.edges or []:
            if not isinstance(e, (list, tuple)) or len(e) != 2:
                raise EditError(f"UngateConnections: edges are [u, v] pairs, got {e!r}")
            pairs.append((str(e[0]), str(e[1])))
        _fix_gates(graph, "connections", pairs, "edges=")
        return pairs

    def apply_module(self, module, optimizers=(), applied=None):
        report = module.sync(InitPolicy("zero"), optimizers)
        report["ungated"] = [f"{u}->{v}" for u, v in applied]
        return report
