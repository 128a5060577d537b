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
import torch

from supernet.edits.base import Edit, register_edit
from supernet.errors import EditError
from supernet.init import InitPolicy, resolve_policy
from supernet.optim import replace_param
from supernet.units.build import check_unit_graph, columns_per_unit, connect
from supernet.units.masks import empty_mask, positions
from supernet.units.surgery import (
    add_connections,
    add_units,
    insert_group,
    remove_connections,
    remove_units,
)

__all__ = ["AddUnits", "RemoveUnits", "AddConnections", "RemoveConnections", "UngateUnits",
           "UngateConnections", "InsertGroup", "AddWiredUnits"]


def _ids(values) -> np.ndarray:
    """Unit ids (or taps) as an int64 array; anything but integers (a float would be
    truncated to another id, a bool read as 0 or 1) is refused."""
    try:
        arr = np.asarray(values)
    except (TypeError, ValueError, OverflowError):  # ragged lists, ints past 64 bits
        arr = None
    if arr is not None and arr.size == 0:
        return np.zeros(0, np.int64)
    if arr is None or arr.dtype.kind not in "iu" or (
            arr.dtype.kind == "u" and arr.max() >= 2 ** 63):
        raise EditError(f"unit ids must be integers, got {values!r:.60}")
    return arr.astype(np.int64).reshape(-1)


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


#: Activations whose output is never negative: a ReLU group after one of them passes its
#: values through unchanged, so an identity-initialized :class:`InsertGroup` is exact.
NON_NEGATIVE = frozenset({"relu", "sigmoid", "softplus"})


@register_edit
@dataclass
class InsertGroup(Edit):
    """Neuron creation of a whole group: a new hidden layer ``node`` on edge ``u -> v``
    (Net2DeeperNet; Chen, Goodfellow and Shlens, "Net2Net", ICLR 2016, Section 3.2).

    ``u -> node -> v`` replaces ``u -> v``: ``node`` has one unit per unit of ``u``, the
    weights of ``u -> v`` move to ``node -> v`` (with their optimizer state), and
    ``u -> node`` is initialized by ``init``:

    * ``"identity"``: the identity matrix and zero biases, so ``node`` computes
      ``act(h_u)``. The network's function is unchanged exactly when ``act(a) = a`` on the
      values ``a`` of ``u``: ``act="identity"`` always; ``act="relu"`` when ``u``'s
      activation is non-negative (ReLU, sigmoid, softplus: :data:`NON_NEGATIVE`), the case
      of Net2DeeperNet (the paper requires ``φ(Iφ(v)) = φ(v)`` for all ``v``). Other
      pairs (tanh after anything, ReLU after a signed input) change the function; the
      report's ``"exact"`` says which case holds. ``noise`` (standard deviation) perturbs
      the identity, as the paper suggests for a student that is not to stay a copy.
    * ``"random"``: the layer's default initialization (the function changes).

    Args:
        u, v: the ends of an ungated, unpooled dense edge.
        node: name of the new group.
        act: its activation.
        connect: ``"full"`` (a dense layer, as Net2DeeperNet) or ``"diagonal"`` (only unit
            ``i`` to unit ``i``: ``n`` weights instead of ``n²``).
        bias: whether the new units have biases (zero-initialized under ``"identity"``).

    Examples:
        >>> import torch
        >>> from supernet import compile
        >>> from supernet.edits import Editor
        >>> from supernet.units import mlp
        >>> g = mlp([4, 6, 2], seed=0); net = compile(g, seed=0); x = torch.randn(5, 4)
        >>> before = net(x)
        >>> r = Editor(g, net).apply(InsertGroup("h1", "y", node="h2"))
        >>> sorted(g.nx.edges), r.report["exact"]
        ([('h1', 'h2'), ('h2', 'y'), ('x', 'h1')], True)
        >>> bool(torch.equal(net(x), before))
        True
    """

    kind = "insert_group"
    operator = "neuron_creation"
    u: str = ""
    v: str = ""
    node: str = ""
    act: str = "relu"
    connect: str = "full"
    init: str = "identity"
    bias: bool = True
    noise: float = 0.0
    seed: int | None = None

    def apply_graph(self, graph):
        check_unit_graph(graph, "InsertGroup")
        where = f"{graph.name}: InsertGroup {self.u}->{self.v}"
        if self.init not in ("identity", "random"):
            raise EditError(f"{where}: init must be 'identity' or 'random', got {self.init!r}")
        if isinstance(self.noise, bool) or not isinstance(self.noise, (int, float)) \
                or self.noise < 0:
            raise EditError(f"{where}: noise must be a number >= 0, got {self.noise!r:.60}")
        src = graph.node(self.u) if self.u in graph.nx else None
        applied = insert_group(graph, self.u, self.v, self.node, self.act, self.connect,
                               self.bias)
        source_act = "input" if src["kind"] == "input" else src.get("act", "identity")
        applied["exact"] = self.init == "identity" and self.noise == 0 and (
            self.act == "identity" or (self.act == "relu" and source_act in NON_NEGATIVE))
        return applied

    def apply_module(self, module, optimizers=(), applied=None):
        if applied is None:
            raise EditError(f"InsertGroup({self.u!r}, {self.v!r}): the module step needs what "
                            "apply_graph returned; apply the edit with supernet.edits.Editor "
                            "or apply_edit")
        old = module.block(self.u, self.v)  # still the compiled u -> v: not synced yet
        old_p = old.storage()
        held = [(opt, opt.state[old_p]) for opt in _optimizer_list(optimizers)
                if old_p in opt.state]
        init = "zero" if self.init == "identity" else "random"
        report = module.sync(InitPolicy(init, seed=self.seed), optimizers)
        inner, outer = module.block(self.u, self.node), module.block(self.node, self.v)
        with torch.no_grad():  # fresh tensors only: nothing that existed is written
            _set_entries(outer, _entries(old, old_p))
            if self.init == "identity":
                _set_entries(inner, _identity_entries(module.graph, self.u, self.node,
                                                      self.noise, self.seed))
        new_p = outer.storage()
        for opt, state in held:  # the moved weights keep their momentum / Adam moments
            opt.state[old_p] = state
            replace_param(opt, old_p, new_p, fn=lambda t: _moved(old, outer, t))
        report["created"] = {self.node: module.graph.node(self.node)["units"]}
        report["exact"] = applied["exact"]
        return report


