"""The cost of a super-network whose op choices and cell widths are searched together.

A cross-level search (:mod:`supernet.search.crosslevel`) decides, per gated edge, one
candidate op (probabilities ``p_e``) and, per cell call ``k``, one width ``W_k`` out of a
few (probabilities ``q_k``). The cost of one component -- an edge (every candidate op) or
a node's post-op -- depends on its op and on the widths of at most a few calls: an edge
inside call ``k`` on ``W_k`` (its output, and its input unless that is a cell input), a
cell's preprocessing also on the width of the call that produced its input, a classifier
on the width of the last call. :class:`CrossLevelCost` finds those dependencies by counting
the graph (:func:`supernet.cost.layer.graph_cost`) at every width of every call, then
tabulates each component over the widths it depends on. The expected cost under the
factorized distribution of the search,

    ``E[cost] = sum_c sum_{w in W(D_c)} prod_{k in D_c} q_k(w_k) sum_o p_c(o) cost_c(o, w)``,

is exact (no "cost times width fraction" approximation: a depthwise conv scales with one
width, a pointwise one with two) and differentiable in ``p`` and ``q``. At a one-hot
decision it is the cost of the discretized network: :meth:`CrossLevelCost.chosen` gives it
for a choice, and equals ``supernet.cost.cost(final_graph).total``.

Examples:
    >>> import torch
    >>> from supernet import Graph
    >>> t = Graph("layer", name="cell"); t.add_input("s")
    >>> t.add_node("h", channels="$C"); t.add_edge("s", "h", ["conv_1x1", "conv_3x3"])
    >>> t.set_outputs(["h"])
    >>> g = Graph("layer"); g.add_cell("c", t); g.add_input("x", channels=2, shape=[2, 4, 4])
    >>> g.add_call("k", "c", ["x"], bind={"C": 4}); g.set_outputs(["k"])
    >>> model = CrossLevelCost(g, {"k": [2, 4]})
    >>> model.chosen({"c:s->h": "conv_1x1"}, {"k": 2}, "params")  # 2 x 2 weights, 2 biases
    6
    >>> p, q = torch.tensor([1., 0.]), torch.tensor([.5, .5])
    >>> float(model.expected({"c:s->h": p}, {"k": q}, "params"))  # (6 + 12) / 2
    9.0
"""

from __future__ import annotations

import itertools

import torch

from supernet.compiler.module import module_key
from supernet.cost.layer import _declared_shapes, graph_cost
from supernet.cost.rules import Cost
from supernet.errors import ConfigError, SearchError

__all__ = ["CrossLevelCost", "FIELDS"]

#: The fields of :class:`~supernet.counting.Cost` the model tabulates.
FIELDS = ("params", "macs", "bn", "pool", "other")


def _minus(a: Cost, b: Cost) -> Cost:
    return Cost(*(getattr(a, f) - getattr(b, f) for f in FIELDS))


def _components(report, prefix: str = "", path: tuple = ()) -> dict:
    """``key -> (gate key or None, {op: Cost})`` of every edge and post-op of ``report``."""
    out = {}
    for (u, v), per_op in report.edges.items():
        if v in report.train_only:
            continue
        gate = prefix + f"{module_key(u)}->{module_key(v)}" if len(per_op) > 1 else None
        out[(path, u, v)] = (gate, dict(per_op))
    for n, total in report.nodes.items():
        if n in report.calls or n in report.train_only:
            continue
        post = total
        for (u, v), per_op in report.edges.items():
            if v == n:
                for c in per_op.values():
                    post = _minus(post, c)
        if any(getattr(post, f) for f in FIELDS):
            out[(path, "post", n)] = (None, {"": post})
    for n, sub in report.calls.items():
        if n in report.train_only:
            continue
        cell = report.cell_names[n]
        out.update(_components(sub, prefix + f"{module_key(cell)}:", path + (n,)))
    return out


