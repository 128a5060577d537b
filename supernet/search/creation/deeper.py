"""Deeper networks during a search: insert identity-initialized hidden groups (Net2DeeperNet).

Chen, Goodfellow and Shlens, "Net2Net: Accelerating Learning via Knowledge Transfer" (ICLR
2016), Section 3.2, Net2DeeperNet; Wei, Wang, Rui and Chen, "Network Morphism" (ICML 2016)
for the general case. A layer ``h = φ(W x)`` is replaced by ``φ(U φ(W x))`` with ``U = I``,
which is the same function whenever ``φ(I φ(v)) = φ(v)`` for every ``v``: true for ReLU
(``φ`` is idempotent), false for tanh and sigmoid (Net2Net's remark; network morphism
handles them with other initializations). Here the new group's activation is applied to the
source group's outputs, so the insertion is exact after ReLU, sigmoid or softplus groups
(non-negative values) with a ReLU group, and after any group with an identity group (see
:class:`~supernet.edits.units.InsertGroup`, whose report says which case holds).

:class:`GrowDeeper` inserts one group on each named dense edge at the scheduled epoch ends,
through ``state.editor``: the log replays the growth, the weight optimizer takes the new
weights, the weights of the replaced edge move with their momentum to the new out-edge.

Examples:
    >>> import torch
    >>> from supernet import compile
    >>> from supernet.edits import Editor
    >>> from supernet.search.base import SearchState
    >>> from supernet.units import mlp
    >>> g = mlp([4, 6, 2], seed=0); net = compile(g, seed=0); x = torch.randn(3, 4)
    >>> before = net(x)
    >>> policy = GrowDeeper(edges=[("h1", "y")], at=2)
    >>> policy.on_epoch_end(SearchState(g, net, Editor(g, net), epoch=2, epochs=4))
    >>> [r["node"] for r in policy.grown], sorted(g.nx.edges)
    (['h1_deep1'], [('h1', 'h1_deep1'), ('h1_deep1', 'y'), ('x', 'h1')])
    >>> bool(torch.equal(net(x), before))
    True
"""

from __future__ import annotations

from typing import Iterable, Sequence

from supernet.edits.units import InsertGroup
from supernet.errors import ConfigError
from supernet.search.base import SearchState, require_unit
from supernet.search.creation.layer import _epochs, _Scheduled
from supernet.units.surgery import INSERT_CONNECT

__all__ = ["GrowDeeper", "check_epochs", "insertion_points"]


def check_epochs(policy: str, key: str, epochs: Iterable[int], total: int,
                 last: bool = False) -> None:
    """Refuse scheduled epochs outside ``1 .. total - 1`` (what grows at the end of the last
    epoch is never trained), or ``1 .. total`` with ``last``, naming the policy, the key and
    the allowed values."""
    top = total if last else total - 1
    bad = sorted(e for e in epochs if not 1 <= e <= top)
    if bad:
        why = "" if last else ", and what grows at the end of the last one is never trained"
        raise ConfigError(f"{policy}: {key}={bad} is outside the search: give epochs in "
                          f"1..{top} (the search runs {total} epochs{why})")


def insertion_points(graph) -> list[tuple[str, str]]:
    """The edges a group can be inserted on: ungated, unpooled dense edges."""
    return [(u, v) for u, v, e in graph.nx.edges(data=True)
            if e["kind"] == "dense" and e.get("pool") is None and not e.get("gated")]


class GrowDeeper(_Scheduled):
    """Insert an identity-initialized group on each of ``edges`` at scheduled epoch ends.

    Args:
        edges: insertion points ``[(u, v), ...]``, dense edges between two groups (default:
            every in-edge of the graph's outputs, which deepens an MLP under its head).
        at: epoch(s) (completed epochs) at whose end to insert; each insertion adds one
            group per edge (a later one goes on the edge into the same head again, so two
            growths turn 40-100-10 into 40-100-100-100-10).
        act: activation of the new groups (``"relu"``: exact after non-negative groups).
        connect: ``"full"`` (a dense layer, Net2DeeperNet) or ``"diagonal"``.
        noise: standard deviation of noise on the identity (0: exact).

    Attributes:
        grown: one record per insertion: epoch, node, the edge and whether it was exact.
    """

    def __init__(self, edges: Sequence[Sequence[str]] | None = None,
                 at: int | Iterable[int] | None = None, act: str = "relu",
                 connect: str = "full", noise: float = 0.0):
        if at is None:
            raise ConfigError("GrowDeeper: give at= (the epochs at whose end to insert)")
        self.at, self.when = _epochs(at), None
        if edges is not None:
            edges = list(edges)
            for e in edges:
                if not isinstance(e, (list, tuple)) or len(e) != 2:
                    raise ConfigError(f"GrowDeeper: edges are (u, v) pairs, got {e!r}")
            edges = [(str(u), str(v)) for u, v in edges]
        if connect not in INSERT_CONNECT:
            raise ConfigError(f"GrowDeeper: connect must be one of {list(INSERT_CONNECT)}, "
                              f"got {connect!r}")
        self.edges, self.act, self.connect, self.noise = edges, act, connect, float(noise)
        self.grown: list[dict] = []

    def targets(self, graph) -> list[tuple[str, str]]:
        """The edges that take a group now (the current in-edges of the heads by default)."""
        if self.edges is not None:
            return list(self.edges)
        return [(u, v) for u, v in insertion_points(graph) if v in graph.outputs]

    def on_search_start(self, state: SearchState) -> None:
        require_unit(state.graph, "GrowDeeper", "grow layer-level cells with GrowNode")
        if state.epochs:
            check_epochs("GrowDeeper", "at", self.at, state.epochs)
        allowed = insertion_points(state.graph)
        for u, v in self.targets(state.graph):
            if (u, v) not in allowed:
                raise ConfigError(
                    f"{state.graph.name}: GrowDeeper: edges entry ({u!r}, {v!r}) is not an "
                    "ungated dense edge between two groups; allowed: "
                    f"{[list(e) for e in allowed][:12]}")

    def on_epoch_end(self, state: SearchState) -> None:
        require_unit(state.graph, "GrowDeeper", "grow layer-level cells with GrowNode")
        if not self.due(state):
            return
        for u, v in self.targets(state.graph):
            name = self._name(state.graph, u)
            result = state.editor.apply(InsertGroup(u, v, node=name, act=self.act,
                                                    connect=self.connect, noise=self.noise))
            self.grown.append({"epoch": state.epoch, "node": name, "edge": [u, v],
                               "exact": bool(result.report["exact"])})
            if self.edges is not None:  # the named edge is gone: grow under it next time
                self.edges = [(name, v) if (a, b) == (u, v) else (a, b) for a, b in self.edges]

    @staticmethod
    def _name(graph, u: str) -> str:
        k = 1
        while f"{u}_deep{k}" in graph.nx:
            k += 1
        return f"{u}_deep{k}"

    def state_dict(self) -> dict:
        return {"grown": self.grown, "fired": sorted(getattr(self, "_fired", ())),
                "edges": self.edges}

    def load_state_dict(self, state: dict) -> None:
        self.grown = list(state.get("grown", []))
        self._fired = set(state.get("fired", []))
        if state.get("edges") is not None:
            self.edges = [tuple(e) for e in state["edges"]]
