"""The unit-level cost model against counts taken from compiled modules: existing weights
of every block, per-unit parameters of every node, output sizes of a real forward pass."""

import math

import numpy as np
import pytest
import torch

import supernet
from search_spaces import create_space
from supernet import Graph
from supernet.compiler.blocks import GridBlock, SparseBlock
from supernet.cost.units import keep_probabilities, unit_cost
from supernet.edits import Editor
from supernet.edits.units import RemoveConnections, RemoveUnits
from supernet.errors import GraphError, ShapeError, SupernetError
from supernet.gates import Decision
from supernet.search.discretize.units import decision_edits as discretize
from supernet.search.relaxations import TiedGates, use_relaxation
from supernet.units import add_group, add_input, connect


def existing_weights(block) -> int:
    """Weights a compiled block really has (connections present in its mask)."""
    if isinstance(block, SparseBlock):
        return block.values.numel()
    if isinstance(block, GridBlock):
        return block.weight.numel() if block.mask_t is None else int(block.mask_t.sum())
    return 0


def check_against_module(graph, net, inputs):
    """Every node and edge of the report equals the count from the compiled module."""
    report = unit_cost(graph, tuple(inputs[0].shape[1:]))
    net.eval()
    with torch.no_grad():
        values = net.run(inputs)
    for v in graph.nx.nodes:
        if graph.node(v)["kind"] == "input":
            continue
        assert report.shapes[v] == tuple(values[v].shape[1:]), v
        params = sum(p.numel() for p in net.unit_params(v).parameters())
        assert report.nodes[v].params == params, v
        if graph.node(v).get("norm"):
            assert report.nodes[v].bn == values[v][0].numel()
    for (u, v), c in report.edges.items():
        w = existing_weights(net.block(u, v))
        assert c.params == w, (u, v)
        out = values[v].shape[2:]
        assert c.macs == w * math.prod(out), (u, v)
    return report


def test_channel_resnet_counts_match_the_compiled_module():
    g = create_space("channel_cnn", widths=(4, 8), depths=(2, 1), num_classes=3, input_size=8)
    net = supernet.compile(g)
    report = check_against_module(g, net, (torch.randn(2, 3, 8, 8),))
    assert report.total.params == sum(p.numel() for p in net.weights())
    assert report.shapes["s2b1"] == (8, 4, 4) and report.shapes["head"] == (3,)
    assert report.edges[("s1b2", "s2b1_proj")].macs == 8 * 4 * 16  # 1x1, stride 2
    assert report.pools == {("s2b1", '"global_avg"'): report.pools[("s2b1", '"global_avg"')]}
    assert report.pools[("s2b1", '"global_avg"')].pool == 8 * 16


def test_a_resnet_written_in_torch_costs_the_same():
    # stem 3->4, one basic block at 4 channels, one at 8 with a projection, head.
    g = create_space("channel_cnn", widths=(4, 8), depths=(1, 1), num_classes=3,
                     input_size=16)
    r = unit_cost(g)  # the input shape recorded on the input node
    nn = torch.nn
    convs = [nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.Conv2d(4, 4, 3, padding=1, bias=False),
             nn.Conv2d(4, 4, 3, padding=1, bias=False),
             nn.Conv2d(4, 8, 3, stride=2, padding=1, bias=False),
             nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.Conv2d(4, 8, 1, stride=2, bias=False)]
    sizes = [16, 16, 16, 8, 8, 8]
    macs = sum(c.weight.numel() * s * s for c, s in zip(convs, sizes)) + 8 * 3
    bns = [4, 4, 4, 8, 8, 8]
    params = sum(c.weight.numel() for c in convs) + 2 * sum(bns) + 8 * 3 + 3
    assert (r.total.macs, r.total.params) == (macs, params)
    assert r.total.bn == sum(b * s * s for b, s in zip(bns, sizes))


def test_sparse_neuron_mlp_counts_only_existing_synapses():
    g = create_space("neuron_mlp", in_features=64, hidden=(80, 40), num_classes=10,
                     density=0.1, skip_density=0.05, gated=())
    net = supernet.compile(g)
    assert any(isinstance(net.block(u, v), SparseBlock) for u, v in g.nx.edges)
    report = check_against_module(g, net, (torch.randn(3, 64),))
    nnz = sum(g.edge(u, v)["mask"].nnz for u, v in g.nx.edges)
    assert report.total.macs == nnz
    assert report.total.params == nnz + 80 + 40 + 10
    assert report.total.params == sum(existing_weights(b) for b in net.edges.values()) + 130


