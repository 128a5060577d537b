"""DARTS-PT: the op (then the inputs) whose removal lowers validation accuracy most is kept,
even against the architecture weights; decisions in random order, tuning between them."""

import pytest
import torch
from progressive_helpers import MiniSearch, net

import supernet as sn
from supernet.edits import EditLog, Editor
from supernet.errors import ConfigError
from supernet.search.base import SearchState
from supernet.search.progressive import DartsPT, darts_pt_epochs


def signal_data(n=200, noise=0.1, seed=0):
    """Channel 1 carries the label as +-1; channel 0 a per-sample constant noise."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    s = (2 * y - 1).float()
    x = torch.empty(n, 2, 4, 4)
    x[:, 0] = noise * torch.randn(n, 1, 1, generator=gen)
    x[:, 1] = s[:, None, None]
    return x, y


def classifier_on_channel_0(module, node="logits"):
    with torch.no_grad():
        lin = module.edge_module("gap", node)["classifier"]
        lin.weight.copy_(torch.tensor([[-10.0, 0.0], [10.0, 0.0]]))
        lin.bias.zero_()


def conv_moving_channel_1_to_0(conv):
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 1] = 1.0
        conv.bias.zero_()


def _head(g, src):
    g.add_node("gap", channels=2)
    g.add_edge(src, "gap", "global_avg_pool")
    g.add_node("logits", channels=2)
    g.add_edge("gap", "logits", "classifier")
    g.set_outputs(["logits"])


def _state(g, module, data):
    x, y = data

    def evaluate():
        module.eval()
        with torch.no_grad():
            return float((module(x).argmax(1) == y).float().mean())

    return SearchState(g, module, Editor(g, module), evaluate=evaluate, train=lambda n: None)


def test_keeps_the_indispensable_op_against_the_weights():
    g = sn.Graph("layer", name="pt")
    g.add_input("x", channels=2)
    g.add_node("h", channels=2)
    g.add_edge("x", "h", ["conv_1x1", "skip_connect", "avg_pool_3x3", "none"])
    _head(g, "h")
    g.meta["constraints"] = {"": {"max_inputs": 1, "exclude": ["none"]}}
    module = sn.compile(g)
    conv_moving_channel_1_to_0(module.edge_module("x", "h")["conv_1x1"])
    classifier_on_channel_0(module)
    with torch.no_grad():  # the weights favour skip_connect, which carries only noise
        module.arch["x->h"].copy_(torch.tensor([[0.2, 0.5, 0.2, 0.1]]).log())
    state = _state(g, module, signal_data())
    assert state.evaluate() > 0.95
    policy = DartsPT(batch_stats=False)
    policy.finalize(state)
    assert g.edge("x", "h")["ops"] == ["conv_1x1"]
    without = policy.decisions[0]["accuracy_without"]
    assert without["conv_1x1"] == pytest.approx(0.5, abs=0.1)
    assert min(without["skip_connect"], without["avg_pool_3x3"]) > 0.95
    assert "none" not in without  # excluded ops are never kept, so never measured
    sn.lint(g)


def test_keeps_the_indispensable_input_against_the_weights():
    g = sn.Graph("layer", name="pt_topology")
    g.add_input("x", channels=2)
    for n, op in (("a", "conv_1x1"), ("b", "skip_connect"), ("c", "avg_pool_3x3")):
        g.add_node(n, channels=2)
        g.add_edge("x", n, op)
    g.add_node("h", channels=2)
    for n in ("a", "b", "c"):
        g.add_edge(n, "h", ["skip_connect", "none"])
    _head(g, "h")
    g.meta["constraints"] = {"": {"max_inputs": 1, "exclude": ["none"]}}
    module = sn.compile(g)
    conv_moving_channel_1_to_0(module.edge_module("x", "a")["conv_1x1"])
    classifier_on_channel_0(module)
    with torch.no_grad():  # the weights rank a->h last
        module.arch["a->h"].copy_(torch.tensor([[0.3, 0.7]]).log())
        module.arch["b->h"].copy_(torch.tensor([[0.9, 0.1]]).log())
        module.arch["c->h"].copy_(torch.tensor([[0.8, 0.2]]).log())
    state = _state(g, module, signal_data(noise=0.5))
    policy = DartsPT(order="sequential", batch_stats=False)
    policy.finalize(state)
    assert [u for u, _ in g.in_edges("h")] == ["a"]
    edge = [d for d in policy.decisions if d["kind"] == "edge"]
    assert len(edge) == 1 and edge[0]["kept"] == ["a"]
    first = edge[0]["accuracy_without"][0]
    assert first["a"] < 0.6 < min(first["b"], first["c"])
    sn.lint(g)


def _cheap_state(g):
    module = sn.compile(g)
    return SearchState(g, module, Editor(g, module), evaluate=lambda: 0.5,
                       train=lambda n: None)


def test_edges_are_decided_once_each_in_a_seeded_random_order():
    orders = []
    for seed in (0, 1, 0):
        g = net(("normal",), steps=3, ops=["skip_connect", "avg_pool_3x3", "none"])
        state = _cheap_state(g)
        policy = DartsPT(seed=seed)
        policy.finalize(state)
        orders.append([d["edge"] for d in policy.decisions if d["kind"] == "op"])
    assert sorted(orders[0]) == sorted(orders[1]) and len(set(orders[0])) == 9
    assert orders[0] == orders[2] and orders[0] != orders[1]
    g = net(("normal",), steps=3, ops=["skip_connect", "avg_pool_3x3", "none"])
    policy = DartsPT(order="sequential")
    policy.finalize(_cheap_state(g))
    seq = [d["edge"].split("/", 1)[1] for d in policy.decisions if d["kind"] == "op"]
    assert seq == ["p0/n2", "p1/n2", "p0/n3", "p1/n3", "n2/n3", "p0/n4", "p1/n4", "n2/n4", "n3/n4"]
    # then the topology: the nodes with more inputs than max_inputs
    nodes = [d["node"] for d in policy.decisions if d["kind"] == "edge"]
    assert nodes == ["normal/n3", "normal/n4"]


@pytest.fixture(scope="module")
def tuned():
    g = net(("normal",), steps=2)
    policy = DartsPT(tune=1)
    search = MiniSearch(g, policy, epochs=2)
    return policy, search, search.run()


def test_tunes_between_decisions_and_meets_the_constraints(tuned):
    policy, search, state = tuned
    rounds = len(policy.decisions)
    assert rounds == 5 + 1  # 5 edges, then node n3
    assert search.train_calls == [1] * (rounds - 1)
    t = state.graph.cells["normal"]
    assert {v: t.nx.in_degree(v) for v in ("n2", "n3")} == {"n2": 2, "n3": 2}
    assert all(len(d["ops"]) == 1 and d["ops"] != ["none"]
               for u, v, d in t.nx.edges(data=True) if v.startswith("n"))
    assert state.module.relaxation is None and not state.module.gates()
    sn.lint(state.graph)


def test_the_edit_log_replays(tuned):
    _, _, state = tuned
    g = net(("normal",), steps=2)
    EditLog(list(state.editor.log)).replay(g)
    assert g.same_as(state.graph)


def test_decisions_at_epoch_ends_let_the_loop_tune():
    g = net(("normal",), steps=2, ops=["skip_connect", "sep_conv_3x3", "none"])
    probe = sn.compile(net(("normal",), steps=2, ops=["skip_connect", "sep_conv_3x3", "none"]))
    epochs = darts_pt_epochs(g, probe, start=1, interval=1)
    assert epochs == 1 + 1 * (5 + 1 - 1) + 1  # 5 edges and node n3: 6 rounds
    policy = DartsPT(start=1, interval=1)
    search = MiniSearch(g, policy, epochs=epochs)
    state = search.run(finalize=False)
    assert len(policy.decisions) == 6 and not search.train_calls
    policy.finalize(state)
    assert len(policy.decisions) == 6
    sn.lint(state.graph)


def test_bad_settings_are_refused():
    with pytest.raises(ConfigError, match="order must be 'random' or 'sequential'"):
        DartsPT(order="greedy")
    with pytest.raises(ConfigError, match="interval must be a positive int"):
        DartsPT(interval=0)
