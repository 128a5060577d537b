"""The library of search spaces, each built with the public graph API of :mod:`supernet`."""

from . import gnn, mobilenet, nasbench201  # noqa: F401  (registers the spaces)
from .registry import create_space, decode, encode, list_spaces, register_space, space_entry
from . import darts  # noqa: F401  (registers "darts" and "darts1d")

__all__ = ["create_space", "list_spaces", "register_space", "space_entry", "encode", "decode"]
