"""PC-DARTS: partial channels (the compiler's ``partial`` edge attribute) and edge
normalization."""

import pytest
import torch
import torch.nn as nn
from search_graphs import darts_like

from supernet import Graph, compile, lint
from supernet.edits import Editor, RemoveEdge
from supernet.errors import ShapeError
from supernet.gates import mix_candidates
from supernet.search import discretize
from supernet.search.relaxations import (
    PartialChannels,
    PartialDecision,
    channel_shuffle,
    mark_partial,
    use_relaxation,
)
from supernet.search.relaxations.partial import BETA_PREFIX

OPS = ["sep_conv_3x3", "max_pool_3x3", "skip_connect", "none"]


def node_graph(C=8, stride=1):
    """Node n sums two gated edges from x and a."""
    g = Graph("layer", name="pc")
    g.add_input("x", channels=C)
    g.add_node("a", channels=C)
    g.add_edge("x", "a", "conv_3x3")
    g.add_node("n", channels=C)
    g.add_edge("x", "n", OPS, stride=stride)
    g.add_edge("a", "n", OPS, stride=stride)
    g.set_outputs(["n"])
    return g


def test_partial_edges_build_ops_for_c_over_k_channels():
    g = node_graph(C=8)
    assert mark_partial(g, 4) == 2
    net = compile(g)
    sep = net.edge_module("x", "n")["sep_conv_3x3"]
    convs = [m for m in sep.modules() if isinstance(m, nn.Conv2d)]
    assert {m.in_channels for m in convs} == {2} and {m.out_channels for m in convs} == {2}
    seen = []
    for name in OPS:
        net.edge_module("x", "n")[name].register_forward_hook(
            lambda m, i, o: seen.append(i[0].shape[1]))
    use_relaxation(net, PartialChannels(4))
    y = net(torch.randn(2, 8, 6, 6))
    assert y.shape == (2, 8, 6, 6)
    assert seen and set(seen) == {2}  # every op (but the skipped zero op) sees C/K channels
    g2 = node_graph(C=6)
    mark_partial(g2, 4)
    with pytest.raises(ShapeError, match=r"partial=4 needs .* divisible by 4, got 6 -> 6"):
        compile(g2)


def test_partial_mixture_bypass_shuffle_and_pooled_reduction():
    ops = [nn.Conv2d(2, 2, 3, padding=1), nn.Identity()]
    w = torch.tensor([[0.3, 0.7]])
    x = torch.randn(2, 8, 6, 6)
    d = PartialDecision(w, k=4, scale=torch.tensor(0.25))
    y = d.mix(0, ops, [False, False], x)
    mixed = mix_candidates(ops, [False, False], x[:, :2], w[0], range(2))
    want = channel_shuffle(torch.cat([mixed, x[:, 2:]], 1), 4) * 0.25
    assert torch.allclose(y, want, atol=1e-6)
    # stride 2: the bypass is max-pooled 2x2
    ops = [nn.Conv2d(2, 2, 3, stride=2, padding=1), nn.AvgPool2d(3, 2, 1)]
    y = PartialDecision(w, k=4).mix(0, ops, [False, False], x)
    mixed = mix_candidates(ops, [False, False], x[:, :2], w[0], range(2))
    want = channel_shuffle(torch.cat([mixed, nn.functional.max_pool2d(x[:, 2:], 2, 2)], 1), 4)
    assert torch.allclose(y, want, atol=1e-6)


def test_edge_normalization_weights_each_edge_by_softmax_over_node_inputs():
    g = node_graph(C=8)
    mark_partial(g, 4)
    net = compile(g).eval()
    use_relaxation(net, PartialChannels(4))
    beta = net.arch[BETA_PREFIX + "n"]
    assert beta.shape == (1, 2)
    assert any(p is beta for p in net.arch_parameters())
    x = torch.randn(2, 8, 6, 6)
    with torch.no_grad():
        beta.copy_(torch.tensor([[0.0, 50.0]]))  # the edge from a takes all the weight
    only_a = net(x)
    with torch.no_grad():
        beta.copy_(torch.tensor([[50.0, 0.0]]))
    only_x = net(x)
    dec = net.relaxation(dict(net.arch.items()))
    want_x = dec["x->n"].mix(0, list(net.edge_module("x", "n").values()),
                             net.plan.edge("x", "n").zero, x)
    assert torch.allclose(only_x, want_x, atol=1e-5)
    assert not torch.allclose(only_a, only_x)
    # discretization ranks edges by softmax(alpha) * softmax(beta)
    probs = net.relaxation.probabilities(net)
    assert probs["a->n"].sum() < 1e-6 + probs["x->n"].sum()


def test_beta_follows_edits_and_goes_with_discretization():
    g = darts_like(C=4)
    mark_partial(g, 4)
    net = compile(g)
    use_relaxation(net, PartialChannels(4))
    key = BETA_PREFIX + "normal:n1"
    assert net.arch[key].shape == (1, 3)
    with torch.no_grad():
        net.arch[key].copy_(torch.tensor([[1.0, 2.0, 3.0]]))
    opt = torch.optim.Adam(net.arch_parameters())
    Editor(g, net, [opt]).apply(RemoveEdge("c0", "n1", cell="normal"))
    assert net.arch[key].tolist() == [[2.0, 3.0]]  # surviving edges keep their weights
    assert any(p is net.arch[key] for p in opt.param_groups[0]["params"])
    net(torch.randn(2, 3, 8, 8))
    discretize(g, net)
    lint(g)
    assert len(net.arch) == 0 and net.relaxation is None
    # discretized edges run all their channels again
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d) and m.groups > 1]
    assert all(m.in_channels in (4, 8) for m in convs)
    assert net(torch.randn(2, 3, 8, 8)).shape == (2, 3)


def test_beta_optimizer_state_follows_the_surviving_edges():
    # A resized edge-normalization parameter continues the Adam state of the edges that
    # survive, as resized gate logits do: moments sliced, step count kept.
    g = darts_like(C=4)
    mark_partial(g, 4)
    net = compile(g)
    use_relaxation(net, PartialChannels(4))
    key = BETA_PREFIX + "normal:n1"
    opt = torch.optim.Adam(net.arch_parameters(), lr=0.01)
    for _ in range(2):
        opt.zero_grad()
        net(torch.randn(2, 3, 8, 8)).pow(2).sum().backward()
        opt.step()
    old = {k: v.clone() for k, v in opt.state[net.arch[key]].items()}
    assert old["exp_avg"].abs().sum() > 0
    Editor(g, net, [opt]).apply(RemoveEdge("c0", "n1", cell="normal"))
    new = opt.state[net.arch[key]]
    assert torch.equal(new["exp_avg"], old["exp_avg"][:, 1:])
    assert torch.equal(new["exp_avg_sq"], old["exp_avg_sq"][:, 1:])
    assert float(new["step"]) == float(old["step"]) == 2.0
    assert sum(p is net.arch[key] for g_ in opt.param_groups for p in g_["params"]) == 1


def test_channel_shuffle_keeps_channels_last():
    x = torch.randn(2, 8, 5, 3)
    want = channel_shuffle(x, 4)
    assert torch.equal(want[:, 1], x[:, 2]) and torch.equal(want[:, 2], x[:, 4])
    y = channel_shuffle(x.contiguous(memory_format=torch.channels_last), 4)
    assert torch.equal(y, want)
    assert y.is_contiguous(memory_format=torch.channels_last) and not y.is_contiguous()
