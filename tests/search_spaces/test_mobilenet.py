"""ProxylessNAS chain space: structure, oracle comparison, creation, text round trips."""

import pytest
import torch
import torch.nn as nn
from space_helpers import assert_files_round_trip, load_by_position, n_params
from space_helpers import type_counts as type_counts_of

import supernet
from search_spaces import create_space
from search_spaces import decode as registry_decode
from search_spaces import encode as registry_encode
from search_spaces import mobilenet as mb
from supernet.edits import AddOp, Editor
from supernet.errors import ConfigError, GenotypeError, UnknownNameError

TINY = dict(width_mult=0.25, n_cell_stages=(1, 2, 1, 1, 1, 1), num_classes=5, last_channel=32,
            input_size=16)
# Blocks of TINY: 0 first (8->8), 1 (8->8, s2), 2 (8->16, s2), 3 (16->16, s1: shortcut, none),
# 4 (16->24, s2), 5 (24->24, s1: shortcut, none), 6 (24->48, s2), 7 (48->80, s1).
ARCH = ("mbconv_3x3_e1,mbconv_5x5_e6,mbconv_3x3_e3,none,"
        "mbconv_7x7_e6,mbconv_3x3_e6,mbconv_5x5_e3,mbconv_7x7_e3")
ARCH2 = ("mbconv_3x3_e1,mbconv_3x3_e3,mbconv_7x7_e3,mbconv_5x5_e6,"
         "mbconv_3x3_e6,none,mbconv_3x3_e3,mbconv_5x5_e6")


# --------------------------------------------------------------------------- the oracle
# Written from ProxylessNAS's definitions (search/modules/layers.py, super_proxyless.py):
# ConvLayer weight-bn-act with ReLU6, MBInvertedConvLayer, MobileInvertedResidualBlock
# (shortcut only at stride 1 and equal widths; a Zero op leaves the shortcut alone).
def bn(c):
    return nn.BatchNorm2d(c, eps=1e-3, momentum=0.1)


