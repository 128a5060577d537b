"""SGAS: greedy edge decisions during the search.

Li, Qian, Delgadillo, Müller, Thabet and Ghanem, "SGAS: Sequential Greedy Architecture
Search", CVPR 2020. After a warm-up, every ``interval`` epochs one edge of each cell
template (and of the top graph) is decided: it keeps its best candidate that is neither a
zero op nor excluded (``RemoveOp`` edits) and is frozen; its architecture weights leave the
search. When a node has ``max_inputs`` decided in-edges, its other gated in-edges are
removed (``RemoveEdge``). The edge decided is the one of highest score among the undecided:

* edge importance ``EI``: the total weight of the non-zero candidates ``sum_{o != none} p_o``;
* selection certainty ``SC = 1 - H(q) / log |q|``, ``q`` the weights of the non-zero
  candidates renormalized to sum to one, ``H`` the entropy;
* selection stability ``SS`` (Criterion 2): the histogram intersection
  ``sum_o min(q_o, q'_o)`` of ``q`` with each ``q'`` of the last ``history`` epochs, averaged.

Criterion 1 scores ``norm(EI) * norm(SC)``, Criterion 2 ``norm(EI) * norm(SC) * norm(SS)``;
``norm`` rescales a criterion to ``[0, 1]`` over all the edges of the cell (min-max; zero if
they are all equal), decided ones included with the weights they were frozen with, as the
reference does. Defaults are the paper's CIFAR-10 settings: warm-up of 9 epochs, a decision
every 5 epochs, a history of 4 epochs.

As the authors' code does, the batch size grows after every epoch that decided an edge (of
any cell; one growth per epoch), since every decision frees the memory of the candidates it
removes: after ``k`` decision epochs the train and validation loaders hold
``batch_size + batch_increase * k`` samples (``state.batch_size``, which the loop reads at
the start of every epoch). ``batch_increase`` defaults to 8, the reference's CIFAR-10 search
(``cnn/train_search.py``: 64, 72, 80, ...; its point-cloud and graph searches use 4 and 1);
``0`` keeps the batch size.

Examples:
    >>> import torch
    >>> p = torch.tensor([[0.1, 0.6, 0.3], [0.5, 0.25, 0.25]])  # candidates: none, a, b
    >>> ei, sc = criteria(p, allowed=[1, 2])
    >>> [round(float(v), 3) for v in ei], [round(float(v), 3) for v in sc]
    ([0.9, 0.5], [0.082, 0.0])
    >>> normalize(torch.tensor([2.0, 4.0, 3.0]))
    tensor([0.0000, 1.0000, 0.5000])
"""

from __future__ import annotations

import math

import torch

from supernet.errors import ConfigError
from supernet.search.base import DiscretizationPolicy, SearchState
from supernet.search.progressive.common import (
    UNIT_LEVEL_ADVICE,
    budgets,
    constraints_of,
    gate_probabilities,
    gated_edges,
    remove_dangling,
    require_layer,
    template,
)

__all__ = ["SGAS", "criteria", "normalize", "histogram_intersection", "sgas_policy",
           "sgas_epochs"]


def normalize(v: torch.Tensor) -> torch.Tensor:
    """Min-max rescaling to ``[0, 1]``; zeros when every entry is equal (as the reference)."""
    lo, span = v.min(), v.max() - v.min()
    return (v - lo) / span if span > 0 else torch.zeros_like(v)


