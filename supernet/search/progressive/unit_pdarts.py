"""P-DARTS stages at the channel and neuron levels: the super-network shrinks stage by stage.

Chen, Xie, Wu and Tian, "Progressive Differentiable Architecture Search: Bridging the Depth
Gap between Search and Evaluation", ICCV 2019, Sec. 3.2 (search-space approximation). The
search runs in ``S`` stages; each stage trains its first ``warmup`` epochs on the weights
only and follows a learning-rate cycle of its own (the paper: 25 epochs, 10 of warm-up); at
the end of stage ``k`` the candidates of lowest weight leave the search space, so the next
stage searches a smaller one (8 -> 5 -> 3 -> 1 candidate ops per edge in the paper).

Transposed to keep/drop gates, the candidates of a stage are the gated units (dependency
groups) and connections, and a candidate's weight is its keep probability: at the end of
stage ``k`` the variables of lowest keep probability leave through
:class:`~supernet.edits.RemoveUnits` / :class:`~supernet.edits.RemoveConnections` edits until
the network is down to ``start * (target / start) ** ((k + 1) / S)`` (the same fraction of
what is left at every stage, as 8 -> 5 -> 3 -> 1 keeps about the same fraction); the last
stage's end (:meth:`UnitPDARTS.finalize`) brings it to the target and fixes every gate.

What has no counterpart here, and is left out: the depth gap (a unit-level network is
searched at its own depth, so no stage rebuilds a deeper one, and the architecture logits
and weights carry over from stage to stage, as edits carry them); the search-space
regularization of Sec. 3.3 (dropout after skip-connects and at most ``M`` of them), which
counters a parameter-free candidate out-competing the others, while a keep/drop gate has
one parameterized candidate and the empty one.

Examples:
    >>> policy = UnitPDARTS(target=0.25, stages=2, warmup=0.5)
    >>> policy.plan(8), [round(f, 3) for f in policy.fractions(1.0, 0.25)]
    ([(0, 4, 2), (4, 4, 2)], [0.5, 0.25])
"""

from __future__ import annotations

import numpy as np

from supernet.errors import ConfigError, SearchError
from supernet.search.base import SearchState
from supernet.search.progressive.unit_common import UnitDecisions, budget_repr

__all__ = ["UnitPDARTS"]


class UnitPDARTS(UnitDecisions):
    """Stage-by-stage shrinking of keep/drop gates (see the module docstring).

    Args:
        target: the final size (:class:`~supernet.search.budget.Budget`,
            or a fraction of the starting parameters).
        stages: the number of stages ``S`` (the search's epochs split evenly), or a list of
            ``{"epochs": ..., "warmup": ...}``.
        warmup: with ``stages`` an int, the fraction of each stage trained on the weights
            only (10 of 25 in the paper: 0.4).

    Attributes:
        records: per stage end, the size reached and the variables removed.
    """

    name = "UnitPDARTS"

    def __init__(self, target=0.5, stages=3, warmup: float = 0.4):
        super().__init__(target)
        if isinstance(stages, bool) or not (isinstance(stages, int) and stages >= 1
                                            or isinstance(stages, (list, tuple)) and stages):
            raise ConfigError(f"unit_pdarts: stages is a positive int or a list of "
                              f"{{epochs, warmup}}, got {stages!r}")
        if not 0.0 <= float(warmup) < 1.0:
            raise ConfigError(f"unit_pdarts: warmup is a fraction in [0, 1), got {warmup!r}")
        self.stages, self.warmup = stages, float(warmup)
        self.schedule: list[tuple[int, int, int]] | None = None  # (start, epochs, warmup)
        self.stage = 0
        self.records: list[dict] = []

    def plan(self, epochs: int) -> list[tuple[int, int, int]]:
        """``(first epoch, epochs, warm-up epochs)`` of each stage of a ``epochs`` search."""
        if isinstance(self.stages, int):
            if epochs < self.stages:
                raise SearchError(f"unit_pdarts: {self.stages} stages need at least as many "
                                  f"epochs, the search runs {epochs}")
            base, extra = divmod(epochs, self.stages)
            lengths = [base + (k < extra) for k in range(self.stages)]
            warm = [int(self.warmup * n) for n in lengths]
        else:
            lengths, warm = [], []
            for k, s in enumerate(self.stages):
                n, w = s.get("epochs"), s.get("warmup", 0)
                if not isinstance(n, int) or n < 1 or not isinstance(w, int) or not 0 <= w < n:
                    raise ConfigError(f"unit_pdarts: stage {k}: epochs is a positive int and "
                                      f"warmup an int in [0, epochs), got {s!r}")
                lengths.append(n)
                warm.append(w)
            if sum(lengths) != epochs:
                raise SearchError(f"unit_pdarts: the stages take {sum(lengths)} epochs "
                                  f"({lengths}), but the search runs {epochs}; set "
                                  f"epochs={sum(lengths)}")
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).tolist()
        return [(int(s), n, w) for s, n, w in zip(starts, lengths, warm)]

    def fractions(self, start: float, goal: float) -> list[float]:
        """The size at the end of each stage, as a fraction of ``start``."""
        n = len(self.schedule) if self.schedule else (
            self.stages if isinstance(self.stages, int) else len(self.stages))
        ratio = goal / start
        return [ratio ** ((k + 1) / n) for k in range(n)]

    # ---------------------------------------------------------------- hooks
    def _setup(self, state: SearchState) -> None:
        super()._setup(state)
        if self.schedule is None:
            self.schedule = self.plan(state.epochs)

    def _schedule(self, state: SearchState, epoch: int) -> None:
        for k, (start, n, warm) in enumerate(self.schedule):
            if start <= epoch < start + n:
                state.arch_update = epoch - start >= warm
                state.lr_cycle = (start, n)
                return

    def on_search_start(self, state: SearchState) -> None:
        self._setup(state)
        self._schedule(state, state.epoch)

    def on_epoch_end(self, state: SearchState) -> None:
        self._setup(state)
        start, n, _ = self.schedule[self.stage]
        if state.epoch == start + n and self.stage < len(self.schedule) - 1:
            self.shrink(state)
            self.stage += 1
        if state.epoch < state.epochs:
            self._schedule(state, state.epoch)

    def shrink(self, state: SearchState) -> None:
        """The end of a stage: the lowest keep probabilities leave until the stage's size."""
        frac = self.fractions(self.start, self.goal)[self.stage]
        goal = frac * self.start
        space = self.space(state)
        keep = self.keep_scores(state, space)
        order = np.argsort(keep, kind="stable")
        drop = self.drop_to(state, space, goal, order, keep)
        self.drop(state, space, drop)
        self.record(state)
        self.records.append({"stage": self.stage, "epoch": state.epoch, "goal": goal,
                             "size": self.sizes[-1][1], "removed": int(drop.sum())})

    def finalize(self, state: SearchState) -> None:
        """The last stage's end: down to the target, every gate fixed."""
        self._setup(state)
        self.to_target(state)
        self.records.append({"stage": len(self.schedule) - 1, "epoch": state.epoch,
                             "goal": self.goal, "size": self.sizes[-1][1]})

    def state_dict(self) -> dict:
        return {**super().state_dict(), "stage": self.stage, "records": self.records}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.stage = int(state.get("stage", 0))
        self.records = list(state.get("records", []))

    def __repr__(self) -> str:
        return (f"UnitPDARTS(target={budget_repr(self.target)}, stages={self.stages}, "
                f"warmup={self.warmup})")
