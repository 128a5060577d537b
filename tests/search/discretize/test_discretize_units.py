"""End-of-search discretization at the neuron and channel levels: the relaxation's decision
becomes logged RemoveConnections / RemoveUnits / Ungate edits, the discretized network
computes what the gated network computed under that decision, ties and keep-one hold."""

import numpy as np
import pytest
import torch
from unit_search_helpers import check_final, cnn_data, mini_state, sizes, tiny_cnn, tiny_mlp

from supernet import Graph, compile, lint
from supernet.edits import EditLog, Editor
from supernet.edits.units import UngateConnections, UngateUnits
from supernet.errors import EditError, SearchError
from supernet.gates import Softmax
from supernet.search import ArgmaxDiscretization, derive, discretize
from supernet.search.choices.units import UnitChoiceSpace
from supernet.search.discretize.units import set_gated
from supernet.search.relaxations import GumbelMax, Sigmoid, TiedGates, use_relaxation
from supernet.search.relaxations.gumbel import StraightThroughDecision
from supernet.units import add_group, add_input, connect


def _random_logits(module, seed=0, scale=2.0):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for a in module.arch.values():
            a.copy_(scale * torch.randn(a.shape, generator=gen))


def _trained(module, x, y, steps=3):
    opt = torch.optim.SGD(module.weights(), lr=0.05, momentum=0.9)
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(module(x), y).backward()
        opt.step()


@pytest.mark.parametrize("build,shape", [(tiny_mlp, (6, 8)), (tiny_cnn, (6, 3, 8, 8))])
def test_discretized_network_computes_the_gated_decision(build, shape):
    graph = build()
    net = compile(graph, seed=0)
    x = torch.randn(*shape)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    if graph.meta.get("stream_gates"):
        use_relaxation(net, TiedGates(Softmax()))
    _trained(net, x, y)
    _random_logits(net)
    net.eval()
    space = UnitChoiceSpace(graph, net)
    choice = space.decide(net)
    with torch.no_grad():
        gated = net(x, gates=space.decisions(choice))
    before = sizes(graph)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    ed = Editor(graph, net, opt)
    edits = discretize(graph, net, ed)
    check_final(graph, net, before, x)
    with torch.no_grad():
        assert (net(x) - gated).abs().max() < 1e-5
    kinds = [type(e).__name__ for e in edits]
    assert kinds[-1] == "UngateUnits" and "RemoveUnits" in kinds
    assert [type(e).__name__ for e in ed.log] == kinds  # every change through the editor
    counts = space.count(choice)
    assert counts["unit_groups"] > 0


def test_argmax_policy_and_derive_agree_and_replay(tmp_path):
    graph = tiny_mlp()
    start = graph.copy()
    state = mini_state(graph, (torch.randn(8, 8), torch.randint(0, 3, (8,))))
    _random_logits(state.module, seed=3)
    planned = [e.to_dict() for e in derive(graph, state.module)]
    ArgmaxDiscretization().finalize(state)
    assert [e.to_dict() for e in state.editor.log] == planned
    assert {"RemoveConnections", "RemoveUnits", "UngateConnections", "UngateUnits"} == \
        {type(e).__name__ for e in state.editor.log}
    state.editor.log.save(str(tmp_path / "log.json"))
    assert EditLog.load(str(tmp_path / "log.json")).replay(start).same_as(graph)
    assert state.module.relaxation is None and len(state.module.arch) == 0
    assert state.weight_optimizer.param_groups[0]["params"]  # optimizers followed the edits
    assert state.arch_optimizer.param_groups[0]["params"] == []


def test_a_node_keeps_one_unit_when_every_gate_says_drop():
    graph = tiny_mlp(gated="units")
    net = compile(graph)
    with torch.no_grad():
        net.arch["h1"].copy_(torch.tensor([[0.0, 5.0]]).repeat(6, 1))
        net.arch["h1"][4] = torch.tensor([0.0, 1.0])  # the least certain drop
        net.arch["h2"].copy_(torch.tensor([[1.0, 0.0]]).repeat(5, 1))
    discretize(graph, net)
    assert graph.node("h1")["units"].tolist() == [4]
    assert len(graph.node("h2")["units"]) == 5


def _tied_graph():
    """Two conv groups added into one stream node: channel i of a, b and s is one group."""
    g = Graph("channel", name="tied")
    add_input(g, "x", 2)
    add_group(g, "a", 3, norm="batchnorm")
    connect(g, "x", "a", "conv", kernel=3)
    add_group(g, "b", 3, norm="batchnorm")
    connect(g, "x", "b", "conv", kernel=1, padding=0)
    add_group(g, "s", 3, act="relu", bias=False)
    connect(g, "a", "s", "identity")
    connect(g, "b", "s", "identity")
    add_group(g, "y", 2)
    connect(g, "s", "y", "dense", pool="global_avg")
    g.set_outputs(["y"])
    set_gated(g, units=["a", "b"])
    return g


def test_tied_units_decide_together():
    g = _tied_graph()
    net = compile(g)
    with torch.no_grad():  # channel 0: a keeps strongly, b drops mildly
        net.arch["a"].copy_(torch.tensor([[5.0, 0.0], [2.0, 0.0], [0.0, 3.0]]))
        net.arch["b"].copy_(torch.tensor([[0.0, 1.0], [2.0, 0.0], [0.0, 3.0]]))
    space = UnitChoiceSpace(g, net)
    assert space.size == 3  # one variable per tied channel
    # without a tied relaxation a group goes when any gated member says drop
    assert space.decide(net)["a"].tolist() == [1, 0, 1]
    # a tied relaxation decides once, on the mean logits: channel 0 stays
    use_relaxation(net, TiedGates(Softmax()))
    choice = space.decide(net)
    assert choice["a"].tolist() == choice["b"].tolist() == [0, 0, 1]
    discretize(g, net)
    assert [g.node(n)["units"].tolist() for n in "abs"] == [[0, 1]] * 3
    lint(g)


