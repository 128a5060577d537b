"""What the neuron-growth policies share: the schedule, the target size, the layer they read
and the weights they write.

A width-growth policy (:class:`~supernet.search.creation.splitting.SplittingSteepestDescent`,
:class:`~supernet.search.creation.firefly.Firefly`,
:class:`~supernet.search.creation.gradmax.GradMax`) grows hidden nodes of a neuron- or
channel-level graph whose in- and out-edges are dense blocks (a multilayer perceptron):
node ``n`` reads ``a`` (its sources' values, concatenated in the order of its in-edges),
computes ``z = W a + b`` and ``h = σ(z)``; its consumers ``w`` add ``V_w h`` to their
pre-activations. :func:`dense_layer` names that structure and refuses what it is not.

Growth itself is an :class:`~supernet.edits.AddUnits` edit through ``state.editor`` (the
edit log records it, the optimizers take the new weights in); the values a method gives the
new units (a split direction, a closed-form fan-out) are then written into the module's
weights by :func:`write_units`, as an optimizer step writes them: replaying the edit log
gives the same structure, and the policy's ``grown`` records keep what was written.

Every check is made by :meth:`Widening.check` before the first epoch (``on_search_start``):
the schedule ``at`` must lie within the search, the target ``max_units`` may not be smaller
than a node's current width, and growing nodes must be hidden (neither an input nor an
output).

Examples:
    >>> from supernet.units import mlp
    >>> g = mlp([4, 3, 2], act="tanh", seed=0)
    >>> dense_layer(g, "h1").sources, dense_layer(g, "h1").consumers
    (['x'], ['y'])
    >>> dense_layer(g, "y")
    Traceback (most recent call last):
        ...
    supernet.errors.SearchError: mlp: node 'y' is an output; growing it would change the output's width (grow hidden nodes: ['h1'])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np
import torch

from supernet.compiler.blocks import GridBlock
from supernet.errors import ConfigError, SearchError
from supernet.ops.activations import resolve_activation
from supernet.search.base import SearchState, require_unit
from supernet.search.creation.layer import _epochs, _Scheduled
from supernet.search.probe import probing, score_batch
from supernet.train.training import default_loss
from supernet.units.masks import lookup

__all__ = ["Widening", "DenseLayer", "dense_layer", "hidden_nodes", "layer_values",
           "pre_activation", "augment", "activation_derivatives", "write_units", "fan_out"]


@dataclass(frozen=True)
class DenseLayer:
    """Node ``node`` read by dense blocks from ``sources`` and read by ``consumers``."""

    node: str
    sources: list
    consumers: list
    act: str
    bias: bool


def hidden_nodes(graph) -> list[str]:
    """The computed nodes that are not outputs, in topological order."""
    return [n for n in graph.topological_order()
            if graph.node(n)["kind"] == "units" and n not in graph.outputs]


def dense_layer(graph, node: str, what: str = "") -> DenseLayer:
    """The structure around ``node``; :class:`SearchError` when it is not a hidden node
    between dense blocks, without batch norm or gates."""
    where = f"{graph.name}: {what + ': ' if what else ''}node {node!r}"
    if node not in graph.nx:
        raise SearchError(f"{where} is not in the graph; grow hidden nodes: "
                          f"{hidden_nodes(graph)}")
    d = graph.node(node)
    if d["kind"] != "units":
        raise SearchError(f"{where} is an input; its units are the caller's features (grow "
                          f"hidden nodes: {hidden_nodes(graph)})")
    if node in graph.outputs:
        raise SearchError(f"{where} is an output; growing it would change the output's width "
                          f"(grow hidden nodes: {hidden_nodes(graph)})")
    if d.get("norm"):
        raise SearchError(f"{where} has norm={d['norm']!r}; these growth rules are derived for "
                          "h = act(W a + b), grow nodes without normalization")
    if d.get("gated"):
        raise SearchError(f"{where} has keep/drop gates; grow ungated nodes (or discretize "
                          "the gates first)")
    sources = [u for u, _ in graph.in_edges(node)]
    consumers = sorted(graph.nx.successors(node), key=graph.topological_order().index)
    for u, v in [(u, node) for u in sources] + [(node, w) for w in consumers]:
        e = graph.edge(u, v)
        if e["kind"] != "dense" or e.get("gated") or e.get("pool") is not None:
            raise SearchError(f"{where}: edge {u}->{v} is {e['kind']!r}"
                              f"{' and gated' if e.get('gated') else ''}; growth by these "
                              "rules needs ungated dense edges in and out of the node")
    if not consumers:
        raise SearchError(f"{where} feeds no node; nothing would read the new units")
    return DenseLayer(node, sources, consumers, d.get("act", "identity"),
                      bool(d.get("bias", True)))


def _grid(module, u, v):
    block = module.block(u, v)
    if not isinstance(block, GridBlock):
        raise SearchError(f"{module.graph.name}: edge {u}->{v} is compiled as a sparse block; "
                          "compile with kernel='dense' to grow units by these rules")
    return block


def layer_values(module, layer: DenseLayer, inputs, grad_of: Sequence[str] = ()):
    """Run ``module`` on ``inputs`` and return ``(outputs, a, z, accs, values)``: the input
    ``a`` (N, d) and pre-activation ``z`` (N, m) of ``layer.node``, per consumer in
    ``grad_of`` its summed pre-activation (gradients retained, for ``∂L/∂acc``), and every
    node's value (:meth:`~supernet.compiler.units.UnitModule.run`).

    ``a`` and ``z`` are detached: nothing a growth policy optimizes comes before them.
    """
    accs: dict[str, torch.Tensor] = {}
    handles = []
    for w in grad_of:
        def hook(mod, args, w=w):
            acc = args[0]
            if acc.requires_grad:
                acc.retain_grad()
            accs[w] = acc
        handles.append(module.unit_params(w).register_forward_pre_hook(hook))
    try:
        values = module.run(tuple(inputs))
    finally:
        for h in handles:
            h.remove()
    outs = tuple(values[o] for o in module.graph.outputs)
    a = torch.cat([values[u].detach() for u in layer.sources], 1)
    return (outs[0] if len(outs) == 1 else outs), a, pre_activation(module, layer, a), accs, \
        values


def pre_activation(module, layer: DenseLayer, a: torch.Tensor) -> torch.Tensor:
    """``z = W a + b`` of ``layer.node`` (detached)."""
    with torch.no_grad():
        w = torch.cat([_grid(module, u, layer.node).effective() for u in layer.sources], 1)
        z = a @ w.T
        b = module.unit_params(layer.node).bias
        return z + b if b is not None else z


def augment(layer: DenseLayer, a: torch.Tensor) -> torch.Tensor:
    """``[a, 1]`` when the node has a bias (its incoming parameters are ``(W, b)``)."""
    return torch.cat([a, a.new_ones(len(a), 1)], 1) if layer.bias else a


def activation_derivatives(act: str, z: torch.Tensor, where: str = ""):
    """``(σ(z), σ'(z), σ''(z))`` of activation ``act``, elementwise, by automatic
    differentiation (``σ''`` is zero where it does not depend on ``z``, as for ReLU).

    Examples:
        >>> import torch
        >>> s, d1, d2 = activation_derivatives("tanh", torch.zeros(1))
        >>> float(s), float(d1), float(d2)
        (0.0, 1.0, -0.0)
    """
    fn = resolve_activation(act, where)
    with torch.enable_grad():
        x = z.detach().clone().requires_grad_(True)
        s = fn(x)
        (d1,) = torch.autograd.grad(s.sum(), x, create_graph=True)
        if d1.requires_grad:
            (d2,) = torch.autograd.grad(d1.sum(), x, allow_unused=True)
            d2 = torch.zeros_like(x) if d2 is None else d2
        else:
            d2 = torch.zeros_like(x)
    return s.detach(), d1.detach(), d2.detach()


def write_units(module, layer: DenseLayer, ids, incoming=None, outgoing=None,
                add: bool = False) -> None:
    """Write the weights of units ``ids`` of ``layer.node``: ``incoming`` (k, d [+ 1]) their
    fan-in weights over the concatenated sources (last column the bias when the node has
    one), ``outgoing`` (K, k) their fan-out weights over the concatenated consumers;
    ``add=True`` adds to the values instead."""
    g = module.graph
    pos = torch.from_numpy(lookup(g.node(layer.node)["units"], ids))
    if (pos < 0).any():
        raise SearchError(f"{g.name}: node {layer.node!r} has no unit(s) "
                          f"{np.asarray(ids)[(pos < 0).numpy()].tolist()}")
    with torch.no_grad():
        if incoming is not None:
            col = 0
            for u in layer.sources:
                w = _grid(module, u, layer.node).weight
                part = incoming[:, col:col + w.shape[1]].to(w)
                w[pos] = (w[pos] + part) if add else part
                col += w.shape[1]
            if layer.bias:
                b = module.unit_params(layer.node).bias
                part = incoming[:, col].to(b)
                b[pos] = (b[pos] + part) if add else part
        if outgoing is not None:
            row = 0
            for v in layer.consumers:
                w = _grid(module, layer.node, v).weight
                part = outgoing[row:row + w.shape[0]].to(w)
                w[:, pos] = (w[:, pos] + part) if add else part
                row += w.shape[0]


def fan_out(module, layer: DenseLayer) -> torch.Tensor:
    """The fan-out weights of ``layer.node`` over its consumers, stacked: (K, m)."""
    return torch.cat([_grid(module, layer.node, v).effective().detach()
                      for v in layer.consumers], 0)


class Widening(_Scheduled):
    """A width-growth policy: at the ends of epochs ``at``, grow each node in ``nodes`` by
    ``count`` units (fewer where ``max_units`` is reached), by :meth:`grow`.

    Args:
        count: units added per node at each growth.
        at: epoch(s) (completed epochs) at whose end to grow; each in ``1 .. epochs - 1``.
        nodes: hidden nodes to grow (default: every hidden node).
        max_units: the width a node may reach: an int for every node or ``{node: int}``
            (default: no limit).
        batches: training batches a growth decision is computed on.
        loss_fn: ``loss_fn(output, target)`` (cross-entropy by default).

    Attributes:
        grown: one record per node and growth: epoch, node, the new unit ids and what the
            method computed (scores, eigenvalues, gradient norms).
    """

    policy = "Widening"

    def __init__(self, count: int = 1, at: int | Iterable[int] | None = None,
                 nodes: Sequence[str] | None = None, max_units: int | dict | None = None,
                 batches: int = 1, loss_fn: Callable | None = None):
        p = self.policy
        if at is None:
            raise ConfigError(f"{p}: give at= (the epochs at whose end to grow)")
        for name, v in (("count", count), ("batches", batches)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigError(f"{p}: {name} must be a positive int, got {v!r}")
        self.count, self.batches = count, batches
        self.at, self.when = _epochs(at), None
        if any(a < 1 for a in self.at):
            raise ConfigError(f"{p}: at= holds epochs at whose end to grow, each >= 1; got "
                              f"{sorted(self.at)}")
        self.nodes = None if nodes is None else [str(n) for n in nodes]
        if max_units is not None and not isinstance(max_units, (int, dict)):
            raise ConfigError(f"{p}: max_units must be an int or {{node: int}}, got "
                              f"{max_units!r}")
        self.max_units = max_units
        self.loss_fn = loss_fn or default_loss
        self.grown: list[dict] = []

    # ------------------------------------------------------------------ checks
    def targets(self, graph) -> list[str]:
        return list(self.nodes) if self.nodes is not None else hidden_nodes(graph)

    def limit(self, node: str) -> int | None:
        if isinstance(self.max_units, dict):
            return self.max_units.get(node)
        return self.max_units

    def check(self, graph, epochs: int | None = None) -> None:
        """Refuse, before training, a schedule past the search, a node that cannot grow
        and a target smaller than a node's width."""
        p = self.policy
        require_unit(graph, p, "grow layer-level candidate ops with GrowOps")
        if epochs is not None and self.at and max(self.at) >= epochs:
            raise ConfigError(f"{p}: at={sorted(self.at)} reaches past the search: growth "
                              f"happens at the end of an epoch in 1..{epochs - 1} (the "
                              f"search has {epochs} epochs and the new units must train)")
        targets = self.targets(graph)
        for n in targets:
            dense_layer(graph, n, p)
        if isinstance(self.max_units, dict):
            unknown = sorted(set(self.max_units) - set(targets))
            if unknown:
                raise ConfigError(f"{p}: max_units names {unknown}, which do not grow; the "
                                  f"keys are nodes among {targets}")
        for n in targets:
            cap = self.limit(n)
            width = len(graph.node(n)["units"])
            if cap is not None and (not isinstance(cap, int) or isinstance(cap, bool)
                                    or cap < width):
                raise ConfigError(f"{p}: max_units for node {n!r} is {cap!r}, smaller than its "
                                  f"{width} units; give an int >= {width} (growth only adds)")

    def on_search_start(self, state: SearchState) -> None:
        self.check(state.graph, state.epochs)
        self._checked = True

    # ------------------------------------------------------------------ growth
    def on_epoch_end(self, state: SearchState) -> None:
        if not getattr(self, "_checked", False):
            self.on_search_start(state)
        if not self.due(state):
            return
        for n in self.targets(state.graph):
            width = len(state.graph.node(n)["units"])
            cap = self.limit(n)
            k = self.count if cap is None else min(self.count, cap - width)
            if k <= 0:
                continue
            layer = dense_layer(state.graph, n, self.policy)
            record = {"epoch": state.epoch, "node": n}
            record.update(self.grow(state, layer, k))
            self.grown.append(record)

    def grow(self, state: SearchState, layer: DenseLayer, count: int) -> dict:
        """Add up to ``count`` units to ``layer.node``; returns what to record (at least
        ``"created"``, the new ids). Measure inside :func:`measuring`, edit outside it."""
        raise NotImplementedError

    def measuring(self, state: SearchState):
        """The context of a growth's measurements: training mode, buffers put back after
        (:func:`~supernet.search.probe.probing`)."""
        return probing(state.module)

    def score_batches(self, state: SearchState) -> list:
        """The ``batches`` training batches of this growth (a different set each time)."""
        start = len(self.grown) * self.batches
        return [score_batch(state, start + i) for i in range(self.batches)]

    def state_dict(self) -> dict:
        return {"grown": self.grown, "fired": sorted(getattr(self, "_fired", ()))}

    def load_state_dict(self, state: dict) -> None:
        self.grown = list(state.get("grown", []))
        self._fired = set(state.get("fired", []))
