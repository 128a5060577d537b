"""The attribute schema of supernet graphs.

A :class:`supernet.Graph` wraps a ``networkx.DiGraph``. Everything it stores is plain,
JSON-serializable data (or a ``scipy.sparse`` matrix for unit-level connectivity), so that a
graph saves to node-link JSON or GraphML and loads back exactly.

Graph attributes (``graph.nx.graph``), all levels:

============ ===================================================================
``level``    ``"layer"``, ``"channel"`` or ``"neuron"``
``name``     a name used in messages and file names
``inputs``   ordered list of input node names
``outputs``  ordered list of output node names
``meta``     free-form dict (space name, constraints, genotype, ...)
============ ===================================================================

Layer level: a node is a tensor, an edge carries candidate operations.

Node attributes:

============== =================================================================
``kind``       ``"input"``, ``"merge"`` (default) or ``"call"``
``channels``   channel (feature) count of the tensor; ``int`` or ``"$symbol"``
``shape``      inputs only, optional: per-sample shape, e.g. ``[3, 32, 32]``
``merge``      merge nodes: ``"sum"`` or ``"concat"`` (along dim 1) of the in-edges
``op``         optional op name applied after the merge, ``op_args`` its kwargs
``train_only`` if true, the node is skipped in eval mode and its output is ``None``
``cell``       call nodes: name of the cell template (``graph.cells[cell]``)
``args``       call nodes: predecessor names in the order of the template's inputs
``bind``       call nodes: values of the template's ``"$symbol"`` attributes
``weights``    call nodes: weight-sharing key (calls with the same key share weights)
============== =================================================================

Edge attributes:

============ ====================================================================
``ops``      list of candidate op names, resolved in :mod:`supernet.ops`; more than one
             makes the edge a *gate* that a search relaxes and discretizes
``args``     kwargs passed to every op builder (``stride``, ``affine``, ``dim``, ...)
``port``     order among the in-edges of the destination (concat order)
``channels`` optional output channels of the edge (default: the destination's for a
             ``sum``, the source's for a ``concat``)
``partial``  optional int ``K`` (PC-DARTS partial channels): while the edge is a gate, its
             candidate ops are built for ``C/K`` channels and the relaxation feeds them
             ``1/K`` of the input (the rest bypasses them); ignored once the edge has a
             single op. Needs equal input and output widths divisible by ``K``
============ ====================================================================

String values of the form ``"$name"`` in a cell template are symbols, replaced by the
``bind`` dict of the call node that instantiates it.

Channel and neuron levels: a node is a *group of units* (the channels of a conv layer, the
neurons of a dense layer) and an edge is a *block of connections* between two groups.

Node attributes:

============ =================================================================
``kind``     ``"input"`` or ``"units"``
``units``    list of stable integer unit ids (their order is the tensor order)
``next_id``  the id the next created unit gets
``bias``     whether units have a bias
``act``      activation applied to the units (``"relu"``, ``"identity"``, ...)
``norm``     per-unit normalization (``"batchnorm"`` or ``None``)
``spatial``  channel level: per-sample spatial shape of the group's feature maps
============ =================================================================

Edge attributes:

============ =================================================================
``kind``     ``"dense"`` (scalar weights / full kernels) or ``"conv"``
``mask``     ``scipy.sparse`` boolean matrix of shape ``(len(dst units), len(src units))``
             at channel level (one entry per k×k kernel), or of shape
             ``(len(dst units), len(src units) * k * k)`` at neuron level
``kernel``   kernel size (conv), ``stride``, ``padding``, ``groups``
============ =================================================================
"""

from __future__ import annotations

__all__ = ["LEVELS", "MERGES", "NODE_KINDS", "SYMBOL_PREFIX", "is_symbol", "bind_value"]

LEVELS = ("layer", "channel", "neuron")
MERGES = ("sum", "concat")
NODE_KINDS = ("input", "merge", "call", "units")
SYMBOL_PREFIX = "$"


def is_symbol(value) -> bool:
    """True for a template symbol such as ``"$C"``."""
    return isinstance(value, str) and value.startswith(SYMBOL_PREFIX) and len(value) > 1


def bind_value(value, bind: dict, where: str = ""):
    """Replace ``"$name"`` symbols in ``value`` (recursively in lists and dicts)."""
    from .errors import GraphError

    if is_symbol(value):
        key = value[1:]
        if key not in bind:
            raise GraphError(
                f"{where}: symbol {value!r} is not bound; pass bind={{{key!r}: ...}} "
                f"to the call node (bound: {sorted(bind)})"
            )
        return bind[key]
    if isinstance(value, list):
        return [bind_value(v, bind, where) for v in value]
    if isinstance(value, dict):
        return {k: bind_value(v, bind, where) for k, v in value.items()}
    return value