def test_tied_sampling_draws_one_sample_per_group():
    g = _tied_graph()
    net = compile(g)
    relax = TiedGates(GumbelMax())
    use_relaxation(net, relax)
    for _ in range(5):
        d = net.decisions()
        assert torch.equal(d["a"].weights, d["b"].weights)
        assert set(d["a"].weights[:, 0].tolist()) <= {0.0, 1.0}
        # each member keeps the base's kind of decision (GDAS' straight-through one)
        assert type(d["a"]) is type(d["b"]) is StraightThroughDecision


def test_tied_choice_of_channel_cnn_streams_is_honoured():
    graph = tiny_cnn()
    net = compile(graph, seed=0)
    use_relaxation(net, TiedGates(Softmax()))
    _random_logits(net, seed=1)
    want = net.relaxation.choice(net)
    discretize(graph, net)
    for stream, nodes in graph.meta["stream_gates"].items():
        kept = int((want[nodes[0]] == 0).sum())
        assert len(graph.node(nodes[0])["units"]) == max(kept, 1), stream


def test_fairdarts_keeps_by_the_keep_weight_alone():
    graph = tiny_mlp(gated="units")
    net = compile(graph)
    use_relaxation(net, Sigmoid())
    with torch.no_grad():  # sigma(keep) > 1/2 keeps, whatever the drop logit
        net.arch["h1"].copy_(torch.tensor([[0.5, 3.0], [-0.5, -3.0], [1, 0], [1, 0], [1, 0],
                                           [1, 0]]))
    assert UnitChoiceSpace(graph, net).decide(net)["h1"].tolist() == [0, 1, 0, 0, 0, 0]


def test_a_choice_must_fit_the_gates():
    graph = tiny_mlp()
    net = compile(graph)
    with pytest.raises(SearchError, match=r"no gate group 'h9'; groups: \['h1', 'h2'"):
        discretize(graph, net, choice={"h9": [1]})
    with pytest.raises(SearchError, match=r"gate group 'h1' has 6 rows, the choice gives 2"):
        discretize(graph, net, choice={"h1": [1, 0]})


def test_ungate_records_name_gated_entities_and_round_trip():
    graph = tiny_mlp()
    net = compile(graph)
    ed = Editor(graph, net)
    with pytest.raises(EditError, match=r"node 'y' has no keep/drop gates to fix"):
        ed.apply(UngateUnits(["h1", "y"]))
    assert graph.node("h1")["gated"]  # nothing changed
    ed.apply(UngateUnits(["h1"]))
    ed.apply(UngateConnections([["x", "h1"]]))
    assert "h1" not in net.arch and "x->h1" not in net.arch and "h2" in net.arch
    dumped = ed.log.to_list()
    assert dumped == [{"kind": "ungate_units", "nodes": ["h1"]},
                      {"kind": "ungate_connections", "edges": [["x", "h1"]]}]
    assert ed.log.counts() == {"neuron_removal": 1, "synaptic_pruning": 1}


def test_spos_paths_respect_ties_and_keep_one_unit():
    graph = tiny_cnn()
    net = compile(graph)
    space = UnitChoiceSpace(graph, net)
    import random

    rng = random.Random(0)
    streams = graph.meta["stream_gates"]
    seen = set()
    for _ in range(20):
        c = space.mutate(space.crossover(space.sample(rng), space.sample(rng), rng), 0.5, rng)
        for nodes in streams.values():
            assert all(np.array_equal(c[nodes[0]], c[n]) for n in nodes)
        for key in space.unit_keys:
            assert (c[key] == 0).any(), key
        seen.add(space.encode(c))
    assert len(seen) > 10
    x = cnn_data(4)[0]
    net.eval()
    c = space.sample(rng)
    with torch.no_grad():
        gated = net(x, gates=space.decisions(c))
    discretize(graph, net, choice=c)
    with torch.no_grad():
        assert (net(x) - gated).abs().max() < 1e-5


def test_tied_gates_must_be_attached():
    g = _tied_graph()
    net = compile(g)
    net.relaxation = TiedGates(Softmax())  # set by hand, never attached
    with pytest.raises(SearchError, match=r"TiedGates is not attached.*use_relaxation"):
        net(torch.randn(1, 2, 4, 4))


def test_tied_gates_decide_each_channel_cnn_stream_channel_once():
    # The oracle is the space's own list of a stream's gated nodes: channel i of each
    # takes the decision of the mean of their logits for channel i.
    graph = tiny_cnn()
    net = compile(graph, seed=0)
    _random_logits(net, seed=4)
    tied = TiedGates(Softmax())
    use_relaxation(net, tied)
    decided, choice = net.decisions(), tied.choice(net)
    streams = graph.meta["stream_gates"]
    for nodes in streams.values():
        mean = torch.stack([net.arch[n].detach() for n in nodes]).mean(0)
        for n in nodes:
            assert torch.allclose(decided[n].weights, torch.softmax(mean, -1)), n
            assert torch.equal(torch.as_tensor(choice[n]), torch.as_tensor(mean.argmax(-1))), n
    inner = [k for k in net.arch.keys() if not any(k in v for v in streams.values())]
    assert inner  # gates outside the streams decide alone
    for k in inner:
        assert torch.allclose(decided[k].weights, torch.softmax(net.arch[k].detach(), -1)), k