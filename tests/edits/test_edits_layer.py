"""The neural operators at layer level: graph and module change together."""

import copy

import pytest
import torch

import supernet as sn
from supernet.edits import (
    AddEdge,
    AddNode,
    AddOp,
    EditLog,
    Editor,
    RemoveEdge,
    RemoveNode,
    RemoveOp,
)
from supernet.errors import EditError, GraphError
from supernet.io import to_node_link


def cell_graph():
    cell = sn.Graph("layer", name="cell")
    cell.add_input("s0", channels="$C")
    cell.add_input("s1", channels="$C")
    cell.add_node("n2", channels="$C")
    cell.add_edge("s0", "n2", ["none", "sep_conv_3x3", "skip_connect"], affine=False)
    cell.add_edge("s1", "n2", ["none", "dil_conv_3x3", "max_pool_3x3"], affine=False)
    cell.add_node("out", merge="concat")
    cell.add_edge("s1", "out", "identity")
    cell.add_edge("n2", "out", "identity")
    cell.set_outputs(["out"])
    g = sn.Graph("layer", name="net")
    g.add_input("x", channels=3)
    g.add_node("stem", channels=4)
    g.add_edge("x", "stem", "stem_conv_bn")
    g.add_cell("cell", cell)
    g.add_call("c0", "cell", ["stem", "stem"], bind={"C": 4})
    g.add_node("p1", channels=4)
    g.add_edge("c0", "p1", "relu_conv_bn")
    g.add_call("c1", "cell", ["stem", "p1"], bind={"C": 4})
    g.add_node("pool", channels=8)
    g.add_edge("c1", "pool", "global_avg_pool")
    g.add_node("logits", channels=3)
    g.add_edge("pool", "logits", "linear")
    g.set_outputs(["logits"])
    return g


def optimizers(net):
    w = torch.optim.SGD(net.weights(), lr=0.1, momentum=0.9)
    a = torch.optim.Adam(net.arch_parameters(), lr=0.01)
    return w, a


def train_step(net, opts, x):
    for o in opts:
        o.zero_grad()
    net(x).pow(2).mean().backward()
    for o in opts:
        o.step()


def ids(params):
    return {id(p) for p in params}


@pytest.fixture
def setup():
    g = cell_graph()
    sn.lint(g)
    net = sn.compile(g)
    opts = optimizers(net)
    x = torch.randn(4, 3, 8, 8)
    train_step(net, opts, x)  # some optimizer state to carry
    return g, net, opts, x


@pytest.mark.parametrize("policy,op,source", [
    ("zero", "sep_conv_5x5", None),
    ("zero", "conv_7x1_1x7", None),
    ("split", "sep_conv_5x5", "sep_conv_3x3"),
])
def test_function_preserving_op_creation_in_a_cell_template(setup, policy, op, source):
    g, net, opts, x = setup
    net.eval()
    before = net(x)
    Editor(g, net, opts).apply(AddOp("s0", "n2", op, init=policy, source=source, cell="cell"))
    after = net(x)
    assert (after - before).abs().max() < 1e-6
    assert net.gates()["cell:s0->n2"][-1] == op
    # every instance of the cell grew the op, and the new parameters are being trained
    for name in ("c0", "c1"):
        assert op in net.steps[name].cell.edge_module("s0", "n2")
    assert ids(net.weights()) == ids(opts[0].param_groups[0]["params"])
    assert ids(net.arch_parameters()) == ids(opts[1].param_groups[0]["params"])
    net.train()
    train_step(net, opts, x)


def test_split_with_noise_changes_the_output_by_about_the_noise(setup):
    g, net, opts, x = setup
    net.eval()
    before = net(x)
    Editor(g, net, opts).apply(
        AddOp("s0", "n2", "sep_conv_5x5", init="split", source="sep_conv_3x3", noise=0.1, cell="cell")
    )
    assert (net(x) - before).abs().max() > 1e-4


def test_zero_policy_needs_a_zero_candidate_to_take_probability_from(setup):
    g, net, opts, x = setup
    g.cells["cell"].set_ops("s0", "n2", ["sep_conv_3x3", "skip_connect"])
    net.recompile()
    with pytest.raises(EditError, match="no zero \\('none'\\) candidate"):
        Editor(g, net, opts).apply(AddOp("s0", "n2", "sep_conv_5x5", init="zero", cell="cell"))


def test_parameter_free_ops_cannot_start_from_zero(setup):
    g, net, opts, x = setup
    with pytest.raises(EditError, match="avg_pool_3x3.*no zero_output hook"):
        Editor(g, net, opts).apply(AddOp("s0", "n2", "avg_pool_3x3", init="zero", cell="cell"))


def test_removing_an_op_drops_its_parameters_and_slices_arch_state(setup):
    g, net, opts, x = setup
    w_opt, a_opt = opts
    key = "cell:s0->n2"
    alpha = net.arch[key].detach().clone()
    adam = a_opt.state[net.arch[key]]["exp_avg"].clone()
    removed = list(net.steps["c0"].cell.edge_module("s0", "n2")["sep_conv_3x3"].parameters())
    Editor(g, net, opts).apply(RemoveOp("s0", "n2", "sep_conv_3x3", cell="cell"))
    assert net.gates()[key] == ["none", "skip_connect"]
    assert torch.equal(net.arch[key].detach(), alpha[:, [0, 2]])
    assert torch.equal(a_opt.state[net.arch[key]]["exp_avg"], adam[:, [0, 2]])
    assert not ids(removed) & ids(w_opt.param_groups[0]["params"])
    assert not any(id(p) in ids(removed) for p in w_opt.state)
    train_step(net, opts, x)


