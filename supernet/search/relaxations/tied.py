"""Tied unit gates: units that can only be removed together take one decision.

At the channel and neuron levels some units are tied (:func:`supernet.units.dependency_groups`):
the channels of a residual stream, the inputs and outputs of a concat or a grouped conv.
Removing one removes its whole group (:class:`supernet.edits.RemoveUnits`), so a search must
decide each group once. :class:`TiedGates` wraps any relaxation: the keep/drop logits of the
gated units of one group are averaged (each member gets the same gradient), ``base`` decides
once per group (one Gumbel sample per group, not one per member), and the decision is
shared by every member. Connection gates and untied units go to ``base`` as they are.

A search wraps its relaxation with :func:`tie_relaxation` when the graph has tied gated
units (``search_spaces.channel_cnn``'s residual streams); relaxations that decide for the
whole module themselves (``ties_units = True``: :class:`TiedGates`, SPOS's
:class:`~supernet.search.relaxations.UniformPath`) are left alone.

Examples:
    >>> import torch
    >>> from supernet import Graph, compile
    >>> from supernet.units import add_group, add_input, connect
    >>> from supernet.search.discretize.units import set_gated
    >>> g = Graph("channel"); add_input(g, "x", 2)
    >>> add_group(g, "a", 3); connect(g, "x", "a", "conv", kernel=1)
    >>> add_group(g, "b", 3); connect(g, "x", "b", "conv", kernel=1)
    >>> add_group(g, "s", 3, bias=False); connect(g, "a", "s", "identity")
    >>> connect(g, "b", "s", "identity"); g.set_outputs(["s"]); set_gated(g, units=["a", "b"])
    >>> net = compile(g); relax = tie_relaxation(net, Softmax()); relax
    TiedGates(
      (base): Softmax()
    )
    >>> with torch.no_grad(): _ = net.arch["a"].copy_(torch.tensor([[2., 0.]] * 3))
    >>> net.relaxation = relax; relax.attach(net)
    >>> d = net.decisions()
    >>> torch.equal(d["a"].weights, d["b"].weights)  # one decision for the tied channels
    True
"""

from __future__ import annotations

import types
import weakref

import numpy as np
import torch

from supernet.errors import SearchError
from supernet.gates import Decision, Softmax
from supernet.search.relaxations.base import SearchRelaxation
from supernet.units.deps import Ties

__all__ = ["TiedGates", "tie_relaxation", "tied_unit_gates"]

_TIED = "\x00tied"  # the key of the per-group logits handed to the base relaxation


def tied_unit_gates(module) -> tuple[list[str], np.ndarray, int] | None:
    """``(unit gate keys, group index of every row, number of groups)`` of a unit module's
    gated units (rows in key order), or ``None`` when no two gated units are tied."""
    groups = getattr(module, "gate_groups", None)
    if groups is None:
        return None

    graph = module.graph
    keys, labels = [], []
    ties = Ties(graph)
    for key, (what, where) in groups().items():
        if what != "units":
            continue
        n = len(graph.nx.nodes[where]["units"])
        keys.append(key)
        labels.append(ties.labels[ties.offsets[where] + np.arange(n)])
    if not keys:
        return None
    lab = np.concatenate(labels)
    uniq, index = np.unique(lab, return_inverse=True)
    if len(uniq) == len(lab):
        return None
    return keys, index.astype(np.int64), len(uniq)


def tie_relaxation(module, relaxation):
    """``relaxation``, wrapped in :class:`TiedGates` when ``module`` has tied gated units
    and the relaxation does not handle ties itself (``ties_units``)."""
    if relaxation is None or getattr(relaxation, "ties_units", False):
        return relaxation
    if tied_unit_gates(module) is None:
        return relaxation
    return TiedGates(relaxation)


