"""Cross-level search: op choices and cell widths in one bilevel loop, one cost model."""

import itertools
import random

import pytest
import torch
from search_graphs import darts_like

from search_spaces import create_space
from supernet import compile
from supernet.cost import cost
from supernet.cost.crosslevel import CrossLevelCost
from supernet.edits import Editor, NarrowCall
from supernet.errors import ConfigError, EditError
from supernet.search import BilevelSearch, create_strategy
from supernet.search.choices import choice_space
from supernet.search.crosslevel import WidthGates, mark_widths, width_key

SHAPE = (1, 12)


def tiny():
    return create_space("darts1d", C=4, layers=3, steps=2, multiplier=2)


def data(n=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, *SHAPE, generator=g), torch.randint(0, 10, (n,), generator=g)


def test_the_joint_step_updates_op_and_width_logits_together():
    g = tiny()
    s = BilevelSearch(g, data(), strategy={"name": "crosslevel", "cost_weight": 0.5,
                                           "fractions": [0.5, 1.0], "input_shape": list(SHAPE)},
                      config={"epochs": 2, "batch_size": 8, "arch_lr": 0.05})
    m = s.module
    widths = [width_key(k) for k in ("cell0", "cell1", "cell2")]
    ops = list(m.gates())
    assert set(widths) <= set(m.arch) and all(m.arch[k].shape == (1, 2) for k in widths)
    before = {k: p.detach().clone() for k, p in m.arch.items()}
    trained = {id(p) for g_ in s.a_opt.param_groups for p in g_["params"]}
    assert all(id(m.arch[k]) in trained for k in widths + ops)
    s.run(until=1)
    for k in widths + ops:
        assert not torch.equal(before[k], m.arch[k].detach()), k


def test_the_decided_widths_are_the_compiled_convolutions_shapes():
    g = tiny()
    s = BilevelSearch(g, data(), strategy={"name": "crosslevel", "fractions": [0.5, 1.0]},
                      config={"epochs": 1, "batch_size": 8, "arch_update": False})
    with torch.no_grad():  # cell0 and cell2 narrow to their smallest width, cell1 stays
        s.module.arch[width_key("cell0")].copy_(torch.tensor([[3.0, 0.0]]))
        s.module.arch[width_key("cell1")].copy_(torch.tensor([[0.0, 3.0]]))
        s.module.arch[width_key("cell2")].copy_(torch.tensor([[3.0, 0.0]]))
    r = s.run()
    assert g.meta["width_choice"] == {"cell0": 2, "cell1": 8, "cell2": 8}
    assert [g.node(k)["bind"]["C"] for k in ("cell0", "cell1", "cell2")] == [2, 8, 8]
    assert r.module.relaxation is None and not r.module.arch_parameters()
    cell0 = r.module.steps["cell0"].cell
    pre = cell0.edge_module("s1", "p1")["preprocess"]
    convs = [m for m in pre.modules() if isinstance(m, torch.nn.Conv1d)]
    assert [c.weight.shape[0] for c in convs] == [2]
    for u, v in cell0.graph.nx.edges:
        for op in cell0.edge_module(u, v).values():
            for c in op.modules():
                if isinstance(c, torch.nn.Conv1d):
                    assert c.weight.shape[0] == 2 and c.in_channels in (2, 12), (u, v)
    # cell1 reads cell0's concat of 2 states of 2 channels
    pre1 = r.module.steps["cell1"].cell.edge_module("s1", "p1")["preprocess"]
    assert [c.in_channels for c in pre1.modules() if isinstance(c, torch.nn.Conv1d)] == [4]
    assert r.module(data(2)[0]).shape == (2, 10)
    assert [type(e).__name__ for e in r.log][-2:] == ["NarrowCall", "NarrowCall"]


def _one_hot(model, choice, widths):
    ops = {}
    for (cell, u, v), op in choice.items():
        key = f"{cell}:{u}->{v}"
        names = model.ops[_comp(model, key)]
        ops[key] = torch.nn.functional.one_hot(
            torch.tensor(names.index(op if op is not None else "none")), len(names)).double()
    q = {k: torch.nn.functional.one_hot(torch.tensor(model.widths[k].index(w)),
                                        len(model.widths[k])).double()
         for k, w in widths.items()}
    return ops, q


def _comp(model, key):
    return next(c for c, g in model.gates.items() if g == key)


