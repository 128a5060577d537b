"""P-DARTS: progressive deepening with search-space approximation and regularization.

Chen, Xie, Wu and Tian, "Progressive Differentiable Architecture Search: Bridging the Depth
Gap between Search and Evaluation", ICCV 2019. The search runs in stages (Sec. 3.2); each
stage searches a deeper network of the same cells over fewer candidates:

* stage ``k`` trains ``stages[k].epochs`` epochs (25 in the paper), the first
  ``stages[k].warmup`` (10) on the weights only, with a learning-rate cycle of its own;
* at its end, every gated edge keeps its ``stages[k].keep`` most likely candidates
  (8 -> 5 -> 3 in the paper): the others leave by :class:`~supernet.edits.RemoveOp` edits;
* the next stage searches ``builder(stages[k + 1].cells)`` (5 -> 11 -> 17 cells) on which
  the same edits are replayed, so it keeps the pruned candidate sets, handed to the loop by
  ``state.rebuild``; its weights and (as in the reference) its architecture logits start
  afresh.

Search-space regularization (Sec. 3.3): dropout after every skip-connect candidate
(:class:`~supernet.search.progressive.skip_dropout.SkipDropout`, this policy's
:attr:`PDARTS.relaxation`), at rate ``stages[k].dropout`` decayed within the stage as the
reference does (:func:`dropout_rate`); and at the end, at most ``max_skip`` skip-connects in
the normal cell (M = 2): while there are more, the kept skip-connect of lowest weight has its
weight set to zero and the cell is derived again.

The final cell (:meth:`PDARTS.finalize`): excluded and zero candidates get weight zero,
each edge keeps its best candidate, each node its ``max_inputs`` edges of highest weight
(``graph.meta["constraints"]``).

Examples:
    >>> stages = [Stage(cells=1, keep=2, epochs=2, warmup=1),
    ...           Stage(cells=2, keep=1, epochs=2, warmup=0)]
    >>> policy = PDARTS(lambda cells: None, stages, max_skip=2)
    >>> policy.epochs, policy.stage_of(2)
    (4, (1, 0))
    >>> round(dropout_rate(0.7, 0, 25, 10), 3), round(dropout_rate(0.7, 12, 25, 10), 3)
    (0.672, 0.469)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import torch

from supernet.edits import RemoveOp, apply_edit, edit_from_dict
from supernet.errors import ConfigError, SearchError
from supernet.gates import Relaxation
from supernet.search.base import DiscretizationPolicy, SearchState
from supernet.search.progressive.common import (
    UNIT_LEVEL_ADVICE,
    budgets,
    choice_edits,
    gate_probabilities,
    gated_edges,
    remove_dangling,
    require_layer,
    template,
)
from supernet.search.progressive.skip_dropout import SkipDropout

__all__ = ["Stage", "PDARTS", "CIFAR10_STAGES", "CIFAR100_STAGES", "dropout_rate", "pdarts_policy"]


@dataclass(frozen=True)
class Stage:
    """One P-DARTS stage.

    Attributes:
        cells: depth of the network searched in this stage (passed to the builder).
        keep: candidates each edge keeps at the end of the stage (1 for the last stage:
            the final choice).
        dropout: initial skip-connect dropout rate.
        epochs: search epochs of the stage.
        warmup: first epochs of the stage that train the weights only.
    """

    cells: int
    keep: int
    dropout: float = 0.0
    epochs: int = 25
    warmup: int = 10


#: The paper's CIFAR-10 search: 5, 11, 17 cells; 8 -> 5 -> 3 candidates, then one;
#: skip-connect dropout 0.0, 0.4, 0.7 (the authors' command line uses 0.1, 0.4, 0.7).
CIFAR10_STAGES = (Stage(5, 5, 0.0), Stage(11, 3, 0.4), Stage(17, 1, 0.7))
#: The paper's CIFAR-100 rates: 0.1, 0.2, 0.3.
CIFAR100_STAGES = (Stage(5, 5, 0.1), Stage(11, 3, 0.2), Stage(17, 1, 0.3))


def dropout_rate(rate: float, epoch: int, epochs: int, warmup: int, decay: float = 0.2) -> float:
    """The skip-connect dropout rate in epoch ``epoch`` (0-based, within its stage).

    As the reference: ``rate * (epochs - epoch - 1) / epochs`` during the warm-up, then
    ``rate * exp(-decay * (epoch - warmup))``.
    """
    if epoch < warmup:
        return rate * (epochs - epoch - 1) / epochs
    return rate * math.exp(-decay * (epoch - warmup))


class PDARTS(DiscretizationPolicy):
    """The P-DARTS discretization policy (see the module docstring).

    Args:
        builder: ``builder(cells) -> Graph``, the search network of a depth (e.g.
            ``lambda n: create_space("darts", layers=n)``); the search must start on
            ``builder(stages[0].cells)``.
        stages: the stage schedule (:data:`CIFAR10_STAGES` by default).
        max_skip: at most this many ``skip_op`` in each cell of ``skip_cells`` at the end
            (``None``: no limit).
        skip_cells: groups the limit applies to (``""`` is the top graph; ``None``: all).
        skip_op: the op counted by the limit.
        dropout_ops: candidates regularized by dropout.
        decay: the exponential decay of the dropout rate after the warm-up.
        reset_arch: start each stage's architecture logits afresh (``1e-3 * N(0, 1)``), as
            the reference builds a new network per stage.
        base: the relaxation under the dropout (softmax by default).
        seed: seeds the logits of new stages.

    Attributes:
        relaxation: the relaxation to search with (skip-connect dropout over ``base``).
        edits: every edit this policy applied, in order; they replay on
            ``builder(stages[-1].cells)`` (see :meth:`replay`).
        records: per stage, the candidates each edge kept; at the end, the choice.
    """

    def __init__(self, builder: Callable[[int], object], stages: Sequence[Stage] = CIFAR10_STAGES,
                 max_skip: int | None = 2, skip_cells: Sequence[str] | None = ("normal",),
                 skip_op: str = "skip_connect", dropout_ops: Sequence[str] = ("skip_connect",),
                 decay: float = 0.2, reset_arch: bool = True, base: Relaxation | None = None,
                 seed: int = 0):
        self.stages = tuple(Stage(**s) if isinstance(s, dict) else s for s in stages)
        _check_stages(self.stages)
        if max_skip is not None and (not isinstance(max_skip, int) or max_skip < 0):
            raise ConfigError(
                f"pdarts: max_skip must be a non-negative int or None, got {max_skip!r}")
        self.builder = builder
        self.max_skip = max_skip
        self.skip_cells = None if skip_cells is None else tuple(skip_cells)
        self.skip_op = skip_op
        self.decay = float(decay)
        self.reset_arch = reset_arch
        self.seed = seed
        self.relaxation = SkipDropout(base, p=0.0, ops=tuple(dropout_ops))
        self.relaxation.schedule = self.rate
        self.stage = 0
        self.edits: list = []
        self.records: list[dict] = []

    # ---------------------------------------------------------------- schedule
    @property
    def epochs(self) -> int:
        """Search epochs of all stages: the loop's ``epochs``."""
        return sum(s.epochs for s in self.stages)

    def stage_of(self, epoch: int) -> tuple[int, int]:
        """``(stage index, epoch within the stage)`` of global epoch ``epoch`` (0-based)."""
        start = 0
        for k, s in enumerate(self.stages):
            if epoch < start + s.epochs:
                return k, epoch - start
            start += s.epochs
        return len(self.stages) - 1, epoch - start + self.stages[-1].epochs

    def rate(self, epoch: int) -> float:
        """The skip-connect dropout rate of global epoch ``epoch``."""
        k, e = self.stage_of(epoch)
        s = self.stages[k]
        return dropout_rate(s.dropout, e, s.epochs, s.warmup, self.decay)

    def _schedule(self, state: SearchState, epoch: int) -> None:
        """Set what the coming epoch ``epoch`` (0-based) runs with."""
        k, e = self.stage_of(epoch)
        s = self.stages[k]
        self.relaxation.p = self.rate(epoch)
        state.arch_update = e >= s.warmup
        state.lr_cycle = (epoch - e, s.epochs)

    # ---------------------------------------------------------------- hooks
    def on_search_start(self, state: SearchState) -> None:
        self._check(state)
        self._use_relaxation(state)
        self._schedule(state, state.epoch)

    def on_epoch_end(self, state: SearchState) -> None:
        self._check(state)
        self._use_relaxation(state)
        end = sum(s.epochs for s in self.stages[: self.stage + 1])
        if state.epoch == end and self.stage < len(self.stages) - 1:
            self._prune(state, self.stages[self.stage].keep)
            self.stage += 1
            self._deepen(state)
        if state.epoch < self.epochs:
            self._schedule(state, state.epoch)

    def finalize(self, state: SearchState) -> None:
        """The final choice: one candidate per edge, ``max_inputs`` edges per node, at most
        ``max_skip`` skip-connects in the ``skip_cells``."""
        require_layer(state.graph, "P-DARTS works on the candidate ops of layer-level edges",
                      UNIT_LEVEL_ADVICE)
        graph, module = state.graph, state.module
        edges = gated_edges(graph, module)
        table = gate_probabilities(module)
        probs = {}
        for e in edges:
            p = e.probs(table).clone()
            p[[i for i in range(len(e.ops)) if i not in e.allowed]] = 0.0
            probs[e.name] = p
        budget = budgets(graph, edges)
        choice = {}
        for cell in dict.fromkeys(e.cell for e in edges):
            group = [e for e in edges if e.cell == cell]
            choice.update(self._limit_skips(graph, cell, group, probs, budget))
        for edit in choice_edits(edges, choice):
            self.edits.append(state.editor.apply(edit).edit)
        self.edits += remove_dangling(state.editor)
        if not state.module.gates():
            state.module.relaxation = None
        self.records.append({"stage": "final",
                             "choice": {"/".join(k): v for k, v in choice.items()}})

    # ---------------------------------------------------------------- steps
    def _prune(self, state: SearchState, keep: int) -> None:
        """Each gated edge keeps its ``keep`` most likely candidates."""
        table = gate_probabilities(state.module)
        kept = {}
        for e in gated_edges(state.graph, state.module):
            p = e.probs(table)
            order = sorted(range(len(e.ops)), key=lambda i: (float(p[i]), i))
            drop = set(order[: max(0, len(e.ops) - keep)])
            for i in sorted(drop):
                edit = RemoveOp(e.u, e.v, e.ops[i], cell=e.target)
                self.edits.append(state.editor.apply(edit).edit)
            kept["/".join(e.name)] = [o for i, o in enumerate(e.ops) if i not in drop]
        self.records.append({"stage": self.stage, "kept": kept})

    def _deepen(self, state: SearchState) -> None:
        """Continue on a deeper network with the pruned candidate sets."""
        rebuild = getattr(state, "rebuild", None)
        if rebuild is None:
            raise SearchError(
                "P-DARTS searches deeper networks stage by stage, but the search loop gives "
                "no state.rebuild; use a loop that provides it"
            )
        old = state.graph
        new = self.builder(self.stages[self.stage].cells)
        for edit in self.edits:
            apply_edit(new, edit)
        for e in gated_edges(old, state.module):
            g = template(new, e.cell)
            if not g.nx.has_edge(e.u, e.v) or g.nx.edges[e.u, e.v]["ops"] != e.ops:
                have = g.nx.edges[e.u, e.v]["ops"] if g.nx.has_edge(e.u, e.v) else "no edge"
                raise SearchError(
                    f"P-DARTS stage {self.stage}: {e.where()} has candidates {e.ops}, but the "
                    f"deeper network built by the builder has {have}; gates must live in "
                    "cell templates the builder shares between depths"
                )
        rebuild(new)
        if self.reset_arch:
            gen = torch.Generator().manual_seed(self.seed + self.stage)
            with torch.no_grad():
                for p in state.module.arch_parameters():
                    p.copy_(1e-3 * torch.randn(p.shape, generator=gen).to(p))
        self._use_relaxation(state)

    def _limit_skips(self, graph, cell, group, probs, budget) -> dict:
        limited = self.max_skip is not None and (self.skip_cells is None or cell in self.skip_cells)
        while True:
            choice = _derive(group, probs, budget)
            if not limited:
                return choice
            skips = [e for e in group if choice[e.name] == self.skip_op]
            if len(skips) <= self.max_skip:
                return choice
            live = [e for e in skips if float(probs[e.name][e.ops.index(self.skip_op)]) > 0]
            if not live:
                raise SearchError(
                    f"{graph.name}: cannot limit {self.skip_op} to {self.max_skip} in "
                    f"{cell or 'the top graph'}: edges {[e.where() for e in skips]} can keep "
                    "nothing else; raise max_skip or widen their candidates"
                )
            weakest = min(live, key=lambda e: float(probs[e.name][e.ops.index(self.skip_op)]))
            probs[weakest.name][weakest.ops.index(self.skip_op)] = 0.0

    # ---------------------------------------------------------------- helpers
    def _use_relaxation(self, state: SearchState) -> None:
        m = state.module
        if m.relaxation is self.relaxation or not m.gates():
            return
        base = m.relaxation
        if isinstance(base, SkipDropout):
            base = base.base
        if base is not None:
            self.relaxation.base = base
        m.relaxation = self.relaxation
        self.relaxation.attach(m)

    def _check(self, state: SearchState) -> None:
        require_layer(state.graph, "P-DARTS works on the candidate ops of layer-level edges",
                      UNIT_LEVEL_ADVICE)
        if state.epochs and state.epochs != self.epochs:
            raise SearchError(
                f"P-DARTS: the stages take {self.epochs} epochs in all "
                f"({[s.epochs for s in self.stages]}), but the search runs {state.epochs}; "
                f"set epochs={self.epochs}"
            )

    def replay(self):
        """``builder(stages[-1].cells)`` with every recorded edit applied: the searched
        network at the final depth, rebuilt from the edit records alone."""
        g = self.builder(self.stages[-1].cells)
        for edit in self.edits:
            apply_edit(g, edit)
        return g

    def state_dict(self) -> dict:
        return {"stage": self.stage, "edits": [e.to_dict() for e in self.edits],
                "records": self.records}

    def load_state_dict(self, state: dict) -> None:
        self.stage = int(state["stage"])
        self.edits = [edit_from_dict(d) for d in state["edits"]]
        self.records = list(state.get("records", []))

    def __repr__(self) -> str:
        return (f"PDARTS(stages={[asdict(s) for s in self.stages]}, max_skip={self.max_skip}, "
                f"skip_cells={self.skip_cells})")