class TiedGates(SearchRelaxation):
    """One decision per dependency group of gated units (see the module docstring).

    Args:
        base: the relaxation deciding (default :class:`supernet.gates.Softmax`); its hooks
            (phases, temperature schedules, losses, probabilities) are forwarded.
    """

    ties_units = True

    def __init__(self, base=None):
        super().__init__()
        self.base = base if base is not None else Softmax()
        self._tie_cache = None
        self._module = None

    # ---------------------------------------------------------------- structure
    def attach(self, module):
        self._module = weakref.ref(module)
        self._tie_cache = None
        self.base.attach(module)

    def resync(self, module):
        self._module = weakref.ref(module)
        self._tie_cache = None
        fn = getattr(self.base, "resync", None)
        if fn is not None:
            fn(module)

    def _ties(self):
        if self._tie_cache is None:
            module = self._module() if self._module is not None else None
            if module is None:
                raise SearchError("TiedGates is not attached to a module; set it with "
                                  "use_relaxation(module, relaxation)")
            found = tied_unit_gates(module)
            self._tie_cache = ((), None, 0) if found is None else found
        return self._tie_cache

    def tied_logits(self, arch: dict) -> dict:
        """``arch`` with the rows of every tied group replaced by the group's mean logits."""
        keys, index, count = self._ties()
        if not keys or not all(k in arch for k in keys):
            return dict(arch)
        group = self._group_logits(arch, keys, index, count)
        idx = torch.from_numpy(index).to(group.device)
        rows = group.index_select(0, idx)
        out, start = dict(arch), 0
        for k in keys:
            n = arch[k].shape[0]
            out[k] = rows[start:start + n]
            start += n
        return out

    @staticmethod
    def _group_logits(arch, keys, index, count):
        alpha = torch.cat([arch[k] for k in keys])
        idx = torch.from_numpy(index).to(alpha.device)
        sums = alpha.new_zeros(count, alpha.shape[1]).index_add(0, idx, alpha)
        sizes = torch.bincount(idx, minlength=count).to(alpha.dtype).clamp_min(1)
        return sums / sizes[:, None]

    # ---------------------------------------------------------------- decisions
    def forward(self, arch: dict) -> dict[str, Decision]:
        keys, index, count = self._ties()
        if not keys or not all(k in arch for k in keys):
            return self.base(arch)
        rest = {k: a for k, a in arch.items() if k not in set(keys)}
        decided = self.base({_TIED: self._group_logits(arch, keys, index, count), **rest})
        d = decided.pop(_TIED)
        out, start = dict(decided), 0
        for k in keys:
            n = arch[k].shape[0]
            rows = index[start:start + n]
            start += n
            w = None
            if d.weights is not None:
                w = d.weights.index_select(0, torch.from_numpy(rows).to(d.weights.device))
            active = None if d.active is None else [d.active[int(j)] for j in rows]
            out[k] = type(d)(w, active)  # the base's own kind (GDAS: straight-through)
        return out

    def decide(self, key, alpha):
        return self.base.decide(key, alpha)

    def discrete(self, alpha):
        return self.base.discrete(alpha)

    def choice(self, module) -> dict:
        """Per gate group, 0 (keep) or 1 (drop) per row: one choice per tied group."""
        with torch.no_grad():
            tied = self.tied_logits({k: a.detach() for k, a in module.arch.items()})
            return {k: self.base.discrete(tied[k]) for k in module.gate_groups()}

    def probabilities(self, module) -> dict:
        """The base relaxation's candidate weights of the tied logits."""
        tied = self.tied_logits({k: a.detach() for k, a in module.arch.items()})
        fn = getattr(self.base, "probabilities", None)
        if fn is None:
            return {k: torch.softmax(a, -1) for k, a in tied.items()}
        return fn(types.SimpleNamespace(arch=tied))

    # ---------------------------------------------------------------- forwarded hooks
    def set_phase(self, phase):
        super().set_phase(phase)
        fn = getattr(self.base, "set_phase", None)
        if fn is not None:
            fn(phase)

    def on_epoch_start(self, epoch, epochs):
        fn = getattr(self.base, "on_epoch_start", None)
        if fn is not None:
            fn(epoch, epochs)

    def after_arch_step(self, module):
        fn = getattr(self.base, "after_arch_step", None)
        if fn is not None:
            fn(module)

    def loss(self, module):
        return self.base.loss(module)

    def grow(self, alpha, policy, source, share=0.5):
        return self.base.grow(alpha, policy, source, share)

    @property
    def tau(self):
        """The base relaxation's temperature (Gumbel relaxations), for the history."""
        return getattr(self.base, "tau", None)
