"""Creation during the search: grow the space without changing what it computes.

A creation policy adds structure at a search's epoch ends through ``state.editor``, so the
growth is recorded and replayable like pruning, and the optimizers take the new parameters
in (weights join the weight optimizer, new architecture logits the architecture optimizer,
resized logits keep their optimizer state). Growth is *function-preserving*: right after
it, the super-network computes the same outputs, so the search continues from where it was
instead of paying for a perturbation.

* :class:`GrowOps` adds candidate ops to gated edges: with ``init="zero"`` the op starts at
  zero output and takes part of the probability of the edge's zero (``none``) candidate;
  with ``init="split"`` it copies an existing candidate (kernels zero-padded when larger)
  and the two share its probability (Net2Net-style).
* :class:`GrowNode` adds an intermediate node to a cell: its in-edges carry candidate ops
  initialized at random, its out-edge into a later (sum) node carries candidates that
  start at zero output, so nothing downstream changes until training moves them.

See ``docs/creation.md`` for when growth helps and when it cannot preserve the function.

Examples:
    >>> import torch
    >>> from supernet import Graph, compile
    >>> from supernet.edits import Editor
    >>> from supernet.search.base import SearchState
    >>> g = Graph("layer"); g.add_input("x", channels=4); g.add_node("h", channels=4)
    >>> g.add_edge("x", "h", ["none", "conv_3x3"]); g.set_outputs(["h"])
    >>> net = compile(g).eval(); x = torch.randn(2, 4, 8, 8); before = net(x)
    >>> state = SearchState(g, net, Editor(g, net), epoch=3)
    >>> GrowOps(["conv_1x1"], at=3).on_epoch_end(state)
    >>> g.edge("x", "h")["ops"], bool((net(x) - before).abs().max() < 1e-6)
    (['none', 'conv_3x3', 'conv_1x1'], True)
"""

from __future__ import annotations

from typing import Callable, Iterable, Sequence

import networkx as nx

from supernet.edits import AddEdge, AddNode, AddOp
from supernet.errors import EditError, SearchError
from supernet.ops.registry import build_op, resolve_op
from supernet.schema import is_symbol
from supernet.search.base import CreationPolicy, SearchState
from supernet.search.choices.layer import constraints_of
from supernet.search.progressive.common import (
    GatedEdge,
    gate_probabilities,
    gated_edges,
    require_layer,
    template,
)
from supernet.search.relaxations.partial import beta_name

__all__ = ["GrowOps", "GrowNode", "is_parametric"]


_UNIT_LEVEL_ADVICE = ("at the channel and neuron levels, grow with supernet.search.creation.rigl.RigL "
                      "or supernet.search.creation.units.GrowUnits")


def _epochs(at) -> set[int]:
    if at is None:
        return set()
    if isinstance(at, int):
        return {at}
    return {int(a) for a in at}


class _Scheduled(CreationPolicy):
    """Fires at the ends of epochs ``at`` or where ``when(state)`` holds, once per epoch."""

    at: set
    when: Callable | None

    def due(self, state: SearchState) -> bool:
        if state.epoch in getattr(self, "_fired", ()):
            return False
        hit = state.epoch in self.at or (self.when is not None and bool(self.when(state)))
        if hit:
            self._fired = {*getattr(self, "_fired", ()), state.epoch}
        return hit


def is_parametric(module, edge: GatedEdge, op: str) -> bool:
    """Whether candidate ``op`` of ``edge`` has trainable parameters in ``module``."""
    owner = module.cell_modules(edge.cell)[0] if edge.cell else module
    return any(p.requires_grad for p in owner.edge_module(edge.u, edge.v)[op].parameters())


