"""What the progressive policies of the channel and neuron levels share: a size target, the
cost of a keep/drop decision before it is applied, decisions frozen while the search goes
on, and the edits that make them permanent.

The decision variables are those of :class:`~supernet.search.choices.units.UnitChoiceSpace`:
one per dependency group of gated units and one per gated connection. A policy decides a
variable in one of two ways:

* *drop*: its units or connection leave the graph at once (:class:`~supernet.edits.RemoveUnits`,
  :class:`~supernet.edits.RemoveConnections` through ``state.editor``);
* *keep*: its rows stay with keep weight one and no gradient (:class:`FrozenRows`, the
  counterpart of a layer-level edge reduced to its chosen op); when every row of a node or
  edge is decided, its gate goes (:class:`~supernet.edits.UngateUnits`,
  :class:`~supernet.edits.UngateConnections`).

The size a search ends at is a :class:`~supernet.search.budget.Budget` (parameters,
multiply-accumulates or measured latency; a fraction of the network the search starts from
or an absolute value), resolved into its :class:`~supernet.search.budget.CostModel` when the
search starts (a target out of reach fails then, before training). :class:`Sizer` gives the
cost a drop vector would leave (:meth:`~supernet.search.budget.CostModel.choice_cost`: 0/1
keep probabilities, tied units counted as their group), so that policies choose how many
variables to drop by bisection, before editing anything.

Examples:
    >>> from supernet import compile
    >>> from supernet.units import mlp
    >>> from supernet.search.discretize.units import set_gated
    >>> g = mlp([4, 6, 2], seed=0); set_gated(g, units=["h1"]); net = compile(g)
    >>> space = UnitChoiceSpace(g, net); model = as_budget(0.5).resolve(g, net)
    >>> sizer = Sizer(model, space)
    >>> sizer.full, sizer.cost(np.array([True, True, True, False, False, False]))
    (44.0, 23.0)
    >>> model.target
    22.0
"""

from __future__ import annotations

import weakref

import numpy as np
import torch

from supernet.edits.units import UngateConnections, UngateUnits
from supernet.errors import ConfigError, SearchError
from supernet.gates import Decision
from supernet.search.base import DiscretizationPolicy, SearchState, require_unit
from supernet.search.budget import Budget, CostModel, budget_of
from supernet.search.choices.units import UnitChoiceSpace
from supernet.search.progressive.masking import RelaxationWrapper
from supernet.search.relaxations.base import gate_probabilities
from supernet.units.build import connection_ids

__all__ = ["as_budget", "Sizer", "FrozenRows", "UnitDecisions", "KeepToTarget", "row_ids",
           "variable_ids", "smallest_prefix", "budget_repr"]

_INSTEAD = "at the layer level use pdarts, sgas, darts_pt, pcdarts or proxyless"


def as_budget(target) -> Budget:
    """A :class:`~supernet.search.budget.Budget` from one, a fraction of the parameters, or
    a mapping of its keys (``{metric: macs, fraction: 0.25}``)."""
    if isinstance(target, Budget):
        return target
    if isinstance(target, dict):
        return Budget.from_config({"metric": "params", **target}, "strategy.target")
    if isinstance(target, (int, float)) and not isinstance(target, bool):
        return Budget("params", fraction=float(target))
    raise ConfigError(f"strategy.target: expected a fraction of the parameters, a mapping "
                      f"such as {{metric: params, fraction: 0.5}} or a Budget, got {target!r}")


class Sizer:
    """The cost a drop vector of ``space`` would leave, under a budget's cost model."""

    def __init__(self, model: CostModel, space: UnitChoiceSpace):
        self.model, self.space = model, space
        self.full = model.cost()

    def cost(self, drop: np.ndarray) -> float:
        with torch.no_grad():
            return self.model.choice_cost(self.space, self.space.choice(drop))


def smallest_prefix(n: int, done) -> int:
    """The smallest ``k`` in ``[0, n]`` with ``done(k)`` true (``done`` monotone; ``n``
    when none is)."""
    lo, hi = 0, n
    if done(0):
        return 0
    if not done(n):
        return n
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if done(mid):
            hi = mid
        else:
            lo = mid
    return hi


