"""The discrete architectures of a super-network, under the space's constraints.

A *choice* maps every gated edge ``(cell, u, v)`` (``cell`` is a template name, or ``""`` for
the top-level graph) to the op it keeps, or to ``None`` when the edge is dropped. Spaces
declare their constraints in ``graph.meta["constraints"]``, keyed by template name (``""``
for the top-level graph)::

    {"normal": {"max_inputs": 2, "exclude": ["none"]}, ...}

Each node with gated in-edges keeps at most ``max_inputs`` in-edges (``None``: all; in-edges
that are not gates always stay and count), and each kept edge exactly one op; excluded ops
never win. :class:`LayerChoiceSpace`, the layer level's
:class:`~supernet.search.choices.base.ChoiceSpace`, enumerates the choices: the best one
under given weights (end-of-search discretization), uniform samples (SPOS), mutations and
crossovers (evolutionary search); it turns a choice into decisions for
``module(x, gates=...)`` and into the graph edits that make it permanent, which also remove
the nodes the choice leaves without a use (:func:`dangling_nodes`).

Examples:
    >>> from supernet import Graph, compile
    >>> g = Graph("layer"); g.add_input("x", channels=4)
    >>> g.add_node("a", channels=4); g.add_edge("x", "a", ["conv_3x3", "skip_connect", "none"])
    >>> g.add_node("b", channels=4); g.add_edge("x", "b", ["conv_3x3", "none"])
    >>> g.add_edge("a", "b", ["skip_connect", "none"]); g.set_outputs(["b"])
    >>> g.meta["constraints"] = {"": {"max_inputs": 1, "exclude": ["none"]}}
    >>> space = ChoiceSpace(g, compile(g))
    >>> import torch
    >>> probs = {"x->a": torch.tensor([[.2, .3, .5]]), "x->b": torch.tensor([[.6, .4]]),
    ...          "a->b": torch.tensor([[.7, .3]])}
    >>> space.best(probs)
    {('', 'x', 'a'): 'skip_connect', ('', 'x', 'b'): None, ('', 'a', 'b'): 'skip_connect'}
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import networkx as nx
import torch

from supernet.compiler.module import module_key
from supernet.edits import RemoveEdge, RemoveNode, RemoveOp
from supernet.errors import SearchError
from supernet.gates import Decision, PathDecision, gate_probabilities
from supernet.ops.registry import resolve_op
from supernet.search.choices.base import ChoiceSpace, register_choice_space

__all__ = ["LayerChoiceSpace", "ChoiceSpace", "NodeGroup", "GatedEdge", "constraints_of",
           "dangling_nodes", "check_constraints"]


def constraints_of(graph, cell: str = "") -> dict:
    """``{"max_inputs": int | None, "exclude": [ops]}`` of template ``cell`` (``""``: top)."""
    table = graph.meta.get("constraints") or {}
    if not isinstance(table, dict):
        raise SearchError(
            f"{graph.name}: meta['constraints'] must be a dict keyed by cell template name, "
            f"got {type(table).__name__}"
        )
    entry = dict(table.get(cell) or {})
    unknown = sorted(set(entry) - {"max_inputs", "exclude"})
    if unknown:
        raise SearchError(
            f"{graph.name}: meta['constraints'][{cell!r}] has unknown key(s) {unknown}; "
            "expected 'max_inputs' and 'exclude'"
        )
    m = entry.get("max_inputs")
    if m is not None and (not isinstance(m, int) or isinstance(m, bool) or m < 1):
        raise SearchError(
            f"{graph.name}: meta['constraints'][{cell!r}]['max_inputs'] must be a positive "
            f"int or None, got {m!r}"
        )
    return {"max_inputs": m, "exclude": list(entry.get("exclude") or [])}


@dataclass
class GatedEdge:
    """One gated edge: its gate keys in ``module.arch`` and its candidate op names."""

    u: str
    keys: list[str]
    ops: list[str]
    allowed: list[int]  # indices of non-excluded candidates
    zero: int | None  # index of a zero candidate, if any


@dataclass
class NodeGroup:
    """A node with gated in-edges and the constraint on them."""

    cell: str
    v: str
    edges: list[GatedEdge]
    fixed_inputs: int  # in-edges that are no gates (always kept)
    max_inputs: int | None
    exclude: list[str] = field(default_factory=list)

    @property
    def budget(self) -> int:
        """How many gated in-edges may be kept."""
        if self.max_inputs is None:
            return len(self.edges)
        return max(0, min(len(self.edges), self.max_inputs - self.fixed_inputs))


def dangling_nodes(graph) -> list[tuple[str | None, str]]:
    """``(cell, node)`` of nodes no output depends on (reverse topological order)."""
    out = []
    for cell, g in [(None, graph), *graph.cells.items()]:
        used = set(g.outputs)
        for o in g.outputs:
            used |= nx.ancestors(g.nx, o)
        for n in reversed(g.topological_order()):
            d = g.nx.nodes[n]
            if n not in used and d.get("kind") != "input" and not d.get("keep"):
                out.append((cell, n))
    return out


@register_choice_space("layer")
class LayerChoiceSpace(ChoiceSpace):
    """The discrete architectures of a layer-level ``graph`` compiled as ``module``: one op
    per kept gated edge, at most ``max_inputs`` in-edges per node."""

    def __init__(self, graph, module):
        super().__init__(graph, module)
        self.groups: list[NodeGroup] = []
        for cell, g in [("", graph), *graph.cells.items()]:
            cons = constraints_of(graph, cell)
            gated = {}
            for u, v in g.gate_edges():
                keys = module.gate_keys(u, v, cell or None)
                if not keys:
                    continue  # a template no call node uses
                ops = list(g.nx.edges[u, v]["ops"])
                allowed = [i for i, o in enumerate(ops) if o not in cons["exclude"]]
                zeros = [i for i, o in enumerate(ops) if resolve_op(o).zero]
                gated.setdefault(v, []).append(GatedEdge(u, keys, ops, allowed,
                                                         zeros[0] if zeros else None))
            for v in g.topological_order():
                if v not in gated:
                    continue
                edges = sorted(gated[v], key=lambda e: g.nx.edges[e.u, v].get("port", 0))
                fixed = g.nx.in_degree(v) - len(edges)
                group = NodeGroup(cell, v, edges, fixed, cons["max_inputs"], cons["exclude"])
                if group.budget == 0 and fixed == 0:
                    raise SearchError(
                        f"{g.name}: node {v!r} could keep no input under the constraints "
                        f"{cons}; raise max_inputs"
                    )
                self.groups.append(group)

    # ---------------------------------------------------------------- enumerate
    def edges(self):
        """``(key, group, edge)`` of every gated edge, in order."""
        for grp in self.groups:
            for e in grp.edges:
                yield (grp.cell, e.u, grp.v), grp, e

    def _check_allowed(self, grp, e):
        if not e.allowed:
            where = f"{grp.cell + ': ' if grp.cell else ''}edge {e.u}->{grp.v}"
            raise SearchError(
                f"{where}: every candidate {e.ops} is excluded by the constraints "
                f"(exclude={grp.exclude}); keep at least one op allowed"
            )

    def decide(self, module, choice: dict | None = None) -> dict:
        """``choice``, or the best choice under the relaxation's candidate weights."""
        return self.best(gate_probabilities(module)) if choice is None else choice

    def best(self, probs: dict[str, torch.Tensor]) -> dict:
        """The choice keeping, per node, the ``max_inputs`` edges of highest best-allowed
        weight, each with its best allowed op (``probs``: gate key -> ``(n, K)``)."""
        choice = {}
        for grp in self.groups:
            scored = []
            for e in grp.edges:
                w = torch.stack([probs[k].detach().float().reshape(-1, len(e.ops)).mean(0)
                                 for k in e.keys]).mean(0)
                if not e.allowed:
                    scored.append((float("-inf"), e, None))
                    continue
                best = max(e.allowed, key=lambda i: (float(w[i]), -i))
                scored.append((float(w[best]), e, e.ops[best]))
            order = sorted(range(len(scored)), key=lambda j: (-scored[j][0], j))
            keep = set(order[: grp.budget])
            for j, (score, e, op) in enumerate(scored):
                if j in keep and op is None:
                    self._check_allowed(grp, e)
                choice[(grp.cell, e.u, grp.v)] = op if j in keep else None
        return choice

    def sample(self, rng: random.Random | None = None) -> dict:
        """A uniform random choice (uniform subset of edges, uniform allowed op each)."""
        rng = rng or random
        choice = {}
        for grp in self.groups:
            idx = list(range(len(grp.edges)))
            keep = set(rng.sample(idx, grp.budget))
            for j, e in enumerate(grp.edges):
                if j in keep:
                    self._check_allowed(grp, e)
                    choice[(grp.cell, e.u, grp.v)] = e.ops[rng.choice(e.allowed)]
                else:
                    choice[(grp.cell, e.u, grp.v)] = None
        return choice

    def mutate(self, choice: dict, prob: float, rng: random.Random) -> dict:
        """Resample each node's edges and ops with probability ``prob`` (SPOS mutation)."""
        out = dict(choice)
        for grp in self.groups:
            if rng.random() < prob:  # the set of inputs of the node
                fresh = self._sample_group(grp, rng)
                out.update(fresh)
            for e in grp.edges:
                key = (grp.cell, e.u, grp.v)
                if out[key] is not None and rng.random() < prob:
                    out[key] = e.ops[rng.choice(e.allowed)]
        return out

    def crossover(self, a: dict, b: dict, rng: random.Random) -> dict:
        """Each node's in-edge choices from one parent or the other, uniformly."""
        out = {}
        for grp in self.groups:
            src = a if rng.random() < 0.5 else b
            for e in grp.edges:
                key = (grp.cell, e.u, grp.v)
                out[key] = src[key]
        return out

    def _sample_group(self, grp, rng):
        idx = list(range(len(grp.edges)))
        keep = set(rng.sample(idx, grp.budget))
        return {(grp.cell, e.u, grp.v): (e.ops[rng.choice(e.allowed)] if j in keep else None)
                for j, e in enumerate(grp.edges)}

    @staticmethod
    def encode(choice: dict) -> tuple:
        """A hashable form of ``choice`` (to skip duplicates)."""
        return tuple(sorted((k, v or "") for k, v in choice.items()))

    # ---------------------------------------------------------------- use
    def decisions(self, choice: dict, like: torch.Tensor | None = None) -> dict[str, Decision]:
        """Decisions running exactly ``choice``: the chosen op of each kept edge alone;
        a dropped edge runs its zero candidate (or any candidate times zero)."""
        dtype = like.dtype if like is not None else torch.float32
        device = like.device if like is not None else "cpu"
        out = {}
        for key, grp, e in self.edges():
            op = choice[key]
            w = torch.zeros(1, len(e.ops), dtype=dtype, device=device)
            if op is None:
                idx = e.zero if e.zero is not None else 0
            else:
                idx = e.ops.index(op)
                w[0, idx] = 1.0
            d = Decision(w, [[idx]]) if op is None else PathDecision(w, [[idx]])
            for k in e.keys:
                out[module_key(k)] = d
        return out

    def edits(self, choice: dict) -> list:
        """The edits that make ``choice`` permanent: dropped edges first, then losing ops."""
        drops, prunes = [], []
        for (cell, u, v), grp, e in self.edges():
            op = choice[(cell, u, v)]
            c = cell or None
            if op is None:
                drops.append(RemoveEdge(u, v, cell=c))
                continue
            prunes += [RemoveOp(u, v, o, cell=c) for o in e.ops if o != op]
        return drops + prunes

    def apply(self, editor, choice: dict) -> list:
        """Apply the edits of ``choice`` and remove the nodes left dangling; returns the
        edits."""
        done = super().apply(editor, choice)
        for cell, n in dangling_nodes(editor.graph):
            done.append(editor.apply(RemoveNode(n, cell=cell)).edit)
        return done

    def check(self, module=None) -> None:
        """Raise :class:`SearchError` unless the graph has no gate left and every node of
        the space (taken before discretizing) meets its constraint."""
        check_constraints(self.graph, self)


def check_constraints(graph, space: LayerChoiceSpace) -> None:
    """Raise :class:`SearchError` unless ``graph`` has no gate left and every node of
    ``space`` (taken before discretizing) meets its constraint."""
    left = [(c, e) for c, g in [("", graph), *graph.cells.items()] for e in g.gate_edges()]
    if left:
        raise SearchError(f"{graph.name}: gates {left} are left after discretization")
    for grp in space.groups:
        g = graph.cells[grp.cell] if grp.cell else graph
        where = f"{graph.name}" + (f" (cell {grp.cell!r})" if grp.cell else "")
        if grp.v not in g.nx:
            continue
        if grp.max_inputs is not None and g.nx.in_degree(grp.v) > grp.max_inputs:
            raise SearchError(
                f"{where}: node {grp.v!r} keeps {g.nx.in_degree(grp.v)} inputs, more than "
                f"max_inputs={grp.max_inputs}"
            )
        for u, _ in g.in_edges(grp.v):
            ops = g.nx.edges[u, grp.v]["ops"]
            if ops and ops[0] in grp.exclude:
                raise SearchError(f"{where}: edge {u}->{grp.v} kept excluded op {ops[0]!r}")
