"""Shared parts of the progressive policies: masking without edits, skip-connect dropout,
batch-statistics measurement, gate tables and constraints."""

import pytest
import torch
from progressive_helpers import data, net, output

import supernet as sn
from supernet.errors import SearchError, SupernetError
from supernet.gates import Softmax
from supernet.search.progressive import (
    MaskOps,
    SkipDropout,
    batch_statistics,
    gated_edges,
    using_relaxation,
    zeroed_edges,
)
from supernet.search.progressive.common import budgets, constraints_of


def test_masked_op_gets_weight_zero_and_the_others_keep_theirs():
    g = net(("normal",), steps=2)
    m = sn.compile(g).eval()
    x = data(4)[0]
    key = "normal:p0->n2"
    ops = m.gates()[key]
    with torch.no_grad():
        m.arch[key].copy_(torch.randn(1, len(ops)))
    w = torch.softmax(m.arch[key].detach(), -1)
    version = g.version
    with using_relaxation(m, MaskOps(m.relaxation, {key: [ops.index("sep_conv_3x3")]})):
        masked = output(m, x)
    # the same, by hand: the base decisions with that op's weight zeroed
    decisions = Softmax()(dict(m.arch.items()))
    w0 = w.clone()
    w0[0, ops.index("sep_conv_3x3")] = 0
    decisions[key].weights = w0
    with torch.no_grad():
        by_hand = m(x, gates=decisions)
    assert torch.allclose(masked, by_hand, atol=1e-6)
    assert not torch.allclose(masked, output(m, x), atol=1e-4)
    assert g.version == version and isinstance(m.relaxation, Softmax)


def test_zeroed_edges_touch_every_cell_instance_and_come_back():
    g = net(("normal", "normal"), steps=2)
    m = sn.compile(g).eval()
    x = data(4)[0]
    before = output(m, x)
    seen = []
    with zeroed_edges(m, [("normal", "p0", "n2")]):
        cells = m.cell_modules("normal")
        assert len(cells) == 2
        hooks = [c.edge_module("p0", "n2")["sep_conv_3x3"].register_forward_hook(
            lambda mod, i, out: seen.append(float(out.abs().max()))) for c in cells]
        out = output(m, x)
        for h in hooks:
            h.remove()
    assert seen == [0.0, 0.0]  # the candidate ran in both cells, and gave zeros
    assert not torch.allclose(out, before)
    assert torch.equal(output(m, x), before)


def test_batch_statistics_normalize_by_the_batch_and_leave_running_stats():
    g = net(("normal",), steps=2)
    m = sn.compile(g).eval()
    x = 3 + 2 * data(8)[0]
    bn = m.edge_module("x", "stem")["stem_conv_bn"][1]
    mean, var = bn.running_mean.clone(), bn.running_var.clone()
    with batch_statistics(m):
        y = output(m, x)
        assert bn.running_mean is None
    assert torch.equal(bn.running_mean, mean) and torch.equal(bn.running_var, var)
    m.train()
    with torch.no_grad():
        want = m(x)
    assert torch.allclose(y, want, atol=1e-5)  # what training mode computes, without side effects


def test_skip_dropout_drops_only_identity_skips_in_training():
    g = sn.Graph("layer")
    g.add_input("x", channels=4)
    g.add_node("a", channels=4)
    g.add_edge("x", "a", ["skip_connect", "none"])
    g.add_node("b", channels=4)
    g.add_edge("x", "b", ["skip_connect", "none"], stride=2)  # a factorized reduce
    g.set_outputs(["a", "b"])
    m = sn.compile(g)
    with torch.no_grad():
        for p in m.arch.values():
            p.zero_()
    m.relaxation = SkipDropout(p=0.5)
    m.relaxation.attach(m)
    x = torch.ones(64, 4, 4, 4)
    m.train()
    a, b = m(x)
    assert set(torch.unique(a).tolist()) == {0.0, 1.0}  # 0.5 * x / (1 - 0.5), or dropped
    m.relaxation.p = 0.0
    a0, b0 = m(x)
    assert torch.equal(b, b0)  # the strided skip is not regularized
    m.relaxation.p = 0.5
    m.eval()
    assert torch.equal(m(x)[0], torch.full_like(a, 0.5))


