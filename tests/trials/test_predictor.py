import random

import pytest
import torch
from scipy.stats import spearmanr
from trial_helpers import tiny_gnn

from supernet.errors import SearchError
from supernet.trials import GraphEncoder, discretized, trial_strategy

OPS = ("gat", "gcn", "gin", "cheb", "sage", "arma", "graphconv", "linear", "identity")
WEIGHT = {op: i / 8 for i, op in enumerate(OPS)}


def depth_weighted(choice):
    """A synthetic objective of the graph: each node's op weight times its depth."""
    depth, total = {"pre1": 0}, 0.0
    for v in ("n1", "n2", "n3", "n4"):
        (u, op), = [(k[1], op) for k, op in choice.items() if k[2] == v and op is not None]
        depth[v] = depth[u] + 1
        total += WEIGHT[op] * depth[v]
    return total


@pytest.fixture(scope="module")
def gnn4():
    return tiny_gnn(nodes=4, ops=OPS[:-1] + ("skip",))  # 9 * 18 * 27 * 36 choices


def test_encoding_from_a_choice_equals_the_discretized_graph(gnn4):
    s = trial_strategy("random", gnn4)
    enc = GraphEncoder(gnn4, s.space)
    for i in range(5):
        c = s.space.sample(random.Random(i))
        data = enc.from_choice(c)
        assert enc.same(data, enc.from_graph(discretized(gnn4, s.space, c)))
        assert data.x[:, : len(enc.vocab)].sum() == 4 + 4 + 2  # 4 ops, 4 identities, 2 linear


def test_trained_predictor_ranks_unseen_architectures(gnn4):
    s = trial_strategy("predictor", gnn4, seed=0, ensemble=2, batch=5)
    for _ in range(50):  # the random phase
        s.ask()
    for t in list(s.pending.values()):
        s.tell(t, {"val_accuracy": depth_weighted(t.choice)})
    s.fit()
    test = [s.space.sample(random.Random(1000 + i)) for i in range(100)]
    rho = spearmanr(s.predict(test).numpy(), [depth_weighted(c) for c in test]).correlation
    assert rho > 0.5
    # the next asks are the top predicted candidates: above the median of random ones
    asked = [s.ask().choice for _ in range(5)]
    assert s.rounds == 1
    assert float(s.predict(asked).min()) > float(torch.median(s.predict(test)))


def test_predictor_needs_a_layer_level_space_and_valid_options(gnn4):
    from supernet import compile
    from supernet.search.discretize.units import set_gated
    from supernet.units import mlp

    u = mlp([3, 4, 2], seed=0)
    set_gated(u, units=["h1"])
    compile(u)
    with pytest.raises(SearchError, match="reads layer-level graphs"):
        trial_strategy("predictor", u)
    with pytest.raises(SearchError, match="initial must be an int >= 2"):
        trial_strategy("predictor", gnn4, initial=1)
