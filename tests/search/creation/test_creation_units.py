"""Creation at the unit levels: RigL keeps every block's connection count and regrows at
zero (outputs unchanged), GrowUnits splits the best units keeping the function, and both
optimizers follow so that what was created trains."""

import math

import numpy as np
import pytest
import torch
from unit_search_helpers import (
    check_compiled,
    cnn_data,
    mini_state,
    mlp_data,
    tiny_cnn,
    tiny_mlp,
    train_step,
)

from supernet.errors import ConfigError, SearchError
from supernet.gates import Softmax
from supernet.search import BilevelSearch, scores
from supernet.search.creation.layer import GrowOps
from supernet.search.creation.rigl import EpochRigL, RigL
from supernet.search.creation.units import GrowUnits
from supernet.search.relaxations import TiedGates, use_relaxation


def _masks(graph):
    return {f"{u}->{v}": np.asarray(e["mask"].toarray(), bool)
            for u, v, e in graph.nx.edges(data=True) if e["kind"] != "identity"}


def _dense(state, key):
    return state.module.block(*key.split("->")).effective().detach().clone()


def _optimizer_holds_every_weight(state):
    held = {id(p) for g in state.weight_optimizer.param_groups for p in g["params"]}
    assert held == {id(p) for p in state.module.weights()}


@pytest.mark.parametrize("build,data", [(tiny_mlp, mlp_data), (tiny_cnn, cnn_data)])
def test_rigl_keeps_counts_and_regrows_at_zero(build, data):
    graph = build(gated=())
    batch = data()
    state = mini_state(graph, batch)
    for _ in range(3):
        train_step(state, batch, arch=False)
    rigl = RigL(alpha=0.3, interval=1, end=4)
    rigl.on_search_start(state)
    state.epoch = 1
    counts = {k: int(m.sum()) for k, m in _masks(graph).items()}
    before, mags = _masks(graph), scores.magnitude(state.module)
    weights = {k: _dense(state, k).abs() for k in counts}
    grads = rigl.gradients(state)
    x = batch[0][:6]
    state.module.eval()
    dropped = rigl.drop(state, rigl.fraction(1))
    with torch.no_grad():
        after_drop = state.module(x)
    mid = _masks(graph)
    grown = rigl.regrow(state, grads, dropped)
    with torch.no_grad():  # new connections start at zero: the outputs do not move
        assert torch.equal(state.module(x), after_drop)
    after = _masks(graph)
    assert {k: int(m.sum()) for k, m in after.items()} == counts  # exactly constant
    assert sum(grown.values()) == sum(dropped.values()) > 0
    for k in counts:
        new = after[k] & ~mid[k]
        if dropped[k]:
            assert dropped[k] == int(np.floor(rigl.fraction(1) * counts[k]))
            gone = before[k] & ~mid[k]
            w = weights[k].numpy()
            w = w.sum(tuple(range(2, w.ndim))) if w.ndim > 2 else w
            assert w[gone].max() <= w[mid[k]].min()  # the smallest magnitudes went
            rest = ~mid[k] & ~new  # not active after the drop (dropped ones included), not grown
            if rest.any():
                assert grads[k][new].min() >= grads[k][rest].max()  # the largest gradients
        w_new = _dense(state, k)
        if w_new.dim() > 2:
            w_new = w_new.abs().sum(tuple(range(2, w_new.dim())))
        assert (w_new[torch.from_numpy(new)] == 0).all()
    assert len(mags) == len(counts)
    check_compiled(graph, state.module)
    _optimizer_holds_every_weight(state)
    state.module.train()
    for _ in range(2):  # the regrown connections train from zero
        train_step(state, batch, arch=False)
    moved = [bool((_dense(state, k)[torch.from_numpy(after[k] & ~mid[k])] != 0).any())
             for k in counts if dropped[k]]
    assert any(moved)


def test_rigl_schedule_counts_steps():
    r = RigL(alpha=0.3, end=1000)
    assert r.interval == 100  # the paper's ΔT, in steps
    assert [t for t in range(1, 2001) if r.due_at(t)] == list(range(100, 1000, 100))
    for t in (0, 100, 250, 500, 999, 1000, 1500):
        expected = 0.3 / 2 * (1 + math.cos(math.pi * min(t, 1000) / 1000))
        assert r.fraction(t) == pytest.approx(expected)


def test_rigl_in_a_search_updates_every_interval_steps_until_three_quarters():
    graph = tiny_mlp(gated="units")
    start = {k: int(m.sum()) for k, m in _masks(graph).items()}
    rigl = RigL(alpha=0.5, interval=3)  # 3 steps: not at an epoch end
    search = BilevelSearch(graph, mlp_data(), strategy="darts", creation=[rigl],
                           discretization=None,
                           config={"epochs": 6, "batch_size": 8, "steps_per_epoch": 2})
    search.run()
    # 6 epochs x 2 steps = 12 steps: T_end = 9, updates at steps 3 and 6 (9 is not < T_end)
    assert search.state.total_steps == 12 and search.state.step == 12 and rigl.end == 9
    assert [r["step"] for r in rigl.history] == [3, 6]
    assert [r["epoch"] for r in rigl.history] == [1, 2]  # step 3: inside the second epoch
    assert {k: int(m.sum()) for k, m in _masks(graph).items()} == start
    counts = search.editor.log.counts()
    assert set(counts) == {"synaptic_pruning", "synaptogenesis"}
    assert counts["synaptic_pruning"] == counts["synaptogenesis"] >= 2
    f = [r["fraction"] for r in rigl.history]
    assert f == pytest.approx([0.25 * (1 + np.cos(np.pi * t / 9)) for t in (3, 6)])


