"""GNN space: super-network, NAS-Bench-Graph mapping, oracle comparison, text round trips."""

import itertools

import pytest
import torch
import torch.nn as nn
from space_helpers import assert_files_round_trip, load_by_position, n_params
from torch_geometric.data import Batch, Data
from torch_geometric.nn import ChebConv, GATConv, GCNConv, GINConv, SAGEConv

import supernet
from search_spaces import create_space, gnn
from search_spaces import decode as registry_decode
from search_spaces import encode as registry_encode
from supernet.errors import ConfigError, GenotypeError, ShapeError, SupernetError

KW = dict(in_channels=5, hidden=8, num_classes=3)


def tiny_graph(n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    src = torch.arange(n)
    dst = (src + 1) % n
    extra = torch.randint(0, n, (2, n), generator=g)
    edge_index = torch.cat([torch.stack([src, dst]), torch.stack([dst, src]), extra], dim=1)
    return Data(x=torch.randn(n, 5, generator=g), edge_index=edge_index)




# --------------------------------------------------------------------------- super-network
def test_super_network_lint_compile_forward_backward():
    g = create_space("gnn", **KW)
    assert g.meta["space"] == "gnn"
    assert g.meta["constraints"] == {"": {"max_inputs": 1, "exclude": ["none"]}}
    assert g.meta["dag"] == ["pre1", "n1", "n2", "n3", "n4"]
    assert len(g.gate_edges()) == 1 + 2 + 3 + 4
    assert g.edge("pre1", "n1")["ops"] == ["gcn", "gat", "gin", "sage", "cheb", "arma",
                                           "graphconv", "linear", "identity", "none"]
    supernet.lint(g)
    net = supernet.compile(g)
    data = tiny_graph()
    y = net(data.x, edge_index=data.edge_index)
    assert y.shape == (6, 3)
    y.sum().backward()
    assert all(a.grad is not None and a.grad.abs().sum() > 0 for a in net.arch_parameters())


def test_super_network_on_a_batch_with_readout():
    g = gnn.gnn(nodes=2, readout="mean", post=1, dropout=0.1, **KW)
    supernet.lint(g)
    net = gnn.OnData(supernet.compile(g))
    batch = Batch.from_data_list([tiny_graph(5, 1), tiny_graph(7, 2)])
    y = net(batch)
    assert y.shape == (2, 3)
    y.sum().backward()


def test_on_data_runs_a_single_graph():
    net = gnn.OnData(supernet.compile(gnn.decode("gcn~0 sage~1", **KW)))
    data = tiny_graph()
    torch.testing.assert_close(net(data), net.net(data.x, edge_index=data.edge_index))
    assert net(data).shape == (6, 3)


def test_missing_context_is_a_clear_error():
    net = supernet.compile(gnn.decode("gcn~0", **KW))
    with pytest.raises(SupernetError, match=r"needs context \['edge_index'\]; pass it by keyword"):
        net(torch.randn(4, 5))


def test_skip_is_left_out_where_widths_differ():
    g = gnn.gnn(pre=0, nodes=2, **KW)  # node 0 is the raw input: 5 channels, hidden 8
    assert "identity" not in g.edge("x", "n1")["ops"]
    assert "identity" in g.edge("n1", "n2")["ops"]
    supernet.lint(g)
    with pytest.raises(ShapeError, match=r"edge x->n1: no candidate fits \(5 -> 8 channels"):
        gnn.gnn(pre=0, ops=["skip"], **KW)


def test_discretized_super_network_is_the_benchmark_network():
    # Discretize as the searches do (keep one in-edge and one non-'none' op per node).
    g = gnn.gnn(**KW)
    picks = {"n1": ("pre1", "gcn"), "n2": ("n1", "gin"), "n3": ("n2", "linear"),
             "n4": ("n1", "cheb")}
    for v, (keep, op) in picks.items():
        for u, _ in g.in_edges(v):
            if u == keep:
                g.set_ops(u, v, [op])
            else:
                g.remove_edge(u, v)
    supernet.lint(g)
    text = gnn.encode(g)
    assert text == "gcn~0 gin~1 linear~2 cheb~1"
    bench = gnn.decode(text, **KW)
    assert [u for u, _ in bench.in_edges("out")] == ["n3", "n4"]  # leaves only
    assert gnn.to_nas_bench_graph(bench) == ([0, 1, 2, 1], ["gcn", "gin", "fc", "cheb"])


# --------------------------------------------------------------------------- NAS-Bench-Graph
@pytest.mark.parametrize("link", gnn.BENCH_LINKS)
def test_every_link_and_op_round_trips(link):
    for op in gnn.BENCH_OPS:
        ops = [op] * 4
        g = gnn.from_nas_bench_graph(list(link), ops, **KW)
        assert gnn.to_nas_bench_graph(g) == (list(link), ops)
        assert gnn.decode(gnn.encode(g), **KW).same_as(g)
    ops = [gnn.BENCH_OPS[(i + sum(link)) % 9] for i in range(4)]
    g = gnn.from_nas_bench_graph(list(link), ops, **KW)
    supernet.lint(g)
    assert gnn.to_nas_bench_graph(g) == (list(link), ops)
    leaves = [f"n{i}" for i in range(1, 5) if i not in link]
    assert [u for u, _ in g.in_edges("out")] == leaves


def test_every_op_compiles_and_runs():
    data = tiny_graph()
    for ops in (["gat", "gcn", "gin", "cheb"], ["sage", "arma", "graph", "fc"],
                ["skip", "gcn", "skip", "gat"]):
        g = gnn.from_nas_bench_graph([0, 1, 2, 3], ops, **KW)
        net = supernet.compile(g)
        y = net(data.x, edge_index=data.edge_index)
        assert y.shape == (6, 3)
        y.square().sum().backward()


def test_non_canonical_link_round_trips():
    for link in itertools.product(range(1), range(2), range(3), range(4)):
        g = gnn.from_nas_bench_graph(list(link), ["gcn", "sage", "fc", "skip"], **KW)
        assert gnn.to_nas_bench_graph(g)[0] == list(link)


def test_accepts_an_arch_object():
    class Arch:
        link, ops = [0, 0, 1, 2], ["gat", "gcn", "graph", "skip"]

    g = gnn.from_nas_bench_graph(Arch(), **KW)
    assert gnn.encode(g) == "gat~0 gcn~0 graphconv~1 skip~2"


def test_facts_agree_with_the_benchmark_package():
    nbg = pytest.importorskip("nas_bench_graph")
    assert [list(lk) for lk in gnn.BENCH_LINKS] == nbg.architecture.link_list
    assert list(gnn.BENCH_OPS) == nbg.architecture.gnn_list
    bench = nbg.light_read("cora")
    for link, ops in [((0, 1, 2, 3), ["gcn", "gin", "fc", "cheb"]),
                      ((0, 0, 1, 2), ["gat", "sage", "arma", "graph"])]:
        g = gnn.from_nas_bench_graph(list(link), ops, **KW)
        arch = nbg.Arch(*gnn.to_nas_bench_graph(g))
        assert arch.valid_hash() in bench


# --------------------------------------------------------------------------- oracle
class Oracle(nn.Module):
    """NAS-Bench-Graph-style network written by hand: linear pre-processing, one PyG layer
    per computing node (each followed by ReLU), the leaves summed, a linear classifier."""

    def __init__(self, link, layers, hidden, num_classes):
        super().__init__()
        self.link = link
        self.pre = nn.Linear(5, hidden)
        self.layers = nn.ModuleList(layers)
        self.head = nn.Linear(hidden, num_classes)

    def forward(self, x, edge_index):
        states = [self.pre(x).relu()]
        for j, layer in zip(self.link, self.layers):
            h = states[j]
            h = layer(h) if isinstance(layer, nn.Linear) else layer(h, edge_index)
            states.append(h.relu())
        leaves = [states[i] for i in range(1, 5) if i not in self.link]
        out = leaves[0]
        for h in leaves[1:]:
            out = out + h
        return self.head(out)


def test_network_matches_hand_written_oracle():
    H = 8
    link = [0, 1, 1, 2]
    layers = [GCNConv(H, H), GATConv(H, H, heads=2, concat=False),
              GINConv(nn.Sequential(nn.Linear(H, H), nn.ReLU(), nn.Linear(H, H))),
              ChebConv(H, H, K=2)]
    ref = Oracle(link, layers, H, 3)
    ours = supernet.compile(gnn.from_nas_bench_graph(link, ["gcn", "gat", "gin", "cheb"], **KW))
    assert n_params(ours) == n_params(ref)
    load_by_position(ours, ref)
    data = tiny_graph()
    torch.testing.assert_close(ours(data.x, edge_index=data.edge_index),
                               ref(data.x, data.edge_index))
    ref2 = Oracle([0, 0, 0, 0], [SAGEConv(H, H), nn.Linear(H, H), SAGEConv(H, H),
                                 nn.Linear(H, H)], H, 3)
    ours2 = supernet.compile(gnn.from_nas_bench_graph([0, 0, 0, 0], ["sage", "fc", "sage", "fc"],
                                                      **KW))
    load_by_position(ours2, ref2)
    torch.testing.assert_close(ours2(data.x, edge_index=data.edge_index),
                               ref2(data.x, data.edge_index))


# --------------------------------------------------------------------------- text
@pytest.mark.parametrize("text", ["gcn~0 gin~1 linear~2 cheb~1", "gat~0 none~0+skip~1",
                                  "arma~0 sage~0+graphconv~1 linear~2+gcn~0"])
def test_text_round_trip(text):
    g = gnn.decode(text, **KW)
    supernet.lint(g)
    assert gnn.encode(g) == text
    assert registry_encode(registry_decode("gnn", text, **KW)) == text


@pytest.mark.parametrize("text, match", [
    ("gcn~0 conv~1", r"node 2: token 'conv~1' names unknown op 'conv'; accepted ops: \['gcn'"),
    ("gcn~0 gin-1", r"node 2: token 'gin-1' is not of the form 'op~input'"),
    ("gcn~0 gin~2", r"node 2: token 'gin~2': input 2 .*accepted inputs: \[0, 1\]"),
    ("gcn~0 gin~0+sage~0", r"token 'sage~0': input 0 .*repeated"),
    ("   ", r"expected one 'op~input' token per computing node"),
])
def test_malformed_text(text, match):
    with pytest.raises(GenotypeError, match=match):
        gnn.decode(text, **KW)


def test_impossible_shape_in_text():
    with pytest.raises(GenotypeError, match=r"node 1: token 'skip~0': skip keeps the width, "
                                            r"but node 0 has 5 channels and computing nodes 8"):
        gnn.decode("skip~0 gcn~1", pre=0, **KW)


def test_bad_benchmark_architectures():
    with pytest.raises(GenotypeError, match=r"link\[2\] = 3; accepted: \[0, 1, 2\]"):
        gnn.from_nas_bench_graph([0, 1, 3, 0], ["gcn"] * 4)
    with pytest.raises(GenotypeError, match=r"op 'graphconv'; accepted: \['gat', 'gcn'"):
        gnn.from_nas_bench_graph([0, 1, 2, 3], ["graphconv"] * 4)
    with pytest.raises(GenotypeError, match=r"must have 4 entries"):
        gnn.from_nas_bench_graph([0, 1], ["gcn", "gcn"])
    with pytest.raises(GenotypeError, match=r"4 computing nodes of one input each; this graph "
                                            r"is 'gcn~0 gin~1'"):
        gnn.to_nas_bench_graph(gnn.decode("gcn~0 gin~1", **KW))
    with pytest.raises(GenotypeError, match=r"op\(s\) \['none'\] are not NAS-Bench-Graph ops"):
        gnn.to_nas_bench_graph(gnn.decode("gcn~0 gin~1 none~2 gcn~3", **KW))
    with pytest.raises(GenotypeError, match=r"edge pre1->n1 still has 10 candidate ops"):
        gnn.encode(gnn.gnn(**KW))


def test_bad_configuration():
    with pytest.raises(ConfigError, match=r"readout 'max'; accepted: \[None, 'mean', 'add'\]"):
        gnn.gnn(readout="max", **KW)
    with pytest.raises(ConfigError, match=r"gnn: hidden must be a positive int, got 0"):
        gnn.gnn(in_channels=4, hidden=0)
    with pytest.raises(GenotypeError, match=r"unknown op\(s\) \['fc'\]; accepted: \['gcn'"):
        gnn.gnn(ops=["gcn", "fc"], **KW)


@pytest.mark.parametrize("make", [lambda: gnn.gnn(**KW),
                                  lambda: gnn.decode("gcn~0 gin~1 linear~2 cheb~1", **KW)])
def test_graph_files_round_trip(make, tmp_path):
    assert_files_round_trip(make(), tmp_path)
