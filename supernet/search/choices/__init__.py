"""Choice spaces: the discrete architectures of a super-network, under its constraints.

* :mod:`~supernet.search.choices.base` -- the one protocol (:class:`ChoiceSpace`) and the
  registry of each level's class (:data:`CHOICE_SPACES`, :func:`choice_space`)
* :mod:`~supernet.search.choices.layer` -- one op per gated edge, at most ``max_inputs``
  in-edges per node
* :mod:`~supernet.search.choices.units` -- keep or drop per unit and connection gate
"""

from supernet.search.choices.base import (
                                          CHOICE_SPACES,
                                          ChoiceSpace,
                                          choice_space,
                                          choice_space_class,
                                          is_unit_level,
                                          register_choice_space,
)
from supernet.search.choices.layer import (
                                           GatedEdge,
                                           LayerChoiceSpace,
                                           NodeGroup,
                                           constraints_of,
                                           dangling_nodes,
)
from supernet.search.choices.units import UnitChoiceSpace

__all__ = ["ChoiceSpace", "CHOICE_SPACES", "register_choice_space", "choice_space",
           "choice_space_class", "is_unit_level", "LayerChoiceSpace", "NodeGroup", "GatedEdge",
           "constraints_of", "dangling_nodes", "UnitChoiceSpace"]
