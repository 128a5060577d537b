"""NAS-Bench-201 space: reference parameter count, oracle comparison, text round trips."""

import pytest
import torch
import torch.nn as nn
from space_helpers import assert_files_round_trip, load_by_position, n_params
from space_helpers import type_counts as type_counts_of

import supernet
from search_spaces import create_space
from search_spaces import decode as registry_decode
from search_spaces import encode as registry_encode
from search_spaces import nasbench201 as nb
from supernet.errors import ConfigError, GenotypeError

ARCHS = [
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|"
    "+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
    "|nor_conv_1x1~0|+|none~0|none~1|+|none~0|none~1|none~2|",  # node 1's conv feeds nothing
    "|avg_pool_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|none~0|avg_pool_3x3~1|nor_conv_3x3~2|",
    "|nor_conv_3x3~0|+|avg_pool_3x3~1|nor_conv_1x1~0|+|nor_conv_3x3~2|skip_connect~0|none~1|",
]
ALL_CONV = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
            "+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|")


# --------------------------------------------------------------------------- the oracle
# Written from the definitions of the reference (xautodl cell_operations.py, InferCell,
# TinyNetwork, NAS201SearchCell): ReLU-conv-BN with conv bias iff the BN is not affine,
# pooling without projection at equal widths, ResNet basic block with a 2x2 average pool and
# 1x1 conv residual, stem conv-BN, BN-ReLU-pool-linear head.
class OracleZero(nn.Module):
    def forward(self, x):
        return x.mul(0.0)


class OracleIdentity(nn.Module):
    def forward(self, x):
        return x


def oracle_rcb(C_in, C_out, k, stride, affine=True, track=True):
    return nn.Sequential(nn.ReLU(), nn.Conv2d(C_in, C_out, k, stride, k // 2, bias=not affine),
                         nn.BatchNorm2d(C_out, affine=affine, track_running_stats=track))


def oracle_op(name, C, affine=True, track=True):
    if name == "none":
        return OracleZero()
    if name == "skip_connect":
        return OracleIdentity()
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, 1, 1, count_include_pad=False)
    return oracle_rcb(C, C, 1 if name == "nor_conv_1x1" else 3, 1, affine, track)


class OracleBlock(nn.Module):
    def __init__(self, C_in, C_out):
        super().__init__()
        self.conv_a = oracle_rcb(C_in, C_out, 3, 2)
        self.conv_b = oracle_rcb(C_out, C_out, 3, 1)
        self.downsample = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(C_in, C_out, 1, bias=False))

    def forward(self, x):
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class OracleCell(nn.Module):
    def __init__(self, nodes, C):
        super().__init__()
        self.nodes = nodes
        self.layers = nn.ModuleList(oracle_op(op, C) for node in nodes for op, _ in node)

    def forward(self, x):
        states, k = [x], 0
        for node in self.nodes:
            total = 0
            for _, j in node:
                total = total + self.layers[k](states[j])
                k += 1
            states.append(total)
        return states[-1]


class OracleSearchCell(nn.Module):
    def __init__(self, C, ops, affine, track):
        super().__init__()
        self.edges = nn.ModuleDict()
        for i in range(1, 4):
            for j in range(i):
                self.edges[f"{i}<-{j}"] = nn.ModuleList(oracle_op(o, C, affine, track) for o in ops)

    def forward(self, x, weights):
        states = [x]
        for i in range(1, 4):
            total = 0
            for j in range(i):
                key = f"{i}<-{j}"
                w = weights[list(self.edges).index(key)]
                total = total + sum(op(states[j]) * w[k] for k, op in enumerate(self.edges[key]))
            states.append(total)
        return states[-1]


class OracleNetwork(nn.Module):
    def __init__(self, C, N, num_classes, make_cell):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, C, 3, padding=1, bias=False), nn.BatchNorm2d(C))
        widths = [C] * N + [2 * C] + [2 * C] * N + [4 * C] + [4 * C] * N
        reductions = [False] * N + [True] + [False] * N + [True] + [False] * N
        cells, prev = [], C
        for width, reduction in zip(widths, reductions):
            cells.append(OracleBlock(prev, width) if reduction else make_cell(width))
            prev = width
        self.cells = nn.ModuleList(cells)
        self.lastact = nn.Sequential(nn.BatchNorm2d(prev), nn.ReLU())
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(prev, num_classes)

    def forward(self, x, weights=None):
        x = self.stem(x)
        for cell in self.cells:
            x = cell(x, weights) if isinstance(cell, OracleSearchCell) else cell(x)
        return self.classifier(self.global_pooling(self.lastact(x)).flatten(1))


