"""The cost model against counts taken from the built modules by forward hooks."""

import math

import pytest
import torch
import torch.nn as nn

import supernet
from search_spaces import create_space, decode
from search_spaces.darts import PUBLISHED, network, network_graph
from supernet.cost.layer import (
    Cost,
    expected_cost,
    graph_cost,
    op_cost,
    register_module_cost,
)
from supernet.cost.rules import unregister_module_cost
from supernet.errors import ShapeError, SupernetError
from supernet.ops import build_op, register_op, unregister_op
from supernet.ops.basic import GlobalAvgPool

CONV = (nn.Conv1d, nn.Conv2d)
BN = (nn.BatchNorm1d, nn.BatchNorm2d)
POOL = (nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d)
ADAPTIVE = (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, GlobalAvgPool)


class HookCounter:
    """Counts of a forward pass, from the tensors each leaf module actually saw."""

    def __init__(self, module: nn.Module):
        self.count = {"params": 0, "macs": 0, "bn": 0, "pool": 0}
        self.handles = []
        for m in module.modules():
            if isinstance(m, CONV + BN + POOL + ADAPTIVE + (nn.Linear,)):
                self.handles.append(m.register_forward_hook(self.hook))

    def hook(self, m, inputs, out):
        n = out.shape[0]
        per_out = out.numel() // n
        self.count["params"] += sum(p.numel() for p in m.parameters())
        if isinstance(m, CONV):
            self.count["macs"] += per_out * m.in_channels // m.groups * math.prod(m.kernel_size)
        elif isinstance(m, nn.Linear):
            self.count["macs"] += per_out * m.in_features
        elif isinstance(m, BN):
            self.count["bn"] += per_out
        elif isinstance(m, POOL):
            k = m.kernel_size if isinstance(m.kernel_size, tuple) else \
                (m.kernel_size,) * (out.dim() - 2)
            self.count["pool"] += per_out * math.prod(k)
        else:  # adaptive average pooling to size 1 reads every input element once
            assert all(s == 1 for s in out.shape[2:])
            self.count["pool"] += inputs[0].numel() // n

    def __call__(self, module, x):
        with torch.no_grad():
            module(x)
        for h in self.handles:
            h.remove()
        return self.count


def fields(c: Cost) -> dict:
    return {"params": c.params, "macs": c.macs, "bn": c.bn, "pool": c.pool}


OPS = ["none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
       "sep_conv_7x7", "dil_conv_3x3", "dil_conv_5x5", "preprocess", "relu_conv_bn",
       "factorized_reduce", "stem_conv_bn", "batchnorm", "identity", "conv_1x1", "conv_3x3"]


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("dim, size", [(2, 9), (2, 8), (1, 10)])
def test_op_costs_equal_hook_counts(op, dim, size):
    spec = supernet.resolve_op(op)
    C_out = 4 if spec.same_channels else 6  # widening ops map 4 -> 6 channels
    for stride in ((1, 2) if "stride" in spec.params else (1,)):
        args = {k: v for k, v in {"stride": stride, "dim": dim, "pool_bn": True}.items()
                if k in spec.params}
        shape = (4,) + (size,) * dim
        module = build_op(op, 4, C_out, args)
        out_shape, cost = op_cost(op, 4, C_out, args, shape)
        x = torch.randn(2, *shape)
        assert tuple(module(x).shape[1:]) == out_shape
        assert fields(cost) == HookCounter(module)(module, x), (op, args)


@pytest.mark.parametrize("kw", [
    dict(kernel_size=3, stride=2, dilation=2, groups=2),
    dict(kernel_size=5, stride=3, padding=1, dilation=1, groups=4),
    dict(kernel_size=1, stride=2, bias=False),
])
def test_conv_groups_dilation_stride(kw):
    module = build_op("conv", 8, 12, kw)
    _, cost = op_cost("conv", 8, 12, kw, (8, 11, 13))
    assert fields(cost) == HookCounter(module)(module, torch.randn(1, 8, 11, 13))
    assert cost.params == sum(p.numel() for p in module.parameters())


