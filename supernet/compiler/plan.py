"""The compiled plan: the schedule a compiled module runs, as named, immutable records.

Each compiler turns its graph into a plan once, at compile time and after every edit, and
``forward`` walks it step by step. The plan is public and read-only: ``module.plan`` on a
:class:`~supernet.compiler.layer.LayerModule` is a :class:`LayerPlan`, on a
:class:`~supernet.compiler.units.UnitModule` a :class:`UnitPlan`. Tools that follow the
computation without running it (:func:`supernet.compiler.standalone.standalone`, the latency
table of :mod:`supernet.cost.latency`) read it by field name. Every record is a frozen
dataclass holding tuples; it references the compiled modules (op modules, blocks, cells)
that run, so a plan read once goes stale after the next edit: read ``module.plan`` again.

Layer level: a :class:`LayerPlan` is a sequence of :class:`MergeStep` (a node summing or
concatenating its in-edges, one :class:`PlanEdge` each, then its post-merge op) and
:class:`CallStep` (a node applying a compiled cell; the cell's own plan is ``cell.plan``).

Channel and neuron levels: a :class:`UnitPlan` is a sequence of :class:`PoolStep` (a pooled
value some dense edges read) and :class:`NodeStep` (a node summing its blocks, one
:class:`UnitEdge` each, then bias, norm, activation and unit gates).

Examples:
    >>> from supernet import Graph, compile
    >>> g = Graph("layer"); g.add_input("x", channels=3)
    >>> g.add_node("h", channels=4); g.add_edge("x", "h", ["conv_3x3", "none"])
    >>> g.add_node("y", channels=4); g.add_edge("h", "y", "identity")
    >>> g.set_outputs(["y"])
    >>> plan = compile(g).plan
    >>> plan.inputs, plan.outputs, [step.node for step in plan.steps]
    (('x',), ('y',), ['h', 'y'])
    >>> edge = plan.edge("x", "h")
    >>> edge.names, edge.gate, edge.zero
    (('conv_3x3', 'none'), 'x->h', (False, True))
    >>> plan.edge("h", "y").gate is None  # a single candidate is no gate
    True

    At the channel and neuron levels, every edge is a block of connections:

    >>> from supernet.units import mlp
    >>> net = compile(mlp([4, 8, 2], density=0.5, seed=0))
    >>> [(s.node, [(e.src, e.kind) for e in s.edges]) for s in net.plan.steps]
    [('h1', [('x', 'dense')]), ('y', [('h1', 'dense')])]
    >>> net.plan.edge("x", "h1").block is net.block("x", "h1")
    True
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch.nn as nn

from supernet.errors import GraphError

__all__ = ["PlanEdge", "MergeStep", "CallStep", "LayerPlan", "UnitEdge", "PoolStep", "NodeStep",
           "UnitPlan", "FrozenMap"]

_record = dataclass(frozen=True, slots=True)


class FrozenMap(Mapping):
    """A read-only mapping (as ``types.MappingProxyType``, but it pickles and copies):
    the plan's copy of a dict-valued graph attribute, list values as tuples."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping):
        self._data = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}

    def __getitem__(self, key):
        return self._data[key]

    def __iter__(self):
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"FrozenMap({self._data!r})"


# ---------------------------------------------------------------------------- layer level
@_record
class PlanEdge:
    """One in-edge of a merge node: its candidate ops, in candidate order.

    Attributes:
        src: the source node.
        ops: the op modules (``module.steps[node].inputs[src][name]``).
        names: the op names, aligned with ``ops``.
        zero: per candidate, whether it is the zero op (``none``), which costs nothing.
        identity: per candidate, whether its module is an ``nn.Identity`` (drop-path skips
            a lone identity).
        context: per candidate, the names of the context tensors it takes by keyword.
        gate: the gate key in ``arch`` (``"u->v"``, ``"cell:u->v"`` inside a cell), or
            ``None`` when the edge has a single candidate.
        drop_path: whether drop-path applies to the edge's output in training.
        partial: ``K`` of a partial-channel gate (PC-DARTS): its ops see ``1/K`` of the
            channels; 1 otherwise.
        shared: per candidate, ``(key, prefix, rest)`` when the op is a parameter-free
            prefix then a rest (:func:`supernet.ops.prefix.split_prefix`), else ``None``;
            the forward computes each prefix key of a node's value once for all its
            out-edges. Empty when the edge shares nothing.
        tails: per candidate of a gated edge, ``(op_tail, rest_tail)``: the split
            ``(body, bn)`` of the op, and of the rest after its prefix, that ends in a batch
            norm (:func:`supernet.ops.prefix.split_norm_tail`; either ``None``), or ``None``;
            the mixture weights such a candidate without keeping the norm's output
            (:mod:`supernet.ops.weighted_norm`). Empty when no candidate has one.
    """

    src: str
    ops: tuple[nn.Module, ...] = field(repr=False)
    names: tuple[str, ...]
    zero: tuple[bool, ...]
    identity: tuple[bool, ...]
    context: tuple[tuple[str, ...], ...]
    gate: str | None
    drop_path: bool
    partial: int = 1
    shared: tuple = field(default=(), repr=False)
    tails: tuple = field(default=(), repr=False)