def _optimizer_list(optimizers) -> list:
    if optimizers is None:
        return []
    return [optimizers] if isinstance(optimizers, torch.optim.Optimizer) else list(optimizers)


def _index(block) -> torch.Tensor:
    """Storage positions of ``block``'s mask entries, in entry order (a sparse block stores
    its entries in that order)."""
    idx = getattr(block, "entry_index", None)
    return torch.arange(block.storage().numel()) if idx is None else idx.reshape(-1)


def _entries(block, t) -> torch.Tensor:
    """``t`` (shaped like ``block``'s storage) at ``block``'s mask entries, in entry order."""
    return t.detach().reshape(-1)[_index(block)]


def _set_entries(block, values: torch.Tensor) -> None:
    block.storage().view(-1)[_index(block)] = values.to(block.storage())


def _moved(old, new, t: torch.Tensor) -> torch.Tensor:
    out = t.new_zeros(new.storage().shape)
    out.view(-1)[_index(new)] = _entries(old, t)
    return out


def _identity_entries(graph, u, node, noise, seed) -> torch.Tensor:
    """The identity matrix at the entries of ``u -> node`` (plus noise), in entry order."""
    m = graph.edge(u, node)["mask"]
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    vals = torch.from_numpy((rows == m.indices).astype(np.float32))
    if noise:
        gen = InitPolicy("random", seed=seed).generator()
        vals = vals + noise * torch.randn(len(vals), generator=gen)
    return vals