def test_linear_classifier_and_aux_head():
    for op, C_in, shape in (("linear", 7, (3, 7)), ("classifier", 7, (7, 1, 1)),
                            ("aux_head", 16, (16, 8, 8))):
        module = build_op(op, C_in, 10, {})
        out, cost = op_cost(op, C_in, 10, {}, shape)
        assert fields(cost) == HookCounter(module)(module, torch.randn(2, *shape))
        assert out == tuple(module(torch.randn(2, *shape)).shape[1:])


def test_darts_v2_counts_and_the_published_figure():
    report = graph_cost(network_graph("DARTS_V2"), (3, 32, 32))
    net = network("DARTS_V2").eval()
    assert fields(report.total) == HookCounter(net)(net, torch.randn(1, 3, 32, 32))
    assert report.total.params == 3_349_342
    assert round(report.total.macs / 1e6) == 528  # as reported for DARTS (2nd order)
    assert report.shapes["logits"] == (10,) and report.shapes["cell19"] == (576, 8, 8)


def test_train_only_head_is_left_out_unless_asked():
    g = network_graph("PDARTS", C=8, layers=5, auxiliary=True)
    r = graph_cost(g, (3, 32, 32))
    full = graph_cost(g, (3, 32, 32), include_train_only=True)
    assert r.train_only == {"aux"}
    assert full.total.params - r.total.params == r.nodes["aux"].params > 0
    net = supernet.compile(g).train()
    assert fields(full.total) == {k: v for k, v in HookCounter(net)(
        net, torch.randn(2, 3, 32, 32)).items()}


def test_search_cell_edges_equal_hook_counts():
    g = create_space("darts", C=4, layers=5)
    report = graph_cost(g, (3, 16, 16))
    net = supernet.compile(g).eval()
    ops, seen, handles = {}, {}, []  # the input each op receives inside the network
    for node in ("cell2", "cell3"):  # a normal cell, and a reduction cell after a normal one
        cell = net.steps[node].cell
        for (u, v), per_op in report.calls[node].edges.items():
            for op in per_op:
                key = (node, u, v, op)
                ops[key] = cell.edge_module(u, v)[op]
                handles.append(ops[key].register_forward_hook(
                    lambda m, i, o, key=key: seen.update({key: i[0]})))
    net(torch.randn(1, 3, 16, 16))
    for h in handles:
        h.remove()
    for key, module in ops.items():
        cost = report.calls[key[0]].edges[key[1:3]][key[3]]
        if key not in seen:  # mixtures skip the zero op, which costs nothing
            assert key[3] == "none" and cost == Cost()
            continue
        assert fields(cost) == HookCounter(module)(module, seen[key]), key
    # the supernet total: every candidate runs (the zero op costs nothing), each computing
    # its own prefix, as the plain forward does
    net.share_prefixes = False
    assert fields(report.total) == HookCounter(net)(net, torch.randn(1, 3, 16, 16))
    # the compiled forward pools once per node and pooling kind: the same convolutions,
    # less pooling than the per-candidate count
    net.share_prefixes = True
    shared = HookCounter(net)(net, torch.randn(1, 3, 16, 16))
    assert shared["macs"] == report.total.macs and 0 < shared["pool"] < report.total.pool


def test_gate_table_is_summed_over_the_cells_of_a_template():
    g = create_space("darts", C=4, layers=5)
    r = graph_cost(g, (3, 16, 16))
    key = "normal:p1->n2"
    per_call = [r.calls[f"cell{i}"].edges[("p1", "n2")]["sep_conv_3x3"].macs
                for i in (0, 2, 4)]
    assert r.gates[key]["sep_conv_3x3"].macs == sum(per_call)
    assert len(r.gates) == 28 and set(r.gates) == set(supernet.compile(g).gates())


