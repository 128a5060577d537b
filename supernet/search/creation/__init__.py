"""Creation policies: what a search adds while it runs.

* :mod:`~supernet.search.creation.layer` -- :class:`GrowOps`, :class:`GrowNode`
  (function-preserving growth of candidates and nodes)
* :mod:`~supernet.search.creation.rigl` -- :class:`RigL` (drop and regrow connections)
* :mod:`~supernet.search.creation.set` -- :class:`SET` (drop by sign, regrow at random)
* :mod:`~supernet.search.creation.units` -- :class:`GrowUnits` (Net2WiderNet splits)
* :mod:`~supernet.search.creation.deeper` -- :class:`GrowDeeper` (Net2DeeperNet: new
  identity-initialized hidden groups)
* :mod:`~supernet.search.creation.north` -- :class:`NORTH` (neurons added where the
  activations' effective dimension nears the width, chosen orthogonal to the others')
* :mod:`~supernet.search.creation.nest` -- :class:`NeST` (gradient growth of connections and
  neurons from a sparse seed, then magnitude pruning to a final size)
* :mod:`~supernet.search.creation.splitting` -- :class:`SplittingSteepestDescent` (splits
  along the minimum eigenvector of the splitting matrix, Liu et al., 2019)
* :mod:`~supernet.search.creation.firefly` -- :class:`Firefly` (optimized candidate splits
  and new units, the largest first-order loss decrease kept, Wu et al., 2020)
* :mod:`~supernet.search.creation.gradmax` -- :class:`GradMax` (zero fan-in, fan-out from the
  top singular vectors of the gradient, Evci et al., 2022)
* :mod:`~supernet.search.creation.widening` -- what these three share (schedule, target
  width, checks)

Each is registered in :data:`CREATIONS` (``grow_ops``, ``grow_node``, ``rigl``,
``set``, ``grow_units``, ``grow_deeper``, ``north``, ``nest``, ``splitting``, ``firefly``,
``gradmax``), so that a strategy composed in a config names them:
``creation: [{name: grow_ops, ops: [conv_5x5], at: 2}]``.
"""

from supernet.registry import Registry
from supernet.search.creation.deeper import GrowDeeper
from supernet.search.creation.firefly import Firefly
from supernet.search.creation.gradmax import GradMax
from supernet.search.creation.layer import GrowNode, GrowOps, is_parametric
from supernet.search.creation.nest import NeST
from supernet.search.creation.north import NORTH
from supernet.search.creation.rigl import EpochRigL, RigL
from supernet.search.creation.set import SET
from supernet.search.creation.splitting import SplittingSteepestDescent
from supernet.search.creation.units import GrowUnits, unit_scores

__all__ = ["GrowOps", "GrowNode", "is_parametric", "RigL", "EpochRigL", "SET", "GrowUnits", "unit_scores",
           "GrowDeeper", "NORTH", "NeST", "SplittingSteepestDescent", "Firefly", "GradMax",
           "CREATIONS", "register_creation"]

#: Creation policies by name: ``CREATIONS.resolve(name)(**options)`` builds one.
CREATIONS: Registry = Registry(
    "creation policy", hint="register one with supernet.search.creation.register_creation")


def register_creation(name: str, override: bool = False):
    """Decorator registering ``factory(**options) -> CreationPolicy`` as ``name``."""
    return CREATIONS.register(name, override=override)


for _name, _cls in (("grow_ops", GrowOps), ("grow_node", GrowNode), ("rigl", RigL), ("set", SET),
                    ("grow_units", GrowUnits), ("grow_deeper", GrowDeeper), ("north", NORTH),
                    ("nest", NeST), ("splitting", SplittingSteepestDescent),
                    ("firefly", Firefly), ("gradmax", GradMax)):
    CREATIONS.register(_name, _cls)
del _name, _cls
