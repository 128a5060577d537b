"""Stabilizers of differentiable architecture search, each as its paper defines it.

A stabilizer is a part of a strategy (``stabilizers=[...]``) that composes with its
relaxation and policies (DARTS, PC-DARTS, second order, the progressive ones); the hooks
the loop calls are those of :mod:`supernet.search.stabilizers.base`.

======================== ===========================================================
name                     method
======================== ===========================================================
``beta_decay``           :class:`BetaDecay`: β-DARTS (Ye et al., CVPR 2022), the
                         Beta-Decay regularization of the architecture parameters,
                         λ linear in the epochs (0 -> 50)
``darts_minus``          :class:`DartsMinus`: DARTS- (Chu et al., ICLR 2021), an
                         auxiliary skip connection on each edge, its coefficient β
                         decayed linearly from 1 to 0
``sdarts``               :class:`SDARTS`: SDARTS (Chen & Hsieh, ICML 2020), the
                         weight step's mixing weights perturbed at random
                         (``mode: random``, SDARTS-RS) or by a PGD attack
                         (``mode: adversarial``, SDARTS-ADV), ε 0.03 -> 0.3
``lambda``               :class:`~supernet.search.stabilizers.lambda_.LambdaDARTS`:
                         Λ-DARTS (Movahedi et al., ICLR 2023), the weight gradient
                         aligned across the cells that share α, λ ramped linearly
======================== ===========================================================

DrNAS (Dirichlet samples of the mixing weights) changes the relaxation rather than adding
a term: it is the relaxation ``dirichlet``
(:class:`~supernet.search.relaxations.dirichlet.DirichletGates`) and the strategy ``drnas``.

Each is registered in :data:`STABILIZERS` under its name, so a strategy composed in a
config names it: ``strategy: {name: darts, stabilizers: [{name: beta_decay}]}``.
"""

from supernet.registry import Registry
from supernet.search.stabilizers.base import (
    HOOKS,
    STABILIZER_PHASES,
    Stabilizer,
    StabilizerSet,
    with_weights,
)
from supernet.search.stabilizers.beta import BetaDecay, beta_decay_loss
from supernet.search.stabilizers.darts_minus import DartsMinus
from supernet.search.stabilizers.sdarts import SDARTS, clip_rows

__all__ = ["STABILIZERS", "register_stabilizer", "Stabilizer", "StabilizerSet",
           "STABILIZER_PHASES", "HOOKS", "with_weights", "BetaDecay", "beta_decay_loss",
           "DartsMinus", "SDARTS", "clip_rows"]

#: Stabilizers by name: ``STABILIZERS.resolve(name)(**options)`` builds one.
STABILIZERS: Registry = Registry(
    "stabilizer", hint="register one with supernet.search.stabilizers.register_stabilizer")


def register_stabilizer(name: str, override: bool = False):
    """Decorator registering ``factory(**options) -> Stabilizer`` (a class) as ``name``."""
    return STABILIZERS.register(name, override=override)


for _name, _cls in (("beta_decay", BetaDecay), ("darts_minus", DartsMinus), ("sdarts", SDARTS)):
    STABILIZERS.register(_name, _cls)
del _name, _cls