@_record
class MergeStep:
    """A node that merges its in-edges, then applies its post-merge op.

    Attributes:
        node: the node computed.
        edges: its in-edges, in port order.
        merge: ``"sum"`` or ``"concat"`` (along the channel dimension).
        post: the post-merge op module, or ``None``.
        train_only: the node is computed in training only (auxiliary heads); in eval its
            value is ``None``.
        release: the nodes this step reads last (not outputs): ``forward`` drops their
            values once the step is done.
    """

    node: str
    edges: tuple[PlanEdge, ...]
    merge: str
    post: nn.Module | None = field(repr=False)
    train_only: bool
    release: tuple[str, ...] = ()


@_record
class CallStep:
    """A node that applies a compiled cell to the values of ``args``.

    Attributes:
        node: the node computed; its value is the cell's first output.
        cell: the compiled cell (a ``LayerModule``; its plan is ``cell.plan``), shared by
            the calls with the same weights key.
        args: the nodes whose values feed the cell's inputs, in order.
        train_only: as :attr:`MergeStep.train_only`.
        release: as :attr:`MergeStep.release`.
    """

    node: str
    cell: nn.Module = field(repr=False)
    args: tuple[str, ...]
    train_only: bool
    release: tuple[str, ...] = ()


@_record
class LayerPlan:
    """The plan of a layer-level module.

    Attributes:
        inputs: the graph's input nodes, in the order ``forward`` takes them.
        outputs: the graph's output nodes, in the order ``forward`` returns them.
        steps: one :class:`MergeStep` or :class:`CallStep` per computed node, in schedule
            order (nodes with no value, e.g. without in-edges, have none).
    """

    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    steps: tuple[MergeStep | CallStep, ...]

    def step(self, node: str) -> MergeStep | CallStep:
        """The step computing ``node``."""
        for s in self.steps:
            if s.node == node:
                return s
        raise GraphError(f"no plan step computes node {node!r}; computed: "
                         f"{[s.node for s in self.steps]}")

    def edge(self, u: str, v: str) -> PlanEdge:
        """The :class:`PlanEdge` of ``u -> v`` (of this plan, not of the cells it calls)."""
        s = self.step(v)
        for e in getattr(s, "edges", ()):
            if e.src == u:
                return e
        raise GraphError(f"no plan edge {u}->{v}; node {v!r} reads "
                         f"{[e.src for e in getattr(s, 'edges', ())]}")

    def iter_edges(self) -> Iterator[PlanEdge]:
        """Every edge of this plan and of the plans of the cells it calls (each distinct
        cell once)."""
        seen: set[int] = set()
        stack = [self]
        while stack:
            plan = stack.pop(0)
            for s in plan.steps:
                if isinstance(s, CallStep):
                    if id(s.cell) not in seen:
                        seen.add(id(s.cell))
                        stack.append(s.cell.plan)
                else:
                    yield from s.edges


# ---------------------------------------------------------------------------- unit levels
@_record
class UnitEdge:
    """One in-edge of a unit node: a compiled block of connections.

    Attributes:
        src: the source node.
        value: the key of the value the block reads: ``src``, or the :attr:`PoolStep.key`
            of ``src``'s pooled value.
        block: the compiled block (``module.edges["u->v"]``).
        gate: the connection gate key in ``arch``, or ``None``.
        kind: ``"dense"``, ``"conv"`` or ``"identity"``.
    """

    src: str
    value: Any
    block: nn.Module = field(repr=False)
    gate: str | None
    kind: str


@_record
class PoolStep:
    """The pooled value of a node, computed once for every edge that reads it pooled.

    Attributes:
        key: the key of the pooled value (``(src, spec as JSON)``).
        src: the node pooled.
        spec: the edge's ``pool`` attribute (``"global_avg"``, ``"global_max"``, or a
            :class:`FrozenMap` of it).
    """

    key: tuple[str, str]
    src: str
    spec: Any


@_record
class NodeStep:
    """A unit node: the sum of its blocks, then bias, norm, activation and unit gates.

    Attributes:
        node: the node computed.
        params: its per-unit parameters (``module.nodes[node]``).
        edges: its in-edges, in port order.
        gate: the unit gate key in ``arch``, or ``None``.
        fuse: the bias is added by the first block (a grid block) rather than after the sum.
    """

    node: str
    params: nn.Module = field(repr=False)
    edges: tuple[UnitEdge, ...]
    gate: str | None
    fuse: bool


@_record
class UnitPlan:
    """The plan of a channel- or neuron-level module.

    Attributes:
        inputs: the graph's input nodes, in the order ``forward`` takes them.
        outputs: the graph's output nodes, in the order ``forward`` returns them.
        steps: :class:`PoolStep` and :class:`NodeStep` records, in schedule order.
        selects: per input, the module picking the units its node reads from the caller's
            tensor (``module.nodes[input]``, with its expected ``width``).
    """

    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    steps: tuple[PoolStep | NodeStep, ...]
    selects: tuple[nn.Module, ...] = field(repr=False)

    def step(self, node: str) -> NodeStep:
        """The :class:`NodeStep` computing ``node``."""
        for s in self.steps:
            if isinstance(s, NodeStep) and s.node == node:
                return s
        raise GraphError(f"no plan step computes node {node!r}; computed: "
                         f"{[s.node for s in self.steps if isinstance(s, NodeStep)]}")

    def edge(self, u: str, v: str) -> UnitEdge:
        """The :class:`UnitEdge` of ``u -> v``."""
        s = self.step(v)
        for e in s.edges:
            if e.src == u:
                return e
        raise GraphError(f"no plan edge {u}->{v}; node {v!r} reads {[e.src for e in s.edges]}")
