"""Iterative magnitude pruning (Han et al. 2015): rounds on the geometric schedule, each
layer to its own quantile, the surviving weights carried on as trained (no rewinding)."""

import numpy as np
import pytest
import torch
from unit_search_helpers import mini_state, mlp_data, tiny_mlp, train_step

from supernet import compile
from supernet.errors import ConfigError, SearchError
from supernet.search.discretize import DISCRETIZATIONS
from supernet.search.progressive import IterativeMagnitude


def _masks(graph):
    return {f"{u}->{v}": np.asarray(e["mask"].toarray(), bool)
            for u, v, e in graph.nx.edges(data=True)}


def _weights(state, key):
    return state.module.block(*key.split("->")).effective().detach().clone()


def test_rounds_follow_the_schedule_and_survivors_keep_their_trained_values():
    graph = tiny_mlp(gated=(), density=1.0)
    data = mlp_data()
    state = mini_state(graph, data, compile(graph, seed=0, kernel="dense"), epochs=8)
    policy = DISCRETIZATIONS.resolve("iterative_magnitude")(0.75, rounds=3, start=2,
                                                             interval=2)
    assert isinstance(policy, IterativeMagnitude)
    policy.on_search_start(state)
    start = dict(policy.counts)
    init = {k: _weights(state, k) for k in start}
    pruned_at = []
    for epoch in range(1, 9):
        train_step(state, data, arch=False)  # the (re)training between rounds
        state.epoch = epoch
        before, w = _masks(graph), {k: _weights(state, k) for k in start}
        moments = {k: state.weight_optimizer.state[state.module.block(*k.split("->")).weight]
                   ["momentum_buffer"].clone() for k in start}
        policy.on_epoch_end(state)
        after = _masks(graph)
        k = policy.round_at(epoch)
        if k is None:
            assert all((after[key] == before[key]).all() for key in start), epoch
            continue
        pruned_at.append(epoch)
        s = 1 - 0.25 ** (k / 3)
        assert policy.history[-1]["sparsity"] == pytest.approx(s)
        for key, n in start.items():
            assert int(after[key].sum()) == n - round(s * n), (epoch, key)
            gone, kept = before[key] & ~after[key], after[key]
            mag = w[key].abs().numpy()
            assert mag[gone].max() <= mag[kept].min()  # each layer by its own threshold
            now = _weights(state, key).numpy()
            # survivors continue from their trained values (Han et al.), with their state;
            # not reinitialized, not rewound to the initial weights
            assert np.array_equal(now[kept], w[key].numpy()[kept])
            assert not np.allclose(now[kept], init[key].numpy()[kept])
            m = state.weight_optimizer.state[state.module.block(*key.split("->")).weight]
            keep = torch.as_tensor(kept)
            assert torch.equal(m["momentum_buffer"][keep], moments[key][keep])
            assert (now[~kept] == 0).all()
    assert pruned_at == [2, 4, 6]
    assert [r["round"] for r in policy.history] == [1, 2, 3]
    policy.finalize(state)  # already at s_f: nothing more leaves
    assert policy.history[-1]["removed"] == 0


def test_global_scope_ranks_every_block_together_and_bad_settings_fail():
    graph = tiny_mlp(gated=(), density=1.0)
    state = mini_state(graph, mlp_data(), epochs=4)
    policy = IterativeMagnitude(0.5, rounds=1, start=1, scope="global")
    policy.on_search_start(state)
    total = sum(policy.counts.values())
    state.epoch = 1
    mags = {k: _weights(state, k).abs().numpy() for k in policy.counts}
    before = _masks(graph)
    policy.on_epoch_end(state)
    after = _masks(graph)
    assert sum(int(after[k].sum()) for k in policy.counts) == total - round(0.5 * total)
    gone = np.concatenate([mags[k][before[k] & ~after[k]] for k in policy.counts])
    kept = np.concatenate([mags[k][after[k]] for k in policy.counts])
    assert gone.max() <= kept.min()
    with pytest.raises(ConfigError, match="IterativeMagnitude: start must be an int >= 1"):
        IterativeMagnitude(0.5, start=0)
    with pytest.raises(ConfigError, match="IterativeMagnitude: rounds must be an int >= 1"):
        IterativeMagnitude(0.5, rounds=0)
    with pytest.raises(ConfigError, match=r"IterativeMagnitude: sparsity must be in \[0, 1\)"):
        IterativeMagnitude(1.0)
    gated = tiny_mlp()
    edge = next((u, v) for u, v, e in gated.nx.edges(data=True) if e.get("gated"))
    with pytest.raises(SearchError, match="IterativeMagnitude prunes dense and conv blocks"):
        IterativeMagnitude(0.5, edges=[edge]).on_search_start(mini_state(gated, mlp_data()))
