"""SGAS greedy decisions at the channel and neuron levels.

Li, Qian, Delgadillo, Müller, Thabet and Ghanem, "SGAS: Sequential Greedy Architecture
Search", CVPR 2020, Sec. 3.2. After a warm-up, at every decision epoch the undecided edge of
highest score is decided (it keeps its best op) and leaves the search; the other edges keep
searching. Criterion 1 scores ``norm(EI) * norm(SC)``, Criterion 2
``norm(EI) * norm(SC) * norm(SS)``:

* edge importance ``EI``: the weight of the non-zero candidates;
* selection certainty ``SC = 1 - H(q) / log |q|``, ``q`` the candidates' weights;
* selection stability ``SS``: the histogram intersection of ``q`` with ``q`` of each of the
  last ``history`` epochs, averaged;

``norm`` rescales over all the edges, decided ones included with the values they were
decided with (min-max).

Transposed to keep/drop gates, an "edge" is a decision variable (a dependency group of gated
units, or one gated connection) and its candidates are keep and drop, with ``p`` its keep
probability:

* ``EI = p``: "keep" is the one non-zero candidate, as in SGAS;
* ``SC = 1 - H(p, 1 - p) / log 2`` and ``SS = mean(1 - |p - p'|)`` (the histogram
  intersection of two keep/drop distributions): unlike a layer edge, where the zero op is
  never chosen and leaves ``q``, dropping *is* a decision here, so ``q`` has both outcomes;
* each decision epoch decides the ``ceil(n / rounds)`` variables of highest score (``n``
  undecided at the first decision), each by its most likely outcome: a kept variable keeps
  weight one and leaves the search (:class:`~.unit_common.FrozenRows`), a dropped one is
  removed (:class:`~supernet.edits.RemoveUnits`, :class:`~supernet.edits.RemoveConnections`);
* the size target bounds the decisions, as SGAS's ``max_inputs`` bounds the edges a node
  keeps: the decisions of a round are taken in score order while the target stays
  reachable (the keeps leave it reachable by dropping the undecided connections, or units
  where no connection is gated, so that fine variables are left to land close to it; the
  drops leave at least the target); :meth:`UnitSGAS.finalize` drops the undecided
  variables of lowest keep probability down to the target, as SGAS's final genotype fills
  each node's budget with its most important edges.

Examples:
    >>> import torch
    >>> ei, sc = unit_criteria(torch.tensor([0.5, 0.9, 0.1]))
    >>> [round(float(v), 3) for v in ei], [round(float(v), 3) for v in sc]
    ([0.5, 0.9, 0.1], [0.0, 0.531, 0.531])
"""

from __future__ import annotations

import math

import numpy as np
import torch

from supernet.errors import ConfigError
from supernet.search.base import SearchState
from supernet.search.progressive.sgas import normalize
from supernet.search.progressive.unit_common import (
    UnitDecisions,
    budget_repr,
    smallest_prefix,
    variable_ids,
)

__all__ = ["UnitSGAS", "unit_criteria"]