def test_expected_cost_is_the_real_cost_at_a_one_hot_decision():
    g = tiny()
    spec = mark_widths(g, [0.5, 1.0])
    model = CrossLevelCost(g, spec, input_shape=SHAPE)
    net = compile(g)
    rng = random.Random(3)
    choice = choice_space(g, net).sample(rng)
    widths = {k: rng.choice(w) for k, w in spec.items()}
    ops, q = _one_hot(model, choice, widths)
    chosen_ops = {f"{c}:{u}->{v}": op for (c, u, v), op in choice.items()}
    for field in ("macs", "params"):
        assert float(model.expected(ops, q, field)) == model.chosen(chosen_ops, widths, field)
    ed = Editor(g, net)
    choice_space(g, net).apply(ed, choice)
    for k, w in widths.items():
        if w != g.node(k)["bind"]["C"]:
            ed.apply(NarrowCall(k, w))
    real = cost(g, SHAPE).total
    assert real.macs == model.chosen(chosen_ops, widths, "macs")
    # an oracle independent of the cost model: the compiled module's parameters
    assert sum(p.numel() for p in net.weights()) == model.chosen(chosen_ops, widths, "params")


def test_the_expectation_over_widths_is_exact():
    g = tiny()
    spec = mark_widths(g, [0.5, 1.0])
    model = CrossLevelCost(g, spec, input_shape=SHAPE)
    net = compile(g)
    choice = choice_space(g, net).sample(random.Random(0))
    chosen_ops = {f"{c}:{u}->{v}": op for (c, u, v), op in choice.items()}
    ops, _ = _one_hot(model, choice, {})
    q = {k: torch.softmax(torch.randn(2, dtype=torch.float64), 0) for k in spec}
    brute = 0.0
    for ws in itertools.product(*spec.values()):
        w = dict(zip(spec, ws))
        p = 1.0
        for k in spec:
            p *= float(q[k][spec[k].index(w[k])])
        brute += p * model.chosen(chosen_ops, w, "macs")
    assert float(model.expected(ops, q, "macs")) == pytest.approx(brute, rel=1e-9)
    assert any(len(d) == 2 for d in model.deps.values())  # preprocessing reads two calls


def test_a_narrow_width_zeroes_the_channels_it_drops():
    g = tiny()
    mark_widths(g, [0.5, 1.0])
    net = compile(g)
    relax = WidthGates()
    net.relaxation = relax
    relax.attach(net)
    cell = net.steps["cell0"].cell
    seen = {}
    sep = cell.edge_module("p0", "n2")["sep_conv_3x3"]
    sep.register_forward_hook(lambda m, i, y: seen.__setitem__("out", y))
    sep.op[3].register_forward_hook(lambda m, i, y: seen.__setitem__("inner", y))
    gates = dict(net.relaxation(dict(net.arch.items())))
    gates[width_key("cell0")] = type(gates[width_key("cell0")])(torch.tensor([[1.0, 0.0]]))
    net(data(4)[0], gates=gates)
    for k in ("out", "inner"):
        assert seen[k][:, 2:].abs().max() == 0 and seen[k][:, :2].abs().max() > 0, k
    gates[width_key("cell0")] = type(gates[width_key("cell0")])(torch.tensor([[0.0, 1.0]]))
    net(data(4)[0], gates=gates)
    assert seen["out"][:, 2:].abs().max() > 0


@pytest.mark.parametrize("fractions, match", [
    ([0.5, 1.5], r"strategy\.fractions\[1\]=1\.5.*\(0, 1\]"),
    ([0.0, 1.0], r"strategy\.fractions\[0\]=0\.0"),
    ([], r"strategy\.fractions is empty"),
    (["half"], r"strategy\.fractions\[0\]='half'"),
])
def test_bad_width_sets_fail_naming_the_key(fractions, match):
    with pytest.raises(ConfigError, match=match):
        create_strategy("crosslevel", fractions=fractions)
    with pytest.raises(ConfigError, match=r"widths\.fractions"):
        mark_widths(tiny(), fractions)


def test_bad_parts_fail_before_training():
    with pytest.raises(ConfigError, match=r"strategy\.base: Sigmoid"):
        create_strategy("crosslevel", base="sigmoid")
    with pytest.raises(ConfigError, match=r"widths\.calls: 'cell9'"):
        mark_widths(tiny(), calls=["cell9"])
    with pytest.raises(ConfigError, match=r"no cell call can change its width alone: the "
                                          r"calls \['cell0', 'cell1'\] take their inputs"):
        mark_widths(darts_like())
    g = tiny()
    with pytest.raises(EditError, match=r"width 16 must be a positive int no larger"):
        NarrowCall("cell0", 16).apply_graph(g)


