"""PC-DARTS: partial channel connections with edge normalization.

Xu et al., "PC-DARTS: Partial Channel Connections for Memory-Efficient Architecture Search"
(ICLR 2020). On an edge marked ``partial=K`` (see :func:`mark_partial`) only the first
``1/K`` of the input channels go through the softmax-weighted mixture, whose ops are built
for ``C/K`` channels; the other channels bypass it (max-pooled 2x2 when the edge has stride
2), the two parts are concatenated and the channels shuffled in ``K`` groups. Edge
normalization: each node ``j`` has weights ``β_j`` over its gated in-edges; every edge's
output is multiplied by ``softmax(β_j)`` of that edge. ``β`` lives in ``module.arch`` (added
by :meth:`PartialChannels.attach`), and discretization ranks edges by
``softmax(α) · softmax(β)``. A discretized edge runs its op on all channels, so the kept op
is rebuilt at full width with fresh weights: as in the paper, the architecture is retrained
from scratch.

At the channel and neuron levels, :class:`PartialUnits` transposes both ideas to keep/drop
gates: a random ``1/K`` of the rows of each gate group goes through the relaxation each step
(the others pass as kept), and edge normalization weighs the gated edges of connections
feeding one node (a variant: see its docstring).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F

from supernet.errors import SearchError
from supernet.gates import Decision, mix_candidates
from supernet.search.base import require_layer, require_unit
from supernet.search.relaxations.base import SearchRelaxation, _gate_items

__all__ = ["PartialChannels", "PartialUnits", "PartialDecision", "channel_shuffle", "mark_partial",
           "BETA_PREFIX", "beta_name", "walk_edges"]

BETA_PREFIX = "edge_norm:"


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Interleave the channels of ``x`` from ``groups`` groups (ShuffleNet). The result keeps
    ``x``'s memory format (``channels_last`` stays so).

    Examples:
        >>> import torch
        >>> channel_shuffle(torch.arange(6.).view(1, 6, 1), 2).flatten().tolist()
        [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]
    """
    n, c = x.shape[:2]
    rest = x.shape[2:]
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(
            memory_format=torch.channels_last):  # shuffle in place of the NHWC layout
        h, w = rest
        y = x.permute(0, 2, 3, 1).reshape(n, h, w, groups, c // groups).transpose(3, 4)
        return y.reshape(n, h, w, c).permute(0, 3, 1, 2)
    return x.view(n, groups, c // groups, *rest).transpose(1, 2).reshape(n, c, *rest)


def mark_partial(graph, k: int = 4) -> int:
    """Mark every gated edge of ``graph`` and its cell templates ``partial=k``.

    Returns the number of edges marked. The compiler builds their ops for ``C/k`` channels.

    Examples:
        >>> from supernet import Graph
        >>> g = Graph("layer"); g.add_input("x", channels=8); g.add_node("h", channels=8)
        >>> g.add_edge("x", "h", ["conv_3x3", "skip_connect"]); g.set_outputs(["h"])
        >>> mark_partial(g, 4), g.edge("x", "h")["partial"]
        (1, 4)
    """
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise SearchError(f"partial channels: k must be a positive int, got {k!r}")
    count = 0
    for g in [graph, *graph.cells.values()]:
        changed = False
        for u, v in g.gate_edges():
            g.set_edge_attrs(u, v, partial=k)
            changed = True
            count += 1
        if changed:
            g.touch()
    return count


def walk_edges(module):
    """``(gate key, Edge)`` of every gated edge of a compiled layer module, cells included."""
    seen = OrderedDict()

    def visit(m):
        for n, step in m.steps.items():
            for src, edge in step.inputs.items():
                if len(edge) > 1:
                    seen.setdefault(m.gate_prefix + f"{src}->{n}", edge)
            cell = getattr(step, "cell", None)
            if cell is not None:
                visit(cell)

    visit(module)
    return list(seen.items())


def _node_of(key: str) -> str:
    head, v = key.rsplit("->", 1)
    prefix = head.rsplit(":", 1)[0] + ":" if ":" in head else ""
    return prefix + v


def beta_name(key: str) -> str:
    """The ``module.arch`` entry of the edge-normalization weights of the node gate ``key``
    feeds (present only when that node has several gated inputs)."""
    return BETA_PREFIX + _node_of(key)



def edge_weights(arch, nodes: dict, who: str, scaled: bool = False) -> dict[str, torch.Tensor]:
    """Edge normalization: ``softmax(β)_e`` of every in-edge ``e`` of each node (``nodes``:
    node -> its edges' gate keys, in β's order), times the in-edge count when ``scaled``."""
    out = {}
    for node, keys in nodes.items():
        beta = arch.get(BETA_PREFIX + node)
        if beta is None:
            raise SearchError(
                f"{who}: edge-normalization weights of node {node!r} are missing from "
                "module.arch; set the relaxation with use_relaxation(module, relaxation)")
        w = torch.softmax(beta, dim=-1)[0] * (len(keys) if scaled else 1)
        for j, key in enumerate(keys):
            out[key] = w[j]
    return out

class PartialDecision(Decision):
    """A softmax mixture over ``1/K`` of the channels, times an edge-normalization weight."""

    __slots__ = ("k", "scale")

    def __init__(self, weights, k: int = 1, scale: torch.Tensor | None = None):
        super().__init__(weights)
        self.k = k
        self.scale = scale

    def mix(self, i, ops, zero, x):
        idx = range(len(ops))
        if self.k > 1:
            c = x.shape[1] // self.k
            part, rest = x[:, :c], x[:, c:]
            y = mix_candidates(ops, zero, part, self.weights[i], idx)
            if y.shape[2:] != x.shape[2:]:  # a reduction edge: pool the bypass too
                pool = F.max_pool1d if x.dim() == 3 else F.max_pool2d
                rest = pool(rest, 2, 2, ceil_mode=True)
            y = channel_shuffle(torch.cat([y, rest], dim=1), self.k)
        else:
            y = mix_candidates(ops, zero, x, self.weights[i], idx)
        return y if self.scale is None else y * self.scale

    def calls_on_input(self) -> bool:
        return type(self).mix is PartialDecision.mix


class PartialChannels(SearchRelaxation):
    """PC-DARTS: softmax mixtures on ``1/K`` of the channels, with edge normalization.

    ``K`` comes from each edge's ``partial`` attribute (set by :func:`mark_partial`; an
    unmarked gate mixes all its channels). ``k`` is the default used by the ``pcdarts``
    strategy to mark the graph.

    Args:
        k: channel proportion ``1/K`` (4 in the paper).
        edge_norm: add the edge-normalization weights ``β``.
    """

    def __init__(self, k: int = 4, edge_norm: bool = True):
        super().__init__()
        self.k = int(k)
        self.edge_norm = bool(edge_norm)
        self._groups: dict[str, int] = {}
        self._nodes: dict[str, list[str]] = {}

    # ---------------------------------------------------------------- parameters
    def attach(self, module):
        require_layer(module.graph, "PC-DARTS mixes candidate ops on part of the channels of "
                      "layer-level edges", "use PartialUnits (strategy 'unit_pcdarts') there")
        self.resync(module)

    def resync(self, module):
        edges = walk_edges(module)
        groups = {e.gate: e.partial for e in module.plan.iter_edges() if e.gate is not None}
        self._groups = {key: groups.get(key, 1) for key, _ in edges}
        nodes: dict[str, list[str]] = OrderedDict()
        for key, _ in edges:
            nodes.setdefault(_node_of(key), []).append(key)
        nodes = OrderedDict((n, ks) for n, ks in nodes.items() if len(ks) > 1)
        if not self.edge_norm:
            nodes = OrderedDict()
        old = getattr(self, "_nodes", {})
        self._resized = {}
        for name in [k for k in module.arch.keys() if k.startswith(BETA_PREFIX)]:
            if name[len(BETA_PREFIX):] not in nodes:
                del module.arch[name]
        for node, keys in nodes.items():
            name = BETA_PREFIX + node
            if name in module.arch and old.get(node) == keys:
                continue
            value = 1e-3 * torch.randn(1, len(keys))
            if name in module.arch:  # carry the weights of surviving edges
                prev = module.arch[name].detach()
                was = old.get(node, [])
                index = [was.index(key) if key in was else -1 for key in keys]
                for j, i in enumerate(index):
                    if i >= 0:
                        value[0, j] = prev[0, i]
                self._resized[name] = index
            module.arch[name] = nn.Parameter(value.to(**module.placement()))
        self._nodes = dict(nodes)

    def resized_index(self, name: str) -> list[int] | None:
        """For the edge-normalization weights ``name`` replaced by the last :meth:`resync`:
        per new entry, the old entry it continues (``-1``: a new edge), so that the
        optimizer state of the surviving edges follows them."""
        return getattr(self, "_resized", {}).get(name)

    def get_extra_state(self):
        return {"groups": dict(self._groups), "nodes": {k: list(v) for k, v in self._nodes.items()}}

    def set_extra_state(self, state):
        self._groups = dict(state.get("groups", {}))
        self._nodes = {k: list(v) for k, v in state.get("nodes", {}).items()}

    # ---------------------------------------------------------------- decisions
    def _edge_scales(self, arch) -> dict[str, torch.Tensor]:
        return edge_weights(arch, self._nodes, "PC-DARTS")

    def forward(self, arch):
        scales = self._edge_scales(arch)
        out = {}
        for key, alpha in arch.items():
            if key.startswith(BETA_PREFIX):
                continue
            out[key] = PartialDecision(torch.softmax(alpha, -1), self._groups.get(key, 1),
                                       scales.get(key))
        return out

    def decide(self, key, alpha):
        return PartialDecision(torch.softmax(alpha, -1), self._groups.get(key, 1))

    def probabilities(self, module):
        arch = dict(module.arch.items())
        scales = {k: s.detach() for k, s in self._edge_scales(arch).items()}
        return {k: torch.softmax(a.detach(), -1) * scales.get(k, 1.0)
                for k, a in _gate_items(module)}

    def extra_repr(self) -> str:
        return f"k={self.k}, edge_norm={self.edge_norm}"


class PartialUnits(SearchRelaxation):
    """PC-DARTS' partial connections and edge normalization for keep/drop gates (a variant).

    Transposed from candidate ops on channels to keep/drop gates of units and connections:

    * *partial connection*: in every training step (phases ``"weights"`` and ``"arch"``)
      each gate group draws ``ceil(n / K)`` of its ``n`` rows at random; only they go
      through the softmax relaxation, the others pass as kept (keep weight one, no
      gradient), as PC-DARTS sends ``1/K`` of the channels through the mixture and lets the
      rest bypass it. The draw is fresh each step, where PC-DARTS fixes the first ``C/K``
      channels and shuffles them; measuring (``"eval"``) sends every row through.
    * *edge normalization*: a node fed by several gated edges of connections gets weights
      ``β`` over them (in ``module.arch``, as :class:`PartialChannels` adds them); the keep
      weights of edge ``e`` are multiplied by ``m * softmax(β)_e``, ``m`` the number of
      those edges (PC-DARTS multiplies by ``softmax(β)_e``; the factor ``m`` keeps the
      compiled network's function at equal ``β``, since unit-level edges are not averaged),
      and discretization ranks connections by ``p_keep * m * softmax(β)_e``.

    What does not carry over: PC-DARTS saves memory because the bypassed channels skip the
    candidate ops; a unit-level block computes every unit in one tensor op whether it is
    gated or not, so here the sampling regularizes the search (and steadies it, as edge
    normalization) without saving memory.

    Args:
        k: ``1/K`` of the rows of each group is relaxed per step (4 in the paper).
        edge_norm: add the edge-normalization weights ``β``.

    Examples:
        >>> import torch
        >>> relax = PartialUnits(k=4, edge_norm=False)
        >>> d = relax.decide("h", torch.zeros(8, 2))
        >>> int((d.weights[:, 0] == 0.5).sum()), int((d.weights[:, 0] == 1.0).sum())
        (2, 6)
    """

    def __init__(self, k: int = 4, edge_norm: bool = True):
        super().__init__()
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise SearchError(f"partial units: k must be a positive int, got {k!r}")
        self.k = k
        self.edge_norm = bool(edge_norm)
        self._nodes: dict[str, list[str]] = {}

    def attach(self, module):
        require_unit(module.graph, "PartialUnits",
                     "use PartialChannels (the pcdarts strategy) at the layer level")
        self.resync(module)

    def resync(self, module):
        nodes: dict[str, list[str]] = OrderedDict()
        for key, (what, where) in module.gate_groups().items():
            if what == "connections":
                nodes.setdefault(where[1], []).append(key)
        nodes = OrderedDict((n, ks) for n, ks in nodes.items()
                            if len(ks) > 1 and self.edge_norm)
        old = self._nodes
        for name in [k for k in module.arch.keys() if k.startswith(BETA_PREFIX)]:
            if name[len(BETA_PREFIX):] not in nodes:
                del module.arch[name]
        for node, keys in nodes.items():
            name = BETA_PREFIX + node
            if name in module.arch and old.get(node) == keys:
                continue
            value = 1e-3 * torch.randn(1, len(keys))
            if name in module.arch:  # the surviving edges keep their weights
                prev, was = module.arch[name].detach(), old.get(node, [])
                for j, key in enumerate(keys):
                    if key in was:
                        value[0, j] = prev[0, was.index(key)]
            like = next(iter(module.arch.values()), None)
            place = {} if like is None else {"device": like.device, "dtype": like.dtype}
            module.arch[name] = nn.Parameter(value.to(**place))
        self._nodes = dict(nodes)

    def get_extra_state(self):
        return {"nodes": {k: list(v) for k, v in self._nodes.items()}}

    def set_extra_state(self, state):
        self._nodes = {k: list(v) for k, v in state.get("nodes", {}).items()}

    def scales(self, arch) -> dict[str, torch.Tensor]:
        """Per gated edge of connections with edge normalization, ``m * softmax(β)_e``."""
        return edge_weights(arch, self._nodes, "PartialUnits", scaled=True)

    def decide(self, key, alpha):
        p = torch.softmax(alpha, -1)
        if self.phase == "eval" or self.k == 1:
            return Decision(p)
        n = alpha.shape[0]
        pick = torch.randperm(n, device=alpha.device)[:-(-n // self.k)]
        w = torch.zeros_like(p)
        w[:, 0] = 1.0
        w = w.index_put((pick,), p[pick])
        return Decision(w)

    def forward(self, arch):
        scales = self.scales(arch)
        out = {}
        for key, alpha in arch.items():
            if key.startswith(BETA_PREFIX):
                continue
            d = self.decide(key, alpha)
            s = scales.get(key)
            if s is not None:
                keep = d.weights[:, 0] * s
                d = Decision(torch.stack([keep, 1.0 - keep], -1))
            out[key] = d
        return out

    def probabilities(self, module):
        arch = dict(module.arch.items())
        scales = {k: s.detach() for k, s in self.scales(arch).items()}
        out = {}
        for k, a in arch.items():
            if k.startswith(BETA_PREFIX):
                continue
            keep = torch.softmax(a.detach(), -1)[:, 0] * scales.get(k, 1.0)
            out[k] = torch.stack([keep, 1.0 - keep], -1)
        return out

    def extra_repr(self) -> str:
        return f"k={self.k}, edge_norm={self.edge_norm}"