def unit_criteria(p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Edge importance and selection certainty of keep probabilities ``p``."""
    p = p.float().clamp(1e-12, 1 - 1e-12)
    h = -(p * p.log() + (1 - p) * (1 - p).log()) / math.log(2)
    return p.clone(), 1.0 - h


class UnitSGAS(UnitDecisions):
    """Greedy keep/drop decisions by SGAS Criterion 1 or 2 (see the module docstring).

    Args:
        target: the final size (a fraction of the starting parameters, or a
            :class:`~supernet.search.budget.Budget`).
        criterion: 1 (importance x certainty) or 2 (x stability).
        warmup: the first decision comes at the end of 0-based epoch ``warmup`` (default: a
            quarter of the search's epochs; SGAS: 9 of 50).
        interval: epochs between two decisions (SGAS: 5).
        rounds: decision epochs (default: as many as fit before the last epoch).
        history: epochs of keep probabilities Criterion 2 compares with (SGAS: 4).

    Attributes:
        decisions: per decision epoch: the epoch, the variables kept and dropped, their
            scores, and the score of the best variable left undecided.
    """

    name = "UnitSGAS"

    def __init__(self, target=0.5, criterion: int = 1, warmup: int | None = None,
                 interval: int = 1, rounds: int | None = None, history: int = 4):
        super().__init__(target)
        if criterion not in (1, 2):
            raise ConfigError(f"unit_sgas: criterion must be 1 or 2, got {criterion!r}")
        for what, v, low in (("warmup", warmup, 0), ("interval", interval, 1),
                             ("rounds", rounds, 1), ("history", history, 1)):
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < low):
                raise ConfigError(f"unit_sgas: {what} must be an int >= {low}, got {v!r}")
        self.criterion, self.warmup, self.interval = criterion, warmup, interval
        self.rounds, self.history = rounds, history
        self.per_round: int | None = None
        self.done = 0
        self.past: list[dict] = []  # per epoch: variable identity -> keep probability
        self.decided: list[tuple[float, float, float]] = []  # (EI, SC, SS) when decided
        self.decisions: list[dict] = []

    def _setup(self, state: SearchState) -> None:
        super()._setup(state)
        if self.warmup is None:
            self.warmup = max(state.epochs // 4, 0)
        if self.rounds is None:
            self.rounds = max(1, (state.epochs - 1 - self.warmup) // self.interval + 1
                              if state.epochs - 1 > self.warmup else 1)

    def is_decision_epoch(self, epoch: int) -> bool:
        """Whether the end of 0-based epoch ``epoch`` decides."""
        return (epoch >= self.warmup and (epoch - self.warmup) % self.interval == 0
                and self.done < self.rounds)

    # ---------------------------------------------------------------- scores
    def scores(self, p: np.ndarray, ids: list) -> tuple[np.ndarray, np.ndarray]:
        """``(score, parts)`` of variables with keep probabilities ``p``: Criterion 1 or 2,
        normalized over these and the decided variables; ``parts`` is ``(n, 3)``."""
        pt = torch.as_tensor(p, dtype=torch.float32)
        ei, sc = unit_criteria(pt)
        ss = torch.zeros_like(ei)
        for j, i in enumerate(ids):
            past = [h[i] for h in self.past if i in h]
            if past:
                ss[j] = float(np.mean([1.0 - abs(float(pt[j]) - q) for q in past]))
        parts = torch.stack([ei, sc, ss], 1)
        if self.decided:
            parts_all = torch.cat([parts, torch.tensor(self.decided, dtype=torch.float32)])
        else:
            parts_all = parts
        score = normalize(parts_all[:, 0]) * normalize(parts_all[:, 1])
        if self.criterion == 2:
            score = score * normalize(parts_all[:, 2])
        return score[:len(p)].numpy(), parts.numpy()

    # ---------------------------------------------------------------- hooks
    def on_search_start(self, state: SearchState) -> None:
        self._setup(state)

    def on_epoch_end(self, state: SearchState) -> None:
        self._setup(state)
        epoch = state.epoch - 1
        space = self.space(state)
        if not space.size:
            return
        keep = self.keep_scores(state, space)
        ids = variable_ids(space)
        free = np.nonzero(~self.frozen(state, space))[0]
        if self.is_decision_epoch(epoch) and len(free):
            self.decide(state, space, keep, ids, free, epoch)
        space = self.space(state)
        if space.size:  # after the decision, as SGAS records the weights of every epoch
            p = self.keep_scores(state, space)
            self.past.append({i: float(v) for i, v in zip(variable_ids(space), p)})
            del self.past[:-self.history]

    def decide(self, state, space, keep, ids, free, epoch) -> dict:
        """One decision epoch: the most certain variables of ``free``, in score order."""
        score, parts = self.scores(keep[free], [ids[i] for i in free])
        if self.per_round is None:
            self.per_round = math.ceil(len(free) / self.rounds)
        ranked = free[np.argsort(-score, kind="stable")][:self.per_round]
        drop_it = keep[ranked] < 0.5
        sizer = self.sizer(state, space)
        frozen = self.frozen(state, space)

        # the finest variables left undecided must be able to close the gap to the target:
        # connections when there are gated connections, else units
        fine = np.zeros(space.size, bool)
        fine[space.unit_vars:] = True
        if not fine.any():
            fine[:] = True

        def infeasible(k):
            kept = frozen.copy()
            kept[ranked[:k][~drop_it[:k]]] = True
            dropped = np.zeros(space.size, bool)
            dropped[ranked[:k][drop_it[:k]]] = True
            # every undecided fine variable dropped, or every undecided one kept
            low = sizer.cost(space.repair(dropped | (fine & ~kept), keep))
            high = sizer.cost(space.repair(dropped, keep))
            return low > self.goal or high < self.goal

        n = max(0, longest_feasible(len(ranked), infeasible))
        chosen = ranked[:n]
        kept = np.zeros(space.size, bool)
        kept[chosen[~drop_it[:n]]] = True
        dropped = np.zeros(space.size, bool)
        dropped[chosen[drop_it[:n]]] = True
        pos = {int(v): j for j, v in enumerate(free)}
        for v in chosen:
            self.decided.append(tuple(float(x) for x in parts[pos[int(v)]]))
        record = {"epoch": epoch, "kept": [ids[v] for v in chosen[~drop_it[:n]]],
                  "dropped": [ids[v] for v in chosen[drop_it[:n]]],
                  "scores": [float(score[pos[int(v)]]) for v in chosen],
                  "best_left": float(max((score[pos[int(v)]] for v in free
                                          if v not in set(chosen.tolist())), default=0.0))}
        keep_ids = self.keep_ids(state, space, kept)
        self.drop(state, space, dropped)
        self.freeze(state, keep_ids)
        self.done += 1
        self.record(state)
        self.decisions.append(record)
        if not state.module.gate_groups():
            state.arch_update = False  # every variable decided: the epochs left train weights
        return record

    def finalize(self, state: SearchState) -> None:
        """The undecided variables of lowest keep probability go down to the target."""
        self._setup(state)
        self.to_target(state)

    # ---------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        return {**super().state_dict(), "per_round": self.per_round, "done": self.done,
                "past": [[[list(k) if isinstance(k, tuple) else k, v] for k, v in h.items()]
                         for h in self.past],
                "decided": [list(d) for d in self.decided], "decisions": self.decisions,
                "warmup": self.warmup, "rounds": self.rounds}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.per_round, self.done = state.get("per_round"), int(state.get("done", 0))
        self.past = [{_key(k): v for k, v in h} for h in state.get("past", [])]
        self.decided = [tuple(d) for d in state.get("decided", [])]
        self.decisions = list(state.get("decisions", []))
        self.warmup = state.get("warmup", self.warmup)
        self.rounds = state.get("rounds", self.rounds)

    def __repr__(self) -> str:
        return (f"UnitSGAS(target={budget_repr(self.target)}, criterion={self.criterion}, "
                f"warmup={self.warmup}, interval={self.interval}, rounds={self.rounds})")


def longest_feasible(n: int, infeasible) -> int:
    """The number of leading items that can be taken: the largest ``k <= n`` with
    ``infeasible(k)`` false (``infeasible`` monotone, false at 0)."""
    if not infeasible(n):
        return n
    return smallest_prefix(n, infeasible) - 1


def _key(k):
    def tup(x):
        return tuple(tup(y) for y in x) if isinstance(x, list) else x

    return tup(k)
