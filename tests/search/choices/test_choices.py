"""One choice-space protocol for every level: each registered level's space decides, samples,
runs and discretizes through the same methods, :func:`choice_space` resolves the class by
``graph.level``, and one :func:`discretize` serves every level through that registry."""

import random
import types

import pytest
import torch
from search_graphs import chain
from unit_search_helpers import tiny_cnn, tiny_mlp

from supernet import compile, lint
from supernet.compiler.standalone import gates_left
from supernet.edits import Editor
from supernet.errors import SearchError, UnknownNameError
from supernet.gates import gate_probabilities
from supernet.search import derive, discretize
from supernet.search.choices import (
    CHOICE_SPACES,
    ChoiceSpace,
    LayerChoiceSpace,
    UnitChoiceSpace,
    choice_space,
    register_choice_space,
)


def _layer():
    g = chain(n=2)
    g.set_meta(constraints={"": {"max_inputs": 1, "exclude": ["none"]}})
    return g


#: A small gated graph of each level and the shape of its input.
SMALL = {
    "layer": (_layer, (2, 3, 8, 8)),
    "channel": (tiny_cnn, (2, 3, 8, 8)),
    "neuron": (tiny_mlp, (2, 8)),
}


def _small(level):
    assert level in SMALL, f"give level {level!r} a small gated graph in SMALL"
    build, shape = SMALL[level]
    g = build()
    assert g.level == level
    torch.manual_seed(0)
    net = compile(g)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for a in net.arch.values():
            a.copy_(2 * torch.randn(a.shape, generator=gen))
    return g, net, torch.randn(*shape, generator=gen)


@pytest.mark.parametrize("level", CHOICE_SPACES.list())
def test_the_best_choice_of_every_level_edits_into_a_graph_without_gates(level):
    g, net, x = _small(level)
    space = choice_space(g, net)
    assert type(space) is CHOICE_SPACES.resolve(level) and isinstance(space, ChoiceSpace)
    assert type(ChoiceSpace(g, net)) is type(space)
    assert gates_left(g)
    choice = space.best(gate_probabilities(net))
    editor = Editor(g, net)
    for edit in space.edits(choice):
        editor.apply(edit)
    assert gates_left(g) == []
    lint(g)
    space.check(net)
    net.eval()
    with torch.no_grad():
        assert torch.isfinite(net(x)).all()


@pytest.mark.parametrize("level", CHOICE_SPACES.list())
def test_every_level_samples_mutates_and_runs_its_choices(level):
    g, net, x = _small(level)
    space = choice_space(g, net)
    rng = random.Random(0)
    a, b = space.sample(rng), space.sample(rng)
    assert space.encode(space.mutate(a, 0.0, rng)) == space.encode(a)
    assert space.encode(space.crossover(a, a, rng)) == space.encode(a)
    assert space.encode(space.mutate(a, 1.0, random.Random(1))) != space.encode(a) or \
        space.encode(space.mutate(a, 1.0, random.Random(2))) != space.encode(a)
    hash(space.encode(b))
    net.eval()
    with torch.no_grad():
        for c in (a, b, space.decide(net)):
            assert torch.isfinite(net(x, gates=space.decisions(c, x))).all()


@pytest.mark.parametrize("level", ["layer", "channel", "neuron"])
def test_one_discretize_discretizes_every_level(level):
    g, net, x = _small(level)
    planned = [e.to_dict() for e in derive(g, net)]
    done = discretize(g, net)
    assert [e.to_dict() for e in done][:len(planned)] == planned and planned
    assert gates_left(g) == [] and len(net.arch) == 0 and net.relaxation is None
    lint(g)
    with torch.no_grad():
        assert torch.isfinite(net.eval()(x)).all()


def test_discretize_dispatches_through_the_registry():
    calls = []

    class Recording(LayerChoiceSpace):
        def decide(self, module, choice=None):
            calls.append(choice)
            return super().decide(module, choice)

    original = CHOICE_SPACES.resolve("layer")
    register_choice_space("layer", override=True)(Recording)
    try:
        g, net, _ = _small("layer")
        assert type(choice_space(g, net)) is Recording
        discretize(g, net)
    finally:
        CHOICE_SPACES.register("layer", original, override=True)
    assert calls == [None] and gates_left(g) == []


def test_an_unknown_level_says_which_levels_have_a_space():
    fake = types.SimpleNamespace(level="cell", name="g")
    with pytest.raises(UnknownNameError, match=r"g: could not resolve choice space level 'cell' "
                       r"among \['channel', 'layer', 'neuron'\]; register the class of a level "
                       r"with supernet\.search\.choices\.register_choice_space"):
        choice_space(fake, None)
    g, net, _ = _small("neuron")
    saved = CHOICE_SPACES.unregister("neuron")
    try:
        with pytest.raises(UnknownNameError, match="could not resolve choice space level "
                           "'neuron' among \\['channel', 'layer'\\]"):
            ChoiceSpace(g, net)
    finally:
        CHOICE_SPACES.register("neuron", saved)


def test_a_level_class_refuses_a_graph_of_another_level():
    g, net, _ = _small("layer")
    with pytest.raises(SearchError, match="chain: UnitChoiceSpace is the choice space of "
                       "channel/neuron-level graphs; this graph is layer-level, whose space is "
                       "LayerChoiceSpace: use choice_space"):
        UnitChoiceSpace(g, net)
    u, unet, _ = _small("channel")
    with pytest.raises(SearchError, match="LayerChoiceSpace is the choice space of layer-level "
                       "graphs; this graph is channel-level, whose space is UnitChoiceSpace"):
        LayerChoiceSpace(u, unet)
