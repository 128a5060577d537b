"""Progressive discretization of keep/drop gates at the channel and neuron levels.

P-DARTS and SGAS close the gap between the super-network and the final architecture by
deciding part of the structure while the search runs, so that the weights adapt to each
decision instead of meeting all of them at the end. :class:`ProgressiveGates` does this for
the keep/drop gates of units and connections: after a warm-up of ``t0`` epochs, every ``Δt``
epochs it removes the gated units (dependency groups, see
:class:`~supernet.search.choices.units.UnitChoiceSpace`) and connections whose decision is
most certainly "drop", ranked by the relaxation's keep probability (lowest first). How many
follows the cubic schedule of Zhu and Gupta (:func:`~.gradual.cubic_sparsity`): at step
``k`` of ``n`` the policy has removed the fraction ``1 - (1 - k/n)^3`` of the final
decision, estimated as what it removed so far plus what the relaxation drops now; step
``n`` removes everything the relaxation drops. The gates left train on; :meth:`finalize`
decides them by the relaxation (argmax) and fixes every gate.

Units and connections follow the schedule separately. Every removal is an edit through
``state.editor`` (:class:`~supernet.edits.RemoveUnits`,
:class:`~supernet.edits.RemoveConnections`), so the edit log replays the search, and the
optimizers follow (weights, momentum and Adam moments of the gates are sliced). A node always
keeps at least one unit.

Examples:
    >>> policy = ProgressiveGates(warmup=2, interval=2, decisions=3)
    >>> [policy.step_of(e) for e in range(1, 9)]
    [None, None, None, 1, None, 2, None, 3]
"""

from __future__ import annotations

import numpy as np

from supernet.search.base import DiscretizationPolicy, SearchState, require_unit
from supernet.search.choices.units import UnitChoiceSpace
from supernet.search.discretize.layer import discretize
from supernet.search.progressive.gradual import _positive, cubic_sparsity, plan_epochs
from supernet.search.relaxations.base import gate_probabilities

__all__ = ["ProgressiveGates"]

_INSTEAD = "use SGAS, P-DARTS or DARTS-PT for layer-level candidate ops"


class ProgressiveGates(DiscretizationPolicy):
    """Remove the most certainly dropped gates during the search (module docstring).

    Args:
        warmup: epochs ``t0`` before the schedule starts (``None``: a quarter of the search).
        interval: epochs ``Δt`` between two decisions.
        decisions: ``n``, the number of decisions (``None``: as many as fit in the first
            three quarters of the epochs after the warm-up). Decision ``k`` comes at the end
            of epoch ``t0 + k Δt``.

    Attributes:
        removed: decision variables removed so far, ``{"units": ..., "connections": ...}``
            (a tied group of units counts once).
        history: one record per decision: epoch, step, target fraction, what was removed.
    """

    def __init__(self, warmup: int | None = None, interval: int = 1,
                 decisions: int | None = None):
        _positive("ProgressiveGates: warmup", warmup, 0, optional=True)
        _positive("ProgressiveGates: interval", interval)
        _positive("ProgressiveGates: decisions", decisions, optional=True)
        self.warmup, self.interval, self.decisions = warmup, interval, decisions
        self.t0: int | None = warmup
        self.n: int | None = decisions
        self.removed = {"units": 0, "connections": 0}
        self.history: list[dict] = []

    def _setup(self, state: SearchState) -> None:
        require_unit(state.graph, "ProgressiveGates", _INSTEAD)
        if self.t0 is None:
            self.t0 = max(state.epochs // 4, 0)
        if self.n is None:
            self.n = plan_epochs(state.epochs, self.t0, self.interval, None)

    def step_of(self, epoch: int) -> int | None:
        """The decision ``k`` made at the end of ``epoch`` (completed epochs), or ``None``."""
        if self.t0 is None or self.n is None:
            return None
        k, r = divmod(epoch - self.t0, self.interval)
        return k if r == 0 and 1 <= k <= self.n else None

    # ---------------------------------------------------------------- hooks
    def on_search_start(self, state: SearchState) -> None:
        self._setup(state)

    def on_epoch_end(self, state: SearchState) -> None:
        self._setup(state)
        k = self.step_of(state.epoch)
        if k is not None and state.module.gate_groups():
            self.decide(state, k)

    def finalize(self, state: SearchState) -> None:
        """The decision of the relaxation for every gate left, then every gate fixed."""

        self._setup(state)
        discretize(state.graph, state.module, state.editor)

    def decide(self, state: SearchState, k: int) -> dict:
        """Decision ``k``: remove the most certain drops up to the schedule's target."""
        module = state.module
        space = UnitChoiceSpace(state.graph, module)
        drop = space.vector(space.decide(module))
        keep = space.keep_scores(gate_probabilities(module))
        frac = cubic_sparsity(k, self.n)
        picked = np.zeros(space.size, bool)
        record = {"epoch": state.epoch, "step": k, "fraction": frac}
        for kind, lo, hi in (("units", 0, space.unit_vars),
                             ("connections", space.unit_vars, space.size)):
            cand = lo + np.nonzero(drop[lo:hi])[0]
            final = self.removed[kind] + len(cand)
            take = int(np.clip(int(frac * final + 0.5) - self.removed[kind], 0, len(cand)))
            order = cand[np.argsort(keep[cand], kind="stable")]  # most certain drops first
            picked[order[:take]] = True
            self.removed[kind] += take
            record[kind] = take
        for edit in space.edits(space.choice(picked), final=False):
            state.editor.apply(edit)
        self.history.append(record)
        return record

    # ---------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        return {"t0": self.t0, "n": self.n, "removed": dict(self.removed),
                "history": self.history}

    def load_state_dict(self, state: dict) -> None:
        self.t0, self.n = state.get("t0", self.t0), state.get("n", self.n)
        self.removed = dict(state.get("removed", self.removed))
        self.history = list(state.get("history", []))