def test_pruning_to_one_op_removes_the_gate(setup):
    g, net, opts, x = setup
    ed = Editor(g, net, opts)
    ed.apply(RemoveOp("s0", "n2", "none", cell="cell"))
    ed.apply(RemoveOp("s0", "n2", "skip_connect", cell="cell"))
    assert "cell:s0->n2" not in net.arch
    assert len(opts[1].param_groups[0]["params"]) == len(net.arch) == 1
    with pytest.raises(GraphError, match="last op of edge s0->n2; remove the edge"):
        ed.apply(RemoveOp("s0", "n2", "sep_conv_3x3", cell="cell"))
    assert [e.operator for e in ed.log] == ["synaptic_pruning"] * 2


def test_node_creation_with_zero_connections_preserves_the_function(setup):
    g, net, opts, x = setup
    net.eval()
    before = net(x)
    ed = Editor(g, net, opts)
    ed.apply(AddNode("n3", channels="$C", cell="cell"))
    ed.apply(AddEdge("s0", "n3", ["sep_conv_3x3", "dil_conv_3x3", "none"], init="zero", cell="cell"))
    ed.apply(AddEdge("n3", "n2", ["sep_conv_3x3", "conv_3x3"], init="zero", cell="cell"))
    assert (net(x) - before).abs().max() < 1e-6
    sn.lint(g)
    assert ed.log.counts() == {"neuron_creation": 1, "synaptogenesis": 2}
    ed.apply(RemoveNode("n3", cell="cell"))
    assert "cell:s0->n3" not in net.arch and "n3" not in g.cells["cell"]
    assert torch.allclose(net(x), before, atol=1e-6)


def test_edge_removal_shrinks_the_module(setup):
    g, net, opts, x = setup
    n_before = len(net.weights())
    Editor(g, net, opts).apply(RemoveEdge("s1", "n2", cell="cell"))
    assert "cell:s1->n2" not in net.gates()
    assert len(net.weights()) < n_before
    assert ids(net.weights()) == ids(opts[0].param_groups[0]["params"])


def test_log_replays_to_the_same_graph_and_bitwise_the_same_weights(tmp_path):
    g0 = cell_graph()
    net0 = sn.compile(g0)
    g, net = g0.copy(), copy.deepcopy(net0)
    net.graph = g
    ed = Editor(g, net, seed=7)
    ed.apply(AddOp("s0", "n2", "sep_conv_5x5", init="random", cell="cell"))
    ed.apply(AddNode("n3", channels="$C", cell="cell"))
    ed.apply(AddEdge("s1", "n3", ["conv_3x3", "avg_pool_3x3"], cell="cell"))
    ed.apply(AddEdge("n3", "n2", ["identity", "sep_conv_3x3"], cell="cell"))
    ed.apply(RemoveOp("s1", "n2", "max_pool_3x3", cell="cell"))
    ed.apply(AddOp("s1", "n2", "dil_conv_5x5", init="split", source="dil_conv_3x3", noise=0.01,
                   cell="cell"))
    ed.log.save(tmp_path / "log.json")

    g2, net2 = g0.copy(), copy.deepcopy(net0)
    net2.graph = g2
    EditLog.load(tmp_path / "log.json").replay(g2, net2)
    assert to_node_link(g2) == to_node_link(g)
    s1, s2 = net.state_dict(), net2.state_dict()
    assert list(s1) == list(s2)
    assert all(torch.equal(s1[k], s2[k]) for k in s1)


def test_an_edit_that_breaks_downstream_shapes_leaves_everything_as_it_was(setup):
    g, net, opts, x = setup
    before = to_node_link(g)
    with pytest.raises(sn.ShapeError, match="edge c1->pool: op 'global_avg_pool' keeps the width"):
        Editor(g, net, opts).apply(AddEdge("s0", "out", ["identity"], cell="cell"))
    assert to_node_link(g) == before
    assert not net.is_stale()
    train_step(net, opts, x)


@pytest.mark.parametrize("share", [0.0, 1.5, -0.1])
def test_a_share_outside_the_unit_interval_is_refused_and_changes_nothing(setup, share):
    g, net, opts, x = setup
    before = to_node_link(g)
    with pytest.raises(EditError, match=r"share must be in \(0, 1\), got"):
        Editor(g, net, opts).apply(AddOp("s0", "n2", "sep_conv_5x5", init="zero", share=share,
                                         cell="cell"))
    assert to_node_link(g) == before
    assert not net.is_stale()


@pytest.mark.parametrize("training", [False, True])
def test_edits_keep_every_module_in_the_module_s_train_or_eval_mode(setup, training):
    g, net, opts, x = setup
    net.train(training)
    ed = Editor(g, net, opts)
    ed.apply(AddOp("s0", "n2", "sep_conv_5x5", init="zero", cell="cell"))
    ed.apply(AddNode("n3", channels="$C", cell="cell"))
    ed.apply(AddEdge("s0", "n3", ["conv_3x3", "none"], init="zero", cell="cell"))
    ed.apply(AddEdge("n3", "n2", ["conv_3x3", "none"], init="zero", cell="cell"))
    ed.apply(RemoveOp("s1", "n2", "max_pool_3x3", cell="cell"))
    wrong = [n for n, m in net.named_modules() if m.training != training]
    assert not wrong, f"modules left in the other mode: {wrong[:5]}"
