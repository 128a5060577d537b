"""Compile a channel- or neuron-level graph to an ``nn.Module``.

The schedule is computed once, at compile time and after each edit: a flat sequence of node
steps, each summing the blocks of its in-edges (one large tensor op per block), then adding
the bias, normalizing and activating per unit, then scaling by the unit gates. ``forward``
never loops over units or connections. The schedule is public and read-only:
:attr:`UnitModule.plan` (see :mod:`supernet.compiler.plan`).

Per dense block the compiler picks a kernel by density: a masked dense weight (an
``nn.Linear`` times a mask) at high density, a sparse CSR weight with its own backward
(:mod:`supernet.compiler.kernels`) below ``sparse_below`` (measured in
``benchmarks/bench_neuron.py``).

Examples:
    >>> import torch
    >>> from supernet import compile
    >>> from supernet.units import mlp
    >>> net = compile(mlp([4, 8, 2], density=0.5, seed=0))
    >>> net(torch.randn(3, 4)).shape
    torch.Size([3, 2])
    >>> sorted(name for name, _ in net.named_parameters())
    ['edges.h1->y.weight', 'edges.x->h1.weight', 'nodes.h1.bias', 'nodes.y.bias']
"""

from __future__ import annotations

import json

import torch
import torch.nn as nn

from supernet.compiler.base import register_compiler
from supernet.compiler.blocks import GridBlock
from supernet.compiler.kernels import pool as pool_fn
from supernet.compiler.module import GraphModule, module_key
from supernet.compiler.plan import FrozenMap, NodeStep, PoolStep, UnitEdge, UnitPlan
from supernet.compiler.unit_sync import sync_module
from supernet.errors import ShapeError, SupernetError
from supernet.gates import Decision, Relaxation, Softmax
from supernet.init import InitPolicy
from supernet.units.build import UNIT_LEVELS, check_unit_graph, edge_key

__all__ = ["UnitModule", "compile_units", "SPARSE_BELOW"]

#: Density below which a dense block uses the sparse kernel (see docs/benchmarks.md).
SPARSE_BELOW = 0.25


