"""Creation during the search: right after each growth the trained super-network computes
the same outputs (eval mode, < 1e-6), both optimizers hold the new parameters (with the old
state carried), and training then moves them."""

import pytest
import torch
from progressive_helpers import MiniSearch, data, in_optimizer, net, output

import supernet as sn
from supernet.edits import EditLog
from supernet.errors import EditError, SearchError
from supernet.search.creation.layer import GrowNode, GrowOps
from supernet.search.progressive import SGAS

X = data(8, seed=7)[0]


def trained(policies, cells=("normal", "reduce"), at=2, **kw):
    """A super-network trained one epoch, with the policies due at the end of epoch ``at``."""
    g = net(cells, steps=3)
    search = MiniSearch(g, None, policies, epochs=3, **kw)
    search.run(until=1)
    return g, search


def grow(search, policy, epoch=2):
    st = search.state
    before = output(st.module, X)
    old_params = {id(p) for p in st.module.weights()}
    old_arch = {k: p for k, p in st.module.arch.items()}
    exp_avg = {k: search.a_opt.state[p]["exp_avg"].clone() for k, p in old_arch.items()
               if p in search.a_opt.state}
    names = dict(st.module.gates())
    st.epoch = epoch
    policy.on_epoch_end(st)
    after = output(st.module, X)
    assert (after - before).abs().max() < 1e-6
    new = [p for p in st.module.weights() if id(p) not in old_params]
    assert new and all(in_optimizer(search.w_opt, p) for p in new)
    for k, p in st.module.arch.items():  # every logit is trained, old state carried over
        assert in_optimizer(search.a_opt, p)
        if k in exp_avg and p is not old_arch[k]:
            carried = search.a_opt.state[p]["exp_avg"][0]
            old_names = names[k]
            for j, op in enumerate(st.module.arch_names[k]):
                if op in old_names:
                    assert carried[j] == exp_avg[k][0, old_names.index(op)]
    return new


def moved_after_training(search, params):
    before = [p.detach().clone() for p in params]
    search.train(1)
    return [not torch.equal(b, p) for b, p in zip(before, params)]


def test_grow_ops_zero_init_keeps_outputs_then_trains():
    policy = GrowOps(["conv_7x1_1x7"], at=2)
    g, search = trained([policy], cells=("normal",))
    new = grow(search, policy)
    t = g.cells["normal"]
    assert all(d["ops"][-1] == "conv_7x1_1x7" for _, v, d in t.nx.edges(data=True)
               if v.startswith("n"))
    assert len(policy.grown) == 9
    assert any(moved_after_training(search, new))
    sn.lint(g)


def test_grow_ops_split_keeps_outputs():
    # in the reduction cell: strided candidates are copied too
    policy = GrowOps(["sep_conv_7x7"], at=2, init="split", source="sep_conv_5x5",
                     cells=["reduce"])
    g, search = trained([policy])
    new = grow(search, policy)
    assert len(policy.grown) == 9
    assert any(moved_after_training(search, new))


def test_grow_ops_where_the_strongest_op_is_parametric():
    policy = GrowOps(["conv_7x1_1x7"], at=2, edges="parametric", cells=["normal"])
    g, search = trained([policy], cells=("normal",))
    m = search.state.module
    with torch.no_grad():
        for k, p in m.arch.items():
            p.zero_()
            strongest = "sep_conv_3x3" if k.endswith("n3") else "skip_connect"
            p[0, m.gates()[k].index(strongest)] = 3.0
    grow(search, policy)
    grown = sorted(r["edge"] for r in policy.grown)
    assert grown == ["normal/n2/n3", "normal/p0/n3", "normal/p1/n3"]


def test_grow_node_keeps_outputs_then_trains():
    policies = [GrowNode(cell, "n5", ["p0", "n2"], "n4", ["sep_conv_3x3", "skip_connect", "none"],
                         ["none", "sep_conv_3x3", "dil_conv_3x3"], at=2)
                for cell in ("normal", "reduce")]
    g, search = trained(policies)
    new = []
    for p in policies:
        new += grow(search, p)
    for cell in ("normal", "reduce"):
        t = g.cells[cell]
        assert [u for u, _ in t.in_edges("n5")] == ["p0", "n2"]
        assert t.edge("n5", "n4")["ops"] == ["none", "sep_conv_3x3", "dil_conv_3x3"]
    # the strided inputs of the reduction cell stay strided, the out-edge is not
    assert g.cells["reduce"].edge("p0", "n5")["args"]["stride"] == 2
    assert g.cells["reduce"].edge("n5", "n4")["args"]["stride"] == 1
    m = search.state.module
    assert "normal:n5->n4" in m.gates() and in_optimizer(search.a_opt, m.arch["normal:n5->n4"])
    out_conv = m.cell_modules("normal")[0].edge_module("n5", "n4")["sep_conv_3x3"].op[6].weight
    assert out_conv.abs().max() == 0
    search.train(1)
    assert out_conv.abs().max() > 0
    sn.lint(g)
    replayed = net(("normal", "reduce"), steps=3)
    EditLog(list(search.state.editor.log)).replay(replayed)
    assert replayed.same_as(g)


