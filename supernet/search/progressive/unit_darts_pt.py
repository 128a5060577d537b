"""DARTS-PT perturbation-based selection at the channel and neuron levels.

Wang, Cheng, Chen, Tang and Hsieh, "Rethinking Architecture Selection in Differentiable
NAS", ICLR 2021, Algorithm 1. The architecture weights of a trained super-network need not
say what it needs; DARTS-PT asks the super-network: an undecided edge is taken (at random in
the paper), the validation accuracy is measured with each of its candidates masked, the
candidate whose removal hurts most is kept, the super-network is tuned for a few epochs, and
the next edge is decided, until every edge is.

Transposed to keep/drop gates, an edge is a gate group (a gated node or a gated edge of
connections) and its candidates are its decision variables (units, tied groups of units,
connections):

* a variable's score is the drop in validation accuracy when it alone is removed from the
  super-network (its keep weight set to zero, every other gate as the relaxation has it;
  the validation loss rise breaks ties, a finer reading of the same perturbation);
* the group keeps the variables whose removal hurts most and drops those whose removal
  hurts least; how many it drops is set by the size target: after group ``i`` of ``G`` the
  network is down to ``start - (start - target) * s_i``, ``s_i`` the share of the removable
  size of the groups decided so far (the last group brings it to the target); the kept ones
  keep weight one and leave the search (:class:`~.unit_common.FrozenRows`), the dropped
  ones leave the graph (:class:`~supernet.edits.RemoveUnits`,
  :class:`~supernet.edits.RemoveConnections`);
* ``state.train(tune)`` tunes the weights between two groups (DARTS-PT tunes the
  super-network between projections).

As :class:`~supernet.search.progressive.darts_pt.DartsPT`, batch normalization uses the
statistics of each validation batch while measuring (``batch_stats``), and groups are taken
in random order (``order="random"``) or in the graph's (``"sequential"``). Every decision is
made in :meth:`UnitDartsPT.finalize`, after the super-network is trained, as ``DartsPT()``.

Examples:
    >>> UnitDartsPT(0.5, order="sequential")
    UnitDartsPT(target=Budget(metric='params', fraction=0.5), tune=1, order='sequential')
"""

from __future__ import annotations

import contextlib
import random

import numpy as np
import torch
import torch.nn.functional as F

from supernet.errors import ConfigError, SearchError
from supernet.gates import Decision
from supernet.search.base import SearchState
from supernet.search.progressive.masking import batch_statistics
from supernet.search.progressive.unit_common import UnitDecisions, budget_repr, variable_ids
from supernet.search.relaxations.base import set_phase

__all__ = ["UnitDartsPT"]