class CrossLevelCost:
    """Tables of the cost of every component of ``graph`` over the widths it depends on.

    Args:
        graph: a layer-level graph whose cell calls bind ``symbol``.
        widths: call node -> its candidate widths (ints, the values ``symbol`` may take).
        symbol: the width symbol the calls bind (``"C"``).
        input_shape: per-sample input shape(s); default: the shapes the inputs declare.

    Attributes:
        calls: the calls with width choices, in the order of ``widths``.
        deps: component -> the calls its cost depends on.
    """

    def __init__(self, graph, widths: dict, symbol: str = "C", input_shape=None):
        if input_shape is None:
            input_shape = _declared_shapes(graph, "the cost of the widths",
                                           "give input_shape (e.g. [1, 40] for MNIST-1D)")
        self.graph, self.symbol, self.input_shape = graph, symbol, input_shape
        self.calls = list(widths)
        self.widths = {k: [int(w) for w in ws] for k, ws in widths.items()}
        base = self._count({})
        self.gates = {c: g for c, (g, _) in base.items()}
        self.ops = {c: list(per_op) for c, (_, per_op) in base.items()}
        self.deps: dict = {c: [] for c in base}
        for k in self.calls:
            for w in self.widths[k]:
                other = self._count({k: w})
                for c, (_, per_op) in other.items():
                    if k not in self.deps[c] and per_op != base[c][1]:
                        self.deps[c].append(k)
        order = {k: i for i, k in enumerate(self.calls)}
        for c in self.deps:
            self.deps[c].sort(key=order.__getitem__)
        self.tables: dict = {}
        for group in sorted({tuple(d) for d in self.deps.values()}, key=len):
            if len(group) > 3:
                raise SearchError(f"{graph.name}: a component depends on the widths of "
                                  f"{list(group)}; at most 3 width choices per component")
            members = [c for c, d in self.deps.items() if tuple(d) == group]
            shape = [len(self.widths[k]) for k in group]
            tabs = {c: torch.zeros(len(self.ops[c]), *shape, len(FIELDS), dtype=torch.float64)
                    for c in members}
            for idx in itertools.product(*[range(s) for s in shape]):
                counted = (base if not group else
                           self._count({k: self.widths[k][i] for k, i in zip(group, idx)}))
                for c in members:
                    for j, op in enumerate(self.ops[c]):
                        tabs[c][(j, *idx)] = torch.tensor(
                            [float(getattr(counted[c][1][op], f)) for f in FIELDS],
                            dtype=torch.float64)
            self.tables.update(tabs)

    def _count(self, assign: dict) -> dict:
        g = self.graph
        if assign:
            g = g.copy()
            for k, w in assign.items():
                bind = dict(g.nx.nodes[k].get("bind") or {})
                bind[self.symbol] = w
                g.set_node_attrs(k, bind=bind)
        report = graph_cost(g, self.input_shape)
        _name_cells(report, g)
        return _components(report)

    # ---------------------------------------------------------------- use
    def expected(self, op_probs: dict, width_probs: dict, field: str = "macs") -> torch.Tensor:
        """``E[cost]`` under op probabilities ``op_probs`` (gate key -> ``(K,)``) and width
        probabilities ``width_probs`` (call -> ``(len(widths[call]),)``); differentiable."""
        f = _field(field)
        missing = sorted({g for g in self.gates.values() if g is not None} - set(op_probs))
        missing += sorted(set(self.calls) - set(width_probs))
        if missing:
            raise SearchError(f"{self.graph.name}: the expected cost needs probabilities "
                              f"for {missing}")
        like = next(iter([*op_probs.values(), *width_probs.values()]), torch.zeros(()))
        total = torch.zeros((), dtype=like.dtype, device=like.device)
        for c, table in self.tables.items():
            t = table[..., f].to(like.dtype).to(like.device)
            g = self.gates[c]
            p = (op_probs[g].reshape(-1) if g is not None
                 else torch.ones(1, dtype=like.dtype, device=like.device))
            v = torch.tensordot(p, t, dims=([0], [0]))
            for k in self.deps[c]:
                v = torch.tensordot(width_probs[k].reshape(-1).to(like.dtype), v, dims=([0], [0]))
            total = total + v
        return total

    def chosen(self, ops: dict, widths: dict, field: str = "macs") -> int:
        """The cost of the network keeping op ``ops[gate]`` on each gate (``None``: the edge
        is dropped) with ``widths[call]`` channels per call."""
        f = _field(field)
        out = 0.0
        for c, table in self.tables.items():
            g = self.gates[c]
            if g is None:
                j = 0
            else:
                if g not in ops:
                    raise SearchError(f"{self.graph.name}: choose an op for gate {g!r}")
                if ops[g] is None:
                    continue
                if ops[g] not in self.ops[c]:
                    raise SearchError(f"{self.graph.name}: gate {g!r} has no candidate "
                                      f"{ops[g]!r}; it has {self.ops[c]}")
                j = self.ops[c].index(ops[g])
            idx = []
            for k in self.deps[c]:
                if widths.get(k) not in self.widths[k]:
                    raise SearchError(f"{self.graph.name}: call {k!r} takes a width in "
                                      f"{self.widths[k]}, got {widths.get(k)!r}")
                idx.append(self.widths[k].index(widths[k]))
            out += float(table[(j, *idx, f)])
        return round(out)


def _field(field: str) -> int:
    if field not in FIELDS:
        raise ConfigError(f"cost field {field!r} is unknown; use one of {list(FIELDS)}")
    return FIELDS.index(field)


def _name_cells(report, graph) -> None:
    """Record on ``report`` (and its calls' reports) the template each call instantiates."""
    report.cell_names = {n: graph.nx.nodes[n]["cell"] for n in report.calls}
    for n, sub in report.calls.items():
        _name_cells(sub, graph.cells[graph.nx.nodes[n]["cell"]])
