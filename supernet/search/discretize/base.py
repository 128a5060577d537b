"""End-of-search discretization at every level: the choice a search keeps, made permanent by
recorded edits.

:func:`derive` lists the edits and :func:`discretize` applies them, through the choice space
of the graph's level (:func:`~supernet.search.choices.base.choice_space`): at the layer level
the best allowed op per edge and the top ``max_inputs`` in-edges per node
(:mod:`supernet.search.choices.layer`), then the nodes left without a use go; at the channel
and neuron levels what the relaxation's keep/drop decision drops, then every gate is fixed
(:mod:`supernet.search.choices.units`). Afterwards the graph lints, no gate is left, the
module has no relaxation, and the edit log replays the whole discretization.

Examples:
    >>> import torch
    >>> from supernet import Graph, compile, lint
    >>> from supernet.edits import Editor
    >>> g = Graph("layer"); g.add_input("x", channels=4); g.add_node("h", channels=4)
    >>> g.add_edge("x", "h", ["conv_3x3", "skip_connect", "none"]); g.set_outputs(["h"])
    >>> net = compile(g)
    >>> with torch.no_grad(): _ = net.arch["x->h"].copy_(torch.tensor([[0., 2., 1.]]))
    >>> [e.op for e in derive(g, net)]
    ['conv_3x3', 'none']
    >>> _ = discretize(g, net, Editor(g, net)); g.edge("x", "h")["ops"]
    ['skip_connect']
    >>> lint(g); net.relaxation is None
    True
"""

from __future__ import annotations

from supernet.edits import Editor
from supernet.lint import lint
from supernet.search.base import DiscretizationPolicy, SearchState
from supernet.search.choices.base import choice_space

__all__ = ["derive", "discretize", "ArgmaxDiscretization"]


def derive(graph, module) -> list:
    """The edits that discretize ``graph`` as the choice space of its level decides: per
    edge the best allowed op and per node the best ``max_inputs`` in-edges, ranked by the
    relaxation's candidate weights (layer level); the removals of what the relaxation's
    decision drops, then the gates fixed (channel and neuron levels)."""
    space = choice_space(graph, module)
    return space.edits(space.decide(module))


def discretize(graph, module, editor: Editor | None = None, choice: dict | None = None) -> list:
    """Discretize ``graph`` (and ``module``) in place, at any level; returns the edits applied.

    ``choice`` overrides the relaxation's decision (e.g. the best path of an evolutionary
    search), in the choice format of the graph's level: edge ``(cell, u, v)`` -> kept op or
    ``None`` (layer), gate key -> keep (0) or drop (1) per row (channel and neuron; every
    node keeps at least one unit). Afterwards the graph lints and satisfies its
    constraints, and the module has no gate and no relaxation.
    """
    editor = editor or Editor(graph, module)
    space = choice_space(graph, module)
    done = space.apply(editor, space.decide(module, choice))
    module.relaxation = None
    lint(graph)
    space.check(module)
    return done


class ArgmaxDiscretization(DiscretizationPolicy):
    """Discretize once, at the end of the search: argmax per edge, top-k inputs per node;
    at the channel and neuron levels, the relaxation's keep/drop decision per unit group
    and connection."""

    def finalize(self, state: SearchState) -> None:
        discretize(state.graph, state.module, state.editor)