@register_edit
@dataclass
class AddWiredUnits(Edit):
    """Neuron creation with given wiring: ``count`` new units of ``node`` with exactly the
    connections and weights listed (NeST's neuron growth, which wires each new neuron to one
    source and one destination with weights from a gradient).

    Args:
        incoming: ``[[u, k, src_id, weight], ...]``: new unit ``k`` (``0 .. count-1``) reads
            unit ``src_id`` of ``u`` (an existing in-edge ``u -> node``) with ``weight``.
        outgoing: ``[[v, k, dst_id, weight], ...]``: unit ``dst_id`` of ``v`` (an existing
            out-edge ``node -> v``) reads new unit ``k`` with ``weight``.

    New units start with zero biases; a unit with no outgoing weight does not change the
    outputs. The weights are part of the record, so the log replays them exactly.

    Examples:
        >>> import torch
        >>> from supernet import compile
        >>> from supernet.edits import Editor
        >>> from supernet.units import mlp
        >>> g = mlp([3, 4, 2], seed=0); net = compile(g, seed=0)
        >>> _ = Editor(g, net).apply(AddWiredUnits("h1", 1, incoming=[["x", 0, 2, 0.5]],
        ...                                        outgoing=[["y", 0, 1, -0.25]]))
        >>> net.block("x", "h1").effective()[4].tolist(), net.block("h1", "y").effective()[:, 4].tolist()
        ([0.0, 0.0, 0.5], [0.0, -0.25])
    """

    kind = "add_wired_units"
    operator = "neuron_creation"
    node: str = ""
    count: int = 1
    incoming: list | None = None
    outgoing: list | None = None

    def _wires(self, graph, which: str) -> dict:
        """``{(u, v): (dst positions-to-be, src, weights)}`` grouped by edge, checked."""
        out: dict = {}
        for item in getattr(self, which) or []:
            if not isinstance(item, (list, tuple)) or len(item) != 4:
                raise EditError(f"AddWiredUnits({self.node!r}): {which} entries are "
                                f"[node, k, unit id, weight], got {item!r:.60}")
            other, k, unit, w = item
            if isinstance(k, bool) or not isinstance(k, (int, np.integer)) \
                    or not 0 <= k < self.count:
                raise EditError(f"AddWiredUnits({self.node!r}): {which} names new unit {k!r}; "
                                f"new units are 0..{self.count - 1}")
            edge = (str(other), self.node) if which == "incoming" else (self.node, str(other))
            if not graph.nx.has_edge(*edge) or graph.nx.edges[edge]["kind"] != "dense":
                raise EditError(f"{graph.name}: AddWiredUnits: {which} needs a dense edge "
                                f"{edge[0]}->{edge[1]}; there is none")
            out.setdefault(edge, []).append((int(k), int(unit), float(w)))
        return out

    def apply_graph(self, graph):
        check_unit_graph(graph, "AddWiredUnits")
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 1:
            raise EditError(f"AddWiredUnits({self.node!r}): count must be a positive int, got "
                            f"{self.count!r}")
        wires = {**self._wires(graph, "incoming"), **self._wires(graph, "outgoing")}
        created = add_units(graph, self.node, self.count, None, "none")["created"]
        if set(created) != {self.node}:
            raise EditError(f"{graph.name}: AddWiredUnits: the units of {self.node!r} are tied "
                            f"to {sorted(set(created) - {self.node})}; wire untied groups only")
        new = created[self.node]
        placed = {}
        for (u, v), items in wires.items():
            k, unit, w = (np.array(c) for c in zip(*items))
            dst, src = (new[k], unit) if v == self.node else (unit, new[k])
            add_connections(graph, u, v, dst, src)
            placed[(u, v)] = (dst, src, w)
        return {"created": created, "placed": placed}

    def apply_module(self, module, optimizers=(), applied=None):
        if applied is None:
            raise EditError(f"AddWiredUnits({self.node!r}): the module step needs what "
                            "apply_graph returned; apply the edit with supernet.edits.Editor")
        report = module.sync(InitPolicy("zero"), optimizers)
        g = module.graph
        with torch.no_grad():  # the blocks were resized: their storage is new
            for (u, v), (dst, src, w) in applied["placed"].items():
                block = module.block(u, v)
                i = positions(g.node(v)["units"], dst, v)
                j = positions(g.node(u)["units"], src, u)
                pos = block.layout.pos(i, j, np.zeros(len(i), np.int64))
                block.storage().view(-1)[torch.from_numpy(pos)] = torch.as_tensor(
                    w, dtype=block.storage().dtype)
        report["created"] = applied["created"]
        return report