def test_expected_cost_is_differentiable():
    r = graph_cost(create_space("darts", C=4, layers=5), (3, 16, 16))
    alpha = {k: torch.randn(1, 8, requires_grad=True) for k in r.gates}
    probs = {k: torch.softmax(a, -1) for k, a in alpha.items()}
    value = r.expected(probs)
    manual = r.fixed.macs + sum(
        sum(p[0, i].item() * c.macs for i, c in enumerate(r.gates[k].values()))
        for k, p in probs.items())
    assert value.item() == pytest.approx(manual, rel=1e-6)
    value.backward()
    assert all(a.grad is not None and a.grad.abs().sum() > 0 for a in alpha.values())
    table = r.table("params")["reduce:p0->n2"]
    assert table.tolist() == [float(c.params) for c in r.gates["reduce:p0->n2"].values()]
    assert expected_cost([Cost(macs=10), Cost(macs=30)], [0.5, 0.5]) == 20
    with pytest.raises(SupernetError, match=r"no gate\(s\) \['nope'\]"):
        r.expected({"nope": [1.0]})


def test_chosen_architecture_costs_the_discretized_graph():
    text = PUBLISHED["DARTS_V2"]["genotype"]
    search = graph_cost(create_space("darts", C=4, layers=5), (3, 16, 16))
    d = decode("darts", text, C=4, layers=5)
    choice = {k: "none" for k in search.gates}
    for kind in ("normal", "reduce"):
        t = d.cells[kind]
        for u, v in t.nx.edges:
            if v.startswith("n"):
                choice[f"{kind}:{u}->{v}"] = t.edge(u, v)["ops"][0]
    assert search.chosen(choice) == graph_cost(d, (3, 16, 16)).total.macs
    assert search.chosen(choice, "params") == graph_cost(d, (3, 16, 16)).total.params


def test_cost_rules_are_extensible():
    class Double(nn.Module):
        def forward(self, x):
            return torch.cat([x, x], 1)

    @register_op("test_double", override=True)
    def test_double(C_in, C_out, scale=2):
        return Double()

    try:
        with pytest.raises(SupernetError, match="no cost rule for module type Double; register "
                                                "one with @supernet.cost.register_module_cost"):
            op_cost("test_double", 3, 6, {}, (3, 4, 4))

        @register_module_cost(Double)
        def _double(m, shape):
            return (2 * shape[0], *shape[1:]), Cost(other=math.prod(shape))

        assert op_cost("test_double", 3, 6, {}, (3, 4, 4)) == ((6, 4, 4), Cost(other=48))
        with pytest.raises(supernet.errors.DuplicateNameError, match="override=True"):
            register_module_cost(Double)(_double)

        # an op's own rule, part of its registration, is used instead of building it; it
        # receives the arguments with the builder's defaults filled in
        seen = []

        def _double_op(C_in, C_out, args, shape):
            seen.append(args)
            return (C_out, *shape[1:]), Cost(other=1)

        register_op("test_double", cost=_double_op, override=True)(test_double)
        assert op_cost("test_double", 3, 6, {}, (3, 4, 4))[1].other == 1
        assert seen == [{"scale": 2}]
    finally:
        unregister_op("test_double")
        unregister_module_cost(Double)


def test_bad_shapes_are_named():
    g = network_graph("DARTS_V2", C=4, layers=3)
    with pytest.raises(ShapeError, match="input 'x' declares 3 channels but receives 1"):
        graph_cost(g, (1, 32, 32))
    with pytest.raises(ShapeError, match=r"2 input shape\(s\) for inputs \['x'\]"):
        graph_cost(g, [(3, 8, 8), (3, 8, 8)])


NB201_OPS = ["nor_conv_1x1", "nor_conv_3x3", "nb201_skip_connect", "nb201_avg_pool_3x3",
             "nb201_downsample"]