class GrowOps(_Scheduled):
    """Add candidate ops to gated edges during the search, keeping the outputs.

    Args:
        ops: op names to add (an edge gets those it does not have yet).
        at: epoch(s) (completed epochs) at whose end to grow.
        when: ``when(state) -> bool``, grow at the epoch ends where it holds (with or
            instead of ``at``).
        edges: which gated edges grow: ``"all"``; ``"parametric"``, those whose strongest
            candidate has parameters (growth where the search already prefers learned
            ops); or ``edges(state, edge, probs) -> bool``.
        init: ``"zero"`` (needs a zero candidate on the edge and ops that can start at zero
            output) or ``"split"`` (needs ``source``).
        source: the candidate a split copies, or a dict new op -> candidate.
        share: fraction of the zero candidate's probability a zero-init op takes.
        noise: standard deviation of noise added to a split copy (then outputs change
            by about as much).
        cells: groups that grow (cell template names, ``""`` for the top graph; ``None``:
            all).
    """

    def __init__(self, ops: Sequence[str] | str, at: int | Iterable[int] | None = None,
                 when: Callable[[SearchState], bool] | None = None,
                 edges: str | Callable = "all", init: str = "zero",
                 source: str | dict | None = None, share: float = 0.5, noise: float = 0.0,
                 cells: Sequence[str] | None = None):
        self.ops = [ops] if isinstance(ops, str) else list(ops)
        for op in self.ops:
            resolve_op(op, "GrowOps")
        if init not in ("zero", "split"):
            raise EditError(
                f"GrowOps: init must be 'zero' or 'split' (function-preserving), got {init!r}; "
                "use AddOp(init='random') directly to grow without preserving the function"
            )
        if init == "split" and source is None:
            raise EditError("GrowOps: init='split' needs source= the candidate to copy")
        if isinstance(edges, str) and edges not in ("all", "parametric"):
            raise EditError(
                f"GrowOps: edges must be 'all', 'parametric' or a callable, got {edges!r}")
        if at is None and when is None:
            raise EditError("GrowOps: give at= (epochs) or when= (a condition) to grow at")
        self.at, self.when = _epochs(at), when
        self.edges, self.init, self.source = edges, init, source
        self.share, self.noise = share, noise
        self.cells = None if cells is None else set(cells)
        self.grown: list[dict] = []


    def selected(self, state: SearchState) -> list[GatedEdge]:
        """The gated edges that grow now."""
        table = gate_probabilities(state.module)
        out = []
        for e in gated_edges(state.graph, state.module):
            if self.cells is not None and e.cell not in self.cells:
                continue
            if self.edges == "parametric":
                p = e.probs(table)
                strongest = e.ops[int(p.argmax())]
                if not is_parametric(state.module, e, strongest):
                    continue
            elif callable(self.edges) and not self.edges(state, e, e.probs(table)):
                continue
            out.append(e)
        return out

    def on_epoch_end(self, state: SearchState) -> None:
        require_layer(state.graph, "GrowOps works on the candidate ops of layer-level edges",
                      _UNIT_LEVEL_ADVICE)
        if not self.due(state):
            return
        for e in self.selected(state):
            for op in self.ops:
                if op in template(state.graph, e.cell).edge(e.u, e.v)["ops"]:
                    continue
                source = self.source.get(op) if isinstance(self.source, dict) else self.source
                if self.init == "split" and source not in e.ops:
                    continue  # nothing to copy on this edge
                edit = AddOp(e.u, e.v, op, init=self.init, source=source, share=self.share,
                             noise=self.noise, cell=e.target)
                state.editor.apply(edit)
                self.grown.append({"epoch": state.epoch, "edge": "/".join(e.name), "op": op})

    def state_dict(self) -> dict:
        return {"grown": self.grown}

    def load_state_dict(self, state: dict) -> None:
        self.grown = list(state.get("grown", []))


