"""The library of search spaces, each built with the public graph API of :mod:`supernet` and
registered into its space registry (:mod:`supernet.spaces`) when this package is imported;
installed, the package is found through the ``supernet.spaces`` entry point."""

# importing each module registers its spaces
from search_spaces import channel_cnn, darts, gnn, mobilenet, nasbench201, neuron_mlp  # noqa: F401
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
