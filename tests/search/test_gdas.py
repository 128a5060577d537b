"""GDAS (Dong and Yang, CVPR 2019) as the authors' final code defines its gradient: each
edge outputs ``h_k o_k(x) + Σ_{j≠k} h_j`` with ``h`` the straight-through hard sample."""

import pytest
import torch

import supernet
from search_spaces import create_space
from supernet import Graph
from supernet.cost.layer import graph_cost
from supernet.search.relaxations import GumbelMax, GumbelMaxV1, set_phase, use_relaxation

OPS = ["none", "conv_1x1", "identity"]


def _cell():
    """x -> a -> b and x -> b, three gates, 'none' among the candidates of two."""
    g = Graph("layer", name="cell")
    g.add_input("x", channels=2)
    g.add_node("a", channels=2)
    g.add_node("b", channels=2)
    g.add_edge("x", "a", OPS)
    g.add_edge("a", "b", OPS)
    g.add_edge("x", "b", ["conv_1x1", "identity"])
    g.set_outputs(["b"])
    return g


def _draw(net, relax, want):
    """A draw of the relaxation whose gate ``x->a`` samples candidate ``want``."""
    for seed in range(200):
        torch.manual_seed(seed)
        gates = relax(dict(net.arch.items()))
        if gates["x->a"].active[0] == [want]:
            return gates
    raise AssertionError("no draw sampled the candidate")


def _reference(net, gates, x):
    """The straight-through forward written out edge by edge."""
    def edge(u, v, value):
        d = gates[f"{u}->{v}"]
        w, k = d.weights[0], d.active[0][0]
        name = net.graph.edge(u, v)["ops"][k]
        op = net.get_submodule(f"steps.{v}.inputs.{u}.{name}")
        return w[k] * op(value) + sum(w[j] for j in range(len(w)) if j != k)

    a = edge("x", "a", x)
    return edge("a", "b", a) + edge("x", "b", x)


@pytest.mark.parametrize("sampled", [0, 1])  # 'none' (the gate v1 leaves without gradient), conv
def test_arch_gradient_equals_the_hand_written_straight_through_forward(sampled):
    torch.manual_seed(0)
    net = supernet.compile(_cell())
    relax = GumbelMax()
    use_relaxation(net, relax)
    set_phase(net, "arch")
    x, target = torch.randn(3, 2, 4, 4), torch.randn(3, 2, 4, 4)
    gates = _draw(net, relax, sampled)
    arch = list(net.arch.values())
    ours = torch.autograd.grad((net(x, gates=gates) * target).sum(), arch, retain_graph=True)
    ref = torch.autograd.grad((_reference(net, gates, x) * target).sum(), arch)
    for key, g, r in zip(net.arch.keys(), ours, ref):
        assert torch.allclose(g, r, atol=1e-5, rtol=1e-4), key
        assert g.abs().sum() > 0, key  # every gate moves, whatever op it sampled


def test_the_scalars_change_no_value_and_v1_leaves_a_sampled_none_without_gradient():
    torch.manual_seed(0)
    net = supernet.compile(_cell())
    x = torch.randn(3, 2, 4, 4)
    set_phase(net, "arch")
    full = _draw(net, GumbelMax(), 0)
    v1 = {k: GumbelMaxV1.decision(d.weights, d.active) for k, d in full.items()}
    out_full, out_v1 = net(x, gates=full), net(x, gates=v1)
    assert torch.equal(out_full, out_v1)  # each unsampled h_j is exactly 0
    g_v1 = torch.autograd.grad(out_v1.square().sum(), net.arch["x->a"], allow_unused=True,
                               retain_graph=True)[0]
    assert g_v1 is None or not g_v1.abs().sum() > 0  # 'none' outputs zeros: ∂L/∂h = 0
    g_full = torch.autograd.grad(out_full.square().sum(), net.arch["x->a"])[0]
    assert (g_full != 0).all()


def test_every_gate_of_a_darts_search_network_gets_a_gradient():
    g = create_space("darts", C=4, layers=3, steps=4, multiplier=4)
    net = supernet.compile(g)
    x = torch.randn(2, 3, 8, 8)
    for cls in (GumbelMax, GumbelMaxV1):
        use_relaxation(net, cls())
        set_phase(net, "arch")
        torch.manual_seed(3)
        gates = net.relaxation(dict(net.arch.items()))
        none = [k for k, d in gates.items() if d.active[0] == [0]]  # 'none' sampled
        assert none  # this seed samples it on some gate
        grads = torch.autograd.grad(net(x, gates=gates).square().sum(), list(net.arch.values()),
                                    allow_unused=True)
        dead = {k for k, gr in zip(net.arch.keys(), grads)
                if gr is None or not gr.abs().sum() > 0}
        assert len(net.arch) == 28
        assert dead == (set() if cls is GumbelMax else set(none)), cls.__name__


def test_the_frc_reduction_cell_has_the_authors_layers_shapes_and_parameters():
    g = create_space("darts", C=8, layers=5, reduction="frc")
    assert g.meta["reduction"] == "frc" and list(g.meta["constraints"]) == ["normal"]
    assert g.cells["reduce"].gate_edges() == [] and len(g.cells["normal"].gate_edges()) == 14
    supernet.lint(g)  # the four states agree in resolution
    net = supernet.compile(g)
    assert len(net.arch) == 14  # only the normal cell is searched
    report = graph_cost(g, (3, 16, 16))
    assert report.total.params == sum(p.numel() for p in net.weights())
    assert report.shapes["cell1"] == (64, 8, 8)
    x = torch.randn(2, 3, 16, 16)
    values = net.run((x,), net.relaxation(dict(net.arch.items())), {}, 0.0)
    assert values["cell1"].shape == (2, 4 * 16, 8, 8)  # 4 states of 2C channels, halved
    assert values["cell3"].shape == (2, 4 * 32, 4, 4)

    def count(cell):
        return sum(p.numel() for n, p in net.named_parameters() if n.startswith(f"steps.{cell}."))

    def branch(c):  # two grouped convs (3 taps, C/8 inputs each) and a 1x1, with biases
        return 2 * (c * (c // 8) * 3 + c) + c * c + c

    # cell1: preprocess 24 -> 16 (the stem) and 32 -> 16 (cell0), two branches of 16
    assert count("cell1") == 24 * 16 + 32 * 16 + 2 * branch(16)
    # cell3 reads cell1 and cell2 (64 channels each): two branches of 32
    assert count("cell3") == 64 * 32 + 64 * 32 + 2 * branch(32)
    frc = dict(net.get_submodule("steps.cell1.cell.steps.n2.inputs.p0.gdas_frc_conv").named_children())
    convs = [m for m in frc.values() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.kernel_size, c.stride, c.groups) for c in convs] == [
        ((1, 3), (1, 2), 8), ((3, 1), (2, 1), 8), ((1, 1), (1, 1), 1)]
    with pytest.raises(supernet.errors.GenotypeError, match="fixed reduction cell"):
        supernet.spaces.encode(g)
    with pytest.raises(supernet.errors.ConfigError, match="divisible by 4"):
        create_space("darts", C=6, reduction="frc")
    with pytest.raises(supernet.errors.ConfigError, match="reduction='frk' is unknown"):
        create_space("darts", reduction="frk")
