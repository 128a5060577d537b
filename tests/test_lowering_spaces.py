"""Lowering the ops and networks of the bundled spaces (DARTS, NAS-Bench-201, MobileNetV2):
cells inline, every op has a channel-level form computing the same outputs for the same
weights (eval and training mode), the ties hold what must go together, and a found network
is channel-pruned, compiled smaller and fine-tuned."""

import pytest
import torch

import supernet
from search_spaces import mobilenet as mb
from search_spaces import nasbench201 as nb
from search_spaces.darts import network_graph
from supernet import Graph
from supernet.data import load_dataset
from supernet.edits import Editor
from supernet.errors import GraphError
from supernet.lowering import inline, lower, lowering_error
from supernet.search import scores
from supernet.search.discretize.units import prune
from supernet.train.retrain import fine_tune
from supernet.units import dependency_groups

#: ``(op, C_in, C_out, args, spatial shape)``: every op of the bundled spaces, in the forms
#: their networks use (strided, width-changing, affine or not).
OPS = [
    ("sep_conv_3x3", 4, 4, {}, (7, 7)), ("sep_conv_5x5", 4, 6, {"stride": 2}, (7, 7)),
    ("sep_conv_7x7", 3, 4, {}, (6, 6)), ("dil_conv_3x3", 4, 4, {"stride": 2}, (7, 7)),
    ("dil_conv_5x5", 4, 5, {}, (7, 7)), ("skip_connect", 4, 4, {}, (7, 7)),
    ("skip_connect", 4, 6, {"stride": 2}, (7, 7)), ("skip_connect", 4, 6, {}, (6, 6)),
    ("factorized_reduce", 3, 4, {}, (6, 6)), ("preprocess", 5, 4, {}, (6, 6)),
    ("preprocess", 5, 4, {"stride": 2}, (7, 7)), ("relu_conv_bn", 4, 3, {"kernel_size": 3}, (6, 6)),
    ("conv_7x1_1x7", 4, 4, {"stride": 2}, (7, 7)), ("max_pool_3x3", 4, 4, {"stride": 2}, (7, 7)),
    ("avg_pool_3x3", 4, 4, {}, (7, 7)), ("avg_pool_3x3", 4, 4, {"pool_bn": True}, (6, 6)),
    ("stem_conv_bn", 3, 6, {}, (6, 6)), ("none", 4, 4, {}, (6, 6)), ("identity", 4, 4, {}, (6, 6)),
    ("nor_conv_1x1", 4, 4, {}, (6, 6)), ("nor_conv_3x3", 4, 4, {"affine": False}, (6, 6)),
    ("nor_conv_3x3", 4, 6, {"stride": 2}, (7, 7)), ("nb201_skip_connect", 4, 4, {}, (6, 6)),
    ("nb201_skip_connect", 4, 6, {}, (6, 6)),
    ("nb201_skip_connect", 4, 5, {"stride": 2, "affine": False}, (7, 7)),
    ("nb201_avg_pool_3x3", 4, 4, {}, (6, 6)), ("nb201_avg_pool_3x3", 4, 6, {"stride": 2}, (7, 7)),
    ("nb201_downsample", 4, 8, {"stride": 2}, (6, 6)), ("nb201_downsample", 4, 6, {}, (6, 6)),
    ("mbconv_3x3_e1", 4, 4, {}, (6, 6)), ("mbconv_5x5_e6", 4, 6, {"stride": 2}, (7, 7)),
    ("mbconv_7x7_e3", 4, 4, {"bn_eps": 1e-3}, (6, 6)), ("conv_bn_relu6", 3, 4, {"stride": 2}, (7, 7)),
    ("global_avg_pool", 4, 4, {}, (6, 6)), ("avg_pool", 4, 4, {"kernel_size": 3}, (6, 6)),
    ("linear", 6, 3, {}, ()), ("classifier", 6, 3, {}, ()),
]


@pytest.mark.parametrize("op,C_in,C_out,args,shape", OPS,
                         ids=[f"{o[0]}-{i}" for i, o in enumerate(OPS)])
def test_every_bundled_op_lowers_to_the_same_function(op, C_in, C_out, args, shape):
    for to, train in (("channel", False), ("channel", True), ("neuron", False)):
        err = lowering_error(op, C_in, C_out, args, shape, to=to, train=train)
        assert err < 1e-5, (to, train, err)


def test_a_lowered_network_runs_its_own_weights():
    # equal outputs come from the copied weights, not from the module being shared
    g = network_graph("DARTS_V2", C=4, layers=3)
    net = supernet.compile(g).eval()
    low = lower(g, "channel", net)
    x = torch.randn(2, 3, 8, 8)
    assert torch.allclose(low.module.eval()(x), net(x), atol=1e-5)
    u, v = next((u, v) for u, v, e in low.graph.nx.edges(data=True) if e.get("groups", 1) > 1)
    with torch.no_grad():
        low.module.block(u, v).weight.mul_(2.0)
    assert (low.module(x) - net(x)).abs().max() > 1e-3


def test_cells_inline_with_their_weights():
    g = nb.decode("|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|"
                  "+|skip_connect~0|none~1|nor_conv_3x3~2|", C=4, N=1, num_classes=3)
    net = supernet.compile(g)
    flat = inline(g, net)
    assert not flat.graph.cells
    assert not [n for n, d in flat.graph.nx.nodes(data=True) if d.get("kind") == "call"]
    # the template's input is the call's argument, its output takes the call's name
    assert flat.graph.edge("stem", "cell0/1")["ops"] == ["nor_conv_3x3"]
    assert flat.graph.edge("cell0/2", "cell0")["ops"] == ["nor_conv_3x3"]
    assert flat.graph.edge("cell0", "cell1/a")["args"]["stride"] == 2
    x = torch.randn(3, 3, 8, 8)
    for mode in (False, True):
        net.train(mode), flat.module.train(mode)
        assert torch.allclose(flat.module(x), net(x), atol=1e-6)
    assert sum(p.numel() for p in net.parameters()) == \
        sum(p.numel() for p in flat.module.parameters())


