"""Every registered compiler, over the registry's own listing: a small graph of its level
compiles to a GraphModule that runs forward and backward. And the registry itself: one
compiler per level unless overridden, and an unknown level fails with the registry message."""

import pytest
import torch
from level_graphs import small_graph

import supernet
from supernet.compiler import COMPILERS, GraphModule, register_compiler
from supernet.errors import DuplicateNameError, UnknownNameError
from supernet.schema import LEVELS


def test_every_level_has_a_compiler():
    assert COMPILERS.list() == sorted(LEVELS)


@pytest.mark.parametrize("level", COMPILERS.list())
def test_every_compiler_compiles_a_small_graph_of_its_level(level):
    graph, args = small_graph(level)
    assert graph.level == level
    net = supernet.compile(graph)
    assert isinstance(net, GraphModule) and isinstance(net, torch.nn.Module)
    out = net(*args)
    assert out.shape[0] == args[0].shape[0] and torch.isfinite(out).all()
    out.square().mean().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.weights())


def test_a_second_compiler_of_a_level_is_refused_unless_overridden():
    layer = COMPILERS.resolve("layer")
    with pytest.raises(DuplicateNameError, match="compiler of level 'layer' is registered "
                                                 "already; pass override=True"):
        register_compiler("layer")(lambda graph, **kw: None)
    assert COMPILERS.resolve("layer") is layer
    seen = []

    def traced(graph, **kwargs):
        seen.append(graph.name)
        return layer(graph, **kwargs)

    try:
        assert register_compiler("layer", override=True)(traced) is traced
        graph, args = small_graph("layer")
        assert isinstance(supernet.compile(graph), GraphModule) and seen == [graph.name]
    finally:
        register_compiler("layer", override=True)(layer)
    assert COMPILERS.resolve("layer") is layer


def test_a_level_without_a_compiler_fails_with_the_registry_message():
    graph, _ = small_graph("neuron")
    neuron = COMPILERS.unregister("neuron")
    try:
        with pytest.raises(UnknownNameError,
                           match=r"mlp: could not resolve compiler of level 'neuron' among "
                                 r"\['channel', 'layer'\]; register one with "
                                 r"@supernet.compiler.register_compiler\(level\)"):
            supernet.compile(graph)
    finally:
        register_compiler("neuron")(neuron)
    assert isinstance(supernet.compile(graph), GraphModule)
