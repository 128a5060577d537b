"""Budgets: searches at the channel and neuron levels that end at the size a user asks for.

A :class:`Budget` names a cost metric and a target, given as an absolute value or as a
fraction of the full super-network's cost::

    strategy: {name: darts, target: {metric: params, fraction: 0.5}}
    supernet search --set strategy.target.metric=macs --set strategy.target.fraction=0.25

Metrics (:data:`METRICS`) come from the cost model of the unit levels
(:func:`supernet.cost.units.unit_cost`): ``"params"`` (existing connections times their
taps, biases, norms), ``"macs"`` (multiply-accumulates per sample) and ``"latency"``
(milliseconds of a linear, additive model of per-part latencies measured on the search's
device, :func:`supernet.cost.units.unit_latency`).

:meth:`Budget.resolve` checks the target against the graph before anything trains and
returns a :class:`CostModel`, which the search keeps as ``module.budget``. It gives:

* :attr:`CostModel.full`, :attr:`CostModel.minimum` (every gated unit and connection gone
  but one unit per node, or every prunable block emptied for a search without gates) and
  :attr:`CostModel.target`;
* :meth:`CostModel.expected`: the cost under the relaxation's keep probabilities
  (:func:`keep_probs`), differentiable in the architecture parameters: a connection counts
  with the keep probabilities of its two units and its own, a dependency group of units
  with the probability of the group (:meth:`supernet.cost.units.UnitCostReport.expected`);
* :meth:`CostModel.penalty`: the resource term added to the architecture loss,
  ``weight * |E[c] / T - 1|`` (``penalty="abs"``, TuNAS' absolute-value reward: Bender et
  al., "Can Weight Sharing Outperform Random Architecture Search? An Investigation With
  TuNAS", CVPR 2020, Section 3.3, with ``β`` the weight) or ``weight * max(0, E[c]/T - 1)²``
  (``penalty="hinge"``: only an excess is penalized, a squared relative form of the
  soft constraints of FBNet/ProxylessNAS-style resource losses);
* :meth:`CostModel.decide`: the final decision. The variables of the choice space
  (:class:`~supernet.search.choices.units.UnitChoiceSpace`: one per dependency group of
  gated units, one per gated connection) are ranked by their keep scores; every node keeps
  its best-scored variable; the longest prefix of the ranking whose network costs at most
  the target is kept, then later variables are added, in rank order, while each brings the
  cost closer to the target (never above it by more than half the tolerance);
* :meth:`CostModel.uniform_sparsity`: the sparsity at which pruning every given block by
  the same fraction (gradual magnitude pruning, ``scope="layer"``) meets the target.

The public API (stable): :data:`METRICS`, :data:`PENALTIES`, :class:`Budget`
(``metric``, ``fraction``, ``value``, ``tolerance``, ``weight``, ``penalty``;
:meth:`Budget.from_config`, :meth:`Budget.resolve`), :class:`CostModel` (``budget``,
``graph``, ``field``, ``full``, ``minimum``, ``target``, :meth:`~CostModel.cost`,
:meth:`~CostModel.expected`, :meth:`~CostModel.penalty`, :meth:`~CostModel.choice_cost`,
:meth:`~CostModel.decide`, :meth:`~CostModel.project`, :meth:`~CostModel.relative_error`,
:meth:`~CostModel.within`, :meth:`~CostModel.uniform_sparsity`, :meth:`~CostModel.summary`),
:func:`keep_probs` and :func:`budget_of`.

Examples:
    >>> import torch
    >>> from supernet import compile
    >>> from supernet.units import mlp
    >>> from supernet.search.discretize.units import set_gated
    >>> from supernet.search.choices.units import UnitChoiceSpace
    >>> g = mlp([8, 16, 4], seed=0); set_gated(g, units=["h1"]); net = compile(g)
    >>> model = Budget("params", fraction=0.5).resolve(g, net)
    >>> model.full, model.target
    (212.0, 106.0)
    >>> round(float(model.expected(net).detach()), 1)  # keep probabilities 1/2 at the start
    108.0
    >>> choice = model.decide(UnitChoiceSpace(g, net))
    >>> model.choice_cost(UnitChoiceSpace(g, net), choice), int(choice["h1"].sum())
    (95.0, 9)
    >>> Budget("flops", fraction=0.5)
    Traceback (most recent call last):
    ...
    supernet.errors.ConfigError: strategy.target.metric='flops': the metric is one of ...
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

from supernet.cost.units import keep_probabilities, unit_cost, unit_latency
from supernet.errors import ConfigError, SearchError, did_you_mean
from supernet.gates import Decision, gate_probabilities
from supernet.search.choices.units import UnitChoiceSpace

__all__ = ["METRICS", "PENALTIES", "Budget", "CostModel", "budget_of", "keep_probs"]

#: Cost metrics a budget may name, and the field of the unit cost model each counts.
METRICS = {"params": "params", "macs": "macs", "latency": "latency"}

#: Forms of the differentiable resource term (:meth:`CostModel.penalty`).
PENALTIES = ("abs", "hinge")

_KEYS = ("metric", "fraction", "value", "tolerance", "weight", "penalty")


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)


@dataclass(frozen=True)
class Budget:
    """A cost target of a search at the channel or neuron level.

    Args:
        metric: one of :data:`METRICS`.
        fraction: the target as a fraction of the full super-network's cost, in (0, 1].
        value: the target as an absolute cost (parameters, MACs per sample, milliseconds);
            give ``fraction`` or ``value``, not both.
        tolerance: the relative error the final network may have (2%).
        weight: ``λ`` of the resource term in the architecture loss (0: none; the final
            decision still meets the target).
        penalty: its form, one of :data:`PENALTIES`.
        where: the config key named in errors.
    """

    metric: str = "params"
    fraction: float | None = None
    value: float | None = None
    tolerance: float = 0.02
    weight: float = 1.0
    penalty: str = "abs"
    where: str = "strategy.target"

    def __post_init__(self):
        w = self.where
        if self.metric not in METRICS:
            raise ConfigError(f"{w}.metric={self.metric!r}: the metric is one of "
                              f"{list(METRICS)}.{did_you_mean(str(self.metric), list(METRICS))}")
        if (self.fraction is None) == (self.value is None):
            raise ConfigError(f"{w}: give one of {w}.fraction (of the full network's "
                              f"{self.metric}, in (0, 1]) or {w}.value (an absolute "
                              f"{self.metric} figure), not {'both' if self.value else 'neither'}")
        if self.fraction is not None and not (_number(self.fraction) and 0 < self.fraction <= 1):
            raise ConfigError(f"{w}.fraction={self.fraction!r}: must be a number in (0, 1] "
                              f"(e.g. 0.5 keeps half of the full network's {self.metric})")
        if self.value is not None and not (_number(self.value) and self.value > 0):
            raise ConfigError(f"{w}.value={self.value!r}: must be a positive number (the "
                              f"target {self.metric})")
        if not (_number(self.tolerance) and 0 < self.tolerance < 1):
            raise ConfigError(f"{w}.tolerance={self.tolerance!r}: must be a number in (0, 1)")
        if not (_number(self.weight) and self.weight >= 0):
            raise ConfigError(f"{w}.weight={self.weight!r}: must be a number >= 0")
        if self.penalty not in PENALTIES:
            raise ConfigError(f"{w}.penalty={self.penalty!r}: one of {list(PENALTIES)}")

    @classmethod
    def from_config(cls, spec, where: str = "strategy.target") -> Budget | None:
        """A budget from a mapping of its keys (YAML, ``--set``), a :class:`Budget` (returned
        as it is) or ``None`` (no budget). Unknown keys fail naming ``where``."""
        if spec is None or isinstance(spec, Budget):
            return spec
        if not isinstance(spec, dict):
            raise ConfigError(f"{where}: expected a mapping such as {{metric: params, "
                              f"fraction: 0.5}}, got {spec!r}")
        for k in spec:
            if k not in _KEYS:
                raise ConfigError(f"{where}: unknown key {k!r}.{did_you_mean(str(k), _KEYS)} "
                                  f"It takes {list(_KEYS)}")
        return cls(**spec, where=where)

    def to_dict(self) -> dict:
        """The keys a config writes (without the defaults' ``where``)."""
        out = asdict(self)
        out.pop("where")
        return {k: v for k, v in out.items() if v is not None}

    def resolve(self, graph, module=None, inputs: tuple | None = None,
                gates: bool | None = None, full: float | None = None) -> CostModel:
        """The :class:`CostModel` of this budget on ``graph`` (the full super-network),
        failing with a :class:`~supernet.errors.ConfigError` when the target lies outside
        what the search can reach: above the full network, or below the smallest network it
        can leave (``minimum``).

        Args:
            module: the compiled module (needed for ``"latency"``, timed on its device, and
                to know the gates).
            inputs: example inputs for the latency measurement (default: one sample of
                each input's ``shape``).
            gates: whether the search removes gated units and connections (default: the
                module has gates); without, it prunes ungated blocks.
            full: the full network's cost, when ``graph`` is no longer the full network
                (a resumed search); default: ``graph``'s cost now.
        """
        if getattr(graph, "level", None) not in ("channel", "neuron"):
            raise ConfigError(f"{self.where}: budgets apply to channel- and neuron-level "
                              f"graphs; {getattr(graph, 'name', 'the graph')!r} is "
                              f"{getattr(graph, 'level', None)!r}-level (at the layer level, "
                              "constrain the candidate ops, e.g. ProxylessNAS' cost loss)")
        return CostModel(self, graph, module, inputs, gates, full)


def _example_inputs(graph, module) -> tuple:
    device = next((p.device for p in module.parameters()), torch.device("cpu"))
    out = []
    for n in graph.inputs:
        d = graph.node(n)
        out.append(torch.randn(1, *(d.get("shape") or (d["width"],)), device=device))
    return tuple(out)


def keep_probs(module) -> tuple[dict, dict]:
    """``(keep_units, keep_connections)`` of ``module``'s gates under its relaxation,
    differentiable in ``module.arch``, for :meth:`UnitCostReport.expected`.

    A gate's keep probability is the relaxation's ``keep_probability(alpha)`` (FairDARTS'
    ``σ(α_keep)``), else ``softmax(α)[:, 0]`` (DARTS; the probability of the categorical
    that SNAS and GDAS sample). Tied units (:class:`~supernet.search.relaxations.TiedGates`)
    take their group's logits; a dependency group counts with its smallest probability."""
    relax = module.relaxation
    arch = dict(module.arch.items())
    tied = getattr(relax, "tied_logits", None)
    if tied is not None:
        arch = tied(arch)
        relax = relax.base
    fn = getattr(relax, "keep_probability", None)
    gates = {}
    for key in module.gate_groups():
        a = arch[key]
        p = fn(a) if fn is not None else torch.softmax(a, -1)[:, 0]
        gates[key] = Decision(torch.stack([p, 1.0 - p], -1))
    return keep_probabilities(module, gates)


def budget_of(module) -> CostModel | None:
    """The :class:`CostModel` a search set on ``module`` (``None``: no budget)."""
    return getattr(module, "budget", None)


class CostModel:
    """A :class:`Budget` resolved against a graph (see the module docstring).

    Attributes:
        budget: the budget.
        graph: the graph searched (edited in place; costs follow its current version).
        field: the cost field counted (:data:`METRICS`).
        full: the cost of the super-network as it was when resolved.
        minimum: the cost of the smallest network the search can leave.
        target: the absolute target.
    """

    def __init__(self, budget: Budget, graph, module=None, inputs=None, gates=None,
                 full: float | None = None):
        self.budget, self.graph, self.field = budget, graph, METRICS[budget.metric]
        self._report, self._version = None, None
        self._ms, self._work = None, None
        if self.field == "latency":
            if module is None:
                raise ConfigError(f"{budget.where}.metric='latency': the latency is measured "
                                  "on the compiled module; resolve with the module")
            base = unit_cost(graph)
            self._ms = unit_latency(module, inputs or _example_inputs(graph, module))
            self._work = _work(base, graph)
        self.full = float(self.cost() if full is None else full)
        self.gated = bool(module is not None and module.gate_groups()) if gates is None else gates
        self.minimum = float(self._minimum(module))
        w = budget.where
        if budget.fraction is not None:
            self.target = budget.fraction * self.full
        else:
            self.target = float(budget.value)
            if self.target > self.full:
                raise ConfigError(
                    f"{w}.value={budget.value}: larger than the full network's "
                    f"{budget.metric} ({self.full:.6g}); give a value in "
                    f"[{self.minimum:.6g}, {self.full:.6g}] or a fraction in (0, 1]")
        if self.target < self.minimum * (1 - 1e-9):
            key = f"{w}.fraction={budget.fraction}" if budget.fraction is not None else \
                f"{w}.value={budget.value}"
            raise ConfigError(
                f"{key}: the target {budget.metric} {self.target:.6g} is below the smallest "
                f"network this search can leave ({self.minimum:.6g}, "
                f"{self.minimum / self.full:.4f} of the full {self.full:.6g}: one unit per "
                f"node and every ungated part); allowed: value in [{self.minimum:.6g}, "
                f"{self.full:.6g}], fraction in [{self.minimum / self.full:.4g}, 1]")

    # ---------------------------------------------------------------- costs
    def report(self):
        """The unit cost report of the graph's current version (with the latency table
        scaled to what each part keeps, for ``"latency"``)."""
        if self._report is None or self._version != self.graph.version:
            r = unit_cost(self.graph)
            if self._ms is not None:
                now = _work(r, self.graph)
                r.with_latency({k: ms * (now[k] / self._work[k] if self._work[k] else 0.0)
                                for k, ms in self._ms.items() if k in now})
            self._report, self._version = r, self.graph.version
        return self._report

    def cost(self) -> float:
        """The cost of the graph as it is now."""
        return float(self.report().expected(field=self.field))

    def expected(self, module) -> torch.Tensor:
        """The expected cost under the keep probabilities of ``module``'s gates
        (:func:`keep_probs`), differentiable in ``module.arch``."""
        units, conns = keep_probs(module)
        return self.report().expected(units, conns, field=self.field)

    def penalty(self, module) -> torch.Tensor:
        """``weight * |E[c]/T - 1|`` (``"abs"``) or ``weight * max(0, E[c]/T - 1)²``
        (``"hinge"``), to add to the architecture loss."""
        b = self.budget
        if not b.weight or not module.gate_groups():
            return torch.zeros(())
        rel = self.expected(module) / self.target - 1.0
        term = rel.abs() if b.penalty == "abs" else rel.clamp_min(0.0) ** 2
        return b.weight * term

    def choice_cost(self, space, choice: dict) -> float:
        """The cost of the network that ``choice`` (of ``space``) leaves."""
        return self._vector_cost(space, space.vector(choice))

    def _vector_cost(self, space, drop: np.ndarray) -> float:
        gates = space.decisions(space.choice(drop))
        units, conns = keep_probabilities(space.module, gates)
        return float(self.report().expected(units, conns, field=self.field))

    def relative_error(self, cost: float | None = None) -> float:
        """``(cost - target) / target`` (default: the graph's cost now)."""
        cost = self.cost() if cost is None else cost
        return (cost - self.target) / self.target

    def within(self, cost: float | None = None) -> bool:
        """Whether ``cost`` (default: now) is within the budget's tolerance of the target."""
        return abs(self.relative_error(cost)) <= self.budget.tolerance

    def summary(self, cost: float | None = None) -> dict:
        """Metric, target, full, final cost and relative error, for reports."""
        cost = self.cost() if cost is None else cost
        return {"metric": self.budget.metric, "target": self.target, "full": self.full,
                "cost": cost, "fraction": cost / self.full,
                "relative_error": self.relative_error(cost), "within": self.within(cost),
                "tolerance": self.budget.tolerance}

    # ---------------------------------------------------------------- decisions
    def decide(self, space, scores: np.ndarray | None = None) -> dict:
        """The choice of ``space`` that keeps the best-scored variables fitting the target.

        Args:
            space: a :class:`~supernet.search.choices.units.UnitChoiceSpace`.
            scores: keep score per variable (default: the relaxation's keep
                probabilities, :meth:`UnitChoiceSpace.keep_scores`).
        """
        if scores is None:
            scores = space.keep_scores(gate_probabilities(space.module))
        return space.choice(self._fit(space, np.asarray(scores, dtype=np.float64)))

    def project(self, space, drop: np.ndarray, gen: np.random.Generator) -> np.ndarray:
        """``drop`` (drop flag per variable) moved onto the budget: what it keeps ranks
        first, in random order, then what it drops; the ranking is fitted to the target
        (SPOS' samples, mutations and crossovers under a budget)."""
        scores = (~drop).astype(np.float64) + 0.5 * gen.random(space.size)
        return self._fit(space, scores)

    def _fit(self, space, scores: np.ndarray) -> np.ndarray:
        n = space.size
        if len(scores) != n:
            raise SearchError(f"{self.graph.name}: {len(scores)} keep scores for {n} "
                              "decision variables")
        forced = np.zeros(n, bool)
        for _, var in space.guards:  # every node keeps its best-scored variable
            forced[var[int(np.argmax(scores[var]))]] = True
        order = np.argsort(-np.where(forced, np.inf, scores), kind="stable")

        def drop_after(k):
            vec = np.ones(n, bool)
            vec[order[:k]] = False
            return vec

        lo, hi = int(forced.sum()), n  # cost(drop_after(lo)) <= target is the premise
        if self._vector_cost(space, drop_after(hi)) <= self.target:
            return drop_after(hi)
        while hi - lo > 1:  # the longest prefix that fits: cost grows with the prefix
            mid = (lo + hi) // 2
            if self._vector_cost(space, drop_after(mid)) <= self.target:
                lo = mid
            else:
                hi = mid
        vec = drop_after(lo)
        cost = self._vector_cost(space, vec)
        # later variables that bring the cost closer (a cheap one past an expensive one),
        # within the tolerance above the target at most; a bounded pass in rank order
        tol = self.budget.tolerance * self.target
        for tried, var in enumerate(order[lo + 1:]):
            if abs(self.target - cost) <= 0.25 * tol or tried >= 512:
                break
            vec[var] = False
            c = self._vector_cost(space, vec)
            if c <= self.target + 0.5 * tol and abs(c - self.target) < abs(cost - self.target):
                cost = c
            else:
                vec[var] = True
        return vec

    def uniform_sparsity(self, edges: list) -> float:
        """The sparsity ``s`` at which every block of ``edges`` keeping
        ``n - round(s * n)`` of its ``n`` connections costs the target (or just below it):
        the final sparsity of a layer-wise magnitude pruning that meets the budget."""
        r = self.report()
        keys = [f"{u}->{v}" for u, v in edges]
        counts = {k: self.graph.edge(u, v)["mask"].nnz for k, (u, v) in zip(keys, edges)}

        def cost(s):
            conns = {k: torch.full((n,), (n - round(s * n)) / n if n else 1.0)
                     for k, n in counts.items()}
            return float(r.expected(None, conns, field=self.field))

        lo, hi = 0.0, 1.0
        if cost(lo) <= self.target:
            return 0.0
        for _ in range(40):
            mid = 0.5 * (lo + hi)
            if cost(mid) <= self.target:
                hi = mid
            else:
                lo = mid
        return hi

    def _minimum(self, module) -> float:
        if self.gated and module is not None:
            space = UnitChoiceSpace(self.graph, module)
            space.budget = None
            vec = np.ones(space.size, bool)
            for _, var in space.guards:
                vec[var[0]] = False
            return self._vector_cost(space, vec)
        r = self.report()
        conns = {f"{u}->{v}": torch.zeros(e["mask"].nnz) for u, v, e in
                 self.graph.nx.edges(data=True) if e["kind"] != "identity" and e["mask"].nnz}
        return float(r.expected(None, conns, field=self.field))

    def __repr__(self) -> str:
        return (f"CostModel({self.budget.metric}: target {self.target:.6g} of full "
                f"{self.full:.6g}, minimum {self.minimum:.6g})")


def _work(report, graph) -> dict:
    """The work of each part that its latency is taken to scale with: MACs of a block
    (connections for an identity), units of a node or of a pooled source."""
    out = {}
    for (u, v), c in report.edges.items():
        out[(u, v)] = float(c.macs or graph.edge(u, v)["mask"].nnz)
    for n in report.nodes:
        out[n] = float(len(graph.node(n)["units"]))
    for key in report.pools:
        out[key] = float(len(graph.node(key[0])["units"]))
    return out