def test_growth_composes_with_a_progressive_policy():
    g = net(("normal",), steps=2)
    policy = SGAS(criterion=2, warmup=1, interval=1, history=2)
    grow_ops = GrowOps(["sep_conv_7x7"], at=1, init="split", source="sep_conv_5x5")
    search = MiniSearch(g, policy, [grow_ops], epochs=5)
    state = search.run()
    assert not g.cells["normal"].gate_edges()
    grown = [e for e in state.editor.log if e.kind == "add_op"]
    assert len(grown) == 5 and policy.decisions[0]["epoch"] == 1  # grown, then decided
    sn.lint(g)


def test_parameter_free_ops_cannot_start_at_zero():
    policy = GrowOps(["max_pool_3x3"], at=2)
    g = net(("normal",), steps=2, ops=["none", "sep_conv_3x3"])
    search = MiniSearch(g, None, [policy], epochs=3)
    search.run(until=1)
    search.state.epoch = 2
    with pytest.raises(EditError, match="'max_pool_3x3' has no zero_output hook, so it cannot"):
        policy.on_epoch_end(search.state)
    assert g.cells["normal"].edge("p0", "n2")["ops"] == ["none", "sep_conv_3x3"]


def test_grow_node_refuses_what_it_cannot_preserve():
    with pytest.raises(EditError, match="'skip_connect' cannot start at zero output"):
        GrowNode("normal", "n5", ["p0"], "n4", ["sep_conv_3x3"], ["skip_connect"], at=1)
    with pytest.raises(EditError, match="'avg_pool_3x3' has no zero_output hook"):
        GrowNode("normal", "n5", ["p0"], "n4", ["sep_conv_3x3"], ["avg_pool_3x3"], at=1)
    policy = GrowNode("normal", "n5", ["p0"], "out", ["sep_conv_3x3"], ["none"], at=1)
    g = net(("normal",), steps=2)
    search = MiniSearch(g, None, [policy], epochs=1)
    search.state.epoch = 1
    with pytest.raises(SearchError, match="target 'out' is not a sum node"):
        policy.on_epoch_end(search.state)
    policy = GrowNode("normal", "n5", ["n3"], "n2", ["sep_conv_3x3"], ["none"], at=1)
    with pytest.raises(SearchError, match=r"sources \['n3'\] come after target 'n2'"):
        policy.on_epoch_end(search.state)


def test_growth_fires_once_per_epoch():
    policy = GrowOps(["conv_7x1_1x7"], at=[2], cells=["normal"])
    g, search = trained([policy], cells=("normal",))
    search.state.epoch = 2
    policy.on_epoch_end(search.state)
    policy.on_epoch_end(search.state)
    assert len(policy.grown) == 9


def test_grow_node_refuses_a_target_under_edge_normalization():
    # PC-DARTS scales a node's inputs by softmax(beta) over them: a new input takes a share
    # of that softmax from the others, so the node's value changes whatever the new edge
    # outputs. GrowNode, which promises unchanged outputs, refuses and says why.
    from supernet.search.relaxations import PartialChannels, mark_partial

    g = net(("normal",), steps=3)
    mark_partial(g, 4)
    policy = GrowNode("normal", "n5", ["p0", "n2"], "n4", ["sep_conv_3x3", "none"],
                      ["none", "sep_conv_3x3"], at=1)
    search = MiniSearch(g, None, [policy], relaxation=PartialChannels(4), epochs=2)
    before = sn.io.to_node_link(g)
    search.state.epoch = 1
    with pytest.raises(SearchError, match="n4.*edge normalization"):
        policy.on_epoch_end(search.state)
    assert sn.io.to_node_link(g) == before
    # without edge normalization the growth keeps the outputs
    g = net(("normal",), steps=3)
    mark_partial(g, 4)
    policy = GrowNode("normal", "n5", ["p0", "n2"], "n4", ["sep_conv_3x3", "none"],
                      ["none", "sep_conv_3x3"], at=1)
    search = MiniSearch(g, None, [policy], relaxation=PartialChannels(4, edge_norm=False),
                        epochs=2)
    grow(search, policy, epoch=1)
