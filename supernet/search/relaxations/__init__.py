"""Relaxations of the search families, each as its paper defines it.

========================= ====================================================
:class:`~supernet.gates.Softmax`     DARTS: softmax mixture, every op runs
:class:`Sigmoid`          FairDARTS: independent sigmoids + zero-one loss
:class:`PartialChannels`  PC-DARTS: 1/K of the channels, edge normalization
:class:`GumbelSoftmax`    SNAS: soft Gumbel-softmax samples, annealed
:class:`GumbelMax`        GDAS: one sampled op per edge, straight-through
:class:`BinaryGates`      ProxylessNAS: two-path binary gates, cost loss
:class:`UniformPath`      SPOS: one uniform path per step
:class:`TiedGates`        one decision per group of tied units (unit levels)
========================= ====================================================
"""

from supernet.gates import Softmax
from supernet.search.relaxations.base import (
                   PHASES,
                   SearchRelaxation,
                   argmax_decision,
                   gate_probabilities,
                   set_phase,
                   use_relaxation,
)
from supernet.search.relaxations.gumbel import GumbelMax, GumbelSoftmax, gumbel_noise
from supernet.search.relaxations.partial import (
                   PartialChannels,
                   PartialDecision,
                   channel_shuffle,
                   mark_partial,
)
from supernet.search.relaxations.proxyless import BinaryGates, TwoPathDecision, binary_gate_grad
from supernet.search.relaxations.sigmoid import Sigmoid, zero_one_loss
from supernet.search.relaxations.tied import TiedGates, tie_relaxation, tied_unit_gates
from supernet.search.relaxations.uniform import UniformPath

__all__ = [
    "PHASES", "SearchRelaxation", "Softmax", "Sigmoid", "PartialChannels", "GumbelSoftmax",
    "GumbelMax", "BinaryGates", "UniformPath", "PartialDecision", "TwoPathDecision",
    "argmax_decision", "binary_gate_grad", "channel_shuffle", "gate_probabilities",
    "gumbel_noise", "mark_partial", "set_phase", "use_relaxation", "zero_one_loss",
    "TiedGates", "tie_relaxation", "tied_unit_gates",
]