def test_epoch_rigl_counts_epochs_under_its_own_name():
    graph = tiny_mlp(gated="units")
    rigl = EpochRigL(alpha=0.5)
    search = BilevelSearch(graph, mlp_data(), strategy="darts", creation=[rigl],
                           discretization=None,
                           config={"epochs": 4, "batch_size": 8, "steps_per_epoch": 2})
    search.run()
    assert rigl.end == 3 and [r["epoch"] for r in rigl.history] == [1, 2]
    f = [r["fraction"] for r in rigl.history]
    assert f == pytest.approx([0.25 * (1 + np.cos(np.pi * t / 3)) for t in (1, 2)])


@pytest.mark.parametrize("build,data,node", [(tiny_mlp, mlp_data, "h1"),
                                             (tiny_cnn, cnn_data, "s1b1_c1"),
                                             (tiny_cnn, cnn_data, "s2b1")])
def test_split_growth_keeps_the_function_and_new_units_train(build, data, node):
    graph = build()
    batch = data()
    state = mini_state(graph, batch)
    if graph.meta.get("stream_gates"):
        use_relaxation(state.module, TiedGates(Softmax()))
    for _ in range(3):
        train_step(state, batch)
    x = batch[0][:6]
    state.module.eval()
    with torch.no_grad():
        before = state.module(x)
    width = len(graph.node(node)["units"])
    old_gate = state.module.arch[node]  # a stream's gate sits on its node read outside
    adam_before = state.arch_optimizer.state[old_gate]["exp_avg"].clone()
    policy = GrowUnits(count=2, at=1, nodes=[node], score="taylor")
    state.epoch = 1
    policy.on_epoch_end(state)
    with torch.no_grad():
        assert (state.module(x) - before).abs().max() < 1e-6  # function-preserving
    assert len(graph.node(node)["units"]) == width + 2
    check_compiled(graph, state.module)
    rec = policy.grown[0]
    assert len(rec["source"]) == 2 and rec["created"] == [int(i) for i in
                                                          graph.node(node)["units"][-2:]]
    # both optimizers carried: every weight is held, the gate's Adam moments kept their rows
    _optimizer_holds_every_weight(state)
    new_gate = state.module.arch[node]
    assert new_gate.shape[0] == width + 2
    moments = state.arch_optimizer.state[new_gate]["exp_avg"]
    assert torch.equal(moments[:width], adam_before)
    assert torch.equal(moments[width:], torch.zeros(2, 2))
    # the new units train: their incoming weights and gate logits move
    u = next(iter(graph.in_edges(node)))[0] if node != "s2b1" else "s2b1_c1"
    v = node if node != "s2b1" else "s2b1_c2"
    w0 = state.module.block(u, v).effective().detach()[-2:].clone()
    g0 = new_gate.detach()[-2:].clone()
    state.module.train()
    for _ in range(2):
        train_step(state, batch)
    assert not torch.equal(state.module.block(u, v).effective().detach()[-2:], w0)
    assert not torch.equal(state.module.arch[node][-2:], g0)


def test_growth_splits_the_best_scored_units():
    graph = tiny_mlp()
    state = mini_state(graph, mlp_data())
    table = {"h1": [0.1, 5.0, 0.3, 4.0, 0.0, 0.2], "h2": [1.0, 0.0, 0.0, 0.0, 2.0]}
    policy = GrowUnits(count=2, at=[1, 2], score=lambda s: table)
    assert policy.targets(graph) == ["h1", "h2"]
    state.epoch = 1
    policy.on_epoch_end(state)
    policy.on_epoch_end(state)  # once per epoch
    assert [(r["node"], r["source"]) for r in policy.grown] == [("h1", [1, 3]), ("h2", [0, 4])]
    assert graph.node("h1")["units"].tolist() == [0, 1, 2, 3, 4, 5, 6, 7]
    assert GrowUnits(count=1, at=1).targets(tiny_cnn()) == ["s1b1_c1", "s2b1_c1"]
    fraction = GrowUnits(fraction=0.5, at=3, score="gradient")
    state.epoch = 3
    fraction.on_epoch_end(state)
    assert [len(r["source"]) for r in fraction.grown] == [4, 4]  # half of 8 and of 7


def test_creation_errors_name_the_problem():
    with pytest.raises(ConfigError, match="give at= .* or when="):
        GrowUnits(count=1)
    with pytest.raises(ConfigError, match=r"score must be one of \['taylor', 'gradient', "):
        GrowUnits(at=1, score="snip")
    with pytest.raises(ConfigError, match=r"alpha must be in \(0, 1\], got 0"):
        RigL(alpha=0)
    state = mini_state(tiny_mlp(), mlp_data())
    state.epoch = 1
    with pytest.raises(SearchError, match=r"GrowOps works on the candidate ops of layer-level "
                                          r"edges.*RigL or .*GrowUnits"):
        GrowOps(["conv_3x3"], at=1).on_epoch_end(state)
    with pytest.raises(SearchError, match=r"GrowUnits: node 'x' is an input"):
        GrowUnits(at=1, nodes=["x"], score="magnitude").on_epoch_end(state)
    state.epoch = 2
    with pytest.raises(SearchError, match=r"node 'y' is an output; growing it would change"):
        GrowUnits(at=2, nodes=["y"], score="magnitude").on_epoch_end(state)