def test_inlining_refuses_a_template_with_gates():
    g = nb.nasbench201(C=4, N=1)
    with pytest.raises(GraphError, match="call 'cell0': edge 0->1 of cell 'cell' is a gate"):
        inline(g)


def test_ties_hold_residuals_and_depthwise_channels_together():
    text = "mbconv_3x3_e1,mbconv_3x3_e3,mbconv_5x5_e3"
    kw = dict(width_mult=0.25, n_cell_stages=(2, 0, 0, 0, 0, 0), num_classes=3,
              last_channel=8, input_size=8)
    g = mb.decode(text, **kw)
    ch = lower(g, "channel").graph
    groups = dependency_groups(ch)
    # the residual add of block 2 ties its input stream, the projection and the sum
    res = [grp for grp in groups if "block2" in grp]
    assert res and all({"block1", "block2_op", "block2"} <= set(grp) for grp in res)
    # a depthwise channel goes with the expanded channel it reads
    dw = "block2_op/block1~dw"
    assert all(dw in grp and "block2_op/block1~expand" in grp for grp in groups if dw in grp)
    assert sum(1 for grp in groups if dw in grp) == len(ch.node(dw)["units"])


def _digits(n=96):
    d = load_dataset("digits")
    x, y = d.train
    return x[:n].expand(-1, 3, -1, -1).contiguous(), y[:n]


def _prune_and_fine_tune(graph, score):
    """Lower, prune half of the channel groups, compile, fine-tune."""
    x, y = _digits()
    net = supernet.compile(graph).eval()
    low = lower(graph, "channel", net)
    g, m = low.graph, low.module
    assert torch.allclose(m.eval()(x[:8]), net(x[:8]), atol=1e-5)
    nodes = [n for n, d in g.nx.nodes(data=True) if d["kind"] == "units" and n not in g.outputs]
    s = score(m, (x[:32], y[:32]))
    convs = {(u, v): m.block(u, v).weight.shape for u, v, e in g.nx.edges(data=True)
             if e["kind"] == "conv"}
    before = sum(len(g.node(n)["units"]) for n in nodes)
    ed = Editor(g, m)
    # half of the dependency groups, globally (inputs and logits kept, no node emptied)
    for edit in prune(g, s, 0.5, what="units"):
        ed.apply(edit)
    after = sum(len(g.node(n)["units"]) for n in nodes)
    assert 0.35 * before <= after <= 0.75 * before
    assert all(len(g.node(n)["units"]) > 0 for n in nodes)
    small = supernet.compile(g)
    # the compiled convolutions really shrink: none grows, most lose channels, and their
    # weights fall to well under half
    shapes = {k: small.block(*k).weight.shape for k in convs}
    assert all(shapes[k][0] <= w[0] and shapes[k][1] <= w[1] for k, w in convs.items())
    assert sum(shapes[k] != w for k, w in convs.items()) >= 0.75 * len(convs)
    old_size = sum(w.numel() for w in convs.values())
    new_size = sum(w.numel() for w in shapes.values())
    assert new_size < 0.6 * old_size
    small.load_state_dict(m.state_dict())
    history = fine_tune(small, (x, y), epochs=3, batch_size=32, lr=0.05, device="cpu").history
    assert history[-1]["loss"] < history[0]["loss"]
    return small


def _magnitude(m, batch):
    return scores.magnitude(m, what="units")


def test_a_published_darts_network_is_channel_pruned_and_fine_tuned():
    _prune_and_fine_tune(network_graph("DARTS_V2", C=4, layers=3), _magnitude)


def test_a_nasbench201_network_is_channel_pruned_and_fine_tuned():
    arch = "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
    _prune_and_fine_tune(nb.decode(arch, C=4, N=1), scores.taylor)


def test_a_mobilenetv2_network_is_channel_pruned_and_fine_tuned():
    text = "mbconv_3x3_e1,mbconv_5x5_e6,mbconv_3x3_e3,mbconv_3x3_e6,mbconv_7x7_e3"
    kw = dict(width_mult=0.25, n_cell_stages=(2, 1, 1, 0, 0, 0), num_classes=10,
              last_channel=32, input_size=8)
    _prune_and_fine_tune(mb.decode(text, **kw), _magnitude)


def test_factorized_reduce_lowers_for_odd_and_even_sizes():
    for shape in ((5, 5), (6, 6), (9,)):
        args = {"dim": len(shape)} if len(shape) == 1 else {}
        assert lowering_error("factorized_reduce", 3, 4, args, shape) < 1e-5
    assert lowering_error("nb201_skip_connect", 3, 5, {"stride": 2}, (5, 5)) < 1e-5


def test_lifting_a_composite_op_is_refused_naming_it():
    from supernet.lowering import lift

    g = Graph("layer", name="g")
    g.add_input("x", channels=3)
    g.add_node("h", channels=4)
    g.add_edge("x", "h", "sep_conv_3x3")
    g.set_outputs(["h"])
    with pytest.raises(GraphError, match="node 'h/x~relu' is a stage of op 'sep_conv_3x3'"):
        lift(lower(g).graph, "layer")
