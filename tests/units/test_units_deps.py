"""Dependency groups: residual adds, concats and grouped convs tie units."""

import numpy as np
from units_helpers import residual_cnn

from supernet import Graph
from supernet.units import add_group, add_input, close_units, connect, dependency_groups, mlp


def _as_lists(groups):
    return [{k: v.tolist() for k, v in grp.items()} for grp in groups]


def test_residual_stream_ties_one_channel_of_every_node():
    groups = _as_lists(dependency_groups(residual_cnn()))
    assert len(groups) == 8
    assert groups[0] == {"s0": [0], "c2": [0], "y": [0]}


def test_depthwise_conv_ties_input_and_output_channels():
    g = residual_cnn(depthwise=True)
    groups = _as_lists(dependency_groups(g))
    assert {"c1": [3], "d": [3]} in groups


def test_grouped_conv_ties_the_same_offset_in_every_group():
    g = Graph("channel")
    add_input(g, "x", 3)
    add_group(g, "a", 6)
    connect(g, "x", "a", "conv", kernel=1)
    add_group(g, "b", 4)
    connect(g, "a", "b", "conv", kernel=3, groups=2)
    groups = _as_lists(dependency_groups(g))
    assert {"a": [0, 3]} in groups and {"b": [1, 3]} in groups


def test_concat_ties_each_input_channel_to_its_output_channel():
    g = Graph("channel")
    add_input(g, "x", 2)
    add_group(g, "a", 2)
    connect(g, "x", "a", "conv", kernel=1)
    add_group(g, "c", 4, bias=False)
    connect(g, "x", "c", "identity")
    connect(g, "a", "c", "identity", offset=2)
    groups = _as_lists(dependency_groups(g))
    assert groups == [{"x": [0], "c": [0]}, {"x": [1], "c": [1]}, {"a": [0], "c": [2]},
                      {"a": [1], "c": [3]}]


def test_close_units_and_untied_graphs():
    g = residual_cnn()
    closed = close_units(g, {"y": np.array([2])})
    assert {k: v.tolist() for k, v in closed.items()} == {"s0": [2], "c2": [2], "y": [2]}
    assert dependency_groups(mlp([3, 4, 2])) == []