class GrowNode(_Scheduled):
    """Add an intermediate node to a cell (or the top graph) during the search, keeping
    the outputs.

    The node ``name`` gets one gated in-edge from each of ``sources`` carrying ``in_ops``
    (random initialization) and one gated out-edge into ``target`` carrying ``out_ops``,
    all starting at zero output (``none`` and parametric ops whose last layer is zeroed).
    Edge arguments (stride, affine, ...) are copied from the edge ``source -> target`` when
    it exists (else from any in-edge of ``target``, else ``args``); the out-edge takes them
    with stride 1.

    When the graph's constraints keep ``max_inputs`` inputs per node (a DARTS cell keeps
    two), at least that many sources are required, so that the discretized node is one the
    space's text form can hold: a DARTS cell grown this way encodes as a genotype with one
    more node (``search_spaces.darts.cells.cell_states`` numbers it) and builds as the
    evaluation network with that node.

    Args:
        cell: the cell template to grow (``None``: the top graph).
        name: the new node's name (with several epochs in ``at``, ``name_1``, ... follow).
        sources: nodes the new node reads.
        target: a later ``sum`` node the new node feeds.
        in_ops, out_ops: candidate ops of the in-edges and of the out-edge.
        at: epoch(s) (completed epochs) at whose end to grow.
        when: ``when(state) -> bool``, grow at the epoch ends where it holds.
        args: edge arguments when no edge into ``target`` has any.
        channels: the node's width (default: ``target``'s).
    """

    def __init__(self, cell: str | None, name: str, sources: Sequence[str], target: str,
                 in_ops: Sequence[str], out_ops: Sequence[str],
                 at: int | Iterable[int] | None = None,
                 when: Callable[[SearchState], bool] | None = None,
                 args: dict | None = None, channels=None):
        if at is None and when is None:
            raise EditError("GrowNode: give at= (epochs) or when= (a condition) to grow at")
        if not sources:
            raise EditError("GrowNode: sources is empty; the new node needs at least one input")
        self.cell, self.name, self.target = cell, name, target
        self.sources, self.in_ops, self.out_ops = list(sources), list(in_ops), list(out_ops)
        self.at, self.when = _epochs(at), when
        self.args, self.channels = dict(args or {}), channels
        self._check_out_ops()
        self.grown: list[str] = []


    def _check_out_ops(self) -> None:
        args = {k: v for k, v in {**self.args, "stride": 1}.items() if not is_symbol(v)}
        for op in self.out_ops:
            spec = resolve_op(op, f"GrowNode {self.name!r}")
            if spec.zero:
                continue
            if spec.zero_output is None:
                raise EditError(
                    f"GrowNode {self.name!r}: out-edge candidate {op!r} has no zero_output "
                    "hook, so it cannot start at zero output and the cell's output would "
                    "change; use parametric ops (and 'none') on the out-edge"
                )
            try:  # a trial build: e.g. an identity skip-connect has nothing to zero
                m = build_op(op, 4, 4, {k: v for k, v in args.items() if k in spec.params})
                spec.zero_output(m)
            except (ValueError, AttributeError) as exc:
                raise EditError(
                    f"GrowNode {self.name!r}: out-edge candidate {op!r} cannot start at zero "
                    f"output ({exc}); use parametric ops (and 'none') on the out-edge"
                ) from None

    def _edge_args(self, g, source) -> dict:
        if g.nx.has_edge(source, self.target):
            return dict(g.nx.edges[source, self.target].get("args", {}))
        for u, _ in g.in_edges(self.target):
            a = g.nx.edges[u, self.target].get("args", {})
            if a:
                a = dict(a)
                a.pop("stride", None)
                return {**self.args, **a}
        return dict(self.args)

    def on_epoch_end(self, state: SearchState) -> None:
        require_layer(state.graph, "GrowNode", _UNIT_LEVEL_ADVICE)
        if not self.due(state):
            return
        g = template(state.graph, self.cell or "")
        name = self.name if not self.grown else f"{self.name}_{len(self.grown)}"
        node = g.node(self.target)
        where = f"{g.name}: GrowNode {name!r}"
        if node.get("kind", "merge") != "merge" or node.get("merge", "sum") != "sum":
            raise SearchError(
                f"{where}: target {self.target!r} is not a sum node, so a new input would "
                "change its value or width; grow into a node that sums its inputs"
            )
        later = nx.descendants(g.nx, self.target) | {self.target}
        bad = [s for s in self.sources if s in later]
        if bad:
            raise SearchError(
                f"{where}: sources {bad} come after target {self.target!r}; the new node "
                "would close a cycle: read from earlier nodes"
            )
        keep = constraints_of(state.graph, self.cell or "")["max_inputs"]
        if keep is not None and len(self.sources) < keep:
            raise SearchError(
                f"{where}: the nodes of {'cell ' + repr(self.cell) if self.cell else 'the graph'} "
                f"keep max_inputs={keep} inputs each when discretized (graph.meta"
                f"['constraints']), as the space's text form needs (a DARTS genotype lists two "
                f"(op, input) pairs per node); a node grown from {len(self.sources)} source(s) "
                f"would keep fewer, and the found architecture could not be encoded nor built: "
                f"give at least {keep} sources"
            )
        normalized = [beta_name(k) for u, _ in g.in_edges(self.target)
                      for k in state.module.gate_keys(u, self.target, self.cell)]
        if any(k in state.module.arch for k in normalized):
            raise SearchError(
                f"{where}: target {self.target!r} weights its inputs by edge normalization "
                "(PC-DARTS' softmax over them), so a new input would take a share from the "
                "others and change its value; grow with edge_norm=False, or grow candidate "
                "ops (GrowOps) instead"
            )
        channels = self.channels if self.channels is not None else node.get("channels")
        ed = state.editor
        c = self.cell or None
        ed.apply(AddNode(name, channels=channels, cell=c))
        out_args = {}
        for s in self.sources:
            a = self._edge_args(g, s)
            ed.apply(AddEdge(s, name, list(self.in_ops), args=a, init="random", cell=c))
            out_args = {**a, **out_args}
        if "stride" in out_args:
            out_args["stride"] = 1
        ed.apply(AddEdge(name, self.target, list(self.out_ops), args=out_args, init="zero", cell=c))
        self.grown.append(name)

    def state_dict(self) -> dict:
        return {"grown": self.grown}

    def load_state_dict(self, state: dict) -> None:
        self.grown = list(state.get("grown", []))
