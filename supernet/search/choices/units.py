"""The discrete architectures of a channel- or neuron-level super-network.

At the unit levels a gate group is a ``(n, 2)`` table of keep/drop logits, one row per unit
of a gated node or per connection of a gated edge (:func:`supernet.search.discretize.set_gated`). A
*choice* maps every gate key to ``n`` integers, ``0`` (keep) or ``1`` (drop), the format of
:func:`supernet.search.discretize.decision_edits`. :class:`UnitChoiceSpace`, the
:class:`~supernet.search.choices.base.ChoiceSpace` of both levels, gives what the searches
need, as :class:`~supernet.search.choices.layer.LayerChoiceSpace` does at the layer level:

* the decision variables: one per dependency group of gated units (units that can only be
  removed together, :func:`supernet.units.dependency_groups`, decide together; a group is
  dropped when any gated member is) and one per gated connection;
* the relaxation's decision (:meth:`UnitChoiceSpace.decide`): its ``choice(module)`` when it
  decides for the whole module (tied relaxations), else its ``discrete(alpha)`` per group;
* uniform samples, mutations and crossovers (SPOS and its evolutionary search);
* decisions running a choice (``module(x, gates=...)``) and the edits making it permanent:
  :class:`~supernet.edits.RemoveConnections`, :class:`~supernet.edits.RemoveUnits`, then
  :class:`~supernet.edits.UngateConnections` / :class:`~supernet.edits.UngateUnits`.

Every choice keeps at least one unit of every node: when all would go, the one with the
highest keep probability (or a random one, for samples) stays, as
:func:`supernet.search.discretize.decision_edits` does.

Under a budget (a search sets its :class:`~supernet.search.budget.CostModel` as
``module.budget``; :attr:`UnitChoiceSpace.budget`) the decision ranks the variables by their
keep probabilities and keeps what fits the target (:meth:`CostModel.decide
<supernet.search.budget.CostModel.decide>`), and samples, mutations and crossovers are
moved onto the target (:meth:`CostModel.project <supernet.search.budget.CostModel.project>`).

Examples:
    >>> import torch
    >>> from supernet import compile
    >>> from supernet.units import mlp
    >>> from supernet.search.discretize.units import set_gated
    >>> g = mlp([4, 3, 2], seed=0); set_gated(g, units=["h1"]); net = compile(g)
    >>> with torch.no_grad(): _ = net.arch["h1"].copy_(torch.tensor([[0., 1.], [0., 2.], [.5, 1.]]))
    >>> space = UnitChoiceSpace(g, net)
    >>> space.decide(net)["h1"].tolist()  # every unit says drop: the likeliest to stay stays
    [1, 1, 0]
    >>> [type(e).__name__ for e in space.edits(space.decide(net))]
    ['RemoveUnits', 'UngateUnits']
"""

from __future__ import annotations

import random

import numpy as np
import torch

from supernet.compiler.standalone import gates_left
from supernet.edits.units import RemoveConnections, RemoveUnits, UngateConnections, UngateUnits
from supernet.errors import SearchError
from supernet.gates import Decision, gate_probabilities
from supernet.search.choices.base import (
                                          ChoiceSpace,
                                          choice_space,
                                          is_unit_level,
                                          register_choice_space,
)
from supernet.units.build import UNIT_LEVELS, connection_ids
from supernet.units.deps import Ties

# choice_space and is_unit_level live in supernet.search.choices.base; importable from here
__all__ = ["UnitChoiceSpace", "choice_space", "is_unit_level"]


def _generator(rng) -> np.random.Generator:
    rng = rng if rng is not None else random
    return np.random.default_rng(rng.getrandbits(63))


