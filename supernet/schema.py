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
``drop_path`` if true, drop-path is applied to the edge's output in training (the rate is
             the compiled module's ``drop_path_prob``); identity ops are spared
``partial``  optional int ``K`` (PC-DARTS partial channels): while the edge is a gate, its
             candidate ops are built for ``C/K`` channels and the relaxation feeds them
             ``1/K`` of the input (the rest bypasses them); ignored once the edge has a
             single op. Needs equal input and output widths divisible by ``K``
============ ====================================================================

String values of the form ``"$name"`` in a cell template are symbols, replaced by the
``bind`` dict of the call node that instantiates it.

Channel and neuron levels (:mod:`supernet.units`): a node is a *group of units* (the
channels of a conv layer, the neurons of a dense layer, or the features of an input) and an
edge is a *block of connections* between two groups, stored as one sparse boolean mask, so
that millions of synapses never become Python objects. A node computes

    ``value = gate * act(norm(sum over in-edges of edge(pool(source)) + bias))``

with every factor per unit. At channel level a connection is a whole k×k kernel between two
channels; at neuron level it is one scalar weight (for a conv edge, one tap of a kernel:
the units of a conv layer are its channels, which share their kernels over positions).
:func:`supernet.units.explicit` builds the networkx view with one node per unit and one edge
per connection, on demand.

Node attributes:

============ =================================================================
``kind``     ``"input"`` or ``"units"``
``units``    ``numpy.int64`` array of distinct unit ids; their order is the tensor order
             (position along dim 1). Ids are stable: they never change or get reused.
``next_id``  the id the next created unit gets (greater than every id in ``units``)
``width``    inputs only: width (dim 1) of the tensor the caller passes; the unit ids of
             an input are indices into it, so removing input units selects features
``bias``     units only: whether the units have a bias (default ``True``)
``act``      units only: activation name, see :data:`supernet.ops.activations.ACTIVATIONS`
``norm``     units only: ``None`` or ``"batchnorm"`` (one affine entry and running
             statistics per unit, so it is always edited with its unit)
``gated``    units only: if true, a ``(n, 2)`` keep/drop gate group scales each unit
``origin``   optional: the layer-level node it was lowered from (lets lifting restore it)
============ =================================================================

Edge attributes:

============ =================================================================
``kind``     ``"dense"`` (a linear map on ``(N, C)`` values), ``"conv"`` (a convolution)
             or ``"identity"`` (no weights: each source unit is added to one destination
             unit, as a residual add or a concat does)
``mask``     ``scipy.sparse.csr_array`` of dtype bool, canonical (sorted indices, no
             explicit zeros), of shape ``(n_dst, n_src)``; at neuron level a conv edge has
             shape ``(n_dst, n_src * prod(kernel))``, column ``j * prod(kernel) + tap``.
             An identity mask is a matching: at most one entry per row and per column
``kernel``   conv: kernel size per spatial dim, a list (``[3, 3]``); also ``stride``,
             ``padding`` and ``dilation`` (lists of the same length) and ``groups`` (int)
``pool``     optional pooling of the source before the edge: ``"global_avg"``,
             ``"global_max"``, or ``{"kind": "max"|"avg", "kernel": [..], "stride": [..],
             "padding": [..]}``
``gated``    if true, a ``(nnz, 2)`` keep/drop gate group scales each connection
``port``     order among the in-edges of the destination
``origin``   optional: the layer-level edge op it was lowered from
============ =================================================================

Tied units: an identity edge ties the two units it matches (a residual add ties a whole
stream, a concat ties each input channel to its output channel), and a grouped conv ties
units so that its groups stay equal (a depthwise conv ties input channel ``i`` to its
output channels). :func:`supernet.units.dependency_groups` lists them; unit edits apply to
a whole group at once. Masks are replaced by edits, never changed in place.
"""

from __future__ import annotations

from supernet.errors import GraphError

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
