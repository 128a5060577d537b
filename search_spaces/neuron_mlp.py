"""A neuron-level MLP with skip-layer connections (space ``"neuron_mlp"``).

At the neuron level of :mod:`supernet.units` every neuron is a unit with a stable id and
every scalar weight a connection, so this space searches (and prunes, and grows) neurons
and synapses. Layout (node names):

* ``x``: the input features (``in_features``: 40 for MNIST-1D, 64 for 8x8 digits);
* ``h1 ... hK``: hidden groups of ``hidden[k - 1]`` neurons with activation ``act``;
* ``y``: ``num_classes`` output neurons (no activation: logits).

Every group connects to the next one with a random mask of ``density``; with ``skip`` every
group also connects to every later group (the input to ``h2 ... y``, ``h1`` to ``h3 ... y``,
...) with ``skip_density``. A skip block of density 0 exists with no synapses: regrowth
(:func:`supernet.search.discretize.grow`) may add some later. A neuron sums its in-edges:
``hk = act(sum over earlier groups g of W_{g,k} g + b_k)``.

Gates (``gated``): ``"units"`` gives every hidden neuron a keep/drop gate, ``"connections"``
every synapse of every block (input and output neurons are not gated). Any
:class:`supernet.gates.Relaxation` drives them; :func:`supernet.search.discretize.decision_edits`
turns the decision into neuron and synapse removals, :func:`supernet.search.discretize.prune`
prunes to an exact sparsity and :func:`supernet.search.discretize.grow` regrows (RigL).

There is no text form: a discretized network is its masks, which the graph files
(:mod:`supernet.io`) hold exactly.

Examples:
    >>> import torch, supernet
    >>> from search_spaces import create_space
    >>> g = create_space("neuron_mlp", in_features=8, hidden=(6, 5), num_classes=3,
    ...                  skip_density=0.5, seed=0)
    >>> [(u, v, g.edge(u, v)["mask"].nnz) for u, v in g.nx.edges]  # doctest: +NORMALIZE_WHITESPACE
    [('x', 'h1', 48), ('x', 'h2', 20), ('x', 'y', 12), ('h1', 'h2', 30), ('h1', 'y', 9),
     ('h2', 'y', 15)]
    >>> supernet.compile(g)(torch.randn(4, 8)).shape
    torch.Size([4, 3])
"""

from __future__ import annotations

import numpy as np
import torch

from supernet import Graph
from supernet.errors import ConfigError
from supernet.spaces import (
    Example,
    check_connections,
    check_names,
    check_number,
    check_size,
    register_space,
)
from supernet.units import add_group, add_input, connect

__all__ = ["neuron_mlp", "GATED"]

#: What ``gated`` may name.
GATED = ("units", "connections")


def _positive(name: str, value) -> int:
    return check_size("neuron_mlp", name, value)


#: The most hidden groups (every pair of groups may have a block of skip connections).
MAX_GROUPS = 256


def _fraction(name: str, value) -> float:
    return check_number("neuron_mlp", name, value, 0, 1)


def neuron_mlp(in_features: int = 40, hidden=(64, 64), num_classes: int = 10,
               density: float = 1.0, skip: bool = True, skip_density: float = 0.0,
               act: str = "relu", gated=GATED, seed: int | None = 0) -> Graph:
    """The neuron-level MLP with skip-layer connections (see the module docstring).

    Args:
        in_features: input features.
        hidden: neurons of each hidden group.
        num_classes: output neurons.
        density: fraction of the synapses present between consecutive groups.
        skip: add a block from every group to every later one (beyond the next).
        skip_density: fraction of the synapses present in those skip blocks (0: empty
            blocks, for regrowth).
        act: activation of the hidden neurons (:data:`supernet.ops.activations.ACTIVATIONS`).
        gated: ``"units"`` and/or ``"connections"``: what gets keep/drop gates.
        seed: seed of the random masks.
    """
    gated = () if gated is None else check_names("neuron_mlp", "gated", gated, GATED)
    if not isinstance(hidden, (list, tuple)) or len(hidden) > MAX_GROUPS:
        raise ConfigError(f"neuron_mlp: hidden must be a list of at most {MAX_GROUPS} widths, "
                          f"got {hidden!r:.60}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
                             or seed < 0):
        raise ConfigError(f"neuron_mlp: seed must be None or a non-negative int, got {seed!r}")
    sizes = [_positive("in_features", in_features)]
    sizes += [_positive(f"hidden[{k}]", h) for k, h in enumerate(hidden)]
    sizes += [_positive("num_classes", num_classes)]
    density, skip_density = _fraction("density", density), _fraction("skip_density", skip_density)
    blocks = [(i, j) for i in range(len(sizes)) for j in range(i + 1, len(sizes))
              if j == i + 1 or skip]
    check_connections("neuron_mlp", sum(sizes[i] * sizes[j] for i, j in blocks), "its sizes")
    names = ["x"] + [f"h{k}" for k in range(1, len(hidden) + 1)] + ["y"]
    g = Graph("neuron", name="neuron_mlp")
    add_input(g, "x", sizes[0])
    for n, size in zip(names[1:], sizes[1:]):
        hid = n != "y"
        add_group(g, n, size, act=act if hid else "identity", gated=hid and "units" in gated)
    rng = np.random.default_rng(seed)
    for i, u in enumerate(names[:-1]):
        for j in range(i + 1, len(names)):
            if j > i + 1 and not skip:
                break
            d = density if j == i + 1 else skip_density
            connect(g, u, names[j], mask="full" if d >= 1.0 else None,
                    density=None if d >= 1.0 else d, seed=int(rng.integers(2**31)),
                    gated="connections" in gated)
    g.set_outputs(["y"])
    g.set_meta(space="neuron_mlp")
    g.set_meta(groups=names)
    return g


def _example():
    def inputs(graph):
        return (torch.randn(4, graph.node("x")["width"]),), {}

    return Example({"in_features": 8, "hidden": (6, 5), "num_classes": 3, "density": 0.6,
                    "skip_density": 0.3}, inputs)


register_space("neuron_mlp", example=_example)(neuron_mlp)