class UnitDartsPT(UnitDecisions):
    """Greedy perturbation-based keep/drop decisions, one gate group at a time.

    Args:
        target: the final size (a fraction of the starting parameters, or a
            :class:`~supernet.search.budget.Budget`).
        tune: epochs of ``state.train`` between two groups (0: none).
        order: ``"random"`` (the paper's) or ``"sequential"`` (gate order: unit groups,
            then connection groups).
        seed: seeds the random order.
        max_batches: validation batches per measurement (default: all).
        batch_stats: measure with batch statistics in batch normalization.

    Attributes:
        decisions: per group: its key, the variables kept and dropped, and per variable
            the accuracy and loss measured without it.
    """

    name = "UnitDartsPT"

    def __init__(self, target=0.5, tune: int = 1, order: str = "random", seed: int = 0,
                 max_batches: int | None = None, batch_stats: bool = True):
        super().__init__(target)
        if order not in ("random", "sequential"):
            raise ConfigError(f"unit_darts_pt: order must be 'random' or 'sequential', got "
                              f"{order!r}")
        if not isinstance(tune, int) or tune < 0:
            raise ConfigError(f"unit_darts_pt: tune must be an int >= 0, got {tune!r}")
        self.tune, self.order, self.seed = tune, order, seed
        self.max_batches, self.batch_stats = max_batches, batch_stats
        self.rng = random.Random(seed)
        self.decisions: list[dict] = []

    def on_search_start(self, state: SearchState) -> None:
        self._setup(state)

    # ---------------------------------------------------------------- measuring
    def measure(self, state, gates=None) -> tuple[float, float]:
        """``(accuracy, mean loss)`` on the validation batches with decisions ``gates``."""
        if state.val_batches is None:
            raise SearchError("UnitDartsPT measures the super-network on the validation "
                              "split, but the search loop gives no state.val_batches")
        m = state.module
        was = m.training
        m.eval()
        correct = total = 0
        loss = 0.0
        stats = batch_statistics(m) if self.batch_stats else contextlib.nullcontext()
        try:
            with torch.no_grad(), stats:
                for i, (inputs, ctx, y) in enumerate(state.val_batches()):
                    if self.max_batches is not None and i >= self.max_batches:
                        break
                    out = m(*inputs, gates=gates, **ctx)
                    loss += float(F.cross_entropy(out, y, reduction="sum"))
                    correct += int((out.argmax(-1) == y).sum())
                    total += len(y)
        finally:
            m.train(was)
        return correct / max(total, 1), loss / max(total, 1)

    def removal_scores(self, state, space, variables) -> tuple[np.ndarray, np.ndarray]:
        """Per variable, ``(accuracy drop, loss rise)`` when it alone is removed."""
        set_phase(state.module, "eval")
        with torch.no_grad():
            base = state.module.decisions()
        acc0, loss0 = self.measure(state, base)
        acc = np.zeros(len(variables))
        loss = np.zeros(len(variables))
        rows = {k: space.index[k] for k in space.keys}
        for j, var in enumerate(variables):
            gates = dict(base)
            for k, idx in rows.items():
                hit = np.nonzero(idx == var)[0]
                if len(hit):
                    w = base[k].weights.clone()
                    w[torch.as_tensor(hit)] = torch.tensor([0.0, 1.0], dtype=w.dtype)
                    gates[k] = Decision(w)
            a, l_ = self.measure(state, gates)
            acc[j], loss[j] = acc0 - a, l_ - loss0
        set_phase(state.module, "weights")
        return acc, loss

    # ---------------------------------------------------------------- deciding
    def finalize(self, state: SearchState) -> None:
        """Decide every gate group, tuning between groups, down to the target."""
        self._setup(state)
        space = self.space(state)
        keys = list(space.keys)
        if self.order == "random":
            self.rng.shuffle(keys)
        sizer = self.sizer(state, space)
        full = sizer.full
        share = {}
        for k in keys:
            vec = np.zeros(space.size, bool)
            vec[space.index[k]] = True
            share[k] = max(full - sizer.cost(space.repair(vec, np.zeros(space.size))), 0.0)
        total = sum(share.values()) or 1.0
        done = 0.0
        start = full
        for i, key in enumerate(keys):
            done += share[key]
            space = self.space(state)
            if key not in space.index:
                continue  # its rows went with a tied group decided before
            frozen = self.frozen(state, space)
            variables = [int(v) for v in dict.fromkeys(space.index[key].tolist())
                         if not frozen[v]]
            if not variables:
                continue
            acc, loss = self.removal_scores(state, space, variables)
            # least harmful first: lowest accuracy drop, then lowest loss rise
            ranked = np.array(variables)[np.lexsort((loss, acc))]
            goal = start - (start - self.goal) * done / total
            if i == len(keys) - 1:
                goal = self.goal
            drop = self.drop_to(state, space, goal, ranked,
                                self._harm(space, variables, acc, loss))
            kept = np.zeros(space.size, bool)
            kept[variables] = True
            kept &= ~drop
            ids = variable_ids(space)
            self.decisions.append({
                "key": key, "dropped": [ids[v] for v in np.nonzero(drop)[0]],
                "kept": [ids[v] for v in np.nonzero(kept)[0]],
                "accuracy_drop": {str(ids[v]): float(a) for v, a in zip(variables, acc)},
                "loss_rise": {str(ids[v]): float(x) for v, x in zip(variables, loss)}})
            keep_ids = self.keep_ids(state, space, kept)
            self.drop(state, space, drop)
            self.freeze(state, keep_ids)
            self.record(state)
            if self.tune and i < len(keys) - 1 and state.train is not None:
                state.train(self.tune)
        self.to_target(state)

    @staticmethod
    def _harm(space, variables, acc, loss) -> np.ndarray:
        """Scores for keeping one unit per node: the most harmful removal stays."""
        out = np.full(space.size, np.inf)
        rank = np.empty(len(variables))
        rank[np.lexsort((loss, acc))] = np.arange(len(variables))
        out[variables] = rank
        return out

    def state_dict(self) -> dict:
        return {**super().state_dict(), "decisions": self.decisions,
                "rng": [self.rng.getstate()[0], list(self.rng.getstate()[1]),
                        self.rng.getstate()[2]]}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.decisions = list(state.get("decisions", []))
        if "rng" in state:
            v, s, g = state["rng"]
            self.rng.setstate((v, tuple(s), g))

    def __repr__(self) -> str:
        return (f"UnitDartsPT(target={budget_repr(self.target)}, tune={self.tune}, "
                f"order={self.order!r})")
