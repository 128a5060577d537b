"""The neural operators at layer level.

A unit is a tensor node, a connection an edge; an edge's candidate operations are grown
and pruned like connections (adding a candidate is synaptogenesis between the two tensors,
removing one is synaptic pruning). Edits may target a cell template (``cell="normal"``):
every instance of the cell changes, and the architecture parameters they share too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from supernet.edits.base import Edit, register_edit, target_graph
from supernet.errors import EditError, GraphError
from supernet.gates import Softmax
from supernet.init import InitPolicy, resolve_policy
from supernet.ops.registry import resolve_op
from supernet.optim import add_params, remove_params, replace_param

__all__ = ["AddNode", "RemoveNode", "AddEdge", "RemoveEdge", "AddOp", "RemoveOp", "sync_module"]


def sync_module(module, optimizers=(), init=None, new_alpha=None, seed=None) -> dict:
    """Bring a compiled layer module in line with its edited graph.

    Surviving modules are kept as they are (weights and optimizer state untouched); new ops
    are built under ``seed`` and initialized by ``init``; removed parameters leave the
    optimizers; architecture parameters are resized with their optimizer state, and so are
    a relaxation's own entries of ``module.arch`` when it has ``resized_index(key)`` (per new
    entry along the last dim, the old one it continues, or ``-1``).
    """
    before = {id(p): p for p in module.weights()}
    old_arch = {k: p for k, p in module.arch.items()} if module.top else {}
    old_names = dict(module.arch_names)
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        report = module.sync(init or {})
        module.sync_arch(dict(new_alpha or {}))
    after = {id(p): p for p in module.weights()}
    remove_params(optimizers, [p for i, p in before.items() if i not in after])
    add_params(optimizers, [p for i, p in after.items() if i not in before],
               like=[p for i, p in before.items() if i in after],
               avoid=list(old_arch.values()) + list(module.arch_parameters()))
    new_arch = dict(module.arch.items())
    for k, p in old_arch.items():
        if k not in new_arch:
            remove_params(optimizers, [p])
        elif new_arch[k] is not p and k not in module.arch_names:
            # a relaxation's own entry (e.g. edge normalization) resized by its resync;
            # its optimizer state follows when the relaxation says how the entries map
            fn = getattr(module.relaxation, "resized_index", None)
            index = fn(k) if fn is not None else None
            if index is not None and new_arch[k].dim() == p.dim():
                replace_param(optimizers, p, new_arch[k], torch.tensor(index), dim=p.dim() - 1)
            else:
                remove_params(optimizers, [p])
                add_params(optimizers, [new_arch[k]], like=list(old_arch.values()))
        elif new_arch[k] is not p:
            names, olds = module.arch_names[k], old_names.get(k, ())
            index = torch.tensor([olds.index(o) if o in olds else -1 for o in names])
            replace_param(optimizers, p, new_arch[k], index, dim=1)
    fresh = [p for k, p in new_arch.items() if k not in old_arch]
    # Architecture parameters join only an optimizer that already trains some.
    add_params(optimizers, fresh, like=list(old_arch.values()))
    return report


@register_edit
@dataclass
class AddNode(Edit):
    """Neuron creation: a new tensor node (connect it with :class:`AddEdge`)."""

    kind = "add_node"
    operator = "neuron_creation"
    name: str = ""
    merge: str = "sum"
    channels: int | str | None = None
    attrs: dict = field(default_factory=dict)
    cell: str | None = None

    def apply_graph(self, graph):
        target_graph(graph, self.cell).add_node(self.name, self.merge, self.channels, **self.attrs)

    def apply_module(self, module, optimizers=(), applied=None):
        return sync_module(module, optimizers)


@register_edit
@dataclass
class RemoveNode(Edit):
    """Neuron removal: a node and all its connections."""

    kind = "remove_node"
    operator = "neuron_removal"
    name: str = ""
    cell: str | None = None

    def apply_graph(self, graph):
        target_graph(graph, self.cell).remove_node(self.name)

    def apply_module(self, module, optimizers=(), applied=None):
        return sync_module(module, optimizers)


@register_edit
@dataclass
class AddEdge(Edit):
    """Synaptogenesis: a new edge with candidate ops.

    ``init="zero"`` starts every candidate at zero output, so the destination's value is
    unchanged (for a ``sum`` merge); zero-output ops are the parametric ones, and the
    ``none`` op. Not under a relaxation that normalizes the destination's inputs (PC-DARTS'
    edge normalization): the new input takes a share of their softmax from the others.
    """

    kind = "add_edge"
    operator = "synaptogenesis"
    u: str = ""
    v: str = ""
    ops: list = field(default_factory=list)
    args: dict = field(default_factory=dict)
    port: int | None = None
    channels: int | str | None = None
    init: str = "random"
    seed: int | None = None
    cell: str | None = None

    def apply_graph(self, graph):
        g = target_graph(graph, self.cell)
        if resolve_policy(self.init, f"{g.name}: add_edge {self.u}->{self.v}").copies:
            raise EditError(f"{g.name}: add_edge {self.u}->{self.v}: init={self.init!r} copies "
                            "an op, but a new edge has nothing to copy; use 'random' or 'zero'")
        for op in self.ops:
            resolve_op(op, f"{g.name}: edge {self.u}->{self.v}")
        g.add_edge(self.u, self.v, self.ops, port=self.port, channels=self.channels, **self.args)

    def apply_module(self, module, optimizers=(), applied=None):
        g = target_graph(module.graph, self.cell)
        policy = InitPolicy(self.init, seed=self.seed)
        rule, where = policy.rule, f"{g.name}: edge {self.u}->{self.v}"
        init = {}
        for op in self.ops:
            spec = resolve_op(op)
            init[(g.uid, self.u, self.v, op)] = (
                lambda m, _e, spec=spec: rule.init_op(spec, m, None, where, policy)
            )
        return sync_module(module, optimizers, init, seed=self.seed)


@register_edit
@dataclass
class RemoveEdge(Edit):
    """Synaptic pruning: remove an edge and its ops."""

    kind = "remove_edge"
    operator = "synaptic_pruning"
    u: str = ""
    v: str = ""
    cell: str | None = None

    def apply_graph(self, graph):
        target_graph(graph, self.cell).remove_edge(self.u, self.v)

    def apply_module(self, module, optimizers=(), applied=None):
        return sync_module(module, optimizers)


@register_edit
@dataclass
class AddOp(Edit):
    """Grow a candidate op on an edge (synaptogenesis between two tensors).

    Policies (see :mod:`supernet.init`): ``"random"``; ``"zero"``: the op starts at
    zero output and takes the fraction ``share`` of the probability of the edge's zero
    (``none``) candidate, so the mixture is unchanged; ``"split"``: the op copies candidate
    ``source`` (kernels zero-padded when larger) and the two share its probability.
    """

    kind = "add_op"
    operator = "synaptogenesis"
    u: str = ""
    v: str = ""
    op: str = ""
    init: str = "random"
    source: str | None = None
    share: float = 0.5
    noise: float = 0.0
    seed: int | None = None
    cell: str | None = None

    def apply_graph(self, graph):
        g = target_graph(graph, self.cell)
        where = f"{g.name}: edge {self.u}->{self.v}"
        rule = resolve_policy(self.init, where)
        InitPolicy(self.init, self.noise)  # refuses a bad noise before the graph changes
        ops = list(g.edge(self.u, self.v)["ops"])
        if not ops:
            raise EditError(f"{where}: the edge is a cell argument and carries no ops")
        resolve_op(self.op, where)
        if self.op in ops:
            raise EditError(f"{where} has op {self.op!r} already (candidates: {ops})")
        if rule.arch == "zero" and not (isinstance(self.share, (int, float))
                                        and 0.0 < self.share < 1.0):
            raise EditError(
                f"{where}: share must be in (0, 1), got {self.share!r}: the fraction of the "
                "zero candidate's weight the new op takes"
            )
        if rule.copies and self.source not in ops:
            raise EditError(
                f"{where}: init={self.init!r} needs source= one of the edge's candidates {ops}, "
                f"got {self.source!r}"
            )
        if rule.arch == "zero" and len(ops) == 1 and not resolve_op(ops[0]).zero:
            raise EditError(
                f"{where} has a single op, whose whole output a new candidate would dilute; "
                "grow it with init='split' (copying that op) instead"
            )
        g.set_ops(self.u, self.v, ops + [self.op])

    def _source_index(self, names, rule):
        if rule.arch == "split":
            return names.index(self.source)
        if rule.arch == "zero":
            zeros = [i for i, n in enumerate(names) if resolve_op(n).zero]
            return zeros[0] if zeros else None
        return None

    def apply_module(self, module, optimizers=(), applied=None):
        g = target_graph(module.graph, self.cell)
        where = f"{g.name}: edge {self.u}->{self.v}"
        spec = resolve_op(self.op)
        policy = InitPolicy(self.init, self.noise, self.seed or 0, self.source)
        rule, gen = policy.rule, policy.generator()

        def init(m, edge):
            source = edge[self.source] if rule.copies else None
            rule.init_op(spec, m, source, where, policy, gen)

        keys = module.gate_keys(self.u, self.v, self.cell)
        names = g.edge(self.u, self.v)["ops"][:-1]
        new_alpha = {}
        relax = module.relaxation
        src = self._source_index(names, rule)
        if rule.arch == "zero" and src is None and len(names) > 1:
            raise EditError(
                f"{where}: the edge has no zero ('none') candidate to take probability from, so "
                "a new op would change the mixture; use init='split' or add 'none' first"
            )
        if len(names) == 1:  # no gate yet: its op has weight one under any relaxation
            pending = (relax or Softmax()).grow(None, rule.arch, src, self.share)
        else:
            pending = None
            for k in keys:
                new_alpha[k] = torch.nn.Parameter(
                    (relax or Softmax()).grow(module.arch[k], rule.arch, src, self.share)
                    .to(module.arch[k].device)
                )
        report = sync_module(module, optimizers, {(g.uid, self.u, self.v, self.op): init},
                             new_alpha, seed=self.seed)
        if pending is not None:  # the edge just became a gate
            with torch.no_grad():
                for k in module.gate_keys(self.u, self.v, self.cell):
                    module.arch[k].copy_(pending)
        return report


@register_edit
@dataclass
class RemoveOp(Edit):
    """Prune a candidate op from an edge; its architecture logit goes with it."""

    kind = "remove_op"
    operator = "synaptic_pruning"
    u: str = ""
    v: str = ""
    op: str = ""
    cell: str | None = None

    def apply_graph(self, graph):
        g = target_graph(graph, self.cell)
        ops = list(g.edge(self.u, self.v)["ops"])
        if self.op not in ops:
            raise EditError(f"{g.name}: edge {self.u}->{self.v} has no op {self.op!r} (has {ops})")
        if len(ops) == 1:
            raise GraphError(
                f"{g.name}: {self.op!r} is the last op of edge {self.u}->{self.v}; remove the "
                "edge instead (RemoveEdge)"
            )
        ops.remove(self.op)
        g.set_ops(self.u, self.v, ops)

    def apply_module(self, module, optimizers=(), applied=None):
        return sync_module(module, optimizers)