class OracleMB(nn.Module):
    def __init__(self, C_in, C_out, k, stride, e):
        super().__init__()
        mid = round(C_in * e)
        self.expand = None if e == 1 else nn.Sequential(
            nn.Conv2d(C_in, mid, 1, bias=False), bn(mid), nn.ReLU6())
        self.depth = nn.Sequential(nn.Conv2d(mid, mid, k, stride, k // 2, groups=mid, bias=False),
                                   bn(mid), nn.ReLU6())
        self.point = nn.Sequential(nn.Conv2d(mid, C_out, 1, bias=False), bn(C_out))

    def forward(self, x):
        return self.point(self.depth(self.expand(x) if self.expand is not None else x))


class OracleBlock(nn.Module):
    def __init__(self, op, C_in, C_out, stride, shortcut):
        super().__init__()
        self.shortcut = shortcut
        if op == "none":
            self.conv = None
        else:
            k, e = int(op.split("_")[1][0]), int(op.split("_e")[1])
            self.conv = OracleMB(C_in, C_out, k, stride, e)

    def forward(self, x):
        if self.conv is None:
            return x
        return self.conv(x) + x if self.shortcut else self.conv(x)


class OracleNet(nn.Module):
    def __init__(self, ops, blocks, last, num_classes):
        super().__init__()
        c0 = blocks[0]["C_in"]
        self.first = nn.Sequential(nn.Conv2d(3, c0, 3, 2, 1, bias=False), bn(c0), nn.ReLU6())
        self.blocks = nn.ModuleList(
            OracleBlock(op, b["C_in"], b["C_out"], b["stride"], b["shortcut"])
            for op, b in zip(ops, blocks))
        c = blocks[-1]["C_out"]
        self.mix = nn.Sequential(nn.Conv2d(c, last, 1, bias=False), bn(last), nn.ReLU6())
        self.classifier = nn.Linear(last, num_classes)

    def forward(self, x):
        x = self.first(x)
        for block in self.blocks:
            x = block(x)
        return self.classifier(self.mix(x).flatten(2).mean(-1))


def oracle(text, **kw):
    blocks = mb.block_choices(kw["width_mult"], n_cell_stages=kw["n_cell_stages"])
    return OracleNet(text.split(","), blocks, kw["last_channel"], kw["num_classes"])


LEAF_TYPES = (nn.Conv2d, nn.BatchNorm2d, nn.Linear, nn.ReLU6)


def type_counts(module):
    return type_counts_of(module, LEAF_TYPES)


# --------------------------------------------------------------------------- tests
def test_default_space_follows_proxylessnas():
    blocks = mb.block_choices()
    assert len(blocks) == 1 + 21
    assert blocks[0] == dict(C_in=32, C_out=16, stride=1, choices=["mbconv_3x3_e1"],
                             shortcut=False)
    assert [b["C_out"] for b in blocks[1:]] == [24] * 4 + [40] * 4 + [80] * 4 + [96] * 4 + \
        [192] * 4 + [320]
    assert [b["stride"] for b in blocks[1:] if b["stride"] != 1] == [2, 2, 2, 2]
    # Zero and the shortcut exactly where the block keeps its shape: not on a stage's first
    # block (width change) nor on the 96-wide stage's first block (80 -> 96, stride 1).
    assert sum(b["shortcut"] for b in blocks) == 15
    assert all(("none" in b["choices"]) == b["shortcut"] for b in blocks)
    assert blocks[1]["choices"] == ["mbconv_3x3_e3", "mbconv_3x3_e6", "mbconv_5x5_e3",
                                    "mbconv_5x5_e6", "mbconv_7x7_e3", "mbconv_7x7_e6"]
    g = mb.proxyless()
    assert g.node("feature_mix")["channels"] == 1280 and g.node("logits")["channels"] == 1000
    assert g.node("x")["shape"] == [3, 224, 224]
    assert len(g.gate_edges()) == 21
    supernet.lint(g)


def test_width_multiplier_rounding():
    assert [mb.make_divisible(v) for v in (32 * 0.35, 16 * 0.35, 24 * 1.3, 1280 * 1.4)] == \
        [16, 8, 32, 1792]
    assert mb.proxyless(width_mult=1.4).node("feature_mix")["channels"] == 1792
    assert mb.proxyless(width_mult=0.5).node("feature_mix")["channels"] == 1280


def test_tiny_super_network_lint_compile_forward_backward():
    g = create_space("proxyless", **TINY)
    assert g.meta["space"] == "proxyless"
    assert g.meta["constraints"] == {"": {"max_inputs": None, "exclude": []}}
    supernet.lint(g)
    net = supernet.compile(g)
    y = net(torch.randn(2, 3, 16, 16))
    assert y.shape == (2, 5)
    y.sum().backward()
    assert len(net.arch_parameters()) == 7
    assert all(a.grad is not None for a in net.arch_parameters())
    # Every candidate of every block is built: as many weights as all oracle candidates.
    blocks = mb.block_choices(0.25, n_cell_stages=TINY["n_cell_stages"])
    expected = n_params(oracle(ARCH, **TINY)) - sum(
        n_params(b) for b in oracle(ARCH, **TINY).blocks)
    for b in blocks:
        expected += sum(n_params(OracleBlock(op, b["C_in"], b["C_out"], b["stride"], False))
                        for op in b["choices"])
    assert sum(p.numel() for p in net.weights()) == expected


def test_shortcut_is_in_the_graph():
    g = mb.proxyless(**TINY)
    assert g.edge("block2", "block3_op")["ops"][-1] == "none"
    assert [u for u, _ in g.in_edges("block3")] == ["block3_op", "block2"]
    assert g.edge("block2", "block3")["ops"] == ["identity"]
    assert "block4_op" not in g and g.edge("block3", "block4")["args"]["stride"] == 2


@pytest.mark.parametrize("text", [ARCH, ARCH2])
def test_decoded_network_matches_oracle(text):
    g = mb.decode(text, **TINY)
    supernet.lint(g)
    ours, ref = supernet.compile(g), oracle(text, **TINY)
    assert n_params(ours) == n_params(ref)
    assert type_counts(ours) == type_counts(ref)
    load_by_position(ours, ref)
    x = torch.randn(3, 3, 16, 16)
    for train in (True, False):
        ours.train(train), ref.train(train)
        torch.testing.assert_close(ours(x), ref(x))


@pytest.mark.parametrize("text", [ARCH, ARCH2])
def test_text_round_trip(text):
    g = mb.decode(text, **TINY)
    assert mb.encode(g) == text
    assert registry_encode(registry_decode("proxyless", text, **TINY)) == text
    assert mb.decode(mb.encode(g), **TINY).same_as(g)


def test_discretized_super_network_encodes():
    g = mb.proxyless(**TINY)
    for b, (u, v) in enumerate(g.meta["blocks"]):
        g.set_ops(u, v, [ARCH.split(",")[b]])
    assert mb.encode(g) == ARCH
    with pytest.raises(GenotypeError, match=r"block 1 \(edge block0->block1\) still has 6"):
        mb.encode(mb.proxyless(**TINY))


def test_zero_output_creation_preserves_function():
    # Block 3 chose 'none' (skipped); growing an MBConv there at zero output keeps the net.
    g = mb.decode(ARCH, **TINY)
    net = supernet.compile(g).eval()
    x = torch.randn(2, 3, 16, 16)
    before = net(x)
    Editor(g, net).apply(AddOp("block2", "block3_op", "mbconv_5x5_e6", init="zero"))
    assert net.gates()["block2->block3_op"] == ["none", "mbconv_5x5_e6"]
    torch.testing.assert_close(net(x), before)
    new = net.edge_module("block2", "block3_op")["mbconv_5x5_e6"]
    assert new.point_linear.bn.weight.abs().sum() == 0
    net(x).sum().backward()
    assert new.point_linear.bn.weight.grad.abs().sum() > 0  # it can grow out of zero


@pytest.mark.parametrize("text, match", [
    (ARCH.replace("mbconv_5x5_e6", "mbconv_9x9_e6"),
     r"block 1 \(stride 2, 8 -> 8 channels\): op 'mbconv_9x9_e6' is not a choice.*accepted: "
     r"\['mbconv_3x3_e3'"),
    (ARCH.replace("mbconv_3x3_e3", "none", 1),
     r"block 2 \(stride 2, 8 -> 16 channels\): op 'none' is not a choice of this block"),
    (ARCH + ",none", r"names 9 op\(s\) but this configuration has 8 blocks"),
    ("", r"expected a comma-separated op list, got ''"),
])
def test_malformed_text(text, match):
    with pytest.raises(GenotypeError, match=match):
        mb.decode(text, **TINY)


def test_bad_configuration():
    with pytest.raises(ConfigError, match=r"one entry per stage, got lengths \[6, 2, 6\]"):
        mb.proxyless(n_cell_stages=(1, 1))
    with pytest.raises(ConfigError, match=r"without 'none'"):
        mb.proxyless(candidates=["mbconv_3x3_e3", "none"])
    with pytest.raises(UnknownNameError, match=r"could not resolve op 'mbconv_4x4_e3'"):
        mb.proxyless(candidates=["mbconv_4x4_e3"])
    with pytest.raises(ConfigError, match=r"width_mult must be a positive number, got 0"):
        mb.proxyless(width_mult=0)
    with pytest.raises(ConfigError, match=r"decode does not take \['widthmult'\]; it takes"):
        mb.decode(ARCH, widthmult=0.25)


@pytest.mark.parametrize("make", [lambda: mb.proxyless(**TINY), lambda: mb.decode(ARCH, **TINY)])
def test_graph_files_round_trip(make, tmp_path):
    assert_files_round_trip(make(), tmp_path)
