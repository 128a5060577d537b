"""One small graph of every level, with inputs for its module and a way to break it, for the
tests that cover every registered compiler and lint rule. A level registered without an
entry here fails those tests with the way to add one."""

import pytest
import torch
from units_helpers import conv_layer_graph

from supernet import Graph
from supernet.units import add_group, add_input, connect, mlp


def _channel() -> Graph:
    g = Graph("channel", name="cnn")
    add_input(g, "x", 3)
    add_group(g, "c", 4, act="relu")
    connect(g, "x", "c", "conv", kernel=3)
    add_group(g, "y", 2)
    connect(g, "c", "y", "dense", pool="global_avg")
    g.set_outputs(["y"])
    return g


def _break_act(g: Graph, node: str) -> None:
    g.node(node)["act"] = "rellu"


def _break_merge(g: Graph, node: str) -> None:
    g.node(node)["merge"] = "average"


#: level -> (graph builder, inputs of its module, a hidden node, how to break that node).
LEVEL_GRAPHS = {
    "layer": (conv_layer_graph, lambda: (torch.randn(2, 2, 8, 8),), "h", _break_merge),
    "channel": (_channel, lambda: (torch.randn(2, 3, 8, 8),), "c", _break_act),
    "neuron": (lambda: mlp([3, 4, 2]), lambda: (torch.randn(2, 3),), "h1", _break_act),
}


def _entry(level: str):
    if level not in LEVEL_GRAPHS:
        pytest.fail(f"no small graph of level {level!r}: add one to LEVEL_GRAPHS in "
                    "tests/helpers/level_graphs.py so that the registry-wide tests cover it")
    return LEVEL_GRAPHS[level]


def small_graph(level: str) -> tuple[Graph, tuple]:
    """A small valid graph of ``level`` and positional inputs of its compiled module."""
    build, inputs, _, _ = _entry(level)
    return build(), inputs()


def broken_graph(level: str) -> tuple[Graph, str]:
    """The small graph of ``level`` with one attribute of one node made invalid, and the node."""
    build, _, node, spoil = _entry(level)
    g = build()
    spoil(g, node)
    return g, node