class UnitModule(GraphModule):
    """A compiled channel- or neuron-level graph.

    Call it with the graph's inputs in order; it returns the output (a tuple when there are
    several). Parameters: ``edges[u->v].weight`` (masked dense or conv, the shape of the
    matching ``nn.Linear``/``nn.Conv2d``) or ``edges[u->v].values`` (sparse), and
    ``nodes[v].bias``, ``nodes[v].norm_weight``/``norm_bias``.

    Args:
        graph: a channel- or neuron-level graph.
        sparse_below: dense blocks sparser than this use the sparse kernel.
        kernel: ``"auto"`` (by density), ``"dense"`` or ``"sparse"`` for every dense block.
        seed: seed of the initial weights (default: torch's global generator).

    Attributes:
        plan: the schedule ``forward`` runs, read-only
            (:class:`~supernet.compiler.plan.UnitPlan`).
        arch: gate logits, ``(n, 2)`` per gated node and ``(nnz, 2)`` per gated edge,
            columns (keep, drop).
        relaxation: turns ``arch`` into decisions once per forward (default: softmax).
    """

    def __init__(self, graph, sparse_below: float = SPARSE_BELOW, kernel: str = "auto",
                 seed: int | None = None, sparse_min: int = 4096):
        check_unit_graph(graph, "the unit compiler")
        super().__init__(graph)
        if kernel not in ("auto", "dense", "sparse"):
            raise SupernetError(f"kernel must be 'auto', 'dense' or 'sparse', got {kernel!r}")
        self.sparse_below, self.kernel, self.sparse_min = sparse_below, kernel, sparse_min
        self.nodes = nn.ModuleDict()
        self.edges = nn.ModuleDict()
        self.arch = nn.ParameterDict()
        self.relaxation: Relaxation | None = None
        self.sync(InitPolicy("random", seed=seed))

    # ------------------------------------------------------------------ structure
    def sync(self, init: InitPolicy | None = None, optimizers=()) -> dict:
        """Rebuild what changed in the graph (see :mod:`supernet.compiler.unit_sync`)."""
        return sync_module(self, init, optimizers)

    def recompile(self, optimizers=()) -> None:
        """Rebuild from the graph, keeping every surviving weight (and optimizer state)."""
        self.sync(InitPolicy("random"), optimizers)

    def _after_sync(self) -> None:
        self.train(self.training)  # new blocks follow the module's mode (eval BN stats)
        if self.relaxation is None and len(self.arch):
            self.relaxation = Softmax()
        self._build_plan()
        self.mark_synced()
        resync = getattr(self.relaxation, "resync", None)
        if resync is not None:  # as the layer compiler: gate groups may have changed
            resync(self)

    def _build_plan(self) -> None:
        g = self.graph
        steps, pooled = [], set()
        for v in g.topological_order():
            d = g.nx.nodes[v]
            if d["kind"] == "input":
                continue
            edges = []
            for u, _ in g.in_edges(v):
                e = g.nx.edges[u, v]
                value = u
                if e.get("pool") is not None:
                    value = (u, json.dumps(e["pool"], sort_keys=True))
                    if value not in pooled:
                        pooled.add(value)
                        spec = e["pool"]
                        spec = FrozenMap(spec) if isinstance(spec, dict) else spec
                        steps.append(PoolStep(value, u, spec))
                key = edge_key(u, v)
                gate = module_key(key) if e.get("gated") else None
                edges.append(UnitEdge(u, value, self.edges[module_key(key)], gate, e["kind"]))
            gate = module_key(v) if d.get("gated") else None
            params = self.nodes[module_key(v)]
            fuse = params.bias is not None and bool(edges) and isinstance(edges[0].block, GridBlock)
            steps.append(NodeStep(v, params, tuple(edges), gate, fuse))
        self._plan = UnitPlan(tuple(g.inputs), tuple(g.outputs), tuple(steps),
                              tuple(self.nodes[module_key(n)] for n in g.inputs))

    @property
    def plan(self) -> UnitPlan:
        """The compiled schedule, read-only (see :mod:`supernet.compiler.plan`)."""
        return self._plan

    def block(self, u: str, v: str):
        """The compiled block of edge ``u -> v``."""
        key = module_key(edge_key(u, v))
        if key not in self.edges:
            raise SupernetError(f"{self.graph.name}: no compiled edge {u}->{v}")
        return self.edges[key]

    def unit_params(self, node: str):
        """The compiled per-unit parameters (bias, norm) of ``node``."""
        return self.nodes[module_key(node)]

    def gates(self) -> dict[str, list[str]]:
        """Gate key -> candidate names (``["keep", "drop"]``), as at layer level."""
        return {k: ["keep", "drop"] for k in self.arch.keys()}

    def gate_groups(self) -> dict[str, tuple]:
        """Gate key -> ``("units", node)`` or ``("connections", (u, v))``."""
        out = {}
        for n, d in self.graph.nx.nodes(data=True):
            if d.get("gated") and d["kind"] == "units":
                out[module_key(n)] = ("units", n)
        for u, v, e in self.graph.nx.edges(data=True):
            if e.get("gated"):
                out[module_key(edge_key(u, v))] = ("connections", (u, v))
        return {k: out[k] for k in self.arch.keys() if k in out}

    # ------------------------------------------------------------------ forward
    def decisions(self) -> dict[str, Decision]:
        if not len(self.arch):
            return {}
        if self.relaxation is None:
            raise SupernetError(
                f"{self.graph.name}: the graph has {len(self.arch)} gate group(s) but no "
                "relaxation; set module.relaxation or discretize the gates"
            )
        return self.relaxation(dict(self.arch.items()))

    def forward(self, *inputs, gates: dict[str, Decision] | None = None):
        values = self.run(inputs, gates)
        outs = tuple(values[o] for o in self._plan.outputs)
        return outs[0] if len(outs) == 1 else outs

    def run(self, inputs, gates: dict[str, Decision] | None = None,
            probe: dict[str, torch.Tensor] | None = None) -> dict:
        """Evaluate the schedule; returns every node's value.

        Args:
            gates: decisions by gate key (default: ``relaxation(arch)``, once).
            probe: dense weights by edge key (``"u->v"``) used instead of the block's own,
                so that gradient probes see every potential connection.
        """
        self.check_fresh()
        plan = self._plan
        if len(inputs) != len(plan.inputs):
            raise SupernetError(
                f"{self.graph.name}: expected {len(plan.inputs)} input(s) "
                f"{list(plan.inputs)}, got {len(inputs)}"
            )
        if gates is None:
            gates = self.decisions()
        values = {}
        for n, sel, x in zip(plan.inputs, plan.selects, inputs):
            if not torch.is_tensor(x) or x.dim() < 2 or x.shape[1] != sel.width:
                shape = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
                raise ShapeError(
                    f"{self.graph.name}: input {n!r} expects a tensor (N, {sel.width}, ...), "
                    f"got {shape}"
                )
            values[n] = sel(x)
        for step in plan.steps:
            if type(step) is PoolStep:
                values[step.key] = self._pool(step.src, step.spec, values[step.src])
                continue
            v, params, fuse = step.node, step.params, step.fuse
            acc = None
            for k, e in enumerate(step.edges):
                u, block, kind = e.src, e.block, e.kind
                x = values[e.value]
                if kind == "dense" and x.dim() != 2:
                    # broadcasting would silently mix the spatial and unit dimensions
                    raise ShapeError(
                        f"{self.graph.name}: dense edge {u}->{v} reads (N, C) values but "
                        f"{u!r} gives {tuple(x.shape)}; pool feature maps first "
                        "(connect(..., pool='global_avg'))"
                    )
                keep = _keep(gates, e.gate, self.graph.name)
                bias = params.bias if fuse and k == 0 else None
                try:
                    if probe is not None and edge_key(u, v) in probe:
                        y = block.apply_weight(x, probe[edge_key(u, v)], bias)
                    elif bias is not None:
                        y = block(x, keep, bias)
                    else:
                        y = block(x, keep)
                    acc = y if acc is None else acc + y
                except RuntimeError as exc:
                    raise ShapeError(
                        f"{self.graph.name}: edge {u}->{v} ({kind}) failed on an input of shape "
                        f"{tuple(x.shape)}: {exc}. A dense edge reads (N, C) values: pool "
                        "feature maps first (pool='global_avg')"
                    ) from exc
            if acc is None:
                raise ShapeError(
                    f"{self.graph.name}: node {v!r} has no in-edges; connect it or remove it"
                )
            try:
                out = params(acc, fuse)
            except RuntimeError as exc:
                raise ShapeError(
                    f"{self.graph.name}: node {v!r} cannot normalize or activate its summed "
                    f"inputs of shape {tuple(acc.shape)}: {exc}"
                ) from exc
            keep = _keep(gates, step.gate, self.graph.name)
            if keep is not None:
                out = out * keep.view((1, -1) + (1,) * (out.dim() - 2))
            values[v] = out
        return values

    def _pool(self, u, spec, x):
        try:
            return pool_fn(x, spec)
        except (RuntimeError, KeyError, IndexError) as exc:
            raise ShapeError(
                f"{self.graph.name}: cannot pool the value of {u!r} (shape {tuple(x.shape)}) "
                f"with {spec}: {exc}"
            ) from exc


def _keep(gates, key, name):
    if key is None:
        return None
    if key not in gates:
        raise SupernetError(f"{name}: no decision was given for gate group {key!r}")
    w = gates[key].weights
    if w is None:
        raise SupernetError(
            f"{name}: the decision of gate group {key!r} has no weights; unit-level gates "
            "scale units by weights[:, 0] (keep)"
        )
    return w[:, 0]


def compile_units(graph, **kwargs) -> UnitModule:
    """Compile a channel- or neuron-level graph (see :class:`UnitModule`)."""
    return UnitModule(graph, **kwargs)


for _level in UNIT_LEVELS:
    register_compiler(_level)(compile_units)
