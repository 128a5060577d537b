"""torch_layers: a pruned channel-level graph as torch's own layers, oracle-checked against
the compiled module."""

import numpy as np
import pytest
import torch
import torch.nn as nn
from search_spaces import create_space

from supernet import Graph, compile
from supernet.compiler.standalone import torch_layers
from supernet.edits import Editor
from supernet.errors import SearchError
from supernet.search import scores
from supernet.search.discretize.units import prune
from supernet.units import add_group, add_input, connect


def _pruned_cnn():
    g = create_space("channel_cnn", widths=(4, 8), depths=(2, 1), in_channels=1,
                     num_classes=3, input_size=8, gated=())
    net = compile(g, seed=0)
    net.train()
    x = torch.randn(16, 1, 8, 8)
    for _ in range(2):  # non-trivial running statistics
        net(x)
    s = scores.magnitude(net, what="units")
    s = {"s1b1_c1": s["s1b1_c1"], "s2b1_c1": s["s2b1_c1"], "s2b1_c2": s["s2b1_c2"]}
    ed = Editor(g, net)
    for edit in prune(g, s, 0.5, what="units", scope="layer"):
        ed.apply(edit)
    return g, net, x


def test_torch_layers_are_real_convolutions_of_the_pruned_widths_and_compute_the_same():
    g, net, x = _pruned_cnn()
    plain = torch_layers(g, net)
    convs = {n[len("edges."):]: m for n, m in plain.named_modules() if isinstance(m, nn.Conv2d)}
    for key, conv in convs.items():
        u, v = key.split("->")
        assert conv.weight.shape[:2] == (len(g.node(v)["units"]), len(g.node(u)["units"]))
    assert convs["stem->s1b1_c1"].out_channels == 2  # 4 pruned to 2
    assert convs["s1b2->s2b1_proj"].out_channels == 4  # the stream: 8 to 4
    assert not any(type(m).__module__.startswith("supernet") for m in plain.modules())
    for mode in ("eval", "train"):
        getattr(net, mode)()
        getattr(plain, mode)()
        assert (plain(x) - net(x)).abs().max() < 1e-5
    # a copy: training the export leaves the compiled module alone
    before = net.block("x", "stem").weight.detach().clone()
    with torch.no_grad():
        plain.get_submodule("edges.x->stem").weight.add_(1.0)
    assert torch.equal(net.block("x", "stem").weight, before)


def test_torch_layers_conv1d_sparse_kernels_and_node_bias():
    g = Graph("channel", name="seq")
    add_input(g, "x", 2)
    add_group(g, "a", 5, act="tanh", norm="batchnorm")  # bias folded into the first conv
    connect(g, "x", "a", "conv", kernel=[3], density=0.6, seed=1)
    add_group(g, "b", 4, act="gelu")
    connect(g, "a", "b", "conv", kernel=[1], padding=0)
    connect(g, "x", "b", "conv", kernel=[1], padding=0)
    add_group(g, "y", 3)
    connect(g, "b", "y", "dense", pool="global_avg")
    g.set_outputs(["y"])
    net = compile(g, seed=0).eval()
    plain = torch_layers(g, net).eval()
    assert isinstance(plain.get_submodule("edges.x->a"), nn.Conv1d)
    assert isinstance(plain.get_submodule("norms.a"), nn.BatchNorm1d)
    w = plain.get_submodule("edges.x->a").weight.detach()
    mask = g.edge("x", "a")["mask"].toarray()
    assert np.all(w.abs().sum(-1).numpy()[mask == 0] == 0)  # missing kernels are zeros
    x = torch.randn(3, 2, 12)
    assert (plain(x) - net(x)).abs().max() < 1e-5


def test_torch_layers_refuses_gates_and_layer_graphs():
    g = create_space("channel_cnn", widths=(4,), depths=(1,), num_classes=2, input_size=8)
    with pytest.raises(SearchError, match=r"gate\(s\) left .*discretize the graph"):
        torch_layers(g)
    lg = Graph("layer", name="L")
    lg.add_input("x", channels=3)
    lg.add_node("h", channels=4)
    lg.add_edge("x", "h", "conv_3x3")
    lg.set_outputs(["h"])
    with pytest.raises(SearchError, match="layer-level.*use standalone"):
        torch_layers(lg)


def test_torch_pruning_reads_the_export_and_agrees_with_our_widths():
    tp = pytest.importorskip("torch_pruning")
    g = create_space("channel_cnn", widths=(4, 8), depths=(1, 1), in_channels=1,
                     num_classes=3, input_size=8, gated=())
    net = compile(g, seed=0).eval()
    plain = torch_layers(g, net).eval()
    head = [m for m in plain.modules() if isinstance(m, nn.Linear)]
    tp.pruner.MetaPruner(plain, torch.randn(1, 1, 8, 8),
                         importance=tp.importance.MagnitudeImportance(p=1),
                         pruning_ratio=0.5, ignored_layers=head).step()
    theirs = {n[len("edges."):]: m.out_channels for n, m in plain.named_modules()
              if isinstance(m, nn.Conv2d)}
    # ours: the same L1 criterion, one decision per residual stream (scored at one node)
    s = scores.magnitude(net, what="units")
    ed = Editor(g, net)
    for edit in prune(g, {n: s[n] for n in ("stem", "s1b1_c1", "s2b1_c1", "s2b1_proj")},
                      0.5, what="units", scope="layer"):
        ed.apply(edit)
    ours = {key: len(g.node(key.split("->")[1])["units"]) for key in theirs}
    assert theirs == ours
    assert plain(torch.randn(2, 1, 8, 8)).shape == (2, 3)
