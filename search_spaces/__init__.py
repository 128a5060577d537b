"""The library of search spaces, each built with the public graph API of :mod:`supernet`."""

from search_spaces import (  # noqa: F401  (registers the spaces)  # noqa: F401  (registers the unit-level spaces)
                       channel_cnn,
                       darts,  # noqa: F401  (registers "darts" and "darts1d")
                       gnn,
                       mobilenet,
                       nasbench201,
                       neuron_mlp,
)
from supernet.spaces import (
                       Example,
                       create_space,
                       decode,
                       encode,
                       list_spaces,
                       register_space,
                       space_entry,
                       space_example,
)

__all__ = ["create_space", "list_spaces", "register_space", "space_entry", "space_example",
           "Example", "encode", "decode"]