def row_ids(graph, what: str, where) -> list:
    """Stable identities of the rows of a gate group: unit ids of a node, or
    ``(dst, src, tap)`` of the connections of an edge (mask order)."""
    if what == "units":
        return [int(u) for u in graph.nx.nodes[where]["units"]]
    dst, src, tp = connection_ids(graph, *where)
    taps = tp.tolist() if tp is not None else [-1] * len(dst)
    return list(zip(dst.tolist(), src.tolist(), taps))


def variable_ids(space: UnitChoiceSpace) -> list:
    """A stable identity per decision variable: ``(gate key, row id)`` of its first row."""
    out = [None] * space.size
    for k in space.keys:
        what = "units" if k in space.unit_keys else "connections"
        ids = row_ids(space.graph, what, space.where[k])
        for row, var in enumerate(space.index[k]):
            if out[var] is None:
                out[var] = (k, ids[row])
    return out


class FrozenRows(RelaxationWrapper):
    """``base``'s decisions, with the rows decided "keep" at keep weight one (no gradient).

    Attributes:
        frozen: gate key -> identities of its frozen rows (:func:`row_ids`).
    """

    def __init__(self, base=None):
        super().__init__(base)
        self.frozen: dict[str, set] = {}
        self._module = None
        self._masks: tuple[int, dict] | None = None

    def attach(self, module) -> None:
        self._module = weakref.ref(module)
        self._masks = None
        self.base.attach(module)

    def masks(self) -> dict[str, np.ndarray]:
        """Gate key -> boolean mask of its frozen rows (cached per graph version)."""
        module = self._module() if self._module is not None else None
        if module is None or not self.frozen:
            return {}
        version = module.graph.version
        if self._masks is None or self._masks[0] != version:
            groups = module.gate_groups()
            out = {}
            for k, ids in self.frozen.items():
                if k in groups and ids:
                    what, where = groups[k]
                    out[k] = np.array([r in ids for r in row_ids(module.graph, what, where)])
            self._masks = (version, out)
        return self._masks[1]

    def adjust(self, key, decision):
        mask = self.masks().get(key)
        if mask is None or not mask.any() or decision.weights is None:
            return decision
        w = decision.weights.clone()
        fixed = torch.as_tensor(mask, device=w.device)
        w[fixed] = torch.tensor([1.0, 0.0], dtype=w.dtype, device=w.device)
        return Decision(w, decision.active)

    def probabilities(self, module):
        fn = getattr(self.base, "probabilities", None)
        probs = (fn(module) if fn is not None else
                 {k: torch.softmax(a.detach(), -1) for k, a in module.arch.items()})
        for k, mask in self.masks().items():
            if k in probs and mask.any():
                p = probs[k].clone()
                p[torch.as_tensor(mask)] = torch.tensor([1.0, 0.0], dtype=p.dtype)
                probs[k] = p
        return probs

    def resync(self, module):
        self._masks = None
        fn = getattr(self.base, "resync", None)
        if fn is not None:
            fn(module)

    @property
    def tau(self):
        """The base relaxation's temperature (Gumbel relaxations), for the history."""
        return getattr(self.base, "tau", None)