def oracle_network(arch, C, N, num_classes):
    nodes = [[(tok.split("~")[0], int(tok.split("~")[1])) for tok in g.strip("|").split("|")]
             for g in arch.split("+")]
    return OracleNetwork(C, N, num_classes, lambda width: OracleCell(nodes, width))


LEAF_TYPES = (nn.Conv2d, nn.BatchNorm2d, nn.Linear, nn.ReLU, nn.AvgPool2d, nn.AdaptiveAvgPool2d)


def type_counts(module):
    return type_counts_of(module, LEAF_TYPES)


def randomize_bn(module):
    g = torch.Generator().manual_seed(1)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d) and m.track_running_stats:
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)


# --------------------------------------------------------------------------- tests
def test_reference_parameter_count():
    # TinyNetwork(C=16, N=5, all six edges nor_conv_3x3, 10 classes): 1,531,546 parameters.
    assert n_params(nb.network(ALL_CONV)) == 1_531_546
    assert n_params(nb.network(ALL_CONV, C=16, N=5, num_classes=10)) == 1_531_546


@pytest.mark.parametrize("arch", ARCHS)
def test_network_matches_oracle(arch):
    ours, ref = nb.network(arch, C=4, N=2, num_classes=5), oracle_network(arch, 4, 2, 5)
    assert n_params(ours) == n_params(ref)
    assert type_counts(ours) == type_counts(ref)
    randomize_bn(ref)
    load_by_position(ours, ref)
    x = torch.randn(3, 3, 8, 8)
    for train in (True, False):
        ours.train(train), ref.train(train)
        torch.testing.assert_close(ours(x), ref(x), rtol=0, atol=0)


def test_network_backward_matches_oracle():
    arch = ARCHS[0]
    ours, ref = nb.network(arch, C=4, N=1, num_classes=3), oracle_network(arch, 4, 1, 3)
    load_by_position(ours, ref)
    x = torch.randn(2, 3, 8, 8)
    ours(x).square().sum().backward()
    ref(x).square().sum().backward()
    for p, q in zip(ours.parameters(), ref.parameters()):
        torch.testing.assert_close(p.grad, q.grad)


def test_unused_layers_are_kept():
    # Node 1's conv feeds only 'none' edges: the reference still builds (and runs) it.
    g = nb.decode(ARCHS[1], C=4, N=1)
    assert g.cells["cell"].edge("0", "1")["ops"] == ["nor_conv_1x1"]
    assert n_params(nb.network(ARCHS[1], C=4, N=1)) == n_params(oracle_network(ARCHS[1], 4, 1, 10))


def test_search_network_matches_oracle():
    ops = list(nb.NB201_OPS)
    g = nb.nasbench201(C=4, N=1, num_classes=3)
    supernet.lint(g)
    ours = supernet.compile(g)
    ref = OracleNetwork(4, 1, 3, lambda width: OracleSearchCell(width, ops, False, True))
    assert n_params(ours) - n_params(ours.arch) == n_params(ref)  # conv biases: affine=False
    assert type_counts(ours) == type_counts(ref)
    load_by_position(ours.steps, ref)
    keys = ["cell:0->1", "cell:0->2", "cell:1->2", "cell:0->3", "cell:1->3", "cell:2->3"]
    assert sorted(ours.gates()) == sorted(keys)
    alphas = torch.randn(6, 5)
    with torch.no_grad():
        for key, row in zip(keys, alphas):
            ours.arch[key].copy_(row[None])
    x = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(ours(x), ref(x, torch.softmax(alphas, -1)))


def test_search_space_lint_compile_forward_backward():
    g = create_space("nasbench201", C=4, N=1, num_classes=3)
    assert g.meta["space"] == "nasbench201"
    assert g.meta["constraints"]["cell"] == {"max_inputs": None, "exclude": []}
    assert set(g.meta["constraints"]) == {"", "cell", "resblock"}
    supernet.lint(g)
    net = supernet.compile(g)
    y = net(torch.randn(2, 3, 8, 8))
    assert y.shape == (2, 3)
    y.sum().backward()
    assert all(a.grad is not None and a.grad.abs().sum() > 0 for a in net.arch_parameters())


@pytest.mark.parametrize("arch", ARCHS + [ALL_CONV])
def test_text_round_trip(arch):
    g = nb.decode(arch, C=4, N=1)
    supernet.lint(g)
    assert nb.encode(g) == arch
    assert registry_encode(registry_decode("nasbench201", arch, C=4, N=1)) == arch
    assert nb.decode(nb.encode(g), C=4, N=1).same_as(g)
    assert nb.format_arch(nb.parse_arch(arch)) == arch


