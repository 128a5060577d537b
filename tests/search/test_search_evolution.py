"""SPOS: evolutionary search over choices, batch-norm recalibration."""

import random

import torch
from search_graphs import chain, darts_like

from supernet import compile
from supernet.search import ChoiceSpace, evolutionary_search, recalibrate_bn
from supernet.search.relaxations import UniformPath, use_relaxation


def test_evolution_finds_the_best_choice_of_a_known_score():
    g = darts_like()
    space = ChoiceSpace(g, compile(g))
    target = {key: e.ops[e.allowed[-1]] for key, _, e in space.edges()}

    def score(choice):  # kept edges with the target op, minus kept edges at all
        return sum(choice[k] == target[k] for k in choice)

    best, value, curve = evolutionary_search(space, score, population=20, iterations=15,
                                             topk=5, rng=random.Random(0))
    assert value == score(best) == 8  # 2 nodes x 2 kept edges x 2 templates
    assert curve == sorted(curve)  # the best so far never gets worse
    for grp in space.groups:
        assert sum(best[(grp.cell, e.u, grp.v)] is not None for e in grp.edges) == 2
    # a constraint is never violated
    no_pool = lambda c: all(v is None or "pool" not in v for v in c.values())  # noqa: E731
    best, _, _ = evolutionary_search(space, score, population=10, iterations=3, topk=3,
                                     rng=random.Random(1), constraint=no_pool)
    assert no_pool(best)


def test_mutation_and_crossover_keep_choices_valid():
    g = darts_like()
    space = ChoiceSpace(g, compile(g))
    rng = random.Random(0)
    for _ in range(50):
        a, b = space.sample(rng), space.sample(rng)
        for c in (space.mutate(a, 0.5, rng), space.crossover(a, b, rng)):
            for grp in space.groups:
                kept = [c[(grp.cell, e.u, grp.v)] for e in grp.edges]
                assert sum(k is not None for k in kept) == 2 and "none" not in kept


def test_recalibrate_bn_recomputes_statistics_of_the_chosen_path():
    g = chain(ops=("conv_3x3", "conv_1x1"), n=1)
    g.add_node("bn", channels=4, op="batchnorm")
    g.remove_edge("b0", "gap")
    g.add_edge("b0", "bn", "identity")
    g.add_edge("bn", "gap", "global_avg_pool")
    net = compile(g)
    use_relaxation(net, UniformPath())
    space = net.relaxation.space
    choice = {("", "stem", "b0"): "conv_1x1"}
    gates = space.decisions(choice)
    xs = [torch.randn(8, 3, 6, 6) for _ in range(3)]
    batches = [((x,), {}, None) for x in xs]
    recalibrate_bn(net, batches, gates)
    bn = net.steps["bn"].op
    with torch.no_grad():
        feats = torch.cat([net.steps["b0"].inputs["stem"]["conv_1x1"](
            net.steps["stem"].inputs["x"]["conv_3x3"](x)) for x in xs])
    assert torch.allclose(bn.running_mean, feats.mean((0, 2, 3)), atol=1e-5)
    assert bn.momentum == 0.1  # restored
