"""The library of search spaces, each built with the public graph API of :mod:`supernet`."""

from . import gnn, mobilenet, nasbench201  # noqa: F401  (registers the spaces)
from .registry import (Example, create_space, decode, encode, list_spaces, register_space,
                       space_entry, space_example)
from . import darts  # noqa: F401  (registers "darts" and "darts1d")
from . import channel_cnn, neuron_mlp  # noqa: F401  (registers the unit-level spaces)

__all__ = ["create_space", "list_spaces", "register_space", "space_entry", "space_example",
           "Example", "encode", "decode"]