def test_skip_dropout_needs_its_module():
    g = net(("normal",), steps=2)
    m = sn.compile(g).train()
    m.relaxation = SkipDropout(p=0.3)
    with pytest.raises(SupernetError, match=r"call relaxation.attach\(module\)"):
        m(data(2)[0])


def test_skip_dropout_forwards_the_base_hooks():
    class Tempered(Softmax):
        def __init__(self):
            super().__init__()
            self.calls = []

        def on_epoch_start(self, epoch, epochs):
            self.calls.append(epoch)

        def probabilities(self, module):
            return {"k": torch.ones(1, 2)}

    base = Tempered()
    relax = SkipDropout(base)
    relax.schedule = lambda e: 0.1 * e
    relax.on_epoch_start(3, 10)
    assert relax.p == pytest.approx(0.3) and base.calls == [3]
    assert relax.probabilities(None)["k"].shape == (1, 2)
    assert not hasattr(SkipDropout(Softmax()), "after_arch_step")


def test_gate_tables_and_budgets():
    g = net(("normal", "reduce"), steps=3)
    m = sn.compile(g)
    edges = gated_edges(g, m)
    assert len(edges) == 18 and edges[0].name == ("normal", "p0", "n2")
    assert all(0 not in e.allowed for e in edges)  # 'none' is never a choice
    assert set(budgets(g, edges).values()) == {2}


def test_bad_constraints_say_what_to_fix():
    g = net(("normal",), steps=2)
    g.meta["constraints"] = {"normal": {"max_inputs": 0}}
    with pytest.raises(SearchError, match="must be a positive int or None, got 0"):
        constraints_of(g, "normal")
    g.meta["constraints"] = {"normal": {"max_input": 2}}
    with pytest.raises(SearchError, match=r"unknown key\(s\) \['max_input'\]"):
        constraints_of(g, "normal")
    g.meta["constraints"] = {"normal": {"exclude": ["none", "skip_connect", "sep_conv_3x3",
                                                    "max_pool_3x3", "avg_pool_3x3",
                                                    "sep_conv_5x5", "dil_conv_3x3",
                                                    "dil_conv_5x5"]}}
    with pytest.raises(SearchError, match="every candidate .* is a zero op or excluded"):
        gated_edges(g, sn.compile(g))


def test_strategies_register_in_a_registry():
    from supernet.search.progressive import PDARTS, SGAS, DartsPT, register_strategies
    from supernet.search.strategies import Strategy

    table = {}

    def register(name):
        def wrap(fn):
            table[name] = fn
            return fn
        return wrap

    register_strategies(register, Strategy)
    assert sorted(table) == ["darts_pt", "gradual_magnitude", "pdarts", "progressive_gates", "sgas",
                             "sgas2", "unit_darts_pt", "unit_pcdarts", "unit_pdarts",
                             "unit_proxyless", "unit_sgas", "unit_sgas2"]
    assert all(table[n]().levels == ("channel", "neuron") for n in table if n.startswith("unit_"))
    p = table["pdarts"]()
    assert isinstance(p.discretization, PDARTS) and p.config["epochs"] == 75
    assert p.relaxation is p.discretization.relaxation
    s1, s2 = table["sgas"](), table["sgas2"]()
    assert (s1.discretization.criterion, s2.discretization.criterion) == (1, 2)
    assert s1.config["epochs"] == 50
    d = table["darts_pt"]()
    assert isinstance(d.discretization, DartsPT) and d.config["epochs"] == 131
    assert isinstance(s1.discretization, SGAS)
