"""Progressive discretization at the unit levels: ProgressiveGates removes the most certain
drops on the cubic schedule, GradualMagnitude (Zhu & Gupta) prunes to exact counts; the
layer-level progressive policies refuse unit graphs."""

import numpy as np
import pytest
import torch
from search_graphs import darts_like
from search_graphs import data as layer_data
from unit_search_helpers import cnn_data, mini_state, mlp_data, tiny_cnn, tiny_mlp

from supernet.errors import SearchError
from supernet.search import BilevelSearch, create_strategy, scores
from supernet.search.progressive import GradualMagnitude, ProgressiveGates, cubic_sparsity


def test_cubic_schedule_is_zhu_and_gupta():
    n, s_i, s_f = 5, 0.1, 0.9
    for k in range(n + 1):
        want = s_f + (s_i - s_f) * (1 - k / n) ** 3
        assert cubic_sparsity(k, n, s_i, s_f) == pytest.approx(want)
    steps = np.diff([cubic_sparsity(k, n, s_i, s_f) for k in range(n + 1)])
    assert (steps > 0).all() and (np.diff(steps) < 0).all()  # fast first, then slower


def _drop_probability(state, node, p):
    """Set the gates of ``node`` to drop with probabilities ``p`` (softmax)."""
    logit = torch.log(torch.tensor(p) / (1 - torch.tensor(p)))
    with torch.no_grad():
        a = state.module.arch[node]
        a.zero_()
        a[:, 1] = logit


def test_most_certain_drops_go_first_on_the_schedule():
    state = mini_state(tiny_mlp(gated="units"), mlp_data())
    _drop_probability(state, "h1", [0.99, 0.9, 0.7, 0.2, 0.1, 0.3])
    _drop_probability(state, "h2", [0.6, 0.1, 0.2, 0.3, 0.4])
    policy = ProgressiveGates(warmup=0, interval=1, decisions=3)
    policy.on_search_start(state)
    state.epoch = 1
    policy.on_epoch_end(state)
    # 4 drops decided; step 1 of 3 removes round(0.704 * 4) = 3, the most certain ones
    assert policy.history[-1]["units"] == 3
    assert state.graph.node("h1")["units"].tolist() == [3, 4, 5]
    assert len(state.graph.node("h2")["units"]) == 5
    assert state.module.arch["h1"].shape == (3, 2)  # gates of the survivors stay, trained on
    state.epoch = 2
    policy.on_epoch_end(state)
    assert state.graph.node("h2")["units"].tolist() == [1, 2, 3, 4]
    policy.finalize(state)
    assert len(state.module.arch) == 0 and state.module.relaxation is None
    assert [type(e).__name__ for e in state.editor.log] == ["RemoveUnits", "RemoveUnits",
                                                            "UngateUnits"]


def test_connection_removals_follow_the_cubic_fraction():
    state = mini_state(tiny_mlp(gated="connections"), mlp_data())
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for a in state.module.arch.values():
            a.copy_(torch.randn(a.shape, generator=gen))
    drops = sum(int((a[:, 1] > a[:, 0]).sum()) for a in state.module.arch.values())
    total = sum(e["mask"].nnz for *_, e in state.graph.nx.edges(data=True))
    policy = ProgressiveGates(warmup=1, interval=2, decisions=3)
    policy.on_search_start(state)
    for epoch in range(1, 8):
        state.epoch = epoch
        policy.on_epoch_end(state)
        k = policy.step_of(epoch)
        if k is not None:
            left = sum(e["mask"].nnz for *_, e in state.graph.nx.edges(data=True))
            assert total - left == int(cubic_sparsity(k, 3) * drops + 0.5), epoch
    assert [r["epoch"] for r in policy.history] == [3, 5, 7]
    assert policy.removed["connections"] == drops


def test_progressive_gates_keep_streams_tied_and_a_unit_per_node():
    graph = tiny_cnn()
    search = BilevelSearch(graph, cnn_data(), strategy=create_strategy(
        "progressive_gates", warmup=0, decisions=1),
        config={"epochs": 1, "batch_size": 8, "steps_per_epoch": 1}, discretization=None)
    policy = ProgressiveGates(warmup=0, decisions=1)
    state = search.state
    with torch.no_grad():  # every gate says drop, most certainly
        for a in state.module.arch.values():
            a.copy_(torch.tensor([0.0, 5.0]))
    policy.on_search_start(state)
    state.epoch = 1
    policy.on_epoch_end(state)
    for stream in graph.meta["streams"].values():  # one channel of each stream stays
        assert {len(graph.node(n)["units"]) for n in stream} == {1}
    assert len(graph.node("s1b1_c1")["units"]) == 1


def _dense_masks(graph):
    return {f"{u}->{v}": np.asarray(e["mask"].toarray(), bool)
            for u, v, e in graph.nx.edges(data=True)}


