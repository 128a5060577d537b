"""Choice spaces: the discrete architectures of a super-network, under its constraints.

* :mod:`~supernet.search.choices.layer` -- one op per gated edge, at most ``max_inputs``
  in-edges per node
* :mod:`~supernet.search.choices.units` -- keep or drop per unit and connection gate
"""

from supernet.search.choices.layer import ChoiceSpace, GatedEdge, NodeGroup, constraints_of
from supernet.search.choices.units import UnitChoiceSpace, choice_space, is_unit_level

__all__ = ["ChoiceSpace", "NodeGroup", "GatedEdge", "constraints_of", "UnitChoiceSpace",
           "choice_space", "is_unit_level"]
