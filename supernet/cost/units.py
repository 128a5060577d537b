"""Cost model of channel- and neuron-level graphs: parameters and operations per node and
edge, from the masks, without compiling or running anything.

Only existing connections count: a conv edge at channel level costs ``nnz * prod(kernel)``
parameters (one kernel per mask entry) and as many multiply-accumulates per output
position; at neuron level every mask entry is one weight (one tap). A dense edge costs
``nnz`` parameters and MACs. Identity edges are free. A node costs its bias (one per unit)
and batch norm (two affine parameters per unit, one multiply-add per output element:
:attr:`Cost.bn`); pooling on an edge counts its window reads (:attr:`Cost.pool`), once per
source and pooling, as the compiled module pools once. Conventions are those of
:mod:`supernet.cost.layer` (per sample, thop's MACs).

:meth:`UnitCostReport.expected` is the cost under keep probabilities of units and
connections, differentiable in them, for a FLOPs- or size-aware width search: an edge
counts each connection times the keep probabilities of its two units and its own.

:func:`unit_latency` measures, on the device of a compiled module, the latency of every
block, node step and pooling of the network (median of repeated runs of each part alone on
the input it receives in a forward pass); :meth:`UnitCostReport.with_latency` puts that
table in a report, and ``field="latency"`` of :meth:`UnitCostReport.expected` counts each
part's measured milliseconds times the fraction of its work that is kept. That is a
*linear, additive latency model*, as the lookup tables of latency-aware searches
(ProxylessNAS, Cai et al., ICLR 2019, Section 3.3; FBNet, Wu et al., CVPR 2019, Eq. 7) sum
per-op latencies: it assumes a part's latency scales with the connections (or units) it
keeps, which holds for removed units (smaller tensors) more than for connections removed
inside a dense-masked block.

Examples:
    >>> import torch
    >>> from supernet import Graph
    >>> from supernet.units import add_group, add_input, connect
    >>> from supernet.cost.units import unit_cost
    >>> g = Graph("channel", name="g")
    >>> add_input(g, "x", 3)
    >>> add_group(g, "c", 8, norm="batchnorm", bias=False)
    >>> connect(g, "x", "c", "conv", kernel=3, stride=2, density=0.5, seed=0)
    >>> r = unit_cost(g, (3, 32, 32))
    >>> r.shapes["c"], r.edges[("x", "c")].params, r.edges[("x", "c")].macs
    ((8, 16, 16), 108, 27648)
    >>> r.nodes["c"].params, r.total.params
    (16, 124)
    >>> float(r.expected({"c": torch.full((8,), 0.5)}))
    13824.0
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np
import torch

from supernet.compiler.kernels import pool as pool_fn
from supernet.compiler.plan import PoolStep
from supernet.cost.latency import _median_ms
from supernet.cost.rules import Cost, conv_out
from supernet.counting import DEFAULT_CONVENTION, check_convention
from supernet.errors import ConfigError, ShapeError, SupernetError
from supernet.gates import Decision
from supernet.units.build import check_unit_graph, columns_per_unit, edge_key, taps
from supernet.units.deps import Ties

__all__ = ["UnitCostReport", "unit_cost", "unit_latency", "keep_probabilities", "FIELDS"]

#: The fields :meth:`UnitCostReport.expected` counts.
FIELDS = ("macs", "params", "bn", "pool", "latency")


@dataclass
class UnitCostReport:
    """Costs of one channel- or neuron-level graph.

    Attributes:
        shapes: per-sample output shape of every node, ``(units, *spatial)``.
        nodes: per node, its bias and batch norm.
        edges: ``(u, v) -> Cost`` of each block of connections.
        pools: ``(u, pooling) -> Cost`` of each pooling of a source (counted once).
        latency: measured milliseconds of each part, keyed as ``nodes``, ``edges`` and
            ``pools`` (empty until :meth:`with_latency`).
        convention: the counting convention of the figures (unit-level graphs are counted
            in the default, ``"thop"``: see :data:`supernet.counting.CONVENTIONS`).
    """

    graph: object = None
    shapes: dict = field(default_factory=dict)
    nodes: dict = field(default_factory=dict)
    edges: dict = field(default_factory=dict)
    pools: dict = field(default_factory=dict)
    latency: dict = field(default_factory=dict)
    convention: str = "thop"

    def with_latency(self, table: dict) -> "UnitCostReport":
        """This report with the latency table of :func:`unit_latency` (returns ``self``)."""
        parts = {*self.nodes, *self.edges, *self.pools}
        unknown = [k for k in table if k not in parts]
        if unknown:
            raise SupernetError(f"{self.graph.name}: the latency table names parts "
                                f"{unknown[:4]} that this report does not have")
        self.latency = dict(table)
        return self

    def _value(self, key, c, field):
        if field == "latency":
            return self.latency.get(key, 0.0)
        return getattr(c, field)

    @property
    def total(self) -> Cost:
        """Everything a forward pass computes (gates not counted: they are free)."""
        out = Cost()
        for part in (self.nodes, self.edges, self.pools):
            for c in part.values():
                out = out + c
        return out

    def expected(self, keep_units: dict | None = None, keep_connections: dict | None = None,
                 field: str = "macs") -> torch.Tensor:
        """The cost when units and connections are kept with the given probabilities.

        Args:
            keep_units: node -> ``(n,)`` keep probabilities of its units (others: 1). It
                may hold edge keys too (``"u->v"``, as ``keep_connections``), so that one
                dict of probabilities serves, as in :meth:`CostReport.expected`.
            keep_connections: edge key ``"u->v"`` -> ``(nnz,)`` keep probabilities of its
                connections, in mask order (others: 1).
            field: ``"macs"``, ``"params"``, ``"bn"``, ``"pool"`` or ``"latency"``
                (milliseconds, after :meth:`with_latency`).

        A connection counts with the keep probabilities of its two units and its own, a
        unit's bias, norm and pooled reads with its own. The result is a tensor,
        differentiable in the probabilities; with all probabilities 1 it equals
        ``getattr(total, field)``, with 0/1 ones the cost of what the decision keeps.
        """
        if field not in FIELDS:
            raise SupernetError(f"expected: field is one of {list(FIELDS)}, got {field!r}")
        if field == "latency" and not self.latency:
            raise SupernetError(f"{self.graph.name}: this report has no latency table; "
                                "measure one with unit_latency(module, inputs) and add it "
                                "with report.with_latency(table)")
        g = self.graph
        keep_units, keep_connections = dict(keep_units or {}), dict(keep_connections or {})
        edges = {edge_key(u, v): (u, v) for u, v in self.edges}
        for key in [k for k in keep_units if k in edges and k not in g.nx]:
            keep_connections[key] = keep_units.pop(key)
        for n in keep_units:
            g.node(n)
        unknown = sorted(set(keep_connections) - set(edges))
        if unknown:
            raise SupernetError(f"{g.name}: no edge(s) {unknown}; edges are {sorted(edges)}")
        total = torch.tensor(0.0)

        def units(n):
            p = keep_units.get(n)
            size = self.shapes[n][0]
            if p is None:
                return None
            p = torch.as_tensor(p, dtype=torch.float32).reshape(-1)
            if p.numel() != size:
                raise ShapeError(f"{g.name}: node {n!r} has {size} units, got {p.numel()} keep "
                                 "probabilities")
            return p

        for key, c in self.pools.items():
            p = units(key[0])
            value = self._value(key, c, field)
            total = total + (value if p is None or not value else value * p.mean())
        for n, c in self.nodes.items():
            p = units(n)
            value = self._value(n, c, field)
            total = total + (value if p is None or not value else value * p.mean())
        for (u, v), c in self.edges.items():
            value = self._value((u, v), c, field)
            e = g.edge(u, v)
            if not value:
                continue
            m = e["mask"]
            pd, ps = units(v), units(u)
            pc = keep_connections.get(edge_key(u, v))
            if pd is None and ps is None and pc is None:
                total = total + value
                continue
            rows = torch.from_numpy(np.repeat(np.arange(m.shape[0]), np.diff(m.indptr)))
            per = m.shape[1] // max(self.shapes[u][0], 1)
            cols = torch.from_numpy(m.indices.astype(np.int64) // max(per, 1))
            w = torch.ones(m.nnz)
            if pd is not None:
                w = w * pd[rows]
            if ps is not None:
                w = w * ps[cols]
            if pc is not None:
                pc = torch.as_tensor(pc, dtype=torch.float32).reshape(-1)
                if pc.numel() != m.nnz:
                    raise ShapeError(f"{g.name}: edge {u}->{v} has {m.nnz} connections, got "
                                     f"{pc.numel()} keep probabilities")
                w = w * pc
            total = total + value / m.nnz * w.sum()
        return total


def keep_probabilities(module, gates: dict | None = None, ties: bool = True
                       ) -> tuple[dict, dict]:
    """``(keep_units, keep_connections)`` for :meth:`UnitCostReport.expected` from the
    decisions of a compiled unit module (default: its relaxation's, as in a forward pass):
    the keep weight ``weights[:, 0]`` of every gate group.

    With ``ties`` a dependency group of units counts as one: every unit of a group with a
    gated member gets the smallest keep probability in the group, as removing one unit
    removes the group (:class:`supernet.edits.RemoveUnits`). So for a hard decision the
    expected cost is the cost of the network that
    :func:`supernet.search.discretize.decision_edits` leaves.
    """
    gates = module.decisions() if gates is None else gates
    units, conns = {}, {}
    for key, (what, where) in module.gate_groups().items():
        d = gates.get(key)
        if d is None or d.weights is None:
            continue
        if what == "units":
            units[where] = d.weights[:, 0]
        else:
            conns[edge_key(*where)] = d.weights[:, 0]
    if ties and units:
        units = _tie(module.graph, units)
    return units, conns


def _tie(graph, units: dict) -> dict:
    t = Ties(graph)
    if not t.tied:
        return units
    labels = torch.from_numpy(t.labels.astype(np.int64))
    idx = torch.cat([labels[t.offsets[n]:t.offsets[n] + len(p)] for n, p in units.items()])
    vals = torch.cat([p.reshape(-1) for p in units.values()])
    low = vals.new_ones(int(labels.max()) + 1).scatter_reduce(0, idx, vals, "amin")
    touched = torch.zeros(len(low), dtype=torch.bool)
    touched[idx] = True
    out = {}
    for n in t.nodes:
        lab = labels[t.offsets[n]:t.offsets[n] + len(graph.nx.nodes[n]["units"])]
        if graph.nx.nodes[n]["kind"] == "units" and (n in units or touched[lab].any()):
            out[n] = low[lab]
    return out


def unit_latency(module, inputs: tuple, repeats: int = 20, warmup: int = 3) -> dict:
    """The measured latency (milliseconds) of every part of a compiled unit module: each
    block ``(u, v)``, each node step (bias, norm, activation: key ``node``) and each pooling
    ``(u, pooling)``, keyed as :class:`UnitCostReport` keys them.

    One forward pass of the full network (every gate kept) records the input each part
    receives; each part is then timed alone on it (median of ``repeats`` runs after
    ``warmup``), on the device the module is on. ``inputs``' batch size is the one timed.

    Examples:
        >>> import torch
        >>> from supernet import compile
        >>> from supernet.units import mlp
        >>> net = compile(mlp([8, 16, 4], seed=0))
        >>> table = unit_latency(net, (torch.randn(1, 8),), repeats=3)
        >>> sorted(map(str, table)), all(v > 0 for v in table.values())
        (["('h1', 'y')", "('x', 'h1')", 'h1', 'y'], True)
    """
    calls: dict = {}
    handles = []
    plan = module.plan
    for step in plan.steps:
        if type(step) is PoolStep:
            continue
        parts = [((e.src, step.node), e.block) for e in step.edges] + [(step.node, step.params)]
        for key, part in parts:
            def keep(m, args, kwargs, key=key):
                calls.setdefault(key, (args, kwargs))

            handles.append(part.register_forward_pre_hook(keep, with_kwargs=True))
    every = {}
    for k, a in module.arch.items():
        if k in module.gate_groups():
            w = torch.zeros_like(a.detach())
            w[:, 0] = 1.0
            every[k] = Decision(w)
    was = module.training
    module.eval()
    table: dict = {}
    try:
        with torch.no_grad():
            try:
                values = module.run(inputs, gates=every)
            finally:
                for h in handles:
                    h.remove()
            for step in plan.steps:
                if type(step) is PoolStep:
                    x = values[step.src]
                    table[step.key] = _median_ms(lambda t: pool_fn(t, step.spec), (x,), {},
                                                 repeats, warmup)
                    continue
                parts = [((e.src, step.node), e.block) for e in step.edges]
                for key, part in parts + [(step.node, step.params)]:
                    if key in calls:
                        args, kwargs = calls[key]
                        table[key] = _median_ms(part, args, kwargs, repeats, warmup)
    finally:
        module.train(was)
    return table


def _spatial_pool(spec, shape, where):
    if spec in ("global_avg", "global_max"):
        return (shape[0],), Cost(pool=math.prod(shape))
    sp = shape[1:]
    if len(sp) != len(spec["kernel"]):
        raise ShapeError(f"{where}: a {len(spec['kernel'])}-D pooling on a value of shape "
                         f"{shape}")
    out = (shape[0], *(conv_out(s, k, st, p) for s, k, st, p in
                       zip(sp, spec["kernel"], spec["stride"], spec["padding"])))
    return out, Cost(pool=math.prod(out) * math.prod(spec["kernel"]))


def unit_cost(graph, input_shape=None, convention: str | None = None) -> UnitCostReport:
    """Count parameters and operations of every node and edge of a unit-level graph.

    Args:
        input_shape: per-sample shape ``(width, *spatial)`` of the input, or a list of
            them (one per input). Default: each input node's ``shape`` attribute, or
            ``(width,)`` (features).
        convention: unit-level graphs are counted in the default convention
            (:data:`~supernet.counting.DEFAULT_CONVENTION`) only; another is refused.
    """
    check_unit_graph(graph, "unit_cost")
    if convention is not None and check_convention(convention, f"{graph.name}: cost") \
            != DEFAULT_CONVENTION:
        raise ConfigError(
            f"{graph.name}: {graph.level}-level graphs are counted in the "
            f"{DEFAULT_CONVENTION!r} convention only, got convention={convention!r}")
    if input_shape is None:
        shapes = [tuple(graph.node(n).get("shape") or (graph.node(n)["width"],))
                  for n in graph.inputs]
    elif input_shape and isinstance(input_shape[0], (int, np.integer)):
        shapes = [tuple(input_shape)]
    else:
        shapes = [tuple(s) for s in input_shape]
    if len(shapes) != len(graph.inputs):
        raise ShapeError(f"{graph.name}: {len(shapes)} input shape(s) for inputs {graph.inputs}")
    r = UnitCostReport(graph=graph)
    for n, s in zip(graph.inputs, shapes):
        width = graph.node(n)["width"]
        if not s or s[0] != width:
            raise ShapeError(f"{graph.name}: input {n!r} reads a tensor of width {width}, got "
                             f"the shape {s}; give (width, *spatial)")
        r.shapes[n] = (len(graph.node(n)["units"]), *s[1:])

    for v in graph.topological_order():
        d = graph.nx.nodes[v]
        if d["kind"] == "input":
            continue
        n = len(d["units"])
        spatial = None
        for u, _ in graph.in_edges(v):
            e = graph.nx.edges[u, v]
            where = f"{graph.name}: edge {u}->{v}"
            src = r.shapes[u]
            if e.get("pool") is not None:
                key = (u, json.dumps(e["pool"], sort_keys=True))
                src, c = _spatial_pool(e["pool"], src, where)
                r.pools.setdefault(key, c)
            nnz = e["mask"].nnz
            if e["kind"] == "conv":
                if len(src) - 1 != len(e["kernel"]):
                    raise ShapeError(f"{where}: a {len(e['kernel'])}-D conv reads a value of "
                                     f"shape {src}; pool it or use a dense edge")
                out = tuple(conv_out(s, k, st, p, dl) for s, k, st, p, dl in zip(
                    src[1:], e["kernel"], e["stride"], e["padding"], e["dilation"]))
                weights = nnz * taps(e) // columns_per_unit(graph, e)
                r.edges[(u, v)] = Cost(params=weights, macs=weights * math.prod(out))
            elif e["kind"] == "dense":
                if len(src) != 1:
                    raise ShapeError(f"{where}: a dense edge reads (units,) values, got shape "
                                     f"{src}; pool it first (pool='global_avg')")
                out = ()
                r.edges[(u, v)] = Cost(params=nnz, macs=nnz)
            else:
                out = tuple(src[1:])
                r.edges[(u, v)] = Cost()
            if spatial is not None and out != spatial:
                raise ShapeError(f"{graph.name}: node {v!r} sums in-edges of spatial sizes "
                                 f"{spatial} and {out} (edge {u}->{v}); make strides agree")
            spatial = out
        if spatial is None:
            raise ShapeError(f"{graph.name}: node {v!r} has no in-edges; connect it or remove it")
        r.shapes[v] = (n, *spatial)
        norm = d.get("norm") == "batchnorm"
        params = (n if d.get("bias", True) else 0) + (2 * n if norm else 0)
        r.nodes[v] = Cost(params=params, bn=math.prod(r.shapes[v]) if norm else 0)
    return r