def test_discretized_super_network_encodes():
    g = nb.nasbench201(C=4, N=1)
    cell = g.cells["cell"]
    picks = {("0", "1"): "nor_conv_3x3", ("0", "2"): "none", ("1", "2"): "nb201_skip_connect",
             ("0", "3"): "nb201_avg_pool_3x3", ("1", "3"): "nor_conv_1x1", ("2", "3"): "none"}
    for (u, v), op in picks.items():
        cell.set_ops(u, v, [op])
    cell.remove_edge("2", "3")  # a pruned edge reads as 'none'
    assert nb.encode(g) == (
        "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|none~2|"
    )


def test_encode_refuses_undiscretized_graph():
    with pytest.raises(GenotypeError, match=r"cell edge 0->1 still has 5 candidate ops"):
        nb.encode(nb.nasbench201(C=4, N=1))


@pytest.mark.parametrize("text, match", [
    ("|nor_conv_3x3~0|+|none~0|none~1|", r"2 node group\(s\).*3 \(nodes 1 to 3\)"),
    ("|conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|",
     r"token 'conv_3x3~0' names unknown op 'conv_3x3'; accepted ops: \['none', 'skip_connect'"),
    ("|nor_conv_3x3-0|+|none~0|none~1|+|none~0|none~1|none~2|",
     r"token 'nor_conv_3x3-0' is not of the form 'op~input'"),
    ("|nor_conv_3x3~1|+|none~0|none~1|+|none~0|none~1|none~2|",
     r"token 'nor_conv_3x3~1' takes input 1.*accepted inputs: \[0\]"),
    ("|nor_conv_3x3~0|+|none~0|+|none~0|none~1|none~2|", r"node 2: .*no op from node\(s\) \[1\]"),
    ("|nor_conv_3x3~0|+|none~0|none~0|+|none~0|none~1|none~2|", r"token 'none~0' repeats input 0"),
    ("nor_conv_3x3~0+|none~0|none~1|+|none~0|none~1|none~2|", r"group 'nor_conv_3x3~0'.*'\|'"),
    ("|nor_conv_3x3~00|+|none~0|none~1|+|none~0|none~1|none~2|", r"token 'nor_conv_3x3~00'"),
])
def test_malformed_arch_strings(text, match):
    with pytest.raises(GenotypeError, match=match):
        nb.decode(text)


def test_bad_builder_arguments():
    with pytest.raises(GenotypeError, match=r"unknown op\(s\) \['sep_conv_3x3'\]; accepted ops"):
        nb.nasbench201(ops=["none", "sep_conv_3x3"])
    with pytest.raises(ConfigError, match=r"C must be a positive int, got 0"):
        nb.decode(ALL_CONV, C=0)
    with pytest.raises(ConfigError, match=r"space 'nasbench201': decode does not take "
                                          r"argument\(s\) \['c'\]; it takes \['text', 'C'"):
        registry_decode("nasbench201", ALL_CONV, c=4)



@pytest.mark.parametrize("make", [lambda: nb.nasbench201(C=4, N=1), lambda: nb.decode(ALL_CONV)])
def test_graph_files_round_trip(make, tmp_path):
    assert_files_round_trip(make(), tmp_path)


def test_loaded_graph_encodes(tmp_path):
    supernet.save_graph(nb.decode(ARCHS[2]), tmp_path / "g.json")
    assert nb.encode(supernet.load_graph(tmp_path / "g.json")) == ARCHS[2]


# Parameter counts of TinyNetwork measured on an independent re-implementation of the
# reference (xautodl cell_operations.py, InferCell, TinyNetwork). The all-'none' cell at
# C=16, N=5 is NAS-Bench-201's smallest network (0.073 MB of parameters in its tables).
@pytest.mark.parametrize("arch, C, N, num_classes, expected", [
    ("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", 16, 5, 10, 73_306),
    ("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", 8, 3, 100, 21_708),
    (ALL_CONV, 16, 5, 100, 1_537_396),
    (ALL_CONV, 8, 3, 100, 241_452),
    ("|avg_pool_3x3~0|+|nor_conv_1x1~0|none~1|+|skip_connect~0|avg_pool_3x3~1|nor_conv_3x3~2|",
     16, 5, 10, 344_346),
    ("|avg_pool_3x3~0|+|nor_conv_1x1~0|none~1|+|skip_connect~0|avg_pool_3x3~1|nor_conv_3x3~2|",
     8, 3, 100, 62_700),
])
def test_parameter_counts_of_the_reference(arch, C, N, num_classes, expected):
    assert n_params(nb.network(arch, C=C, N=N, num_classes=num_classes)) == expected
