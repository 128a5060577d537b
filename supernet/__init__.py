"""supernet: structural learning and neural architecture search on graphs.

Architectures are networkx DAGs at three levels (layer, channel, neuron) that compile to
PyTorch modules and change only through the four neural operators: unit creation, unit
removal, connection creation (synaptogenesis) and connection removal (synaptic pruning).
"""

from supernet import moved as _moved
from supernet import ops, units
from supernet.compiler import GraphModule, compile
from supernet.errors import *  # noqa: F401,F403
from supernet.errors import __all__ as _errors_all
from supernet.graph import Graph
from supernet.io import (
    load_graph,
    load_weights,
    read_graphml,
    save_graph,
    save_weights,
    write_graphml,
)
from supernet.lint import lint
from supernet.ops import build_op, list_ops, register_op, resolve_op

_moved.install()  # old module paths import, with a warning naming the new one

__version__ = "0.1.0"

__all__ = [
    "Graph",
    "compile",
    "GraphModule",
    "lint",
    "register_op",
    "resolve_op",
    "build_op",
    "list_ops",
    "ops",
    "units",
    "save_graph",
    "load_graph",
    "write_graphml",
    "read_graphml",
    "save_weights",
    "load_weights",
    *_errors_all,
]