class UnitDecisions(DiscretizationPolicy):
    """Base of the unit-level progressive policies: a size target, drops and frozen keeps.

    Args:
        target: a :class:`~supernet.search.budget.Budget`, a fraction of the starting
            parameters, or a mapping of its keys (``{metric: macs, fraction: 0.25}``). A
            search that sets its own budget on the module (``module.budget``,
            :func:`~supernet.search.budget.budget_of`) is followed instead.

    Attributes:
        sizes: the ``metric`` of the graph after each decision round (``(epoch, size)``).
    """

    name = "unit policy"
    #: variables tried one by one past the first overshoot, to land within the tolerance
    search_limit = 256

    def __init__(self, target=0.5):
        self.target = as_budget(target)
        self.model: CostModel | None = None
        self.goal: float | None = None
        self.start: float | None = None
        self.sizes: list[tuple[int, float]] = []
        self._relax: FrozenRows | None = None
        self._restore: dict | None = None

    # ---------------------------------------------------------------- set-up
    def _setup(self, state: SearchState) -> None:
        require_unit(state.graph, self.name, _INSTEAD)
        if state.module.relaxation is None:
            raise SearchError(f"{state.graph.name}: {self.name} needs the module's "
                              "relaxation (the search sets it)")
        if self._restore is not None:  # a resumed search: the keeps decided before
            relax = self.frozen_rows(state)
            relax.frozen = {k: {tuple(i) if isinstance(i, list) else i for i in ids}
                            for k, ids in self._restore.items()}
            relax._masks = None
            self._restore = None
        if self.model is None:
            # the search's own budget when it set one, else this policy's; out of reach: fails
            model = budget_of(state.module) or self.target.resolve(state.graph, state.module)
            if self.goal is not None:  # a resumed search: the sizes of its start
                model.full, model.target = self.start, self.goal
            self.model, self.goal, self.start = model, model.target, model.full
            if not self.space(state).size:
                raise SearchError(f"{state.graph.name}: {self.name} found no gated unit or "
                                  "connection to decide; gate some (set_gated)")

    def space(self, state) -> UnitChoiceSpace:
        return UnitChoiceSpace(state.graph, state.module)

    def sizer(self, state, space) -> Sizer:
        return Sizer(self.model, space)

    def size(self) -> float:
        """The budget's metric of the graph as it is now."""
        return self.model.cost()

    def frozen_rows(self, state) -> FrozenRows:
        """The module's relaxation wrapped in :class:`FrozenRows` (done at the first keep, so
        that a policy that only drops leaves the relaxation as the search set it)."""
        relax = state.module.relaxation
        if not isinstance(relax, FrozenRows):
            relax = FrozenRows(relax)
            state.module.relaxation = relax
            relax.attach(state.module)
        self._relax = relax
        return relax

    def frozen(self, state, space) -> np.ndarray:
        """The variables already decided "keep"."""
        vec = np.zeros(space.size, bool)
        relax = state.module.relaxation
        if not isinstance(relax, FrozenRows):
            return vec
        for k, mask in relax.masks().items():
            if k in space.index:
                vec[space.index[k][mask]] = True
        return vec

    def keep_scores(self, state, space) -> np.ndarray:
        return space.keep_scores(gate_probabilities(state.module))

    # ---------------------------------------------------------------- decisions
    def drop(self, state, space, vec: np.ndarray) -> None:
        """Remove the variables flagged in ``vec`` (through ``state.editor``)."""
        if vec.any():
            for edit in space.edits(space.choice(vec), final=False):
                state.editor.apply(edit)

    def keep_ids(self, state, space, vec: np.ndarray) -> dict:
        """Gate key -> row identities of the variables flagged in ``vec`` (for
        :meth:`freeze`; identities survive the edits applied in between)."""
        groups = state.module.gate_groups()
        out = {}
        for k in space.keys:
            rows = np.nonzero(vec[space.index[k]])[0]
            if len(rows):
                ids = row_ids(state.graph, *groups[k])
                out[k] = {ids[r] for r in rows}
        return out

    def freeze(self, state, ids: dict) -> None:
        """Freeze rows ``ids`` (:meth:`keep_ids`) at "keep"; ungate the nodes and edges
        whose every row is decided."""
        if not ids:
            return
        relax = self.frozen_rows(state)
        for k, rows in ids.items():
            relax.frozen.setdefault(k, set()).update(rows)
        relax._masks = None
        groups = state.module.gate_groups()
        nodes, edges = [], []
        for k, mask in relax.masks().items():
            if mask.all():
                what, where = groups[k]
                (nodes if what == "units" else edges).append(where)
                del relax.frozen[k]
        relax._masks = None
        if edges:
            state.editor.apply(UngateConnections([list(e) for e in edges]))
        if nodes:
            state.editor.apply(UngateUnits(nodes))

    def keep(self, state, space, vec: np.ndarray) -> None:
        """Freeze the variables flagged in ``vec`` at "keep" (see :meth:`freeze`)."""
        if vec.any():
            self.freeze(state, self.keep_ids(state, space, vec))

    def drop_to(self, state, space, goal: float, order: np.ndarray,
                scores: np.ndarray | None = None) -> np.ndarray:
        """The drop vector of the shortest prefix of ``order`` (variables) that brings the
        size to ``goal`` or below (all of ``order`` when none does); a node keeps a unit."""
        sizer = self.sizer(state, space)
        scores = np.zeros(space.size) if scores is None else scores

        def vec(k):
            v = np.zeros(space.size, bool)
            v[order[:k]] = True
            return space.repair(v, scores)

        k = smallest_prefix(len(order), lambda k: sizer.cost(vec(k)) <= goal)
        low = goal * (1 - self.target.tolerance / 2)
        if k == 0 or sizer.cost(vec(k)) >= low:
            return vec(k)
        # the k-th variable overshoots: from the prefix before it, take the next variables
        # in order that do not (finer ones: connections, small units) until within reach
        best, size = vec(k - 1), sizer.cost(vec(k - 1))
        for var in order[k - 1:k - 1 + self.search_limit]:
            if size <= goal:
                break
            trial = best.copy()
            trial[var] = True
            trial = space.repair(trial, scores)
            c = sizer.cost(trial)
            if c >= low:
                best, size = trial, c
        return best if size <= goal * (1 + self.target.tolerance / 2) else vec(k)

    def to_target(self, state, scores: np.ndarray | None = None) -> None:
        """Drop the undecided variables of lowest ``scores`` (default: keep probability)
        until the target is met, then keep the rest and fix every gate."""
        space = self.space(state)
        if space.size:
            scores = self.keep_scores(state, space) if scores is None else scores
            free = np.nonzero(~self.frozen(state, space))[0]
            order = free[np.argsort(scores[free], kind="stable")]
            drop = self.drop_to(state, space, self.goal, order, scores)
            for edit in space.edits(space.choice(drop), final=True):
                state.editor.apply(edit)
        self.finish(state)

    def finish(self, state) -> None:
        """Fix the gates left and take the relaxation off a module without gates."""
        space = self.space(state)  # every variable decided (an emptied group has none)
        for edit in space.edits(space.choice(np.zeros(space.size, bool)), final=True):
            state.editor.apply(edit)
        if not len(state.module.arch):
            state.module.relaxation = None
        self.sizes.append((state.epoch, self.size()))

    def record(self, state) -> None:
        self.sizes.append((state.epoch, self.size()))

    # ---------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        frozen = {} if self._relax is None else {
            k: sorted(list(i) if isinstance(i, tuple) else i for i in ids)
            for k, ids in self._relax.frozen.items()}
        return {"goal": self.goal, "start": self.start, "sizes": list(self.sizes),
                "frozen": frozen}

    def load_state_dict(self, state: dict) -> None:
        self.goal = state.get("goal")
        self.start = state.get("start")
        self.sizes = [tuple(s) for s in state.get("sizes", [])]
        self._restore = state.get("frozen") or None


class KeepToTarget(UnitDecisions):
    """At the end of the search, drop the variables of lowest keep probability until the
    size target is met (the discretization of ``unit_pcdarts`` and ``unit_proxyless``:
    their papers keep the strongest candidates; here the number kept is set by the target).

    Examples:
        >>> KeepToTarget(0.5)
        KeepToTarget(target=Budget(metric='params', fraction=0.5))
    """

    name = "KeepToTarget"

    def on_search_start(self, state):
        self._setup(state)

    def finalize(self, state):
        self._setup(state)
        self.to_target(state)

    def __repr__(self) -> str:
        return f"KeepToTarget(target={budget_repr(self.target)})"


def budget_repr(budget: Budget) -> str:
    """``Budget(metric=..., fraction=...)``: the keys that set the target."""
    what = (f"fraction={budget.fraction}" if budget.fraction is not None
            else f"value={budget.value}")
    return f"Budget(metric={budget.metric!r}, {what})"
