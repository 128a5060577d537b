"""SPOS: uniform single-path sampling.

Guo et al., "Single Path One-Shot Neural Architecture Search with Uniform Sampling"
(ECCV 2020). Each training step runs one architecture drawn uniformly from the space:
under the graph's discretization constraints (``graph.meta["constraints"]``), each node
keeps a uniform random subset of at most ``max_inputs`` gated in-edges and each kept edge one
uniform non-excluded candidate; without constraints, one uniform candidate per gate. No
architecture parameter is trained; the architecture is found afterwards by evolutionary
search over the trained super-network (:mod:`supernet.search.evolution`).
"""

from __future__ import annotations

import random
import weakref

from supernet.errors import SearchError
from supernet.search.choices.base import choice_space
from supernet.search.relaxations.base import SearchRelaxation

__all__ = ["UniformPath"]


class UniformPath(SearchRelaxation):
    """Uniform sampling of one path per forward pass.

    The path is :meth:`~supernet.search.choices.base.ChoiceSpace.sample` of the choice space
    of the graph's level: at the channel and neuron levels it keeps or drops every unit group
    and connection with probability one half
    (:class:`~supernet.search.choices.units.UnitChoiceSpace`).

    Attributes:
        fixed: a choice of that space to run instead of sampling, e.g. the best one found;
            ``None`` samples.
    """

    ties_units = True  # a path decides every tied group once (no TiedGates wrapper)

    def __init__(self, seed: int | None = None):
        super().__init__()
        self.space = None
        self.fixed = None
        self.rng = random.Random(seed)

    def attach(self, module):
        self.space = choice_space(module.graph, module)
        self._module = weakref.ref(module)  # not a submodule: the module owns us

    def resync(self, module):
        # Rebuilt at the next forward: in the middle of a discretization the space may be
        # momentarily inconsistent (a node between two of its edits).
        self.space = None
        self._module = weakref.ref(module)

    def forward(self, arch):
        if self.space is None:
            module = self._module() if getattr(self, "_module", None) is not None else None
            if module is None:
                raise SearchError(
                    "UniformPath is not attached; use use_relaxation(module, relaxation)")
            self.attach(module)
        choice = self.fixed if self.fixed is not None else self.space.sample(self.rng)
        ref = next(iter(arch.values()))
        return self.space.decisions(choice, ref)

    def decide(self, key, alpha):  # pragma: no cover - forward is overridden
        raise NotImplementedError("UniformPath decides for the whole space at once")

    def get_extra_state(self):
        return {"rng": self.rng.getstate()}

    def set_extra_state(self, state):
        if "rng" in state:
            self.rng.setstate(_tuplify(state["rng"]))


def _tuplify(x):
    return tuple(_tuplify(v) for v in x) if isinstance(x, (list, tuple)) else x
