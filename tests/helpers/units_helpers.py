"""Small unit-level graphs and helpers shared by the tests of supernet.units."""

import torch

from supernet import Graph
from supernet.io import to_node_link
from supernet.units import add_group, add_input, connect


def residual_cnn(depthwise: bool = False, width: int = 8) -> Graph:
    """stem conv -> s0; block s0 -> c1 (-> depthwise d) -> c2; y = relu(c2 + s0); head."""
    g = Graph("channel", name="res")
    add_input(g, "x", 3)
    add_group(g, "s0", width, act="relu", norm="batchnorm")
    connect(g, "x", "s0", "conv", kernel=3)
    add_group(g, "c1", width, act="relu", norm="batchnorm")
    connect(g, "s0", "c1", "conv", kernel=3)
    src = "c1"
    if depthwise:
        add_group(g, "d", width, act="relu")
        connect(g, "c1", "d", "conv", kernel=3, groups=width)
        src = "d"
    add_group(g, "c2", width, norm="batchnorm")
    connect(g, src, "c2", "conv", kernel=3)
    add_group(g, "y", width, act="relu", bias=False)
    connect(g, "c2", "y", "identity")
    connect(g, "s0", "y", "identity")
    add_group(g, "out", 5)
    connect(g, "y", "out", "dense", pool="global_avg")
    g.set_outputs(["out"])
    return g


def conv_layer_graph() -> Graph:
    """A layer-level graph with one 3x3 conv from 2 to 3 channels."""
    g = Graph("layer")
    g.add_input("x", channels=2)
    g.add_node("h", channels=3)
    g.add_edge("x", "h", "conv_3x3")
    g.set_outputs(["h"])
    return g


def randomize_bn(module) -> None:
    """Non-trivial batch-norm statistics and affine parameters, so that tests see them."""
    with torch.no_grad():
        for m in module.nodes.values():
            if getattr(m, "has_norm", False):
                m.running_mean.normal_()
                m.running_var.uniform_(0.5, 2.0)
                m.norm_weight.normal_()
                m.norm_bias.normal_()


def doc(graph) -> dict:
    """The node-link document without the version counter."""
    return {k: v for k, v in to_node_link(graph).items() if k != "version"}
