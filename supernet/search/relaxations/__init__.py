"""Relaxations of the search families, each as its paper defines it.

========================= ====================================================
:class:`~supernet.gates.Softmax`     DARTS: softmax mixture, every op runs
:class:`Sigmoid`          FairDARTS: independent sigmoids + zero-one loss
:class:`PartialChannels`  PC-DARTS: 1/K of the channels, edge normalization
:class:`SNASGumbel`       SNAS: soft Gumbel-softmax samples, the authors' schedule, resources
:class:`GumbelSoftmax`    soft Gumbel-softmax samples, exponential annealing (SNAS simplified)
:class:`GumbelMax`        GDAS: one sampled op per edge, straight-through
:class:`GumbelMaxV1`      GDAS without the unsampled scalars (the authors' v1)
:class:`BinaryGates`      ProxylessNAS: two-path binary gates, cost loss
:class:`UniformPath`      SPOS: one uniform path per step
:class:`TiedGates`        one decision per group of tied units (unit levels)
:class:`PartialUnits`     PC-DARTS at the unit levels: 1/K of the rows relaxed
:class:`BinaryUnitGates`  ProxylessNAS at the unit levels: keep/drop binary gates
:class:`DirichletGates`   DrNAS: Dirichlet samples, concentration ELU(α)+1, KL to the prior
========================= ====================================================

Each is registered in :data:`RELAXATIONS` under a short name (``softmax``, ``sigmoid``,
``partial_channels``, ``gumbel_softmax``, ``snas_gumbel``, ``gumbel_max``, ``gumbel_max_v1``,
``binary_gates``,
``uniform_path``, ``tied_gates``, ``dirichlet``; P-DARTS adds ``skip_dropout``), so that a strategy
composed in a config names it: ``relaxation: {name: gumbel_max, tau_max: 10.0}``.
"""

from supernet.gates import Softmax
from supernet.registry import Registry
from supernet.search.relaxations.base import (
                   PHASES,
                   SearchRelaxation,
                   argmax_decision,
                   gate_probabilities,
                   set_phase,
                   use_relaxation,
)
from supernet.search.relaxations.dirichlet import DirichletGates
from supernet.search.relaxations.gumbel import (
    GumbelMax,
    GumbelMaxV1,
    GumbelSoftmax,
    SNASGumbel,
    gumbel_noise,
)
from supernet.search.relaxations.partial import (
                   PartialChannels,
                   PartialDecision,
                   PartialUnits,
                   channel_shuffle,
                   mark_partial,
)
from supernet.search.relaxations.proxyless import (
                   BinaryGates,
                   BinaryUnitGates,
                   TwoPathDecision,
                   binary_gate_grad,
)
from supernet.search.relaxations.sigmoid import Sigmoid, zero_one_loss
from supernet.search.relaxations.tied import TiedGates, tie_relaxation, tied_unit_gates
from supernet.search.relaxations.uniform import UniformPath

__all__ = [
    "PHASES", "SearchRelaxation", "Softmax", "Sigmoid", "PartialChannels", "GumbelSoftmax",
    "SNASGumbel", "GumbelMax", "GumbelMaxV1", "BinaryGates", "UniformPath", "PartialDecision",
    "TwoPathDecision",
    "argmax_decision", "binary_gate_grad", "channel_shuffle", "gate_probabilities",
    "gumbel_noise", "mark_partial", "set_phase", "use_relaxation", "zero_one_loss",
    "TiedGates", "tie_relaxation", "tied_unit_gates", "RELAXATIONS", "register_relaxation",
    "PartialUnits", "BinaryUnitGates", "DirichletGates",
]

#: Relaxations by name: ``RELAXATIONS.resolve(name)(**options)`` builds one.
RELAXATIONS: Registry = Registry(
    "relaxation", hint="register one with supernet.search.relaxations.register_relaxation")


def register_relaxation(name: str, override: bool = False):
    """Decorator registering ``factory(**options) -> Relaxation`` (a class) as ``name``."""
    return RELAXATIONS.register(name, override=override)


for _name, _cls in (("softmax", Softmax), ("sigmoid", Sigmoid),
                    ("partial_channels", PartialChannels), ("gumbel_softmax", GumbelSoftmax),
                    ("gumbel_max", GumbelMax), ("gumbel_max_v1", GumbelMaxV1),
                    ("snas_gumbel", SNASGumbel), ("binary_gates", BinaryGates),
                    ("uniform_path", UniformPath), ("tied_gates", TiedGates),
                    ("dirichlet", DirichletGates)):
    RELAXATIONS.register(_name, _cls)
del _name, _cls