@pytest.mark.parametrize("op", NB201_OPS)
@pytest.mark.parametrize("size", [8, 9])
def test_nb201_op_costs_equal_hook_counts(op, size):
    spec = supernet.resolve_op(op)
    for C_out, stride, affine in [(4, 1, True), (4, 2, False), (5, 1, False), (6, 2, True)]:
        args = {k: v for k, v in {"stride": stride, "affine": affine}.items()
                if k in spec.params}
        module = build_op(op, 4, C_out, args)
        out_shape, cost = op_cost(op, 4, C_out, args, (4, size, size))
        x = torch.randn(2, 4, size, size)
        assert tuple(module(x).shape[1:]) == out_shape, (op, args)
        assert fields(cost) == HookCounter(module)(module, x), (op, C_out, args)


def test_nasbench201_counts_equal_hook_counts():
    from search_spaces import nasbench201 as nb

    arch = ("|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|"
            "+|skip_connect~0|none~1|nor_conv_3x3~2|")
    for g in (nb.nasbench201(C=4, N=1), nb.decode(arch, C=4, N=1)):
        net = supernet.compile(g).eval()
        r = graph_cost(g, (3, 16, 16))
        assert fields(r.total) == HookCounter(net)(net, torch.randn(1, 3, 16, 16)), g.name
    # the evaluation network has no architecture parameters: every parameter is counted
    assert r.total.params == sum(p.numel() for p in net.parameters())


def test_nasbench201_full_size_figures():
    # Measured by forward hooks on the compiled networks; NAS-Bench-201 lists its largest
    # (all nor_conv_3x3) and smallest (all none) CIFAR-10 networks at 220.11 and 7.78 MFLOPs.
    from search_spaces import nasbench201 as nb

    big = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
           "+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|")
    small = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    assert graph_cost(nb.decode(big), (3, 32, 32)).total == Cost(
        params=1_531_546, macs=220_119_680, bn=905_216, pool=28_672)
    assert graph_cost(nb.decode(small), (3, 32, 32)).total.macs == 7_783_040


MOBILE_OPS = [f"mbconv_{k}x{k}_e{e}" for k in (3, 5, 7) for e in (1, 3, 6)] + ["conv_bn_relu6"]


@pytest.mark.parametrize("op", MOBILE_OPS)
def test_mobile_op_costs_equal_hook_counts(op):
    for C_out, stride, size in [(4, 1, 9), (6, 2, 9), (6, 2, 8)]:
        module = build_op(op, 4, C_out, {"stride": stride}).eval()
        out_shape, cost = op_cost(op, 4, C_out, {"stride": stride}, (4, size, size))
        x = torch.randn(2, 4, size, size)
        assert tuple(module(x).shape[1:]) == out_shape, (op, stride)
        assert fields(cost) == HookCounter(module)(module, x), (op, C_out, stride, size)


def test_proxyless_network_counts_equal_hook_counts():
    from search_spaces import mobilenet as mb

    kw = dict(width_mult=0.25, n_cell_stages=(1, 2, 1, 1, 1, 1), num_classes=5,
              last_channel=32, input_size=32)
    text = ",".join(["mbconv_3x3_e1", "mbconv_5x5_e6", "mbconv_3x3_e3", "none",
                     "mbconv_7x7_e6", "mbconv_3x3_e6", "mbconv_5x5_e3", "mbconv_7x7_e3"])
    g = mb.decode(text, **kw)
    net = supernet.compile(g).eval()
    r = graph_cost(g, (3, 32, 32))
    assert fields(r.total) == HookCounter(net)(net, torch.randn(1, 3, 32, 32))
    assert r.total.params == sum(p.numel() for p in net.parameters())


def test_the_former_op_cost_decorator_sets_the_rule_on_the_op():
    import supernet.cost as sc
    from supernet.ops import register_op, resolve_op
    from supernet.ops.registry import OPS

    register_op("test_cost_shim", same_channels=True)(lambda C_in, C_out: torch.nn.Identity())
    try:
        with pytest.warns(DeprecationWarning, match=r"register_op\(name, \.\.\., cost=rule\)"):
            @sc.register_op_cost("test_cost_shim")
            def rule(C_in, C_out, args, shape):
                return shape, sc.Cost(other=7)
        assert resolve_op("test_cost_shim").cost is rule
        assert "flops" in sc.METRICS
    finally:
        OPS.unregister("test_cost_shim")