@register_choice_space(*UNIT_LEVELS)
class UnitChoiceSpace(ChoiceSpace):
    """The keep/drop choices of the gates of ``module`` (compiled from ``graph``).

    Attributes:
        keys: gate keys, unit groups first, in ``module.arch`` order.
        size: number of decision variables.
        index: per gate key, the variable of each of its rows.
        module: the module the space was taken from.
        budget: the module's :class:`~supernet.search.budget.CostModel` (``module.budget``),
            or ``None``: decisions and samples then meet its target.
    """

    def __init__(self, graph, module):
        super().__init__(graph, module)
        self.module = module
        self.budget = getattr(module, "budget", None)
        groups = module.gate_groups()
        ties = Ties(graph)
        self.where = {k: w for k, (_, w) in groups.items()}
        unit_keys = [k for k, (what, _) in groups.items() if what == "units"]
        conn_keys = [k for k, (what, _) in groups.items() if what == "connections"]
        self.keys = unit_keys + conn_keys
        self.unit_keys, self.conn_keys = unit_keys, conn_keys
        labels = [ties.labels[ties.offsets[self.where[k]]
                              + np.arange(len(graph.nx.nodes[self.where[k]]["units"]))]
                  for k in unit_keys]
        lab = np.concatenate(labels) if labels else np.zeros(0, np.int64)
        uniq, inv = np.unique(lab, return_inverse=True)
        self.index: dict[str, np.ndarray] = {}
        start = 0
        for k, part in zip(unit_keys, labels):
            self.index[k] = inv[start:start + len(part)].astype(np.int64)
            start += len(part)
        self.unit_vars = len(uniq)
        off = self.unit_vars
        for k in conn_keys:
            n = graph.edge(*self.where[k])["mask"].nnz
            self.index[k] = off + np.arange(n, dtype=np.int64)
            off += n
        self.size = off
        # guards: per computed node whose every unit is gated (itself or through a tie), the
        # variables whose drop would empty it
        self.guards: list[tuple[str, np.ndarray]] = []
        for n, d in graph.nx.nodes(data=True):
            if d["kind"] != "units" or not len(uniq):
                continue
            labs = ties.labels[ties.offsets[n] + np.arange(len(d["units"]))]
            pos = np.searchsorted(uniq, labs).clip(max=len(uniq) - 1)
            if (uniq[pos] == labs).all():
                self.guards.append((n, np.unique(pos)))

    # ---------------------------------------------------------------- vectors
    def vector(self, choice: dict) -> np.ndarray:
        """The drop flag of every variable (a tied group drops when any member does)."""
        vec = np.zeros(self.size, bool)
        for key, pick in choice.items():
            if key not in self.index:
                raise SearchError(f"{self.graph.name}: no gate group {key!r}; groups: "
                                  f"{self.keys}")
            pick = torch.as_tensor(pick).detach().cpu().numpy().reshape(-1)
            if len(pick) != len(self.index[key]):
                raise SearchError(f"{self.graph.name}: gate group {key!r} has "
                                  f"{len(self.index[key])} rows, the choice gives {len(pick)}")
            vec[self.index[key][pick == 1]] = True
        return vec

    def choice(self, vec: np.ndarray) -> dict:
        """The choice of drop flags ``vec``: gate key -> ``0``/``1`` per row."""
        return {k: vec[self.index[k]].astype(np.int64) for k in self.keys}

    def keep_scores(self, probs: dict) -> np.ndarray:
        """Keep probability of every variable (``probs[key][:, 0]``; a tied group's is its
        members' smallest, as one drop removes the group)."""
        out = np.ones(self.size)
        for k in self.keys:
            if k in probs and len(self.index[k]):
                p = probs[k].detach().float().cpu().numpy().reshape(len(self.index[k]), -1)
                np.minimum.at(out, self.index[k], p[:, 0])
        return out

    def repair(self, vec: np.ndarray, scores: np.ndarray | None = None,
               gen: np.random.Generator | None = None) -> np.ndarray:
        """Keep one variable of every node that would lose all its units: the highest-scored
        one, or a random one without ``scores``. Changes ``vec`` in place and returns it."""
        for _, var in self.guards:
            if vec[var].all():
                if scores is not None:
                    keep = var[int(np.argmax(scores[var]))]
                else:
                    keep = var[int((gen or np.random.default_rng(0)).integers(len(var)))]
                vec[keep] = False
        return vec

    # ---------------------------------------------------------------- decide
    def decide(self, module, choice: dict | None = None) -> dict:
        """The relaxation's decision (or ``choice``, to repair): ``choice(module)`` of a
        relaxation that decides for the whole module, else ``discrete(alpha)`` of every gate
        group (argmax without a relaxation); at least one unit per node stays. Under a
        budget (:attr:`budget`) and without ``choice``: the variables of highest keep
        probability that fit the target."""
        relax = getattr(module, "relaxation", None)
        rows = choice
        if rows is None and self.budget is not None:
            return self.budget.decide(self, self.keep_scores(gate_probabilities(module)))
        if rows is None:
            whole = getattr(relax, "choice", None)
            if whole is not None:
                rows = whole(module)
            else:
                with torch.no_grad():
                    rows = {k: (relax.discrete(module.arch[k]) if relax is not None
                                else module.arch[k].argmax(-1)) for k in self.keys}
        vec = self.vector(rows)
        return self.choice(self.repair(vec, self.keep_scores(gate_probabilities(module))))

    def best(self, probs: dict) -> dict:
        """The choice dropping what has keep probability below one half (``probs``: gate
        key -> ``(n, 2)``, e.g. :func:`~supernet.search.relaxations.gate_probabilities`)."""
        scores = self.keep_scores(probs)
        return self.choice(self.repair(scores < 0.5, scores))

    # ---------------------------------------------------------------- sample (SPOS)
    def sample(self, rng: random.Random | None = None) -> dict:
        """A uniform choice: every variable kept or dropped with probability one half."""
        gen = _generator(rng)
        return self.choice(self._fit(self.repair(gen.random(self.size) < 0.5, gen=gen), gen))

    def _fit(self, vec: np.ndarray, gen: np.random.Generator) -> np.ndarray:
        """``vec`` moved onto the budget's target (as it is without a budget)."""
        return vec if self.budget is None else self.budget.project(self, vec, gen)

    def mutate(self, choice: dict, prob: float, rng: random.Random) -> dict:
        """Resample each variable with probability ``prob`` (SPOS mutation)."""
        gen = _generator(rng)
        vec = self.vector(choice)
        hit = gen.random(self.size) < prob
        vec[hit] = gen.random(int(hit.sum())) < 0.5
        return self.choice(self._fit(self.repair(vec, gen=gen), gen))

    def crossover(self, a: dict, b: dict, rng: random.Random) -> dict:
        """Each variable from one parent or the other, uniformly."""
        gen = _generator(rng)
        take = gen.random(self.size) < 0.5
        vec = np.where(take, self.vector(a), self.vector(b))
        return self.choice(self._fit(self.repair(vec, gen=gen), gen))

    def encode(self, choice: dict) -> bytes:
        """A hashable form of ``choice`` (to skip duplicates)."""
        return np.packbits(self.vector(choice)).tobytes()

    # ---------------------------------------------------------------- use
    def decisions(self, choice: dict, like: torch.Tensor | None = None) -> dict[str, Decision]:
        """Decisions running exactly ``choice``: keep weight 1 or 0 per row."""
        dtype = like.dtype if like is not None else torch.float32
        device = like.device if like is not None else "cpu"
        out = {}
        for k in self.keys:
            drop = torch.as_tensor(np.asarray(choice[k]).reshape(-1), device=device).to(dtype)
            out[k] = Decision(torch.stack([1.0 - drop, drop], -1))
        return out

    def edits(self, choice: dict, final: bool = True) -> list:
        """The edits applying ``choice``: connection removals, one unit removal, then (with
        ``final``) the gates of every gated node and edge fixed for good."""
        vec = self.vector(choice)
        g = self.graph
        out = []
        for k in self.conn_keys:
            rows = np.nonzero(vec[self.index[k]])[0]
            if len(rows):
                u, v = self.where[k]
                dst, src, tp = connection_ids(g, u, v, rows)
                out.append(RemoveConnections(u, v, dst.tolist(), src.tolist(),
                                             None if tp is None else tp.tolist()))
        units = {}
        for k in self.unit_keys:
            rows = np.nonzero(vec[self.index[k]])[0]
            if len(rows):
                n = self.where[k]
                units[n] = g.nx.nodes[n]["units"][rows].tolist()
        if units:
            out.append(RemoveUnits(units))
        if final:
            edges = [[u, v] for u, v, e in g.nx.edges(data=True) if e.get("gated")]
            nodes = [n for n, d in g.nx.nodes(data=True)
                     if d.get("gated") and d["kind"] == "units"]
            if edges:
                out.append(UngateConnections(edges))
            if nodes:
                out.append(UngateUnits(nodes))
        return out

    def check(self, module) -> None:
        """Raise :class:`SearchError` if a gated node or edge, or a gate of ``module``, is
        left after discretization."""
        left = gates_left(self.graph)
        left += [k for k in module.arch.keys() if k not in left]
        if left:
            raise SearchError(f"{self.graph.name}: gates {left} are left after discretization")

    def count(self, choice: dict) -> dict[str, int]:
        """Units and connections ``choice`` removes (a tied group counts every unit)."""
        vec = self.vector(choice)
        conns = sum(int(vec[self.index[k]].sum()) for k in self.conn_keys)
        return {"unit_groups": int(vec[:self.unit_vars].sum()), "connections": conns}