@pytest.mark.parametrize("scope", ["layer", "global"])
def test_gradual_magnitude_prunes_exactly_on_the_schedule(scope):
    graph = tiny_mlp(gated=(), density=1.0)
    state = mini_state(graph, mlp_data(), epochs=6)
    policy = GradualMagnitude(0.8, start=1, interval=1, steps=4, scope=scope)
    policy.on_search_start(state)
    start = dict(policy.counts)
    total = sum(start.values())
    for epoch in range(1, 7):
        state.epoch = epoch
        weights = {k: state.module.block(*k.split("->")).effective().detach().abs().numpy()
                   for k in start}
        before = _dense_masks(graph)
        policy.on_epoch_end(state)
        after = _dense_masks(graph)
        k = policy.step_of(epoch)
        s = cubic_sparsity(k, 4, 0.0, 0.8) if k is not None else None
        left = {key: int(after[key].sum()) for key in start}
        if s is not None and scope == "layer":
            assert left == {key: n - round(s * n) for key, n in start.items()}, epoch
        elif s is not None:
            assert sum(left.values()) == total - round(s * total), epoch
        gone = np.concatenate([weights[key][before[key] & ~after[key]] for key in start])
        kept = np.concatenate([weights[key][after[key]] for key in start])
        if scope == "global" and len(gone):  # the smallest magnitudes went
            assert gone.max() <= kept.min()
        for key in start if scope == "layer" else ():
            g_, k_ = weights[key][before[key] & ~after[key]], weights[key][after[key]]
            if len(g_):
                assert g_.max() <= k_.min(), key
    policy.finalize(state)
    assert policy.history[-2]["sparsity"] == pytest.approx(0.8)
    if scope == "layer":
        assert {k: e for k, e in policy.history[-1]["left"].items()} == \
            {key: n - round(0.8 * n) for key, n in start.items()}


def test_gradual_magnitude_magnitudes_are_kernel_norms_at_channel_level():
    graph = tiny_cnn(gated=())
    state = mini_state(graph, cnn_data(), epochs=2)
    policy = GradualMagnitude(0.5, steps=1)
    policy.on_search_start(state)
    norms = scores.magnitude(state.module)["s1b1_c1->s1b1_c2"]
    state.epoch = 1
    policy.on_epoch_end(state)
    n = len(norms)
    assert graph.edge("s1b1_c1", "s1b1_c2")["mask"].nnz == n - round(0.5 * n)
    assert state.module.block("s1b1_c1", "s1b1_c2").weight.shape == (4, 4, 3, 3)


def test_unit_policies_refuse_layer_graphs_and_bad_settings():
    state = mini_state(tiny_mlp(), mlp_data())
    layer = BilevelSearch(darts_like(), layer_data(), config={"epochs": 1, "batch_size": 8})
    with pytest.raises(SearchError, match=r"ProgressiveGates removes units and connections of "
                                          r"channel- or neuron-level graphs.*layer-level"):
        ProgressiveGates().on_search_start(layer.state)
    with pytest.raises(SearchError, match=r"GradualMagnitude .* SGAS, P-DARTS or DARTS-PT"):
        GradualMagnitude(0.5).on_search_start(layer.state)
    from supernet.errors import ConfigError

    with pytest.raises(ConfigError, match=r"sparsity must be in \[0, 1\), got 1.5"):
        GradualMagnitude(1.5)
    with pytest.raises(SearchError, match=r"edge x->h1 is dense and gated"):
        GradualMagnitude(0.5, edges=[("x", "h1")]).on_search_start(state)


@pytest.mark.parametrize("name,label", [("sgas", "SGAS"), ("darts_pt", "DARTS-PT"),
                                        ("pdarts", "P-DARTS")])
def test_layer_progressive_policies_refuse_unit_graphs(name, label):
    search = BilevelSearch(tiny_mlp(), mlp_data(), strategy=name,
                           config={"epochs": 75 if name == "pdarts" else 2, "batch_size": 8})
    with pytest.raises(SearchError, match=rf"{label} works on the candidate ops of layer-level "
                                          r"edges, but this graph is neuron-level.*"
                                          r"'unit_pdarts', 'unit_sgas'"):
        search.run()


@pytest.mark.parametrize("name,match,instead", [
    ("pcdarts", "PC-DARTS mixes candidate ops", "unit_pcdarts"),
    ("proxyless", "ProxylessNAS binary gates", "unit_proxyless")])
def test_layer_relaxations_refuse_unit_graphs(name, match, instead):
    with pytest.raises(SearchError, match=match + r".*neuron-level.*" + instead):
        BilevelSearch(tiny_mlp(), mlp_data(), strategy=name, config={"batch_size": 8})