def test_counts_follow_removals_of_units_and_kernels():
    g = create_space("channel_cnn", widths=(4, 8), depths=(1, 1), num_classes=3, input_size=8,
                     gated=())
    net = supernet.compile(g)
    ed = Editor(g, net)
    ed.apply(RemoveUnits({"s1b1": [2]}))  # a residual channel: stem, c2 and block output
    ed.apply(RemoveConnections("s1b1_c1", "s1b1_c2", dst=[0, 1, 3], src=[0, 0, 1]))
    report = check_against_module(g, net, (torch.randn(2, 3, 8, 8),))
    assert report.edges[("s1b1_c1", "s1b1_c2")].params == (3 * 4 - 3) * 9
    assert report.shapes["stem"][0] == 3


def test_neuron_level_conv_counts_taps():
    g = Graph("neuron", name="taps")
    add_input(g, "x", 2)
    add_group(g, "c", 3, bias=False)
    mask = np.zeros((3, 2 * 9), bool)
    mask[0, :9] = True  # one whole kernel
    mask[1, [0, 4, 13]] = True  # three taps
    connect(g, "x", "c", "conv", kernel=3, stride=2, mask=mask)
    add_group(g, "d", 2, bias=False)
    connect(g, "c", "d", "conv", kernel=1, padding=0, pool={"kind": "avg", "kernel": 2})
    add_group(g, "y", 2)
    connect(g, "d", "y", "dense", pool="global_max")
    g.set_outputs(["y"])
    net = supernet.compile(g)
    report = check_against_module(g, net, (torch.randn(2, 2, 9, 9),))
    assert report.edges[("x", "c")].params == 12
    assert report.edges[("x", "c")].macs == 12 * 25
    assert report.shapes["d"] == (2, 2, 2) and report.edges[("c", "d")].macs == 6 * 4
    pool = report.pools[("c", '{"kernel": [2, 2], "kind": "avg", "padding": [0, 0], '
                              '"stride": [2, 2]}')]
    assert pool.pool == 3 * 4 * 4  # 3 channels of 2x2 windows, 4 reads each
    assert report.pools[("d", '"global_max"')].pool == 8
    g.edge("d", "y")["pool"] = None
    with pytest.raises(ShapeError, match=r"edge d->y: a dense edge reads \(units,\) values, "
                                         r"got shape \(2, 2, 2\); pool it first"):
        unit_cost(g, (2, 9, 9))


def test_expected_cost_is_the_cost_of_what_a_hard_decision_keeps():
    g = create_space("channel_cnn", widths=(4, 8), depths=(2, 1), num_classes=3, input_size=8)
    net = supernet.compile(g, seed=0)
    use_relaxation(net, TiedGates())
    full = unit_cost(g)
    units, conns = keep_probabilities(net)
    for f in ("macs", "params", "bn", "pool"):
        ones = full.expected({n: torch.ones_like(p) for n, p in units.items()}, field=f)
        assert float(ones) == getattr(full.total, f)
    soft = full.expected(units, conns)
    soft.backward()
    assert all(net.arch[k].grad is not None and net.arch[k].grad.abs().sum() > 0
               for k in net.arch.keys())
    with torch.no_grad():
        for a in net.arch.values():
            a.copy_(torch.tensor([1.0, 0.0]))
        net.arch["s1b1"][1, 1] = 4.0  # a residual channel (ties: stem, c2, outputs)
        net.arch["s2b1_c1"][[0, 3, 5], 1] = 4.0
    choice = net.relaxation.choice(net)
    hard = {k: Decision(torch.nn.functional.one_hot(c, 2).float()) for k, c in choice.items()}
    units, conns = keep_probabilities(net, hard)
    assert torch.equal(units["s1b1_c2"], torch.tensor([1.0, 0.0, 1.0, 1.0]))  # ungated, tied
    predicted = {f: float(full.expected(units, conns, field=f))
                 for f in ("macs", "params", "bn", "pool")}
    for edit in discretize(net, choice=choice):
        Editor(g, net).apply(edit)
    after = unit_cost(g).total
    assert predicted == {f: getattr(after, f) for f in predicted}
    assert after.macs < full.total.macs


def test_errors_say_what_and_how():
    g = create_space("neuron_mlp", in_features=8, hidden=(4,), num_classes=2)
    with pytest.raises(ShapeError, match=r"input 'x' reads a tensor of width 8, got the shape "
                                         r"\(6,\); give \(width, \*spatial\)"):
        unit_cost(g, (6,))
    r = unit_cost(g)
    with pytest.raises(ShapeError, match=r"node 'h1' has 4 units, got 3 keep probabilities"):
        r.expected({"h1": torch.ones(3)})
    with pytest.raises(SupernetError, match=r"no edge\(s\) \['h1->x'\]"):
        r.expected(keep_connections={"h1->x": torch.ones(1)})
    with pytest.raises(GraphError, match="count channel- and neuron-level graphs with "
                                         "supernet.cost.unit_cost, or any graph with "
                                         "supernet.cost.cost"):
        from supernet.cost.layer import graph_cost

        graph_cost(g, (8,))