def _derive(group, probs, budget) -> dict:
    """Per edge its best allowed candidate; per node its ``budget`` strongest edges."""
    choice = {}
    by_node: dict[str, list] = {}
    for e in group:
        by_node.setdefault(e.v, []).append(e)
    for v, edges in by_node.items():
        best = {e.name: max(e.allowed, key=lambda i: (float(probs[e.name][i]), -i)) for e in edges}
        ranked = sorted(edges, key=lambda e: -float(probs[e.name][best[e.name]]))
        keep = {e.name for e in ranked[: budget[(e.cell, v)]]}
        for e in edges:
            choice[e.name] = e.ops[best[e.name]] if e.name in keep else None
    return choice


def _check_stages(stages) -> None:
    if not stages:
        raise ConfigError("pdarts: stages is empty; give at least one Stage")
    for k, s in enumerate(stages):
        for name in ("cells", "keep", "epochs"):
            v = getattr(s, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigError(f"pdarts: stage {k}: {name} must be a positive int, got {v!r}")
        if not isinstance(s.warmup, int) or not 0 <= s.warmup <= s.epochs:
            raise ConfigError(
                f"pdarts: stage {k}: warmup must be an int in [0, epochs={s.epochs}], "
                f"got {s.warmup!r}"
            )
        if not 0.0 <= s.dropout < 1.0:
            raise ConfigError(f"pdarts: stage {k}: dropout must be in [0, 1), got {s.dropout!r}")
    if stages[-1].keep != 1:
        raise ConfigError(
            f"pdarts: the last stage keeps {stages[-1].keep} candidates per edge; it makes the "
            "final choice, so its keep must be 1"
        )
    keeps = [s.keep for s in stages]
    if any(a <= b for a, b in zip(keeps, keeps[1:])):
        raise ConfigError(f"pdarts: stages must keep fewer candidates each time, got keep={keeps}")


def pdarts_policy(builder: Callable[[int], object], **kwargs) -> PDARTS:
    """A :class:`PDARTS` policy; search with ``policy.relaxation`` for
    ``policy.epochs`` epochs on ``builder(policy.stages[0].cells)``."""
    return PDARTS(builder, **kwargs)
