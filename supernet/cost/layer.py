"""Cost model: parameters and operations of a layer-level graph, per node, edge and
candidate op, without running it.

Shapes are inferred from a per-sample input shape (``(3, 32, 32)`` for CIFAR): each
candidate op is built (on the ``meta`` device: no memory, no data) and counted by the rules
registered per module type (torch's modules in :mod:`supernet.cost.rules`, the ops' own
module classes next to their definitions); an op may also carry its own rule
(``register_op(name, cost=rule)``), used instead of building it. Cell templates are counted
once per call with that call's bindings and input shapes.

Convention of :attr:`Cost.macs` (the figure DARTS-family papers report as "FLOPs" or
"multi-adds", as counted by thop): multiply-accumulates of convolutions and linear layers
for one sample; batch norm, pooling and anything else are counted apart (:attr:`Cost.bn`,
:attr:`Cost.pool`, :attr:`Cost.other`). That is the default convention, ``"thop"``, which
:attr:`CostReport.convention` names; ``graph_cost(g, convention="nas-bench-201")`` counts
:attr:`Cost.macs` as NAS-Bench-201's published FLOPs do (bias additions of convolutions
and linear layers included; :mod:`supernet.counting`). An op's own cost rule
(``register_op(name, cost=rule)``) counts the same in every convention. Train-only nodes (an auxiliary head) are left out
of the totals unless ``include_train_only=True``. DARTS_V2 at C=36, 20 cells, on 32x32
inputs: 3,349,342 parameters and 528,359,040 MACs ("528M" in the papers that list it).

For latency- or FLOPs-aware losses, :meth:`CostReport.expected` gives the expected cost
under candidate probabilities, ``fixed + sum over gates of sum_k p_k * cost_k``,
differentiable in the probabilities.

Examples:
    >>> import torch
    >>> from supernet import Graph
    >>> from supernet.cost.layer import graph_cost
    >>> g = Graph("layer", name="g")
    >>> g.add_input("x", channels=3)
    >>> g.add_node("h", channels=8)
    >>> g.add_edge("x", "h", ["conv_3x3", "conv_1x1"])
    >>> g.set_outputs(["h"])
    >>> r = graph_cost(g, (3, 32, 32))
    >>> r.shapes["h"], r.edges[("x", "h")]["conv_3x3"].macs, r.gates["x->h"]["conv_1x1"].macs
    ((8, 32, 32), 221184, 24576)
    >>> r.expected({"x->h": torch.tensor([0.25, 0.75])})
    tensor(73728.)
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field

import torch

from supernet.compiler.module import module_key
from supernet.cost.latency import gate_latency
from supernet.cost.rules import Cost, conv_out, module_cost, register_module_cost
from supernet.counting import DEFAULT_CONVENTION, counting_convention, current_convention
from supernet.errors import ConfigError, GraphError, ShapeError, SupernetError
from supernet.ops.registry import OPS, bound_args, build_op, resolve_op
from supernet.schema import bind_value
from supernet.shapes import edge_args, infer_channels
from supernet.train.data import module_device

__all__ = [
    "Cost",
    "CostReport",
    "graph_cost",
    "op_cost",
    "register_module_cost",
    "module_cost",
    "conv_out",
    "expected_cost",
    "gate_costs",
    "METRICS",
    "register_op_cost",
]

def _build(name, C_in, C_out, args, where):
    try:
        with torch.device("meta"):
            return build_op(name, C_in, C_out, args, where)
    except Exception:  # a builder that needs real tensors; the cost is the same
        return build_op(name, C_in, C_out, args, where)


_CACHE: dict = {}


def op_cost(name: str, C_in: int, C_out: int, args: dict, shape: tuple,
            where: str = "") -> tuple[tuple, Cost]:
    """Output shape and cost of op ``name`` (``C_in -> C_out``, ``args``) on ``shape``."""
    spec = resolve_op(name, where)
    if spec.cost is not None:
        return spec.cost(C_in, C_out, bound_args(spec, C_in, C_out, args, where), tuple(shape))
    args = {k: v for k, v in args.items() if k in spec.params}
    key = (name, spec.build, C_in, C_out, repr(sorted(args.items())), tuple(shape),
           current_convention())
    if key not in _CACHE:
        module = _build(name, C_in, C_out, args, where)
        try:
            _CACHE[key] = module_cost(module, shape)
        except SupernetError as exc:
            raise type(exc)(f"{where}: op {name!r}: {exc}") from None
    return _CACHE[key]


@dataclass
class CostReport:
    """Costs of one graph (or one call of a cell template).

    Attributes:
        shapes: per-sample output shape of every node.
        edges: ``(u, v) -> {op: Cost}``, one entry per candidate.
        nodes: cost of computing each node: its in-edges (every candidate), its post-op,
            or the whole call.
        calls: the report of each call node's template instance.
        gates: ``key -> {op: Cost}`` for every gate, keyed as ``module.gates()`` (a cell
            template's gate summed over all its calls).
        fixed: the cost outside gates.
        train_only: nodes computed only in training (not in :attr:`fixed` or
            :attr:`gates` unless counted with ``include_train_only``).
        convention: the counting convention of the figures, a key of
            :data:`supernet.counting.CONVENTIONS` (default ``"thop"``).
    """

    shapes: dict = field(default_factory=dict)
    edges: dict = field(default_factory=dict)
    nodes: dict = field(default_factory=dict)
    calls: dict = field(default_factory=dict)
    gates: dict = field(default_factory=dict)
    fixed: Cost = field(default_factory=Cost)
    train_only: set = field(default_factory=set)
    convention: str = DEFAULT_CONVENTION

    @property
    def total(self) -> Cost:
        """Everything computed in a forward pass, every candidate of every gate included."""
        out = self.fixed
        for ops in self.gates.values():
            for c in ops.values():
                out = out + c
        return out

    def table(self, field: str = "macs") -> dict[str, torch.Tensor]:
        """``key -> tensor of per-candidate costs`` (in candidate order) for every gate."""
        return {k: torch.tensor([float(getattr(c, field)) for c in ops.values()])
                for k, ops in self.gates.items()}

    def expected(self, probs: dict, field: str = "macs"):
        """Expected cost ``fixed + sum_gates sum_k p_k * cost_k`` (see :func:`expected_cost`).

        Args:
            probs: gate key -> probabilities of its candidates, in candidate order (a
                tensor of shape ``(K,)`` or ``(1, K)``, or a list). Gates left out count at
                zero; unknown keys are an error.
        """
        unknown = sorted(set(probs) - set(self.gates))
        if unknown:
            raise SupernetError(f"no gate(s) {unknown}; the gates are {sorted(self.gates)}")
        total = getattr(self.fixed, field)
        for key, p in probs.items():
            total = total + expected_cost(list(self.gates[key].values()), p, field)
        return total

    def chosen(self, choice: dict[str, str], field: str = "macs") -> int:
        """Cost of the architecture keeping op ``choice[key]`` on each gate."""
        missing = sorted(set(self.gates) - set(choice))
        if missing:
            raise SupernetError(f"choose an op for gate(s) {missing}")
        out = getattr(self.fixed, field)
        for key, op in choice.items():
            if op not in self.gates.get(key, {}):
                raise SupernetError(f"gate {key!r} has no candidate {op!r}; it has "
                                    f"{list(self.gates.get(key, {}))}")
            out += getattr(self.gates[key][op], field)
        return out


def expected_cost(costs, probs, field: str = "macs"):
    """``sum_k probs[k] * costs[k]``: the expected cost of one gated edge.

    Args:
        costs: per-candidate :class:`Cost` objects, or numbers.
        probs: probabilities in the same order (tensor ``(K,)`` or ``(1, K)``, or a list);
            gradients flow through a tensor.
    """
    values = [float(getattr(c, field)) if isinstance(c, Cost) else float(c) for c in costs]
    if torch.is_tensor(probs):
        p = probs.reshape(-1)
        if p.numel() != len(values):
            raise ShapeError(f"{p.numel()} probabilities for {len(values)} candidates")
        return (p * torch.tensor(values, dtype=p.dtype, device=p.device)).sum()
    probs = list(probs)
    if len(probs) != len(values):
        raise ShapeError(f"{len(probs)} probabilities for {len(values)} candidates")
    return sum(p * v for p, v in zip(probs, values))


def graph_cost(graph, input_shape=None, bind: dict | None = None,
               include_train_only: bool = False, convention: str | None = None) -> CostReport:
    """Count parameters and operations of every node, edge and candidate op of ``graph``.

    Args:
        graph: a layer-level graph.
        input_shape: per-sample shape of the input (no batch dimension), or a list of them
            (one per graph input). Default: the shapes declared on the input nodes
            (``add_input(..., shape=[3, 32, 32])``).
        bind: values of template symbols, when ``graph`` is itself a template.
        include_train_only: count ``train_only`` nodes in :attr:`CostReport.fixed` and
            :attr:`CostReport.gates`.
        convention: counting convention, a key of :data:`supernet.counting.CONVENTIONS`
            (default: the one in force, ``"thop"`` outside a ``counting_convention`` block).
            ``"nas-bench-201"`` gives :attr:`Cost.macs` as NAS-Bench-201 publishes its
            FLOPs (times ``1e6``).

    """
    if graph.level != "layer":
        raise GraphError(f"graph_cost counts layer-level graphs, got {graph.level!r}; count "
                         "channel- and neuron-level graphs with supernet.cost.unit_cost, "
                         "or any graph with supernet.cost.cost")
    if input_shape is None:
        input_shape = _declared_shapes(graph, "the cost", "give input_shape")
    shapes = [input_shape] if input_shape and isinstance(input_shape[0], int) else input_shape
    if len(shapes) != len(graph.inputs):
        raise ShapeError(f"{graph.name}: {len(shapes)} input shape(s) for inputs {graph.inputs}")
    with counting_convention(convention):
        return _walk(graph, dict(bind or {}), [tuple(s) for s in shapes], "",
                     include_train_only)


def _walk(graph, bind, in_shapes, prefix, include_train_only) -> CostReport:
    info = infer_channels(graph, bind, [s[0] for s in in_shapes])
    report = CostReport(convention=current_convention())
    report.shapes.update(zip(graph.inputs, in_shapes))
    counted = Cost()
    for n in graph.topological_order():
        d = graph.nx.nodes[n]
        kind = d.get("kind", "merge")
        if kind == "input":
            continue
        skip = bool(d.get("train_only")) and not include_train_only
        if skip:
            report.train_only.add(n)
        if kind == "call":
            sub_bind = {**bind, **bind_value(d.get("bind", {}), bind, f"{graph.name}: {n!r}")}
            sub = _walk(graph.cells[d["cell"]], sub_bind, [report.shapes[a] for a in d["args"]],
                        prefix + f"{module_key(d['cell'])}:", include_train_only)
            report.calls[n] = sub
            report.shapes[n] = sub.shapes[graph.cells[d["cell"]].outputs[0]]
            report.nodes[n] = sub.total
            if not skip:
                counted = counted + sub.fixed
                _merge_gates(report.gates, sub.gates)
            continue
        node_cost, outs = Cost(), []
        for u, _ in graph.in_edges(n):
            where = f"{graph.name}: edge {u}->{n}"
            C_in, C_out = info.edges[(u, n)]
            args = edge_args(graph, u, n, bind)
            per_op, shapes = {}, {}
            for op in graph.nx.edges[u, n]["ops"]:
                shapes[op], per_op[op] = op_cost(op, C_in, C_out, args, report.shapes[u], where)
            if len(set(shapes.values())) > 1:
                raise ShapeError(f"{where}: candidates give different shapes {shapes}; give "
                                 "them strides and paddings that agree")
            report.edges[(u, n)] = per_op
            outs.append((u, next(iter(shapes.values()))))
            for c in per_op.values():
                node_cost = node_cost + c
            if skip:
                continue
            if len(per_op) > 1:
                _merge_gates(report.gates, {prefix + f"{module_key(u)}->{module_key(n)}": per_op})
            else:
                counted = counted + next(iter(per_op.values()))
        shape = _merge(graph, n, d.get("merge", "sum"), outs)
        if d.get("op") is not None:
            args = bind_value(d.get("op_args", {}), bind, f"{graph.name}: node {n!r}")
            C = info.nodes[n]
            shape, c = op_cost(d["op"], C, C, args, shape, f"{graph.name}: node {n!r}")
            node_cost = node_cost + c
            if not skip:
                counted = counted + c
        report.shapes[n], report.nodes[n] = shape, node_cost
    report.fixed = counted
    return report


def _merge(graph, n, merge, outs) -> tuple:
    if merge == "sum":
        if len({s for _, s in outs}) > 1:
            raise ShapeError(f"{graph.name}: node {n!r} sums inputs of shapes "
                             f"{dict(outs)}; make strides and widths agree")
        return outs[0][1]
    rest = {s[1:] for _, s in outs}
    if len(rest) > 1:
        raise ShapeError(f"{graph.name}: node {n!r} concatenates inputs of shapes "
                         f"{dict(outs)}; their sizes beyond the channels must agree")
    return (sum(s[0] for _, s in outs), *rest.pop())


def _merge_gates(into: dict, gates: dict) -> None:
    for key, ops in gates.items():
        if key not in into:
            into[key] = dict(ops)
        else:
            into[key] = {op: into[key][op] + c for op, c in ops.items()}


def _declared_shapes(graph, what: str, alternative: str) -> list[tuple]:
    """The per-sample shapes declared on the input nodes of ``graph``."""
    shapes = [graph.nx.nodes[n].get("shape") for n in graph.inputs]
    missing = [n for n, s in zip(graph.inputs, shapes) if s is None]
    if missing:
        raise ConfigError(
            f"{graph.name}: {what} depends on the input size, and input(s) {missing} declare "
            f"no per-sample shape; add shape=[...] to the input node, or {alternative}"
        )
    return [tuple(s) for s in shapes]


#: What :func:`gate_costs` measures: ``flops`` / ``macs`` (multiply-accumulates, counted),
#: ``params`` (counted), ``latency`` (milliseconds, measured on the module's device).
METRICS = ("flops", "macs", "params", "latency")


def gate_costs(module, metric: str = "flops", inputs: tuple | None = None
               ) -> dict[str, list[float]]:
    """Per gate key of a compiled layer-level ``module``, the cost of each candidate, in
    candidate order: the table of cost-aware losses (ProxylessNAS).

    Counted metrics read the per-sample shapes declared on the graph's input nodes
    (``add_input(..., shape=[3, 32, 32])``); ``latency`` times every candidate op on the
    module's device (:func:`supernet.cost.latency.gate_latency`) at batch 1, on ``inputs``
    or on random inputs of the declared shapes.
    """
    if metric not in METRICS:
        raise ConfigError(f"cost metric {metric!r} is unknown; use one of {list(METRICS)}")
    graph = module.graph
    if inputs is None:
        shapes = _declared_shapes(graph, f"the {metric} of the candidates",
                                  "give the costs yourself (cost={op: value})")
    if metric == "latency":
        if inputs is None:
            inputs = tuple(torch.randn(1, *s, device=module_device(module)) for s in shapes)
        return gate_latency(module, inputs)
    if inputs is not None:
        shapes = [tuple(x.shape[1:]) for x in inputs]
    report = graph_cost(graph, [tuple(s) for s in shapes])
    field = "params" if metric == "params" else "macs"
    return {k: [float(getattr(c, field)) for c in ops.values()] for k, ops in report.gates.items()}


def register_op_cost(name: str):
    """Former decorator of an op's own cost rule ``rule(C_in, C_out, args, shape)``; the rule
    now lives with the op: ``register_op(name, ..., cost=rule)``. This sets it on the
    registered op ``name``."""
    warnings.warn("register_op_cost(name) is register_op(name, ..., cost=rule) now",
                  DeprecationWarning, stacklevel=2)

    def wrap(rule):
        spec = resolve_op(name)
        OPS.register(name, dataclasses.replace(spec, cost=rule), override=True)
        return rule

    return wrap
