"""Creation policies: what a search adds while it runs.

* :mod:`~supernet.search.creation.layer` -- :class:`GrowOps`, :class:`GrowNode`
  (function-preserving growth of candidates and nodes)
* :mod:`~supernet.search.creation.rigl` -- :class:`RigL` (drop and regrow connections)
* :mod:`~supernet.search.creation.units` -- :class:`GrowUnits` (Net2WiderNet splits)
"""

from supernet.search.creation.layer import GrowNode, GrowOps, is_parametric
from supernet.search.creation.rigl import RigL
from supernet.search.creation.units import GrowUnits, unit_scores

__all__ = ["GrowOps", "GrowNode", "is_parametric", "RigL", "GrowUnits", "unit_scores"]