def criteria(p: torch.Tensor, allowed: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Edge importance and selection certainty of rows ``p`` (``(E, K)`` weights)."""
    sub = p[:, allowed]
    ei = sub.sum(-1)
    q = sub / ei.clamp_min(1e-12)[:, None]
    if len(allowed) < 2:
        return ei, torch.ones_like(ei)
    h = -(q * q.clamp_min(1e-12).log()).sum(-1) / math.log(len(allowed))
    return ei, 1.0 - h


def histogram_intersection(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``sum_k min(a_k, b_k)`` along the last dimension."""
    return torch.minimum(a, b).sum(-1)


class SGAS(DiscretizationPolicy):
    """Greedy edge decisions by SGAS Criterion 1 or 2 (see the module docstring).

    Args:
        criterion: 1 (importance x certainty) or 2 (x stability).
        warmup: decisions start after epoch ``warmup + 1`` (0-based epoch ``warmup``).
        interval: epochs between two decisions.
        history: epochs of candidate weights Criterion 2 compares with.
        batch_increase: samples added to the batch size after each decision epoch.

    Attributes:
        decisions: one record per decided edge: epoch, edge, op, and the scores of every
            candidate edge of its cell.
        decided: ``(cell, u, v) -> op``, or ``None`` for an edge removed by the
            ``max_inputs`` rule.
    """

    def __init__(self, criterion: int = 1, warmup: int = 9, interval: int = 5, history: int = 4,
                 batch_increase: int = 8):
        if criterion not in (1, 2):
            raise ConfigError(f"sgas: criterion must be 1 or 2, got {criterion!r}")
        for name, v, low in (("warmup", warmup, 0), ("interval", interval, 1),
                             ("history", history, 1), ("batch_increase", batch_increase, 0)):
            if not isinstance(v, int) or isinstance(v, bool) or v < low:
                raise ConfigError(f"sgas: {name} must be an int >= {low}, got {v!r}")
        self.criterion, self.warmup = criterion, warmup
        self.interval, self.history = interval, history
        self.batch_increase = batch_increase
        self.decided: dict[tuple, str | None] = {}
        self.frozen: dict[tuple, dict] = {}  # weights an edge was decided (or removed) with
        self.past: list[dict] = []  # per epoch: edge -> (ops, q)
        self.budget: dict[tuple, int] | None = None
        self.decisions: list[dict] = []

    # ---------------------------------------------------------------- hooks
    def on_search_start(self, state: SearchState) -> None:
        self._setup(state)

    def is_decision_epoch(self, epoch: int) -> bool:
        """Whether the end of 0-based epoch ``epoch`` decides an edge."""
        return epoch >= self.warmup and (epoch - self.warmup) % self.interval == 0

    def on_epoch_end(self, state: SearchState) -> None:
        self._setup(state)
        epoch = state.epoch - 1
        edges = gated_edges(state.graph, state.module)
        table = gate_probabilities(state.module)
        current = {e.name: {"ops": list(e.ops), "p": e.probs(table), "allowed": e.allowed}
                   for e in edges}
        rows = {**{k: dict(v, p=torch.tensor(v["p"])) for k, v in self.frozen.items()}, **current}
        chosen = []
        for cell in dict.fromkeys(k[0] for k in rows):
            names = [k for k in rows if k[0] == cell]
            score = self.scores(rows, names)
            candidates = [k for k in names if k in current]
            if candidates and self.is_decision_epoch(epoch):
                best = max(candidates, key=lambda k: (float(score[k]), -names.index(k)))
                chosen.append((best, {"/".join(k): float(score[k]) for k in candidates}))
        self.past.append({k: (r["ops"], _q(r)) for k, r in rows.items()})
        del self.past[: -self.history]
        by_name = {e.name: e for e in edges}
        for name, scores in chosen:
            self._decide(state, by_name[name], current[name], epoch, scores)
        base = getattr(state.config, "batch_size", None)  # a loop without a config: none
        if chosen and self.batch_increase and base is not None:
            state.batch_size = self.batch_size_after(base)
        if chosen and not state.module.gates():
            state.arch_update = False  # every edge is decided: the epochs left train weights

    def finalize(self, state: SearchState) -> None:
        """Decide the edges left: per node, the undecided in-edges of highest importance
        fill its budget (as the reference's forced genotype)."""
        self._setup(state)
        edges = gated_edges(state.graph, state.module)
        table = gate_probabilities(state.module)
        by_node: dict[tuple, list] = {}
        for e in edges:
            by_node.setdefault((e.cell, e.v), []).append(e)
        drops, prunes = [], []
        for node, group in by_node.items():
            need = self.budget[node] - sum(1 for k, op in self.decided.items()
                                           if (k[0], k[2]) == node and op is not None)
            imp = {e.name: float(e.probs(table)[e.allowed].sum()) for e in group}
            ranked = sorted(group, key=lambda e: -imp[e.name])
            for j, e in enumerate(ranked):
                if j < need:
                    p = e.probs(table)
                    op = e.ops[max(e.allowed, key=lambda i: (float(p[i]), -i))]
                    prunes += e.keep_only(op)
                    self.decided[e.name] = op
                else:
                    drops.append(e.remove())
                    self.decided[e.name] = None
        for edit in drops + prunes:
            state.editor.apply(edit)
        remove_dangling(state.editor)
        if not state.module.gates():
            state.module.relaxation = None

    def batch_size_after(self, base: int) -> int:
        """The batch size after the decisions made so far: ``base + batch_increase * k``,
        ``k`` the number of epochs that decided an edge."""
        return base + self.batch_increase * len({d["epoch"] for d in self.decisions})

    # ---------------------------------------------------------------- scores
    def scores(self, rows: dict, names: list) -> dict:
        """Criterion 1 or 2 of the edges ``names`` (all of one cell) from their ``rows``."""
        ei, sc, ss = [], [], []
        for k in names:
            r = rows[k]
            e, c = criteria(r["p"][None].float(), r["allowed"])
            ei.append(e[0])
            sc.append(c[0])
            q = _q(r)
            past = [h[k][1] for h in self.past if k in h and h[k][0] == r["ops"]]
            ss.append(torch.stack([histogram_intersection(q, h) for h in past]).mean()
                      if past else torch.tensor(0.0))
        score = normalize(torch.stack(ei)) * normalize(torch.stack(sc))
        if self.criterion == 2:
            score = score * normalize(torch.stack(ss))
        return dict(zip(names, score))

    # ---------------------------------------------------------------- steps
    def _decide(self, state, edge, row, epoch, scores) -> None:
        p = row["p"]
        op = edge.ops[max(edge.allowed, key=lambda i: (float(p[i]), -i))]
        for edit in edge.keep_only(op):
            state.editor.apply(edit)
        self.decided[edge.name] = op
        self.frozen[edge.name] = _plain(row)
        self.decisions.append({"epoch": epoch, "edge": "/".join(edge.name), "op": op,
                               "scores": scores})
        node = (edge.cell, edge.v)
        kept = sum(1 for k, o in self.decided.items() if (k[0], k[2]) == node and o is not None)
        if kept < self.budget[node]:
            return
        table = gate_probabilities(state.module)
        for e in gated_edges(state.graph, state.module):
            if (e.cell, e.v) == node:  # the node is full: its other gated inputs go
                self.frozen[e.name] = _plain({"ops": list(e.ops), "p": e.probs(table),
                                              "allowed": e.allowed})
                state.editor.apply(e.remove())
                self.decided[e.name] = None

    def _setup(self, state) -> None:
        require_layer(state.graph, "SGAS works on the candidate ops of layer-level edges",
                      UNIT_LEVEL_ADVICE)
        if self.budget is None:
            self.budget = budgets(state.graph, gated_edges(state.graph, state.module))

    # ---------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        def key(k):
            return "/".join(k)

        return {
            "decided": {key(k): v for k, v in self.decided.items()},
            "frozen": {key(k): v for k, v in self.frozen.items()},
            "past": [{key(k): [ops, q.tolist()] for k, (ops, q) in h.items()} for h in self.past],
            "budget": None if self.budget is None else {key(k): v for k, v in self.budget.items()},
            "decisions": self.decisions,
        }

    def load_state_dict(self, state: dict) -> None:
        def name(s):
            return tuple(s.split("/"))

        self.decided = {name(k): v for k, v in state["decided"].items()}
        self.frozen = {name(k): v for k, v in state["frozen"].items()}
        self.past = [{name(k): (ops, torch.tensor(q)) for k, (ops, q) in h.items()}
                     for h in state["past"]]
        b = state.get("budget")
        self.budget = None if b is None else {name(k): v for k, v in b.items()}
        self.decisions = list(state.get("decisions", []))

    def __repr__(self) -> str:
        return (f"SGAS(criterion={self.criterion}, warmup={self.warmup}, "
                f"interval={self.interval}, history={self.history}, "
                f"batch_increase={self.batch_increase})")


def _q(row) -> torch.Tensor:
    p = torch.as_tensor(row["p"]).float()[row["allowed"]]
    return p / p.sum().clamp_min(1e-12)


def _plain(row) -> dict:
    return {"ops": list(row["ops"]), "p": [float(v) for v in row["p"]],
            "allowed": list(row["allowed"])}


def sgas_epochs(graph, warmup: int = 9, interval: int = 5, post: int = 5) -> int:
    """Search epochs SGAS needs on ``graph`` as the reference counts them: the warm-up, one
    interval per decision after the first, the decision epoch and ``post`` more epochs
    (50 for the DARTS cell: 9 + 5 * 7 + 1 + 5)."""
    need = 0
    for cell in ["", *graph.cells]:
        g = template(graph, cell)
        m = constraints_of(graph, cell)["max_inputs"]
        gated: dict[str, int] = {}
        for _, v in g.gate_edges():
            gated[v] = gated.get(v, 0) + 1
        total = sum(n if m is None else max(0, min(n, m - (g.nx.in_degree(v) - n)))
                    for v, n in gated.items())
        need = max(need, total)
    return warmup + interval * max(need - 1, 0) + 1 + post


def sgas_policy(criterion: int = 1, **kwargs) -> SGAS:
    """An :class:`SGAS` policy (``criterion=2`` for SGAS Cri.2); search with a softmax
    relaxation for :func:`sgas_epochs` epochs."""
    return SGAS(criterion, **kwargs)