def test_the_masked_super_network_computes_the_narrow_network():
    """At a one-hot width the masked cell equals the real narrow cell whose weights are the
    full ones' leading channels (separable convs' hidden widths included)."""
    from search_spaces.darts.cells import search_cell
    from supernet import Graph
    from supernet.search.crosslevel import narrow

    ops = ["sep_conv_3x3", "dil_conv_3x3", "max_pool_3x3", "skip_connect"]
    g = Graph("layer", name="one_cell")
    g.add_cell("normal", search_cell("normal", 2, 2, False, ops, dim=1))
    g.add_input("x", channels=3)
    g.add_call("cell0", "normal", ["x", "x"], bind={"C": 4, "stride0": 1})
    g.set_outputs(["cell0"])
    mark_widths(g, [0.5, 1.0])
    torch.manual_seed(0)
    full = compile(g).eval()
    with torch.no_grad():  # non-trivial statistics and mixing weights
        for m in full.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.uniform_(-1, 1), m.running_var.uniform_(0.5, 2)
        for p in full.arch.values():
            p.normal_()
    relax = WidthGates()
    full.relaxation = relax
    relax.attach(full)
    gates = relax(dict(full.arch.items()))
    gates[width_key("cell0")] = type(gates[width_key("cell0")])(torch.tensor([[1.0, 0.0]]))
    x = torch.randn(5, 3, 9)
    y = full(x, gates=gates)
    small_graph = g.copy()
    narrow(small_graph, {"cell0": 2})
    small = compile(small_graph).eval()
    big = full.state_dict()
    small.load_state_dict({k: big[k][tuple(slice(0, n) for n in v.shape)]
                           for k, v in small.state_dict().items()})
    z = small(x, gates={k: d for k, d in gates.items() if not k.startswith("width:")})
    torch.testing.assert_close(z, torch.cat([y[:, 0:2], y[:, 4:6]], 1))
    assert y[:, 2:4].abs().max() == 0 and y[:, 6:8].abs().max() == 0


def test_a_configuration_file_names_the_strategy_and_its_width_options(tmp_path):
    from supernet.config import load_config
    from supernet.run import make_strategy

    path = tmp_path / "run.yaml"
    path.write_text("strategy: {name: crosslevel, base: gumbel_max, fractions: [0.5, 1.0],\n"
                    "           cost_weight: 1.0, cost_target: 200000, input_shape: [1, 40]}\n")
    strategy = make_strategy(load_config(str(path)))
    relax = strategy.relaxation
    assert strategy.name == "crosslevel" and type(relax.base).__name__ == "GumbelMax"
    assert (relax.cost_weight, relax.target) == (1.0, 200000)
    g = tiny()
    strategy.prepare(g)
    assert g.meta["widths"]["calls"] == {"cell0": [2, 4], "cell1": [4, 8], "cell2": [8, 16]}
    path.write_text("strategy: {name: crosslevel, fractions: [0.5, 2]}\n")
    with pytest.raises(ConfigError, match=r"strategy\.fractions\[1\]=2"):
        make_strategy(load_config(str(path)))


def test_a_gdas_base_samples_one_width_per_cell_and_its_gradient_reaches_the_logits():
    from supernet.search.relaxations import GumbelMax

    g = tiny()
    mark_widths(g, [0.5, 1.0])
    net = compile(g)
    relax = WidthGates(GumbelMax())
    net.relaxation = relax
    relax.attach(net)
    net.train()
    relax.set_phase("arch")
    x, y = data(8)
    net(x)
    for call in ("cell0", "cell1", "cell2"):
        mask = relax._masks[call].detach()
        assert set(mask.tolist()) <= {0.0, 1.0} and mask[0] == 1.0, call  # a hard sample
    with torch.no_grad():  # the full width is sampled (at GDAS' first temperature, 10)
        for call in ("cell0", "cell1", "cell2"):
            net.arch[width_key(call)].copy_(torch.tensor([[-20.0, 20.0]]))
    torch.nn.functional.cross_entropy(net(x), y).backward()
    for call in ("cell0", "cell1", "cell2"):
        assert bool((relax._masks[call] == 1).all()), call
        assert net.arch[width_key(call)].grad.abs().sum() > 0, call  # straight through
